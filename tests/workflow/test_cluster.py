"""Running for real: a SLURM cluster, biweekly refreshes one at a time, incremental reruns, kill -9."""

import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from conftest import BIN, REPO, snakemake, tool_env

from scatlas.demo import simulate
from scatlas.demo.simulate import STUDIES
from scatlas.demo.workflow import run_demo, serving
from scatlas.lock import atlas_lock
from scatlas.sheets import load_runs

CELLS = 2  # per demo study: 4 studies + the failed library = 9 runs, enough for every code path
CLUSTER_SCRIPT = REPO / "tests" / "slurm" / "local-cluster.sh"


def quant_tables(workdir: Path) -> dict[str, pd.DataFrame]:
    """Each study's counts (runs × genes) and the excluded runs: what must not depend on how it ran."""
    tables = {}
    for h5ad in sorted((workdir / "quant").glob("*.h5ad")):
        adata = ad.read_h5ad(h5ad)
        tables[h5ad.stem] = pd.DataFrame(
            adata.layers["counts"].toarray(), index=adata.obs_names, columns=adata.var_names
        )
    tables["excluded"] = pd.read_csv(workdir / "results/excluded_runs.tsv", sep="\t")
    return tables


def assert_same_results(workdir: Path, reference: Path) -> None:
    ours, theirs = quant_tables(workdir), quant_tables(reference)
    assert ours.keys() == theirs.keys() and len(ours) == len(STUDIES) + 1  # + the excluded runs
    for name in ours:
        pd.testing.assert_frame_equal(ours[name], theirs[name])


@pytest.fixture(scope="module")
def small_demo(tmp_path_factory) -> Path:
    """The small demo, run locally and uninterrupted: the reference the other runs must equal."""
    return run_demo(tmp_path_factory.mktemp("local"), cores=2, cells_per_study=CELLS)


# --- SLURM ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    """A single-node SLURM with accounting on localhost; every daemon it starts is stopped by pid."""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        reason = "not root" if os.geteuid() != 0 else "no apt-get"
        print(f"SLURM test skipped: installing and starting SLURM needs root and apt ({reason})")
        pytest.skip(f"installing and starting SLURM needs root and apt ({reason})")
    state = tmp_path_factory.mktemp("slurm")
    started = subprocess.run(["bash", str(CLUSTER_SCRIPT), "start", str(state)], capture_output=True, text=True)
    try:
        assert started.returncode == 0, f"local SLURM did not start:\n{started.stdout}\n{started.stderr}"
        yield state
    finally:
        subprocess.run(["bash", str(CLUSTER_SCRIPT), "stop", str(state)], capture_output=True, text=True)


PER_RUN_RULES = {"fetch_fastq", "hisat2_align", "featurecounts"}  # the group per_run (rules/fetch.smk)
BATCH = 3  # runs per SLURM job in the test; the profile's own figure is for an atlas


def slurm_args(batch: int) -> tuple[str, ...]:
    """Snakemake options for the test cluster: the real profile, ``batch`` runs per SLURM job."""
    return (
        "--workflow-profile",
        str(REPO / "profiles/slurm"),
        "--jobs",
        "4",
        "--group-components",
        f"per_run={batch}",
        "--resources",
        "mem_mb=6000",  # one batched job's memory: the test node has 16 GB
        "--default-resources",
        "slurm_account=test",
        "slurm_partition=debug",
        "mem_mb=1000",
        "runtime=30",
        "--slurm-init-seconds-before-status-checks",
        "2",
        "--seconds-between-status-checks",
        "3",
        # the demo is tiny: what a user with small data does for rules sized for a mouse atlas
        "--set-resources",
        *[
            f"{rule}:mem_mb=1500"
            for rule in ("hisat2_align", "quant_study", "reference_genes", "atlas_merge", "atlas_preprocess")
        ],
    )


