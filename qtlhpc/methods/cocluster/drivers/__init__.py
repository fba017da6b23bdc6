"""Stage drivers of the co-clustering room."""
