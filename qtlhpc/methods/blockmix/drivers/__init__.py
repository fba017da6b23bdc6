"""Stage drivers of the block-mixture method: read inputs, validate, call the per-unit API, write results."""
