"""Test margins: the figures the model tests assert on, over seeds, thread counts and CPU kernel sets.

PyTorch (ATen), oneDNN, MKL and OpenBLAS each pick kernels by CPU, so one seed gives other figures on
another machine. Each probe of ``tests/quality.py`` runs here in a fresh process per seed × thread
count × kernel set; the kernel sets force the other code paths on the machine at hand. A test's
threshold must sit below the lowest figure this writes (``test_margins.tsv``: one row per run and
figure; it prints the minimum, median and maximum of each figure).

    python benchmarks/test_margins.py [--probes scsmd_baron deng_methods] [--seeds 0 1 2 3 4]
        [--threads 1 2] [--kernels native avx2 compatible] [--jobs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import write_result

TESTS = Path(__file__).resolve().parents[1] / "tests"
KERNELS = {
    "native": {},
    "avx2": {
        "ATEN_CPU_CAPABILITY": "avx2",
        "ONEDNN_MAX_CPU_ISA": "AVX2",
        "MKL_CBWR": "AVX2",
        "OPENBLAS_CORETYPE": "Haswell",
    },
    "compatible": {
        "ATEN_CPU_CAPABILITY": "default",
        "ONEDNN_MAX_CPU_ISA": "SSE41",
        "MKL_CBWR": "COMPATIBLE",
        "OPENBLAS_CORETYPE": "Sandybridge",
    },
}
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS")
RUN = (
    "import json, sys, torch; sys.path.insert(0, {tests!r}); torch.set_num_threads({threads}); "
    "from quality import PROBES; print(json.dumps(PROBES[{probe!r}]({seed})))"
)


def run_probe(probe: str, seed: int, threads: int, kernel: str) -> list[dict]:
    env = {**os.environ, **KERNELS[kernel], **dict.fromkeys(THREAD_VARIABLES, str(threads))}
    code = RUN.format(tests=str(TESTS), threads=threads, probe=probe, seed=seed)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    seconds = round(time.perf_counter() - start, 1)
    if done.returncode != 0:
        raise RuntimeError(f"{probe} seed {seed}, {threads} threads, {kernel}: {done.stderr[-2000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    row = {"probe": probe, "seed": seed, "threads": threads, "kernel": kernel, "seconds": seconds}
    print(row | figures, flush=True)
    return [row | {"figure": name, "value": value} for name, value in figures.items()]


def main() -> None:
    sys.path.insert(0, str(TESTS))
    from quality import PROBES

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--probes", nargs="+", choices=sorted(PROBES), default=sorted(PROBES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--kernels", nargs="+", choices=sorted(KERNELS), default=list(KERNELS))
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="CPU threads in use at once")
    args = parser.parse_args()
    runs = [(p, s, t, k) for p in args.probes for t in args.threads for k in args.kernels for s in args.seeds]
    rows = []
    for threads in sorted(set(args.threads)):
        batch = [run for run in runs if run[2] == threads]
        with ThreadPoolExecutor(max(1, args.jobs // threads)) as pool:
            for result in pool.map(lambda run: run_probe(*run), batch):
                rows += result
    table = pd.DataFrame(rows)
    write_result("test_margins", table)
    print(table.groupby(["probe", "figure"])["value"].agg(["min", "median", "max", "count"]).to_string())


if __name__ == "__main__":
    main()