@pytest.mark.slurm
def test_demo_runs_through_slurm_with_the_profile(slurm, small_demo, tmp_path):
    since = time.strftime("%Y-%m-%dT%H:%M:%S")
    run_demo(tmp_path, cores=2, cells_per_study=CELLS, extra_args=slurm_args(batch=BATCH))
    assert_same_results(tmp_path, small_demo)
    accounting = subprocess.run(
        ["sacct", "-n", "-X", "-P", "--format=JobID,State,Account,Comment", "-S", since],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    jobs = [line.split("|") for line in accounting.splitlines()]
    assert all(state == "COMPLETED" and account == "test" for _, state, account, _ in jobs)
    batched = [comment for *_, comment in jobs if comment.startswith("rule_per_run_")]
    singles = [re.sub(r"^rule_(\w+?)(_wildcards_.*)?$", r"\1", c) for *_, c in jobs if c not in batched]
    assert {"query", "hisat2_build", "quant_study"} <= set(singles) and not PER_RUN_RULES & set(singles)
    n_runs = len(load_runs(tmp_path / "manifests/runs.tsv"))
    assert n_runs == len(STUDIES) * CELLS + 1
    # every run's fetch, align and count in ceil(runs / BATCH) jobs: 3, where one job per rule per run made 27+
    assert len(batched) == -(-n_runs // BATCH)
    assert len(jobs) == len(singles) + len(batched)
    # a run's temporaries went with its group: no FASTQ or SAM is left
    assert not list((tmp_path / "reads").glob("*.fastq.gz")) and not list((tmp_path / "align").rglob("*.sam"))


def counted_runs(workdir: Path) -> set[str]:
    """Runs whose counts are written (not the hidden temporary names of those being written)."""
    return {p.stem for p in (workdir / "quant").glob("*/*.json") if not p.name.startswith(".")}


@pytest.mark.slurm
def test_batch_killed_mid_group_reruns_only_the_unfinished_runs(slurm, small_demo, tmp_path):
    """Every run in one batched SLURM job, killed (SIGKILL to the job and to Snakemake) once some runs
    are counted: a rerun redoes the other runs only, and the results equal an uninterrupted run's."""
    simulate(tmp_path / "data", cells_per_study=CELLS)
    with serving(tmp_path) as config:
        snakemake(tmp_path, config, "query")
        runs = set(load_runs(tmp_path / "manifests/runs.tsv")["run"])
        cmd = [str(BIN / "snakemake"), "-s", str(REPO / "Snakefile"), "--directory", str(tmp_path)]
        cmd += ["--configfile", str(config), "--cores", "2", *slurm_args(batch=100)]
        run = subprocess.Popen(
            cmd, env=tool_env(), start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline, counted = time.monotonic() + 600, set()
        while len(counted) < 2 and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
            counted = counted_runs(tmp_path)
        assert run.poll() is None and len(counted) < len(runs), "the batch ended before it could be interrupted"
        os.killpg(run.pid, signal.SIGKILL)
        subprocess.run(["scancel", "--full", "--signal=KILL", "--user", "root"], check=True)
        subprocess.run(["scancel", "--user", "root"], check=True)
        run.wait()
        while subprocess.run(["squeue", "-h"], capture_output=True, text=True).stdout.strip():
            time.sleep(0.5)
        counted = counted_runs(tmp_path)
        plan = snakemake(tmp_path, config, "-n", "--rerun-incomplete").stdout
        rerun = set(re.findall(r"rule featurecounts:\n(?:.*\n)*?\s+wildcards: .*run=(\w+)", plan))
        assert runs - counted <= rerun  # every unfinished run is redone
        # of the counted runs, only one whose job was being recorded when killed (2 CPUs) may be redone
        assert len(rerun & counted) <= 2 and counted - rerun
        snakemake(tmp_path, config, "--unlock")  # the killed Snakemake's lock
        snakemake(tmp_path, config, "--rerun-incomplete")
    assert_same_results(tmp_path, small_demo)


# --- refresh: one at a time, incremental ----------------------------------------------------------


def test_a_second_refresh_exits_while_one_runs(tmp_path):
    with atlas_lock(tmp_path, "scatlas refresh"):
        done = subprocess.run(
            [str(BIN / "scatlas"), "refresh", "--directory", str(tmp_path)],
            capture_output=True,
            text=True,
            env=tool_env(),
        )
        assert done.returncode == 75
        assert f"in use by another run (pid {os.getpid()} (scatlas refresh)" in done.stderr
    with atlas_lock(tmp_path, "scatlas refresh"):  # released when the first one ends
        pass


def test_schedule_files_call_the_same_locked_refresh():
    schedule = REPO / "schedule"
    commands = []
    for name in ("crontab", "scrontab"):
        lines = [line for line in (schedule / name).read_text().splitlines() if line and not line.startswith("#")]
        (line,) = lines
        fields = line.split(maxsplit=5)
        assert fields[:5] == ["0", "2", "1,15", "*", "*"]  # the 1st and 15th: every two weeks
        commands.append(fields[5])
    service = (schedule / "scatlas-refresh.service").read_text()
    commands.append(re.search(r"^ExecStart=(.*)$", service, re.M).group(1))
    assert "SuccessExitStatus=75" in service  # a refresh that found another one running is not a failure
    assert "OnCalendar=*-*-01,15 02:00:00" in (schedule / "scatlas-refresh.timer").read_text()
    assert all(re.search(r"scatlas\S* refresh --directory ", command) for command in commands)


def test_refresh_that_adds_a_study_reruns_only_that_study(tmp_path):
    workdir = tmp_path
    simulate(workdir / "data", cells_per_study=CELLS)
    replay = workdir / "data" / "replay"
    complete = (replay / "esummary.json").read_text()
    # the first refresh sees three of the four studies, as if the fourth were published later
    summary = json.loads(complete)
    summary["result"]["uids"] = summary["result"]["uids"][:3]
    search = json.loads((replay / "esearch.json").read_text())
    (replay / "esummary.json").write_text(json.dumps(summary))
    complete_search = json.dumps(search)
    search["esearchresult"]["count"] = "3"
    (replay / "esearch.json").write_text(json.dumps(search))
    with serving(workdir) as config:
        subprocess.run(
            [str(BIN / "scatlas"), "refresh", "--directory", str(workdir), "--configfile", str(config)],
            check=True,
            capture_output=True,
            env=tool_env(),
        )
    assert sorted(p.name for p in (workdir / "quant").glob("*.h5ad")) == [f"GSE99000{i}.h5ad" for i in (1, 2, 3)]
    (replay / "esummary.json").write_text(complete)
    (replay / "esearch.json").write_text(complete_search)
    with serving(workdir) as config:
        snakemake(workdir, config, "query")
        out = snakemake(workdir, config, "-n").stdout
    jobs = re.findall(r"^\s*(?:local)?rule (\w+):$", out, re.M)  # a group's jobs are indented
    studies = set(re.findall(r"study=(\w+)", out))
    assert studies == {"GSE990004"}
    per_study = {"fetch_fastq", "hisat2_align", "featurecounts", "quant_study", "label"}
    aggregates = {"excluded_runs", "atlas_merge", "atlas_preprocess", "de", "impute", "all"}
    # the atlas's clusterings, their scores and the report's figures of the atlas and of every run
    aggregates |= {"cluster_deep", "cluster_baseline", "cluster_scores", "multiqc"}
    aggregates |= {f"report_{name}" for name in ("summary", "alignment", "atlas", "clustering", "training")}
    aggregates |= {"report_imputation", "report_de", "embed_train", "report_mapping"}
    assert set(jobs) == per_study | aggregates
    assert jobs.count("quant_study") == 1 and jobs.count("label") == 1
    assert jobs.count("hisat2_align") == CELLS


# --- interruption ---------------------------------------------------------------------------------


def test_kill_9_during_alignment_then_rerun_equals_an_uninterrupted_run(small_demo, tmp_path):
    simulate(tmp_path / "data", cells_per_study=CELLS)
    with serving(tmp_path) as config:
        cmd = [str(BIN / "scatlas"), "refresh", "--directory", str(tmp_path), "--configfile", str(config)]
        run = subprocess.Popen(
            cmd, env=tool_env(), start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 600
        while not list((tmp_path / "align").rglob("*.json")) and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert run.poll() is None, "the run ended before alignment could be interrupted"
        os.killpg(run.pid, signal.SIGKILL)  # the whole run: scatlas, snakemake and its jobs
        run.wait()
        assert not (tmp_path / "quant/GSE990003.h5ad").exists()
        subprocess.run(cmd, check=True, capture_output=True, env=tool_env())
    assert_same_results(tmp_path, small_demo)
    counts = quant_tables(tmp_path)["GSE990001"]
    assert np.all(counts.to_numpy().sum(axis=1) > 0)
