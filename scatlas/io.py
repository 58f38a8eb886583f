"""File handling shared by every stage: one error type for bad input, one atomic writer of a file and one of a
folder (both honouring the umask), one line for a failed write, one h5ad reader, one check of raw counts."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy, pandas and scipy load where counts are read: a per-run job's script never needs them
    import pandas as pd
    import scipy.sparse as sp


class InputError(ValueError):
    """Bad input the user can fix; its message is one line naming the file and the problem."""

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


def umask() -> int:
    """The process's umask (read without changing it for longer than the call)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


_WRITE_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG)


def _writable_parent(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        raise InputError(path, "is a folder: the output must be a file path")


@contextlib.contextmanager
def made_folder(folder: str | os.PathLike) -> Iterator[Path]:
    """``mkdir -p folder`` for the block; when the block fails, the folders it made are removed again
    (those left empty), so a failed run leaves no empty output folders behind."""
    folder = Path(folder)
    missing, parent = [], folder
    while not parent.exists():
        missing.append(parent)
        parent = parent.parent
    folder.mkdir(parents=True, exist_ok=True)
    try:
        yield folder
    except BaseException:
        for made in missing:  # deepest first
            try:
                made.rmdir()
            except OSError:
                break
        raise


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    A reader never sees a half-written file, and a failure leaves any earlier
    ``path`` untouched (and no folder it had to make). The temporary name keeps the
    final suffix so that tools which pick a format from the extension (samtools,
    anndata) still work. The file gets the mode a plain ``open`` would give (0666
    less the umask), not mkstemp's 0600, so a shared atlas stays readable by its group.
    A full disk or a read-only file system raises ``OSError`` naming ``path``.
    """
    path = Path(path)
    _writable_parent(path)
    with made_folder(path.parent):
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{''.join(path.suffixes)}", dir=path.parent)
        except OSError as err:
            raise OSError(err.errno, err.strerror, str(path)) from None
        os.close(fd)
        tmp = Path(tmp)
        try:
            yield tmp
            if tmp.exists():
                os.chmod(tmp, 0o666 & ~umask())
            os.replace(tmp, path)
        except OSError as err:
            if err.errno in _WRITE_ERRORS:  # a write into the temporary file: name the output, not the temporary
                raise OSError(err.errno, err.strerror, str(path)) from None
            if err.errno is None and "written" in str(err):  # numpy's short write ("N requested and M written")
                raise OSError(errno.ENOSPC, "No space left on device", str(path)) from None
            raise
        finally:
            tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``path``; on success it replaces ``path`` (and everything
    in it) as a whole, so a reader sees the old folder or the new one, never a mix (e.g. the table of a
    cell type no longer present). A failure leaves any earlier ``path`` untouched. Mode 0777 less the umask.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(path, "exists and is not a folder")
    with made_folder(path.parent):
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
        try:
            os.chmod(tmp, 0o777 & ~umask())
            yield tmp
            old = None
            if path.exists():
                old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
                os.replace(path, old / path.name)
            os.replace(tmp, path)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def output_error(err: OSError) -> str:
    """One line for a failed read or write: the file and the cause (a full disk, a read-only file system,
    a folder where a file belongs, no permission), without a traceback."""
    where = err.filename or "output"
    causes = {
        errno.ENOSPC: "no space left on device",
        errno.EDQUOT: "disk quota exceeded",
        errno.EROFS: "read-only file system",
        errno.EISDIR: "is a folder, not a file",
        errno.EACCES: "permission denied",
        errno.ENOENT: "no such file or folder",
        errno.ENOTDIR: "a part of the path is not a folder",
    }
    cause = causes.get(err.errno, err.strerror or str(err))
    verb = "writing" if err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS) else "at"
    return f"{cause} {verb} {where}"


def read_h5ad(path: str | os.PathLike, backed: str | None = None):
    """The AnnData of an h5ad file (``backed="r"``: its matrices left on disk, for ``obs`` / ``var`` alone).

    A missing, truncated or non-h5ad file raises :class:`InputError` naming it.
    """
    import anndata as ad  # here, not above: most commands never read an h5ad (importing anndata slows every start)

    if Path(path).is_dir():
        raise InputError(path, "is a folder, not an h5ad file")
    if not Path(path).exists():
        raise InputError(path, "h5ad file not found")
    try:
        return ad.read_h5ad(path, backed=backed)
    except FileNotFoundError:
        raise InputError(path, "h5ad file not found") from None
    except Exception as err:  # anndata raises what its readers raise: an HDF5 file of another layout → TypeError
        raise InputError(path, f"not a readable h5ad file ({type(err).__name__}: {str(err).splitlines()[0]})") from None


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
    import numpy as np
    import scipy.sparse as sp

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
