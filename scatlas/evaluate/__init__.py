"""Scoring a clustering against known labels (``scatlas score``, and the scores table of the workflow)."""

from scatlas.evaluate.clustering import clustering_scores, hungarian_accuracy, score_files, score_table

__all__ = ["clustering_scores", "hungarian_accuracy", "score_files", "score_table"]
