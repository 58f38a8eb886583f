"""Stage 8a, atlas: per-study AnnData merged into one sparse atlas with Cell Ontology labels."""

from scatlas.atlas.merge import common_genes, merge_studies, read_counts

__all__ = ["common_genes", "merge_studies", "read_counts"]
