"""Run the demo end to end: simulate, serve its repository responses locally, query, then process.

The replay server lives exactly as long as the two workflow invocations (``snakemake query``, then
``snakemake``) and is stopped even when one fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from scatlas.demo.replay import ReplayServer
from scatlas.demo.simulate import REPLAY_TOKEN, simulate
from scatlas.io import atomic_output

REPO = Path(__file__).resolve().parents[2]


def run_demo(
    workdir: str | os.PathLike,
    cores: int = 2,
    seed: int = 0,
    snakefile: str | os.PathLike | None = None,
    extra_args: tuple[str, ...] = (),
) -> Path:
    """Simulate the demo into ``workdir/data`` and run the whole workflow in ``workdir``; return ``workdir``.

    Raises ``subprocess.CalledProcessError`` (with Snakemake's output) when a workflow run fails.
    """
    workdir = Path(workdir).resolve()
    template = simulate(workdir / "data", seed=seed)
    snakefile = Path(snakefile or REPO / "Snakefile")
    with ReplayServer(workdir / "data" / "replay") as server:
        config = workdir / "config.yaml"
        with atomic_output(config) as tmp:
            tmp.write_text(template.read_text().replace(REPLAY_TOKEN, server.address))
        for target in (["query"], []):
            cmd = [
                sys.executable,
                "-m",
                "snakemake",
                "-s",
                str(snakefile),
                "--directory",
                str(workdir),
                "--configfile",
                str(config),
                "--cores",
                str(cores),
                *extra_args,
                *target,
            ]
            subprocess.run(
                cmd,
                check=True,
                env={**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"},
            )
    return workdir
