"""Stage drivers of CAL."""
