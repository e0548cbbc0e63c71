"""Page 10 (flow matching): its digits, its 2-D laboratory and its charts."""
