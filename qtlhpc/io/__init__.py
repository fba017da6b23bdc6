"""Cross data model and input readers."""

from qtlhpc.io.cross import (
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
from qtlhpc.io.loader import FORMATS, INPUT_OPTIONS, check_input_options, load_cross
from qtlhpc.io.readers import (
    attach_covariates,
    attach_expression,
    attach_phenotypes,
    read_gene_map,
    read_map,
    read_matrix_table,
    read_pepis,
    read_plink,
    read_rqtl_csv,
    read_rqtl_csvs,
    read_tsv_cross,
    select_traits,
)
from qtlhpc.io.writers import (
    epistatic_codes,
    write_map,
    write_matrix_tsv,
    write_pepis,
    write_rqtl_csv,
    write_rqtl_csvs,
)

__all__ = [
    "Cross", "CROSS_TYPES", "GENOTYPE_STATES", "OBSERVED_CODES", "COMPATIBLE_STATES", "HMM_CROSS_TYPE",
    "ADDITIVE_CODE", "DOMINANCE_CODE", "check_cross_type",
    "FORMATS", "INPUT_OPTIONS", "check_input_options", "load_cross",
    "read_rqtl_csv", "read_rqtl_csvs", "read_plink", "read_pepis", "read_tsv_cross", "read_map",
    "read_matrix_table", "read_gene_map", "attach_phenotypes", "attach_covariates", "attach_expression",
    "select_traits", "write_rqtl_csv", "write_rqtl_csvs", "write_pepis", "write_matrix_tsv", "write_map",
    "epistatic_codes",
]
