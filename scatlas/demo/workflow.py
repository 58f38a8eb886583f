"""Run the demo end to end: simulate, serve its repository responses locally, query, then process.

The replay server lives exactly as long as the refresh (``snakemake query``, then ``snakemake``)
and is stopped even when it fails.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from scatlas.demo.replay import ReplayServer
from scatlas.demo.simulate import REPLAY_TOKEN, simulate
from scatlas.io import atomic_output
from scatlas.lock import atlas_lock
from scatlas.refresh import refresh, write_report


@contextlib.contextmanager
def serving(workdir: str | os.PathLike) -> Iterator[Path]:
    """Serve ``workdir/data/replay`` and yield ``workdir/config.yaml``, the demo config naming the server."""
    workdir = Path(workdir).resolve()
    with ReplayServer(workdir / "data" / "replay") as server:
        config = workdir / "config.yaml"
        with atomic_output(config) as tmp:
            tmp.write_text((workdir / "data" / "config.yaml").read_text().replace(REPLAY_TOKEN, server.address))
        yield config


def run_demo(
    workdir: str | os.PathLike,
    cores: int = 2,
    seed: int = 0,
    cells_per_study: int | None = None,
    extra_args: tuple[str, ...] = (),
) -> Path:
    """Simulate the demo into ``workdir/data``, run the whole workflow in ``workdir`` and write its report
    (``workdir/report.html``); return ``workdir``.

    ``extra_args`` go to Snakemake (e.g. a workflow profile). The atlas lock (:mod:`scatlas.lock`) is
    taken before anything is written: a second demo in ``workdir`` is refused with
    :class:`scatlas.lock.AtlasLocked` and changes nothing. Raises ``subprocess.CalledProcessError`` when a
    workflow run fails.
    """
    workdir = Path(workdir).resolve()
    with atlas_lock(workdir, "scatlas demo --run"):
        simulate(workdir / "data", seed=seed, cells_per_study=cells_per_study)
        with serving(workdir) as config:
            refresh(workdir, config, cores=cores, args=extra_args)
            write_report(workdir, config, args=extra_args)
    return workdir
