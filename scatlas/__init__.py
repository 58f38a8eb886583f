"""scatlas: a uniformly processed single-cell RNA-seq atlas and the models trained on it."""

__version__ = "0.1.0"
