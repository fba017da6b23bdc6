"""PEPIS epistatic model kernels (Xu 2013; Zhang et al. 2016): codes, kinships, REML, scans."""

from qtlhpc.methods.pepis.kernels.coding import EpistaticCodes, additive_dominance_codes, codes_from_cross
from qtlhpc.methods.pepis.kernels.kinship import (
    KINSHIP_NAMES,
    KinshipSet,
    kinship_diagonals,
    kinship_matrices,
    kinship_rows,
    kinship_scales,
    loco_mask,
)
from qtlhpc.methods.pepis.kernels.reml import RemlFit, combined_kinship, fit_reml, fit_reml_many

__all__ = [
    "EpistaticCodes", "additive_dominance_codes", "codes_from_cross",
    "KINSHIP_NAMES", "KinshipSet", "kinship_rows", "kinship_diagonals", "kinship_scales", "kinship_matrices",
    "loco_mask", "RemlFit", "combined_kinship", "fit_reml", "fit_reml_many",
]
