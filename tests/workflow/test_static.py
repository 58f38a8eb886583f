"""The workflow's house: dry-run, lint, formatting, and config validation."""

import re
import subprocess

import yaml
from conftest import BIN, REPO, snakemake, tool_env


def run(*cmd):
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, cwd=REPO, env=tool_env())


def test_dry_run_of_the_default_config(tmp_path):
    done = snakemake(tmp_path, REPO / "config.yaml", "-n")
    assert "hisat2_build" in done.stdout and "reference_download" in done.stdout


def test_dry_run_of_the_demo_lists_every_stage_once_queried(tmp_path):
    from scatlas.demo import simulate
    from scatlas.demo.replay import ReplayServer
    from scatlas.demo.simulate import REPLAY_TOKEN

    template = simulate(tmp_path / "data")
    before = snakemake(tmp_path, template, "-n")
    assert "snakemake query" in before.stdout + before.stderr and "hisat2_align" not in before.stdout
    with ReplayServer(tmp_path / "data" / "replay") as server:
        config = tmp_path / "config.yaml"
        config.write_text(template.read_text().replace(REPLAY_TOKEN, server.address))
        snakemake(tmp_path, config, "query")
        done = snakemake(tmp_path, config, "-n")
    for rule in ("fetch_fastq", "hisat2_build", "hisat2_align", "featurecounts", "quant_study", "excluded_runs"):
        assert rule in done.stdout
    assert "rule de:" in done.stdout  # DE is part of the default target once there are runs
    assert "rule embed_train:" in done.stdout  # the demo enables the embedding
    assert not re.search(r"rule query\b", done.stdout)  # the query runs only when asked for


def test_lint_and_formatting_are_clean():
    for cmd in (
        [BIN / "snakemake", "--lint"],
        [BIN / "snakefmt", "--check", "."],
        [BIN / "ruff", "check", "."],
        [BIN / "ruff", "format", "--check", "."],
    ):
        done = run(*cmd)
        assert done.returncode == 0, f"{cmd[0].name}: {done.stdout[-2000:]}{done.stderr[-2000:]}"


def bad_config(tmp_path, **sections):
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    for section, values in sections.items():
        config[section] = {**config[section], **values} if isinstance(values, dict) else values
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_config_errors_name_the_key(tmp_path):
    cases = [
        ({"align": {"min_alignment_rate": "high"}}, "config: align.min_alignment_rate: 'high' is not of type 'number'"),
        ({"quantify": {"strandedness": "sideways"}}, "config: quantify.strandedness: 'sideways' is not one of"),
        ({"align": {"threads": 0}}, "config: align.threads: 0 is less than the minimum of 1"),
        ({"align": {"min_alignmnet_rate": 0.5}}, "config: align.min_alignmnet_rate: unknown key"),
    ]
    for sections, message in cases:
        done = snakemake(tmp_path, bad_config(tmp_path, **sections), "-n", check=False)
        assert done.returncode != 0
        assert message in done.stdout + done.stderr, done.stdout[-2000:]
    assert not (tmp_path / "reference").exists()


def test_bad_runs_sheet_stops_the_workflow_with_its_name(tmp_path):
    sheet = tmp_path / "runs.tsv"
    sheet.write_text("study\trun\tlayout\tfastq_1\nGSE1\tSRR1\tSINGLE\ta.fq\nGSE1\tSRR1\tSINGLE\tb.fq\n")
    done = snakemake(tmp_path, bad_config(tmp_path, runs=str(sheet)), "-n", check=False)
    assert done.returncode != 0
    assert f"{sheet}: duplicated run accession(s): SRR1" in done.stdout + done.stderr
