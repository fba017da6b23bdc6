"""Slow, obvious references shared by several test modules (dense fits, planted-truth simulations)."""
