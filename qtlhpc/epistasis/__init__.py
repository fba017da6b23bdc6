"""PEPIS epistatic model kernels."""
