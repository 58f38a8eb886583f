"""The embedded offline demo: a synthetic genome, annotation and single-cell reads with known truth."""

from scatlas.demo.simulate import CELL_TYPES, simulate

__all__ = ["CELL_TYPES", "simulate"]
