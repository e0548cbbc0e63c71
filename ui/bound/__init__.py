"""The bound page (6): the live stratified estimate of the bound."""
