"""The "how many steps" page (8): the quality meter runs (run) and their charts (view)."""
