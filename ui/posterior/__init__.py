"""The posterior page (5): its pictures and charts."""
