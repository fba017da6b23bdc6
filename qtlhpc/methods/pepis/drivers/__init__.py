"""Stage drivers of the PEPIS method: read inputs, call the kernels per work unit, write results."""
