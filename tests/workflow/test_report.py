"""The demo's report as a biologist opens it: Snakemake's report.html in headless Chromium, every figure drawn,
no console error, the ARI table with every method, the MultiQC report beside it, models that reload, and reruns
that redo only what changed."""

import base64
import io
import re
import shutil
import urllib.parse

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import snakemake

from scatlas.cluster import run_clustering

FIGURES = {"summary.tsv", "alignment.svg", "cells.svg", "umap.svg", "scores.svg", "confusion.svg", "loss.svg"}
FIGURES |= {"imputation.svg", "volcano.svg", "de_top_genes.tsv", "scores.tsv", "multiqc_report.html"}


def decoded(data_uri: str) -> bytes:
    header, _, payload = data_uri.partition(",")
    return base64.b64decode(payload) if header.endswith(";base64") else urllib.parse.unquote_to_bytes(payload)


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver")
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.fail("headless Chromium not found: apt-get install chromium chromium-driver (make tools does)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.add_argument("--window-size=1400,1000")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    from selenium.webdriver.chrome.service import Service

    session = webdriver.Chrome(options=options, service=Service(driver))
    yield session
    session.quit()


@pytest.fixture(scope="module")
def report(demo, browser, tmp_path_factory):
    """The report loaded in Chromium: (its results by path, the console messages); a screenshot of the first
    page under the test's tmp dir."""
    from selenium.webdriver.support.ui import WebDriverWait

    path = demo / "report.html"
    assert path.is_file(), "the demo wrote no report.html"
    browser.get(path.as_uri())
    WebDriverWait(browser, 60).until(lambda b: b.execute_script("return document.readyState") == "complete")
    WebDriverWait(browser, 60).until(lambda b: b.execute_script("return typeof results === 'object'"))
    screenshot = tmp_path_factory.mktemp("report") / "report_first_page.png"
    assert browser.save_screenshot(str(screenshot)) and screenshot.stat().st_size > 10_000
    results = browser.execute_script("return results")
    return results, browser.get_log("browser")


def test_the_report_opens_without_console_errors_and_lists_every_figure(report):
    results, console = report
    errors = [entry["message"] for entry in console if entry["level"] == "SEVERE"]
    assert not errors, errors
    names = {path.rsplit("/", 1)[-1] for path in results}
    assert names >= FIGURES, f"missing from the report: {sorted(FIGURES - names)}"
    for path, result in results.items():
        assert result["caption"].strip(), f"{path} has no caption"


def test_every_figure_renders_in_chromium(report, browser):
    results, _ = report
    images = {path: r for path, r in results.items() if r["mime_type"].startswith("image/")}
    assert len(images) >= 8
    for path, result in images.items():
        svg = decoded(result["data_uri"]).decode()
        assert "<svg" in svg and len(re.findall(r"<path|<use", svg)) > 5, f"{path}: an empty figure"
        size = browser.execute_async_script(
            """const [src, done] = arguments; const img = new Image();
            img.onload = () => done([img.naturalWidth, img.naturalHeight]); img.onerror = () => done([0, 0]);
            img.src = src;""",
            result["data_uri"],
        )
        assert min(size) > 50, f"{path} does not render in Chromium ({size})"


def test_the_ari_table_lists_every_method_and_the_summary_what_failed(report, demo):
    results, _ = report
    config = yaml.safe_load((demo / "config.yaml").read_text())
    by_name = {path.rsplit("/", 1)[-1]: r for path, r in results.items()}
    scores = pd.read_csv(io.BytesIO(decoded(by_name["scores.tsv"]["data_uri"])), sep="\t")
    methods = config["cluster"].get("methods") or ["scdmac", "pca-kmeans", "leiden"]
    atlas = scores[scores["dataset"] == "atlas"]
    assert sorted(atlas["method"].unique()) == sorted(methods)
    assert len(atlas) == len(methods) * len(config["cluster"]["seeds"]) and atlas["ari"].notna().all()
    # four well-separated simulated types: every method finds them far better than chance
    assert (atlas.groupby("method")["ari"].mean() > 0.5).all(), atlas
    summary = decoded(by_name["summary.tsv"]["data_uri"]).decode()
    assert "runs excluded\t1" in summary and "below min_alignment_rate" in summary
    assert "not single-cell" in summary  # the bulk sample the query left out


def test_multiqc_reads_the_hisat2_and_featurecounts_summaries(demo):
    html = (demo / "results/multiqc/multiqc_report.html").read_text(errors="replace")
    assert "featureCounts" in html and "Bowtie 2" in html
    runs = pd.read_csv(demo / "manifests/runs.tsv", sep="\t")["run"]
    assert all(run in html for run in runs)


def test_saved_models_reload_and_reproduce_their_labels(demo, tmp_path):
    for folder in sorted((demo / "models/cluster/atlas").glob("*/seed*")):
        out = tmp_path / f"{folder.parent.name}_{folder.name}.tsv"
        run_clustering(None, demo / "atlas/preprocessed.h5ad", None, out, model=folder, threads=1)
        fitted = pd.read_csv(demo / f"results/cluster/atlas/{folder.parent.name}/{folder.name}.tsv", sep="\t")
        assert np.array_equal(pd.read_csv(out, sep="\t")["cluster"], fitted["cluster"]), folder
        assert {"model.pt", "params.yaml", "history.tsv", "env.json"} <= {p.name for p in folder.iterdir()}
    assert (demo / "atlas/imputed.model/history.tsv").is_file()


def jobs_to_run(demo, configfile) -> dict[str, int]:
    done = snakemake(demo, configfile, "-n")
    stats = re.search(r"Job stats:\n.*?\n-+\s+-+\n(.*?)\ntotal", done.stdout, re.S)
    if stats is None:
        assert "Nothing to be done" in done.stdout + done.stderr, done.stdout[-2000:]
        return {}
    return {line.split()[0]: int(line.split()[1]) for line in stats.group(1).strip().splitlines()}


def test_a_rerun_after_the_report_does_nothing_and_a_changed_parameter_reruns_its_model_and_the_report(demo):
    assert jobs_to_run(demo, demo / "config.yaml") == {}
    config = yaml.safe_load((demo / "config.yaml").read_text())
    config["cluster"]["params"]["scdmac"]["mae_epochs"] += 1
    changed = demo / "config.changed.yaml"
    changed.write_text(yaml.safe_dump(config, sort_keys=False))  # same key order: Snakemake compares params as written
    jobs = jobs_to_run(demo, changed)
    seeds = len(config["cluster"]["seeds"])
    assert jobs == {
        "cluster_deep": seeds,
        "cluster_scores": 1,
        "report_atlas": 1,
        "report_clustering": 1,
        "report_training": 1,
        "all": 1,
    }
