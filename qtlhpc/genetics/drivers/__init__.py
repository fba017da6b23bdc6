"""Stage drivers of the shared genetics stages (genoprob) and of `qtlhpc simulate`."""
