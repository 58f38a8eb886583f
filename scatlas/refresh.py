"""The biweekly refresh: query what is new since the last successful query, then run the workflow.

One refresh at a time per working directory: an exclusive ``flock`` on ``DIR/.scatlas-refresh.lock``
is held for the whole run, so a second refresh (a cron line firing while the last one is still
running) exits at once with a message. Because that lock proves no other scatlas run uses the
directory, a Snakemake lock left behind by a killed run is stale and is cleared before starting.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import logging
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
LOCK_NAME = ".scatlas-refresh.lock"


class RefreshLocked(RuntimeError):
    """Another refresh holds the working directory."""


@contextlib.contextmanager
def refresh_lock(directory: str | os.PathLike) -> Iterator[Path]:
    """Hold the directory's refresh lock, or raise :class:`RefreshLocked` naming its holder."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LOCK_NAME
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown process"
            raise RefreshLocked(f"{directory}: another refresh is running ({holder}); not starting a second") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} since {dt.datetime.now().isoformat(timespec='seconds')}\n")
        handle.flush()
        try:
            yield path
        finally:
            handle.seek(0)
            handle.truncate()  # the lock itself goes with the file handle


def snakemake_command(
    directory: str | os.PathLike,
    configfile: str | os.PathLike | None,
    cores: int,
    args: Sequence[str] = (),
    targets: Sequence[str] = (),
    snakefile: str | os.PathLike | None = None,
) -> list[str]:
    """The Snakemake command line; targets come first, as --configfile takes every word after it."""
    command = [sys.executable, "-m", "snakemake", *targets, "-s", str(snakefile or REPO / "Snakefile")]
    command += ["--directory", str(directory), "--cores", str(cores), *args]
    return command + (["--configfile", str(configfile)] if configfile else [])


def refresh(
    directory: str | os.PathLike,
    configfile: str | os.PathLike | None = None,
    cores: int = 2,
    args: Sequence[str] = (),
    query: bool = True,
    snakefile: str | os.PathLike | None = None,
) -> None:
    """Query (unless ``query`` is False), then bring every output of the workflow up to date.

    ``args`` go to both Snakemake runs (e.g. ``["--workflow-profile", "profiles/slurm"]``).
    Raises :class:`RefreshLocked` when another refresh runs in ``directory`` and
    ``subprocess.CalledProcessError`` when a workflow run fails.
    """
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    with refresh_lock(directory):
        # a Snakemake lock surviving a killed run is stale: the refresh lock proves nobody else runs here
        unlock = snakemake_command(directory, configfile, cores, [*args, "--unlock"], snakefile=snakefile)
        subprocess.run(unlock, check=True, env=env, capture_output=True)
        for targets in ([["query"]] if query else []) + [[]]:
            log.info("refresh: snakemake %s", " ".join(targets) or "(all)")
            subprocess.run(
                snakemake_command(directory, configfile, cores, args, targets, snakefile), check=True, env=env
            )


def write_report(
    directory: str | os.PathLike,
    configfile: str | os.PathLike | None = None,
    output: str = "report.html",
    args: Sequence[str] = (),
    snakefile: str | os.PathLike | None = None,
) -> Path:
    """Snakemake's HTML report of the finished run in ``directory`` (``snakemake --report``: the outputs marked
    with ``report()``, their captions, the MultiQC report) as ``directory/output``; returns its path."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    command = snakemake_command(directory, configfile, 1, [*args, "--report", output], snakefile=snakefile)
    subprocess.run(command, check=True, env=env, capture_output=True, text=True)
    return Path(directory) / output
