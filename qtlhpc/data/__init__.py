"""Cross data model and input readers."""

from qtlhpc.data.cross import (
    ADDITIVE_CODE,
    COMPATIBLE_STATES,
    CROSS_TYPES,
    DOMINANCE_CODE,
    GENOTYPE_STATES,
    HMM_CROSS_TYPE,
    OBSERVED_CODES,
    Cross,
    check_cross_type,
)

__all__ = [
    "Cross", "CROSS_TYPES", "GENOTYPE_STATES", "OBSERVED_CODES", "COMPATIBLE_STATES", "HMM_CROSS_TYPE",
    "ADDITIVE_CODE", "DOMINANCE_CODE", "check_cross_type",
]
