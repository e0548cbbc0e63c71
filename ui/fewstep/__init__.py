"""The few-steps page (12): the 2-D lab (reflow, consistency distillation) and the reflowed digit generator."""
