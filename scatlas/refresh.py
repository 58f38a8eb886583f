"""The biweekly refresh: query what is new since the last successful query, then run the workflow.

One run at a time per working directory: the refresh holds the atlas lock (:mod:`scatlas.lock`) for
its whole run, so a second refresh, a plain ``snakemake`` run or a ``scatlas demo --run`` in the same
directory is refused at once (and the refresh is refused while one of them runs). Because that lock
proves no other scatlas run uses the directory, a Snakemake lock left behind by a killed run is stale
and is cleared before starting.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from scatlas.lock import atlas_lock

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]


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
    Raises :class:`scatlas.lock.AtlasLocked` when another run holds ``directory`` and
    ``subprocess.CalledProcessError`` when a workflow run fails.
    """
    if cores < 1:
        raise ValueError(f"cores must be at least 1, not {cores}")
    with atlas_lock(directory, "scatlas refresh"):
        # built under the lock: the Snakemake runs inherit its token (scatlas.lock) and run under it
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        # a Snakemake lock surviving a killed run is stale: the atlas lock proves nobody else runs here
        unlock = snakemake_command(directory, configfile, cores, [*args, "--unlock"], snakefile=snakefile)
        subprocess.run(unlock, check=True, env=env, stdout=subprocess.DEVNULL)
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
