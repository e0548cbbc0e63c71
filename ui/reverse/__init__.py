"""The reverse-process page (7): the live player (run) and its pictures and formulas (view)."""
