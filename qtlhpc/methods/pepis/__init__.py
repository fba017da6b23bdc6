"""Epistatic QTL mapping with the PEPIS model (Xu 2013; Zhang et al. 2016)."""
