"""The atlas lock: one exclusive ``flock`` on ``DIR/.scatlas.lock`` per atlas working directory.

Taken by every run that writes the atlas: a plain ``snakemake`` run (the Snakefile's ``onstart`` calls
:func:`hold`), ``scatlas refresh`` and ``scatlas demo --run`` (before they write anything). The file
names its holder (pid, command, start); the kernel drops the lock when the holder exits, even after
``kill -9``, so a lock file left behind never blocks a later run. A holder passes its token to the
Snakemake runs it starts (environment variable ``SCATLAS_ATLAS_LOCK``): they run under its lock.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO

LOCK_NAME = ".scatlas.lock"
TOKEN_ENV = "SCATLAS_ATLAS_LOCK"

_held: dict[Path, IO[str]] = {}  # lock file → its open handle, while this process holds it


class AtlasLocked(RuntimeError):
    """Another live process holds the atlas directory; its message names the directory and the holder."""


def lock_path(directory: str | os.PathLike) -> Path:
    return Path(directory).resolve() / LOCK_NAME


def _acquire(directory: str | os.PathLike, command: str, inherit: bool = False) -> IO[str] | None:
    """The handle holding the lock; None when this process holds it already or (``inherit``) when the
    process that started this one holds it and passed its token on; else :class:`AtlasLocked` naming the
    holder."""
    path = lock_path(directory)
    if path in _held:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")  # noqa: SIM115 - held open as long as the lock
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip()
        handle.close()
        token = os.environ.get(TOKEN_ENV)
        if inherit and token and holder.endswith(f"token {token}"):
            return None
        raise AtlasLocked(
            f"{path.parent}: in use by another run ({holder.rpartition(' token ')[0] or 'unknown process'}); "
            "not starting a second"
        ) from None
    token = secrets.token_hex(8)
    handle.seek(0)
    handle.truncate()
    since = dt.datetime.now().isoformat(timespec="seconds")
    handle.write(f"pid {os.getpid()} ({command}) since {since} token {token}\n")
    handle.flush()
    os.environ[TOKEN_ENV] = token
    _held[path] = handle
    return handle


def _release(directory: str | os.PathLike) -> None:
    handle = _held.pop(lock_path(directory))
    handle.seek(0)
    handle.truncate()
    handle.close()  # closing the last handle drops the flock
    os.environ.pop(TOKEN_ENV, None)


@contextlib.contextmanager
def atlas_lock(directory: str | os.PathLike, command: str) -> Iterator[Path]:
    """Hold the atlas lock of ``directory`` for the block (re-entrant within a process), or raise
    :class:`AtlasLocked` at once when another live process holds it."""
    handle = _acquire(directory, command)
    try:
        yield lock_path(directory)
    finally:
        if handle is not None:
            _release(directory)


def hold(directory: str | os.PathLike, command: str) -> None:
    """Take the atlas lock of ``directory`` until this process exits (a plain Snakemake run); a run
    started by the holder (the Snakemake runs of a refresh) runs under the holder's lock."""
    _acquire(directory, command, inherit=True)


def holder(directory: str | os.PathLike) -> str | None:
    """Who holds the atlas lock of ``directory`` (pid, command, start), or None when no live process does."""
    path = lock_path(directory)
    if path in _held:
        return f"pid {os.getpid()}"
    if not path.exists():
        return None
    with open(path) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return handle.read().strip().rpartition(" token ")[0] or "unknown process"
    return None
