"""Differential expression: SCDE-style per-study tests (or Wilcoxon / pseudo-bulk DESeq2) and
scQuery's multi-study meta-analysis."""

from scatlas.de.meta import COLUMNS, DEParams, combine_studies, differential_expression, run_de, safe_file_name
from scatlas.de.methods import METHODS, compare_groups
from scatlas.de.scde import scde_test

__all__ = [
    "COLUMNS",
    "METHODS",
    "DEParams",
    "combine_studies",
    "compare_groups",
    "differential_expression",
    "run_de",
    "safe_file_name",
    "scde_test",
]
