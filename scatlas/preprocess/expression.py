"""What the imputation models read: raw counts in row blocks (from memory or straight from an h5ad file on disk), and
the log expression the models see, ``ln(1 + counts × target_sum / library size)`` over the modelled genes.

Library sizes count every gene of the file; the modelled genes are chosen (or aligned by name to a fitted
model's) afterwards. Each block is normalised on its own, which is exact (the scaling is per cell), so a
matrix of any number of cells passes through a fit or a prediction a block at a time, never whole.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import pandas as pd
import scipy.sparse as sp

from scatlas.io import InputError, check_raw_counts
from scatlas.preprocess.normalize import highly_variable, log_normalize

BLOCK_CELLS = 8192  # cells read, normalised and densified at a time (8192 × 2000 genes: 64 MB in float32)
NORMALISATION = "natural log: ln(1 + counts × target_sum / library size); library size = counts over every gene"


class CountRows:
    """Raw counts (cells × genes) read in row blocks; in memory. :class:`H5adCountRows` reads a file."""

    def __init__(self, counts: sp.spmatrix, gene_names, cell_names=None, path: str | os.PathLike = "<counts>"):
        self.path = str(path)
        self.counts = check_raw_counts(counts, path)
        self.gene_names = pd.Index(np.asarray(gene_names).astype(str))
        n = self.counts.shape[0]
        self.cell_names = pd.Index(np.asarray(cell_names if cell_names is not None else np.arange(n)).astype(str))
        self.var = pd.DataFrame(index=self.gene_names)
        self.obs = pd.DataFrame(index=self.cell_names)

    @property
    def shape(self) -> tuple[int, int]:
        return self.counts.shape

    def block(self, start: int, end: int) -> sp.csr_matrix:
        return self.counts[start:end]

    def all(self) -> sp.csr_matrix:
        return self.counts

    def blocks(self, size: int = BLOCK_CELLS) -> Iterator[tuple[int, int, sp.csr_matrix]]:
        for start in range(0, self.shape[0], size):
            end = min(start + size, self.shape[0])
            yield start, end, self.block(start, end)

    def library_sizes(self) -> np.ndarray:
        """Counts per cell over every gene (cells,), float64."""
        return np.concatenate([np.asarray(b.sum(axis=1), dtype=np.float64).ravel() for _, _, b in self.blocks()])


class H5adCountRows(CountRows):
    """The raw counts of an h5ad file read block by block from disk (h5py; CSR or dense): layer ``counts``
    when present, else ``X``, else ``raw/X`` when ``X`` is not counts (as :func:`scatlas.io.raw_counts`).

    Every block is checked as it is read (:func:`scatlas.io.check_raw_counts`); ``obs`` and ``var`` are read
    whole (they are small beside the matrix).
    """

    def __init__(self, path: str | os.PathLike):
        import anndata as ad
        import h5py

        self.path = str(path)
        if not os.path.isfile(path):
            raise InputError(
                path, "h5ad file not found" if not os.path.exists(path) else "is a folder, not an h5ad file"
            )
        try:
            self._file = h5py.File(path, "r")
        except OSError as err:
            raise InputError(path, f"not a readable h5ad file ({err})") from None
        self.source, self._matrix, var_key = self._counts_matrix(ad)
        try:
            self.obs = ad.io.read_elem(self._file["obs"])
            self.var = ad.io.read_elem(self._file[var_key])
        except (KeyError, ValueError) as err:
            raise InputError(path, f"not a readable h5ad file ({err})") from None
        self.gene_names = pd.Index(self.var.index.astype(str))
        self.cell_names = pd.Index(self.obs.index.astype(str))
        if self.shape != (len(self.cell_names), len(self.gene_names)):
            n_obs, n_var = len(self.cell_names), len(self.gene_names)
            raise InputError(
                path, f"{self.source} is {self.shape[0]} × {self.shape[1]} but obs × var is {n_obs} × {n_var}"
            )

    def _counts_matrix(self, ad):
        problems = []
        for key, var_key in (("layers/counts", "var"), ("X", "var"), ("raw/X", "raw/var")):
            if key not in self._file:
                continue
            node = self._file[key]
            encoding = node.attrs.get("encoding-type", "array")
            if encoding == "csc_matrix":
                problems.append(f"{key} is CSC (column-major): write it as CSR to read it by cells")
                continue
            matrix = ad.io.sparse_dataset(node) if encoding == "csr_matrix" else node
            try:
                check_raw_counts(_rows(matrix, 0, min(BLOCK_CELLS, matrix.shape[0])), self.path, key)
            except InputError as err:
                problems.append(err.problem)
                continue
            return key, matrix, var_key
        raise InputError(self.path, "; ".join(problems) or "no X and no layer counts: need cells × genes raw counts")

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(int(n) for n in self._matrix.shape)

    def block(self, start: int, end: int) -> sp.csr_matrix:
        return check_raw_counts(_rows(self._matrix, start, end), self.path, self.source)

    def all(self) -> sp.csr_matrix:
        return sp.vstack([b for _, _, b in self.blocks()], format="csr")


def _rows(matrix, start: int, end: int) -> sp.csr_matrix:
    return sp.csr_matrix(matrix[start:end], dtype=np.float32)


def read_counts(path: str | os.PathLike) -> H5adCountRows:
    """The raw counts of an h5ad file, left on disk; an all-zero matrix raises :class:`InputError`."""
    rows = H5adCountRows(path)
    if rows.shape[0] == 0 or rows.shape[1] == 0:
        raise InputError(path, f"{rows.source} is empty ({rows.shape[0]} cells × {rows.shape[1]} genes)")
    return rows


def median_library_size(library_sizes: np.ndarray, path: str | os.PathLike) -> float:
    """The median counts per cell among cells with counts; an all-zero matrix raises :class:`InputError`."""
    positive = library_sizes[library_sizes > 0]
    if positive.size == 0:
        raise InputError(path, "every count is zero: nothing to impute from")
    return float(np.median(positive))


def choose_genes(rows: CountRows, n_top_genes: int) -> np.ndarray:
    """Column indices of the modelled genes: every gene when ``n_top_genes`` is 0; else those of
    ``var['highly_variable']`` when the file marks them (the atlas does); else every gene when there are at
    most ``n_top_genes``, or the ``n_top_genes`` most variable
    (:func:`scatlas.preprocess.normalize.highly_variable`; reads the counts into memory, sparse)."""
    n_genes = rows.shape[1]
    if n_top_genes <= 0:
        return np.arange(n_genes)
    if "highly_variable" in rows.var and rows.var["highly_variable"].any():
        return np.flatnonzero(rows.var["highly_variable"].to_numpy(dtype=bool))
    if n_top_genes >= n_genes:
        return np.arange(n_genes)
    return np.sort(highly_variable(rows.all(), n_top_genes))


def align_genes(
    names: pd.Index, wanted, path: str | os.PathLike, fill_missing: bool, what: str = "the model's"
) -> np.ndarray:
    """Column of each ``wanted`` gene among ``names`` (-1 where absent, only with ``fill_missing``: such a gene
    reads as zeros, unobserved for LATE's loss). No shared gene, or absent genes without ``fill_missing``,
    raise :class:`InputError` naming ``path`` and how many of ``what`` genes it lacks."""
    wanted = pd.Index(np.asarray(wanted).astype(str))
    if names.has_duplicates:
        names = names.copy()
        names = pd.Index(np.where(names.duplicated(), "", names))  # the first of duplicated names counts
    index = names.get_indexer(wanted)
    missing = int((index < 0).sum())
    if missing == len(wanted):
        raise InputError(path, f"shares no gene with {what} {len(wanted)} genes (genes are matched by var name)")
    if missing and not fill_missing:
        examples = ", ".join(wanted[index < 0][:3])
        raise InputError(
            path,
            f"lacks {missing} of {what} {len(wanted)} genes (e.g. {examples}); --fill-missing reads them as "
            "unobserved (zeros)",
        )
    return index


class LogExpression:
    """The modelled genes' log expression, ``ln(1 + counts × target_sum / library size)`` (cells × genes,
    CSR float32; a zero is unobserved), read from :class:`CountRows` a block of cells at a time.

    ``genes``: column of each modelled gene in the counts (-1: a gene the counts lack, read as zeros).
    """

    def __init__(self, rows: CountRows, genes: np.ndarray, target_sum: float, gene_names=None):
        self.rows = rows
        self.genes = np.asarray(genes)
        self.target_sum = float(target_sum)
        names = gene_names if gene_names is not None else rows.gene_names[np.clip(self.genes, 0, None)]
        self.gene_names = pd.Index(np.asarray(names).astype(str))
        self._missing = self.genes < 0

    @classmethod
    def from_log(cls, x: sp.spmatrix, gene_names=None) -> LogExpression:
        """Already log-normalised values (cells × genes) held in memory: the benchmark's masked matrix."""
        x = sp.csr_matrix(x, dtype=np.float32)
        data = cls.__new__(cls)
        data.rows, data._x = None, x
        data.genes, data.target_sum = np.arange(x.shape[1]), float("nan")
        names = gene_names if gene_names is not None else np.arange(x.shape[1])
        data.gene_names = pd.Index(np.asarray(names).astype(str))
        data._missing = np.zeros(x.shape[1], dtype=bool)
        return data

    @property
    def n_cells(self) -> int:
        return self._x.shape[0] if self.rows is None else self.rows.shape[0]

    @property
    def n_genes(self) -> int:
        return len(self.genes)

    def block(self, start: int, end: int) -> sp.csr_matrix:
        if self.rows is None:
            return self._x[start:end]
        x = log_normalize(self.rows.block(start, end), self.target_sum)[:, np.clip(self.genes, 0, None)]
        if self._missing.any():
            x = sp.csr_matrix(x @ sp.diags((~self._missing).astype(np.float32)))
            x.eliminate_zeros()
        return sp.csr_matrix(x, dtype=np.float32)

    def blocks(self, size: int = BLOCK_CELLS) -> Iterator[tuple[int, int, sp.csr_matrix]]:
        for start in range(0, self.n_cells, size):
            end = min(start + size, self.n_cells)
            yield start, end, self.block(start, end)

    def take(self, cells: np.ndarray, size: int = BLOCK_CELLS) -> sp.csr_matrix:
        """The rows of ``cells`` (indices, any order), in that order."""
        cells = np.asarray(cells)
        order = np.argsort(cells, kind="stable")
        parts = []
        for start, end, x in self.blocks(size):
            chosen = cells[order][(cells[order] >= start) & (cells[order] < end)]
            if chosen.size:
                parts.append(x[chosen - start])
        stacked = sp.vstack(parts, format="csr") if parts else sp.csr_matrix((0, self.n_genes), dtype=np.float32)
        restore = np.empty_like(order)
        restore[order] = np.arange(len(order))
        return stacked[restore]
