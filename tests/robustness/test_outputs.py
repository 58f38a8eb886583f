"""What a shared lab atlas relies on besides clean errors: outputs readable as the umask says, DE folders
replaced whole, counts that are never silently zero, and a corrupt study that does not stop a query."""

from __future__ import annotations

import os
import subprocess

import pandas as pd
import pytest
import replay_site
from conftest import BIN, tool_env
from inputs import gtf, sam

from scatlas.de.meta import write_de_tables
from scatlas.demo.replay import ReplayServer
from scatlas.io import InputError, atomic_folder, atomic_output
from scatlas.quant import quantify_run
from scatlas.repositories import manifests
from scatlas.repositories.geo import family_soft_path
from scatlas.repositories.http import RemoteError
from scatlas.repositories.query import run_query


@pytest.mark.parametrize(("mask", "file_mode", "folder_mode"), [(0o022, 0o644, 0o755), (0o027, 0o640, 0o750)])
def test_outputs_follow_the_umask(tmp_path, mask, file_mode, folder_mode):
    old = os.umask(mask)
    try:
        with atomic_output(tmp_path / "table.tsv") as tmp:
            tmp.write_text("gene\tcount\n")
        with atomic_folder(tmp_path / "de") as tmp:
            (tmp / "beta.tsv").write_text("gene\n")
    finally:
        os.umask(old)
    assert (tmp_path / "table.tsv").stat().st_mode & 0o777 == file_mode
    assert (tmp_path / "de").stat().st_mode & 0o777 == folder_mode


def test_quantify_output_is_group_readable_under_umask_022(tmp_path):
    (tmp_path / "genes.gtf").write_text(gtf())
    (tmp_path / "run.sam").write_text(sam())
    env = {**tool_env(), "OMP_NUM_THREADS": "1"}
    quantify = [
        "quantify",
        "--bam",
        tmp_path / "run.sam",
        "--gtf",
        tmp_path / "genes.gtf",
        "--output",
        tmp_path / "counts.tsv",
    ]
    cmd = ["sh", "-c", 'umask 022 && exec "$0" "$@"', str(BIN / "scatlas"), *map(str, quantify)]
    subprocess.run(cmd, check=True, capture_output=True, env=env)
    assert (tmp_path / "counts.tsv").stat().st_mode & 0o777 == 0o644


def test_quantify_refuses_chromosome_names_that_do_not_match_and_counts_those_that_do(tmp_path):
    (tmp_path / "ensembl.gtf").write_text(gtf("1"))
    (tmp_path / "ucsc.gtf").write_text(gtf("chr1"))
    (tmp_path / "run.sam").write_text(sam("chr1", n=6))
    with pytest.raises(InputError, match=r"run\.sam: no chromosome in common with .*ensembl\.gtf: BAM chr1 vs GTF 1"):
        quantify_run(tmp_path / "run.sam", tmp_path / "ensembl.gtf", tmp_path / "a.tsv")
    assert not (tmp_path / "a.tsv").exists()
    quantify_run(tmp_path / "run.sam", tmp_path / "ucsc.gtf", tmp_path / "b.tsv")
    counts = pd.read_csv(tmp_path / "b.tsv", sep="\t", index_col="gene_id")
    assert counts.loc["g1", "count"] == 6 and counts.loc["g2", "count"] == 0
    assert counts.loc["g1", "length"] == 400  # two exons of 200 bp
    assert counts.loc["g1", "rpkm"] == pytest.approx(6 * 1e9 / (400 * 6))


def test_de_into_an_existing_folder_replaces_it_whole(tmp_path):
    table = pd.DataFrame({"gene": ["g1"], "log2fc": [1.0], "p_adj_max": [0.01], "z": [3.0], "n_studies": [2],
                          "significant": [True]})  # fmt: skip
    runs = pd.DataFrame({"cell_type": ["alpha", "beta"], "study": ["s1", "s1"], "used": [True, True], "reason": ""})
    write_de_tables({"alpha": table, "beta": table}, runs, tmp_path / "de")
    assert sorted(p.name for p in (tmp_path / "de").iterdir()) == ["_index.tsv", "alpha.tsv", "beta.tsv"]
    write_de_tables({"alpha": table}, runs.iloc[:1], tmp_path / "de")  # beta is no longer in the atlas
    assert sorted(p.name for p in (tmp_path / "de").iterdir()) == ["_index.tsv", "alpha.tsv"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["de"]  # no temporary or old folder left


def test_a_corrupt_family_soft_fails_that_study_only_and_is_retried_next_query(tmp_path):
    root = replay_site.build(tmp_path / "site")
    window = next(iter(replay_site.WINDOWS))
    with ReplayServer(root) as site:
        config = replay_site.config(site.address, retries=1)
        config["query"].update(page_size=replay_site.PAGE, sources=["geo"])
        site.inject(f"/geo/{family_soft_path('GSE990101')}", "corrupt", "corrupt")
        with pytest.raises(RemoteError, match="GSE990101"):
            run_query(config, tmp_path / "m", since=window[0], until=window[1], today="2026-11-20")
        studies = manifests.read(tmp_path / "m", "studies").set_index("study")["status"]
        runs = manifests.read(tmp_path / "m", "runs")
        assert studies["GSE990101"] == "failed" and studies["GSE990102"] == "included"
        assert set(runs["study"]) == {"GSE990102"}  # the other study went on
        assert manifests.last_window_end(tmp_path / "m", "geo") is None  # the window is queried again
        run_query(config, tmp_path / "m", since=window[0], until=window[1], today="2026-11-21")
    studies = manifests.read(tmp_path / "m", "studies").set_index("study")["status"]
    assert studies["GSE990101"] == "included"
    assert set(manifests.read(tmp_path / "m", "runs")["study"]) == {"GSE990101", "GSE990102"}
