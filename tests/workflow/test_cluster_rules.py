"""The cluster rule group on real data: methods × datasets × seeds, scores, code-change reruns, kill -9."""

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from conftest import BIN, REPO, SHARED, snakemake, tool_env

DENG = SHARED / "data" / "benchmarks" / "deng_subset_133.h5ad"
TINY = {"n_top_genes": 300, "zinb_epochs": 2, "mae_epochs": 3, "cluster_epochs": 1, "min_steps": 1}


def cluster_config(tmp_path: Path, methods: list[str], seeds: list[int], scdmac: dict) -> Path:
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["runs"] = str(tmp_path / "no_runs_yet.tsv")
    config["cluster"] = {
        "datasets": {"deng": {"h5ad": str(DENG)}},  # K from its 5 labels
        "methods": methods,
        "seeds": seeds,
        "device": "cpu",
        "params": {"scdmac": scdmac},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def planned_jobs(dry_run: str) -> list[str]:
    return re.findall(r"^(?:local)?rule (\w+):$", dry_run, re.M)


def test_cluster_rules_run_every_method_and_seed_and_score_them(tmp_path):
    config = cluster_config(tmp_path, ["scdmac", "pca-kmeans", "leiden"], [0, 1], TINY)
    snakemake(tmp_path, config, "results/cluster/scores.tsv")
    scores = pd.read_csv(tmp_path / "results/cluster/scores.tsv", sep="\t")
    assert len(scores) == 6 and set(scores["method"]) == {"scdmac", "pca-kmeans", "leiden"}
    assert (scores["n_cells"] == 133).all()
    # every method finds some of the embryo stages (lowest, scDMAC: 0.185 over seeds, threads and kernels;
    # benchmarks/results/2026-12-07_3fd70ce/test_margins.tsv)
    assert (scores["ari"] > 0.1).all()
    for method in ("scdmac", "pca-kmeans", "leiden"):
        clusters = pd.read_csv(tmp_path / f"results/cluster/deng/{method}/seed0.tsv", sep="\t")
        assert clusters["cluster"].nunique() == 5
    assert (tmp_path / "logs/cluster/deng/scdmac/seed1.log").exists()


def test_default_config_runs_no_clustering(tmp_path):
    done = snakemake(tmp_path, REPO / "config.yaml", "-n")
    assert "rule cluster" not in done.stdout


def test_editing_a_models_code_reruns_that_models_jobs_only(tmp_path):
    # a copy of the workflow: its scripts import the package beside them, so the copy's code is what runs
    workflow = tmp_path / "workflow"
    workflow.mkdir()
    for part in ("Snakefile", "config.yaml", "rules", "scripts", "envs", "profiles", "scatlas"):
        source = REPO / part
        if source.is_dir():
            shutil.copytree(source, workflow / part, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, workflow / part)
    workdir = tmp_path / "work"
    config = cluster_config(tmp_path, ["scdmac", "pca-kmeans"], [0], TINY)

    def run(*args):
        cmd = [
            str(BIN / "snakemake"),
            "-s",
            str(workflow / "Snakefile"),
            "--directory",
            str(workdir),
            "--configfile",
            str(config),
            "--cores",
            "2",
            "results/cluster/scores.tsv",
            *args,
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, env=tool_env())
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    run()
    assert planned_jobs(run("-n")) == []

    def edit(name):
        path = workflow / "scatlas" / name
        path.write_text(path.read_text() + "\n# a user's edit\n")
        later = time.time() + 5  # clearly newer than the outputs, whatever the file system's mtime resolution
        os.utime(path, (later, later))

    edit("models/scdmac.py")
    assert sorted(planned_jobs(run("-n"))) == ["cluster_deep", "cluster_scores"]
    out = run()
    assert "cluster_baseline" not in out
    assert planned_jobs(run("-n")) == []
    edit("cluster/baselines.py")
    assert sorted(planned_jobs(run("-n"))) == ["cluster_baseline", "cluster_scores"]


def test_kill_9_during_training_then_rerun_equals_an_uninterrupted_run(tmp_path):
    # long enough to be caught mid-training: the log shows the masking stage's epochs
    params = {"n_top_genes": 300, "zinb_epochs": 300, "mae_epochs": 600, "cluster_epochs": 0, "ensemble": 1}
    reference, interrupted = tmp_path / "reference", tmp_path / "interrupted"
    for workdir in (reference, interrupted):
        workdir.mkdir()
        cluster_config(workdir, ["scdmac"], [0], params)
    snakemake(reference, reference / "config.yaml", "results/cluster/scores.tsv")

    cmd = [
        str(BIN / "snakemake"),
        "-s",
        str(REPO / "Snakefile"),
        "--directory",
        str(interrupted),
        "--configfile",
        str(interrupted / "config.yaml"),
        "--cores",
        "2",
        "results/cluster/scores.tsv",
    ]
    run = subprocess.Popen(
        cmd, env=tool_env(), start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    log = interrupted / "logs/cluster/deng/scdmac/seed0.log"
    deadline = time.monotonic() + 600
    while run.poll() is None and time.monotonic() < deadline:
        if log.exists() and "mask epoch" in log.read_text():
            break
        time.sleep(0.05)
    assert run.poll() is None, "the run ended before training could be interrupted"
    os.killpg(run.pid, signal.SIGKILL)  # snakemake and the training job
    run.wait()
    output = Path("results/cluster/deng/scdmac/seed0.tsv")
    assert not (interrupted / output).exists()
    assert not (interrupted / output.with_suffix("").with_suffix(".embedding.npy")).exists()

    snakemake(interrupted, interrupted / "config.yaml", "--unlock")  # the lock the killed run left
    snakemake(interrupted, interrupted / "config.yaml", "results/cluster/scores.tsv")
    clusters = [pd.read_csv(workdir / output, sep="\t") for workdir in (interrupted, reference)]
    pd.testing.assert_frame_equal(*clusters)
    embedding = "results/cluster/deng/scdmac/seed0.embedding.npy"
    assert np.array_equal(np.load(interrupted / embedding), np.load(reference / embedding))
    scores = [pd.read_csv(w / "results/cluster/scores.tsv", sep="\t") for w in (interrupted, reference)]
    pd.testing.assert_frame_equal(*scores)
