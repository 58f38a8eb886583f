"""Stage 8b, preprocess: scanpy QC of the atlas, size factors, log-normalisation, highly variable genes."""

from scatlas.preprocess.qc import QC_COLUMNS, normalize, preprocess_atlas, qc_filter

__all__ = ["QC_COLUMNS", "normalize", "preprocess_atlas", "qc_filter"]
