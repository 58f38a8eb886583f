"""The embedded demo run end to end: recovered counts against the simulated truth."""

import hashlib

import anndata as ad
import numpy as np
import pandas as pd

from scatlas.demo import simulate


def test_counts_recover_the_simulated_truth(demo):
    truth = pd.read_csv(demo / "data/truth_counts.tsv", sep="\t", index_col="run")
    cells = pd.read_csv(demo / "data/cells.tsv", sep="\t", index_col="run")
    studies = sorted(cells["study"].unique())
    seen = []
    for study in studies:
        adata = ad.read_h5ad(demo / f"quant/{study}.h5ad")
        assert set(adata.layers) == {"counts", "rpkm"} and (adata.var["length"] > 0).all()
        assert (adata.var["gene_biotype"] == "protein_coding").all()  # lincRNAs filtered out
        expected = truth.loc[adata.obs_names, adata.var_names].to_numpy()
        observed = adata.layers["counts"].toarray()
        for cell in range(adata.n_obs):
            r = np.corrcoef(np.log1p(observed[cell]), np.log1p(expected[cell]))[0, 1]
            assert r >= 0.99, f"{adata.obs_names[cell]}: Pearson r {r:.3f} on log counts"
        seen += list(adata.obs_names)
    assert set(seen) == set(truth.index)  # every real cell kept, the junk run not among them


def test_failed_library_is_excluded_with_its_reason(demo):
    excluded = pd.read_csv(demo / "results/excluded_runs.tsv", sep="\t")
    cells = pd.read_csv(demo / "data/cells.tsv", sep="\t")
    junk = cells.loc[cells["cell_type"] == "unknown", "run"].tolist()
    assert excluded["run"].tolist() == junk
    assert excluded["reason"].str.contains("below min_alignment_rate").all()
    assert (excluded["alignment_rate"] < 0.4).all()


def test_quality_encoding_is_detected_per_study(demo):
    assert (ad.read_h5ad(demo / "quant/GSE990003.h5ad").obs["phred_offset"] == 64).all()
    assert (ad.read_h5ad(demo / "quant/GSE990001.h5ad").obs["phred_offset"] == 33).all()
    assert (ad.read_h5ad(demo / "quant/GSE990002.h5ad").obs["layout"] == "PAIRED").all()


def test_demo_is_reproducible_from_its_seed(demo, tmp_path):
    simulate(tmp_path, seed=0)

    def digest(folder):
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("fastq/*"))}

    assert digest(tmp_path) == digest(demo / "data")


def test_demo_starts_at_the_query_stage(demo):
    studies = pd.read_csv(demo / "manifests/studies.tsv", sep="\t")
    # E-GEOD-990001 recorded once
    assert studies["study"].tolist() == ["GSE990001", "GSE990002", "GSE990003", "GSE990004"]
    excluded = pd.read_csv(demo / "manifests/excluded.tsv", sep="\t")
    assert excluded[["accession", "reason"]].values.tolist() == [
        ["GSM99000099", "not single-cell (bulk sample: 'bulk')"]
    ]
    runs = pd.read_csv(demo / "manifests/runs.tsv", sep="\t", dtype=str, keep_default_na=False)
    truth = pd.read_csv(demo / "data/runs.tsv", sep="\t", dtype=str, keep_default_na=False)
    assert sorted(runs["run"]) == sorted(truth["run"]) and runs["fastq_md5_1"].str.fullmatch("[0-9a-f]{32}").all()
    assert (runs.loc[runs["layout"] == "PAIRED", "fastq_url_2"] != "").all()
    samples = pd.read_csv(demo / "manifests/samples.tsv", sep="\t", dtype=str, keep_default_na=False)
    simulated = pd.read_csv(demo / "data/samples.tsv", sep="\t", dtype=str, keep_default_na=False)
    merged = samples.merge(simulated, on="sample", suffixes=("", "_simulated"))
    assert len(merged) == len(simulated)
    for column in ("title", "source_name", "characteristics", "library_source"):
        assert (merged[column] == merged[f"{column}_simulated"]).all(), column
    assert not list((demo / "reads").glob("*.fastq.gz"))  # downloaded reads are temporary
