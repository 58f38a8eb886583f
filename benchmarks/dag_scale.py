"""How long and how much memory ``snakemake -n`` needs to plan the atlas, by number of runs.

Synthetic runs sheets in the real format (scatlas.sheets: study, run, sample, layout, ENA URLs
and md5s; ~300 runs per study, a third paired-end, as the mouse atlas) are planned with the
workflow's own Snakefile and config. Each size is one fresh ``snakemake -n`` process, timed and
measured (peak resident memory of it and its children); the job counts are read from its plan and
converted to what ``profiles/slurm`` submits: one job per ``group-components`` runs of the
``per_run`` group plus one per other job.

    python benchmarks/dag_scale.py [--runs 1000 10000 50000 150000] [--batch 100] [--profile]

Results: ``benchmarks/results/<date>_<commit>/dag_scale.tsv`` and ``dag_scale.env.json``;
``--profile`` also writes ``dag_scale.<runs>.prof`` (cProfile of the largest size).
"""

from __future__ import annotations

import argparse
import math
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import REPO, add_output_argument, result_path, write_result

from scatlas.sheets import load_runs

RUNS_PER_STUDY = 300
PER_RUN_RULES = ("fetch_fastq", "hisat2_align", "featurecounts")


def synthetic_sheet(n_runs: int, path: Path) -> Path:
    """A runs sheet of ``n_runs`` ENA-fetched runs; every third paired-end."""
    rows = []
    for i in range(n_runs):
        study, run = f"GSE{100000 + i // RUNS_PER_STUDY}", f"SRR{10_000_000 + i}"
        paired = i % 3 == 0
        base = f"ftp.sra.ebi.ac.uk/vol1/fastq/SRR{i % 1000:03d}/{run}/{run}"
        rows.append(
            {
                "study": study,
                "run": run,
                "sample": f"GSM{5_000_000 + i}",
                "layout": "PAIRED" if paired else "SINGLE",
                "fastq_1": "",
                "fastq_2": "",
                "fastq_url_1": f"{base}_1.fastq.gz" if paired else f"{base}.fastq.gz",
                "fastq_url_2": f"{base}_2.fastq.gz" if paired else "",
                "fastq_md5_1": f"{i:032x}",
                "fastq_md5_2": f"{i + 1:032x}" if paired else "",
            }
        )
    pd.DataFrame(rows).to_csv(path, sep="\t", index=False)
    load_runs(path)  # the real format, or fail here
    return path


def job_counts(plan: str) -> dict[str, int]:
    """Jobs per rule from the ``Job stats`` table ``snakemake -n`` prints."""
    table = plan.split("Job stats:", 1)[1]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.MULTILINE)}


def plan(n_runs: int, scratch: Path, profile: Path | None) -> dict:
    workdir = scratch / f"runs{n_runs}"
    workdir.mkdir()
    sheet = synthetic_sheet(n_runs, workdir / "runs.tsv")
    config = f"runs={sheet}"
    cmd = [sys.executable]
    if profile:
        cmd += ["-m", "cProfile", "-o", str(profile)]
    cmd += [
        "-m",
        "snakemake",
        "-n",
        "--quiet",
        "rules",
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",
        str(REPO / "config.yaml"),
        "--config",
        config,
        "samples=none.tsv",
        "--cores",
        "1",
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime  # the machine is shared
    peak = after.ru_maxrss  # KiB, the largest child so far: sizes run smallest first
    if done.returncode != 0:
        raise SystemExit(f"snakemake -n failed for {n_runs} runs:\n{done.stderr[-3000:]}")
    counts = job_counts(done.stdout + done.stderr)
    peak_gb = peak / 2**20 if peak > before.ru_maxrss else None
    return {"runs": n_runs, "seconds": seconds, "cpu_seconds": cpu, "peak_rss_gb": peak_gb, **counts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, nargs="+", default=[1000, 10000, 50000, 150000])
    parser.add_argument("--batch", type=int, default=100, help="runs per SLURM job (group-components)")
    parser.add_argument("--profile", action="store_true", help="cProfile the largest size")
    add_output_argument(parser, "dag_scale")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for n_runs in sorted(args.runs):
            profile = None
            if args.profile and n_runs == max(args.runs):
                profile = result_path("dag_scale", args.output).with_name(f"dag_scale.{n_runs}.prof")
                profile.parent.mkdir(parents=True, exist_ok=True)
            row = plan(n_runs, Path(scratch), profile)
            per_run = sum(row.get(rule, 0) for rule in PER_RUN_RULES)
            row["jobs"] = row.pop("total")
            row["slurm_jobs_ungrouped"] = row["jobs"]
            row["slurm_jobs_grouped"] = row["jobs"] - per_run + math.ceil(n_runs / args.batch)
            row["batch"] = args.batch
            rows.append(row)
            peak = row["peak_rss_gb"] or float("nan")
            print(
                f"{n_runs:>7,} runs: {row['seconds']:7.1f} s ({row['cpu_seconds']:.1f} s CPU), peak {peak:.2f} GB, "
                f"{row['jobs']:,} jobs, {row['slurm_jobs_grouped']:,} SLURM jobs in groups of {args.batch}",
                flush=True,
            )
    table = pd.DataFrame(rows)
    front = ["runs", "seconds", "cpu_seconds", "peak_rss_gb", "jobs", "slurm_jobs_ungrouped", "slurm_jobs_grouped"]
    front.append("batch")
    table = table[front + [c for c in table.columns if c not in front]]
    write_result("dag_scale", table, output=args.output, float_format="%.3f")


if __name__ == "__main__":
    sys.exit(main())
