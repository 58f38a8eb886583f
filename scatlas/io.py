"""File handling shared by every stage: one error type for bad input, one atomic writer, one h5ad reader, one
check of raw counts."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp


class InputError(ValueError):
    """Bad input the user can fix; its message is one line naming the file and the problem."""

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    A reader never sees a half-written file, and a failure leaves any earlier
    ``path`` untouched. The temporary name keeps the final suffix so that tools
    which pick a format from the extension (samtools, anndata) still work.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{''.join(path.suffixes)}", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_h5ad(path: str | os.PathLike, backed: str | None = None):
    """The AnnData of an h5ad file (``backed="r"``: its matrices left on disk, for ``obs`` / ``var`` alone).

    A missing, truncated or non-h5ad file raises :class:`InputError` naming it.
    """
    import anndata as ad  # here, not above: most commands never read an h5ad (importing anndata slows every start)

    try:
        return ad.read_h5ad(path, backed=backed)
    except (OSError, KeyError, ValueError) as err:
        raise InputError(path, f"not a readable h5ad file ({err})") from None


def raw_counts(adata, path: str | os.PathLike) -> tuple[sp.csr_matrix, pd.Index]:
    """The raw counts of an AnnData (cells × genes, CSR) and their gene names: layer ``counts`` when
    present, else ``X``, else ``raw.X`` when ``X`` is not counts (CELLxGENE's layout: ``X`` normalised, the
    counts in ``raw``, whose genes may be more than ``X``'s).

    An h5ad written by the atlas stages (``X`` log-normalised, the counts in a layer), a plain count
    matrix and a CELLxGENE download all work; :func:`check_raw_counts` refuses anything else.
    """
    if "counts" in adata.layers:
        return check_raw_counts(adata.layers["counts"], path, "layer counts"), adata.var_names
    if adata.X is None:
        raise InputError(path, "no X and no layer counts: need cells × genes raw counts")
    try:
        return check_raw_counts(adata.X, path, "X"), adata.var_names
    except InputError as err:
        if adata.raw is None:
            raise
        try:
            return check_raw_counts(adata.raw.X, path, "raw.X"), adata.raw.var_names
        except InputError as raw_err:
            raise InputError(path, f"{err.problem}; {raw_err.problem}") from None


def check_raw_counts(matrix, path: str | os.PathLike, source: str = "X") -> sp.csr_matrix:
    """``matrix`` as CSR when every stored value is a non-negative integer; else :class:`InputError`
    naming ``path``, the matrix (``source``) and the problem (NaN or infinite, negative, non-integer:
    normalized, scaled or log data)."""
    counts = sp.csr_matrix(matrix)
    values = counts.data
    if not np.isfinite(values).all():
        raise InputError(path, f"{source} holds NaN or infinite values: need raw counts")
    if (values < 0).any():
        raise InputError(path, f"{source} holds negative values (scaled data?): need raw counts")
    fractional = values != np.round(values)
    if fractional.any():
        raise InputError(
            path,
            f"{source} holds non-integer values (e.g. {values[fractional][0]:.4g}; normalized or "
            "log data?): need raw counts",
        )
    return counts
