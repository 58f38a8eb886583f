"""The atlas lock (scatlas.lock) and the empty atlas: runs that would write the same directory exclude each
other without disturbing the one running, and a query that found nothing leaves a directory the next query
fills. The Snakemake runs here are the query stage and dry runs: the smallest real runs that hold the lock."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
import replay_site
import yaml
from conftest import BIN, REPO, tool_env
from inputs import listing, run_cli

from scatlas.demo.replay import ReplayServer
from scatlas.lock import TOKEN_ENV, atlas_lock, holder
from scatlas.repositories import manifests

EMPTY_WINDOW = ("2019-01-01", "2019-12-31")


@pytest.fixture
def site(tmp_path):
    """The query tests' replay site, plus a window with no series and the window after it (window 1's series)."""
    root = replay_site.build(tmp_path / "site")
    result = {"count": "0", "retmax": "0", "retstart": "0", "querykey": "1", "webenv": "MCID_empty", "idlist": []}
    empty = {"header": {"type": "esearch"}, "esearchresult": result}
    (root / "esearch-empty.json").write_text(json.dumps(empty))
    with open(root / "routes.tsv", "a") as routes:
        routes.write("/eutils/esearch.fcgi\tmindate=2019/01/01&maxdate=2019/12/31\tesearch-empty.json\n")
        routes.write("/eutils/esearch.fcgi\tmindate=2019/12/31&maxdate=2020/12/31\tesearch1.json\n")
    with ReplayServer(root) as server:
        yield server


def workflow_config(site, path: Path, until: str, since: str = EMPTY_WINDOW[0], **repositories) -> Path:
    config = replay_site.config(site.address, **repositories)
    config["query"].update(sources=["geo"], since=since, until=until, page_size=replay_site.PAGE)
    path.write_text(yaml.safe_dump(config))
    return path


def outside_env() -> dict:
    """The environment of a user's shell: without the lock token this test process holds while it holds a lock."""
    return {k: v for k, v in tool_env().items() if k != TOKEN_ENV}


def snakemake(workdir: Path, config: Path, *args: str) -> list[str]:
    return [str(BIN / "snakemake"), "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--configfile", str(config),
            "--cores", "1", *args]  # fmt: skip


def wait_for_holder(directory: Path, proc: subprocess.Popen, seconds: float = 120) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if (who := holder(directory)) is not None:
            return who
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before taking the lock:\n{proc.communicate()[1][-3000:]}")
        time.sleep(0.2)
    raise AssertionError("the run never took the atlas lock")


def test_refresh_while_a_plain_run_is_live_is_refused_and_the_run_finishes(site, tmp_path):
    workdir = tmp_path / "atlas"
    workdir.mkdir()
    config = workflow_config(site, tmp_path / "config.yaml", "2020-12-31", "2020-01-01", retries=2, timeout=30)
    site.inject("/eutils/esearch", "timeout:4")  # the plain run's query stalls, then its retry is answered
    plain = subprocess.Popen(snakemake(workdir, config, "query"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=tool_env())  # fmt: skip
    who = wait_for_holder(workdir, plain)
    assert f"pid {plain.pid} (snakemake)" in who
    status, _, err = run_cli(["refresh", "--directory", str(workdir), "--configfile", str(config)])
    (line,) = err.strip().splitlines()
    assert status == 75 and f"in use by another run (pid {plain.pid} (snakemake)" in line
    _, stderr = plain.communicate(timeout=300)
    assert plain.returncode == 0, stderr[-3000:]
    assert "Missing files" not in stderr
    assert len(manifests.read(workdir / "manifests", "runs")) == 2 * replay_site.CELLS_PER_SERIES
    assert holder(workdir) is None  # released with the run


def test_a_plain_run_is_refused_while_a_refresh_or_demo_holds_the_directory(site, tmp_path):
    workdir = tmp_path / "atlas"
    config = workflow_config(site, tmp_path / "config.yaml", "2020-12-31")
    with atlas_lock(workdir, "scatlas refresh"):
        done = subprocess.run(snakemake(workdir, config, "query"), capture_output=True, text=True, env=outside_env())
    assert done.returncode != 0
    assert "in use by another run" in done.stderr and "(scatlas refresh)" in done.stderr
    assert not (workdir / "manifests").exists()  # refused before the query job ran


def test_two_demos_at_once_the_second_changes_nothing(tmp_path):
    outdir = tmp_path / "demo"
    with atlas_lock(outdir, "scatlas demo --run"):
        before = listing(outdir)
        done = subprocess.run([str(BIN / "scatlas"), "demo", "--outdir", str(outdir), "--run"], capture_output=True,
                              text=True, env=outside_env(), timeout=120)  # fmt: skip
        assert done.returncode == 75
        (line,) = done.stderr.strip().splitlines()
        assert "in use by another run" in line and "(scatlas demo --run)" in line
        assert listing(outdir) == before  # no data/, no config.yaml: the lock came before any write


def test_a_refresh_after_an_empty_first_query_and_the_next_query_fills_the_atlas(site, tmp_path):
    workdir = tmp_path / "atlas"
    config = workflow_config(site, tmp_path / "config.yaml", EMPTY_WINDOW[1])
    done = subprocess.run([str(BIN / "scatlas"), "refresh", "--directory", str(workdir), "--configfile", str(config)],
                          capture_output=True, text=True, env=tool_env())  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "lists no runs yet (empty atlas)" in done.stderr
    runs = manifests.read(workdir / "manifests", "runs")
    assert runs.empty and manifests.last_window_end(workdir / "manifests", "geo") == EMPTY_WINDOW[1]
    # the services now have data (the next window): the next query fills the sheet and the atlas is planned
    config = workflow_config(site, config, "2020-12-31")
    query = subprocess.run(snakemake(workdir, config, "query"), capture_output=True, text=True, env=tool_env())
    assert query.returncode == 0, query.stderr[-3000:]
    assert len(manifests.read(workdir / "manifests", "runs")) == 2 * replay_site.CELLS_PER_SERIES
    plan = subprocess.run(snakemake(workdir, config, "-n"), capture_output=True, text=True, env=tool_env())
    assert plan.returncode == 0, plan.stderr[-3000:]
    assert "quant/GSE990101.h5ad" in plan.stdout + plan.stderr
