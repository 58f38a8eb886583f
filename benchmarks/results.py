"""Where benchmarks put their figures: ``benchmarks/results/<YYYY-MM-DD>_<short commit>/<benchmark>.tsv``
beside ``<benchmark>.env.json``, which says on what machine, software and command they were measured.

A benchmark builds a table and calls :func:`write_result`; ``--output`` (:func:`add_output_argument`)
puts it elsewhere. Both files are written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pandas as pd

from scatlas.io import atomic_output

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
KERNEL_VARIABLES = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_CBWR", "OPENBLAS_CORETYPE")
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS")
PACKAGES = ("torch", "numpy", "scipy", "scikit-learn", "scanpy", "anndata", "snakemake", "pandas")


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else ""


def results_dir() -> Path:
    """Today's folder for the checked-out commit (``unknown`` outside a git checkout)."""
    commit = _git("rev-parse", "--short", "HEAD") or "unknown"
    return RESULTS / f"{datetime.date.today().isoformat()}_{commit}"


def _cpu() -> dict:
    model, flags = platform.processor(), []
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = value.split()
                break
    except OSError:
        pass
    simd = sorted(flag for flag in flags if flag.startswith(("avx", "fma", "sse4", "amx")))
    return {"model": model, "simd_flags": simd, "cores": os.cpu_count(), "load_average": list(os.getloadavg())}


def environment() -> dict:
    """The machine, the software and the command a figure was measured with."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    gpu, threads = None, None
    try:
        import torch

        threads = torch.get_num_threads()
        if torch.cuda.is_available():
            gpu = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "commit": _git("rev-parse", "HEAD") or None,
        "dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "command": [Path(sys.argv[0]).name, *sys.argv[1:]],
        "cpu": _cpu(),
        "torch_threads": threads,
        "gpu": gpu,
        "environment": {name: os.environ[name] for name in KERNEL_VARIABLES + THREAD_VARIABLES if name in os.environ},
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
    }


def add_output_argument(parser, benchmark: str) -> None:
    """``--output OUT.tsv``: where the table goes (default ``results_dir() / <benchmark>.tsv``)."""
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help=f"TSV to write (default: benchmarks/results/<date>_<commit>/{benchmark}.tsv)",
    )


def result_path(benchmark: str, output: str | os.PathLike | None = None) -> Path:
    """``output``, or ``<benchmark>.tsv`` in :func:`results_dir`."""
    return Path(output) if output else results_dir() / f"{benchmark}.tsv"


def write_result(
    benchmark: str,
    table: pd.DataFrame,
    folder: str | os.PathLike | None = None,
    *,
    output: str | os.PathLike | None = None,
    env: bool = True,
    float_format: str | None = None,
) -> Path:
    """Write ``table`` as ``<benchmark>.tsv`` under ``folder`` (default :func:`results_dir`), or to the
    file ``output``, and, with ``env``, the :func:`environment` beside it as ``<stem>.env.json``; each
    file appears under its name only when complete. Returns the TSV's path."""
    path = Path(folder) / f"{benchmark}.tsv" if folder else result_path(benchmark, output)
    with atomic_output(path) as tmp:
        table.to_csv(tmp, sep="\t", index=False, float_format=float_format)
    if env:
        with atomic_output(path.with_name(f"{path.stem}.env.json")) as tmp:
            tmp.write_text(json.dumps(environment() | {"benchmark": benchmark}, indent=2) + "\n")
    return path
