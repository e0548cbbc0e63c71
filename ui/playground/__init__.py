"""The 2-D playground page (9): the lab that trains, samples and draws the toys."""
