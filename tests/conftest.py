import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SCATLAS_SHARED", REPO.parent / "shared")).resolve()
QUASR = SHARED / "data" / "reference" / "hisat2_quasr_hg19sub"
BIN = Path(sys.executable).parent
WORKFLOW_TESTS = REPO / "tests" / "workflow"


def pytest_collection_modifyitems(items):
    """Tests under tests/workflow run Snakemake: marked ``workflow`` (``make check`` leaves them out)."""
    for item in items:
        if WORKFLOW_TESTS in Path(item.path).parents:
            item.add_marker(pytest.mark.workflow)


def _devices() -> list:
    """``cpu``, and ``cuda`` (marked ``gpu``) where a CUDA device is present."""
    import torch

    return ["cpu"] + ([pytest.param("cuda", marks=pytest.mark.gpu)] if torch.cuda.is_available() else [])


@pytest.fixture(params=_devices())
def device(request) -> str:
    """The torch device a model test fits on: every test that takes it runs on the CPU and, where there is one,
    on the GPU."""
    return request.param


def tool_env() -> dict:
    """The environment of a user who activated .venv: its console scripts first on PATH."""
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}


def snakemake(workdir: Path, configfile: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    cmd = [
        str(BIN / "snakemake"),
        "-s",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",
        str(configfile),
        "--cores",
        "2",
        *args,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, env=tool_env())
    if check and done.returncode != 0:
        raise AssertionError(f"snakemake failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}")
    return done


@pytest.fixture(scope="session")
def deng_counts():
    """deng_subset_133's raw counts as the clustering methods get them, and its true labels."""
    import anndata as ad

    from scatlas.cluster.data import read_counts

    path = SHARED / "data" / "benchmarks" / "deng_subset_133.h5ad"
    matrix = read_counts(path)
    return matrix.counts, ad.read_h5ad(path).obs["label"].to_numpy()[matrix.cell_index]


@pytest.fixture(scope="session")
def quasr() -> Path:
    if not QUASR.is_dir():
        pytest.fail(f"shared reference data not found at {QUASR} (set SCATLAS_SHARED)")
    return QUASR


@pytest.fixture(scope="session")
def demo(tmp_path_factory) -> Path:
    """The demo generated and run through the whole workflow (query first) once per session."""
    from scatlas.demo.workflow import run_demo

    if os.environ.get("SCATLAS_DEMO_DIR"):  # a finished `scatlas demo --run` to check again without rerunning it
        return Path(os.environ["SCATLAS_DEMO_DIR"]).resolve()
    workdir = tmp_path_factory.mktemp("demo")
    try:
        run_demo(workdir, cores=2)
    except subprocess.CalledProcessError as err:
        raise AssertionError(f"the demo workflow failed: {err}") from None
    return workdir
