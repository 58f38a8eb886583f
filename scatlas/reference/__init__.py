"""Stage 4, reference: genome + GTF → HISAT2 index, the quantified gene set and gene lengths."""

from scatlas.reference.gtf import gene_table, read_exons, write_gene_gtf, write_gene_set
from scatlas.reference.index import build_hisat2_index, hisat2_index_files, install_hisat2_index

__all__ = [
    "build_hisat2_index",
    "gene_table",
    "hisat2_index_files",
    "install_hisat2_index",
    "read_exons",
    "write_gene_gtf",
    "write_gene_set",
]
