"""Scoring a clustering against known labels (``scatlas score``; SPEC §6, §11)."""

from scatlas.evaluate.clustering import clustering_scores, hungarian_accuracy, score_files, score_table

__all__ = ["clustering_scores", "hungarian_accuracy", "score_files", "score_table"]
