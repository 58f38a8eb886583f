"""Atlas merge and scanpy preprocessing on real benchmark counts (../shared/data/benchmarks)."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from conftest import SHARED

from scatlas.atlas import merge_studies
from scatlas.io import InputError
from scatlas.ontology.labels import LABEL_COLUMNS
from scatlas.preprocess import preprocess_atlas, qc_filter

BENCHMARKS = SHARED / "data" / "benchmarks"


def as_study(adata, study, tmp_path, counts_layer=True):
    """A quant/{study}.h5ad as the quantify stage writes it: X and layer counts = raw counts, obs study/sample/run."""
    counts = sp.csr_matrix(adata.X).astype(np.int64)
    runs = [f"{study}_{cell}" for cell in adata.obs_names]
    obs = pd.DataFrame({"study": study, "sample": [f"{r}_sample" for r in runs], "run": runs}, index=runs)
    var = pd.DataFrame(index=adata.var_names.astype(str))
    if counts_layer:
        study_data = ad.AnnData(X=counts.astype(np.float32), obs=obs, var=var, layers={"counts": counts})
    else:  # only X, as given
        study_data = ad.AnnData(X=sp.csr_matrix(adata.X), obs=obs, var=var)
    path = tmp_path / f"{study}.h5ad"
    study_data.write_h5ad(path)
    return path


def labels_file(tmp_path, rows):
    path = tmp_path / "labels.tsv"
    pd.DataFrame(rows, columns=LABEL_COLUMNS).to_csv(path, sep="\t", index=False)
    return path


@pytest.fixture(scope="module")
def deng():
    return ad.read_h5ad(BENCHMARKS / "deng_subset_133.h5ad")


def test_studies_merge_on_common_genes_with_raw_counts_and_labels(deng, tmp_path):
    first, second = deng[deng.obs["label"] != "midblast"], deng[deng.obs["label"] == "midblast"]
    # the second study lacks 100 genes and lists the rest in another order
    second = second[:, deng.var_names[100:][::-1]]
    files = {"S1": as_study(first, "S1", tmp_path), "S2": as_study(second, "S2", tmp_path)}
    some_cell = f"S2_{second.obs_names[0]}"
    labels = labels_file(tmp_path, [["S2", f"{some_cell}_sample", "CL:0000353", "blastoderm cell", "title: x"]])
    n_cells, n_genes = merge_studies(files, [labels], tmp_path / "atlas.h5ad")
    atlas = ad.read_h5ad(tmp_path / "atlas.h5ad")
    assert (n_cells, n_genes) == (deng.n_obs, deng.n_vars - 100) == atlas.shape
    assert list(atlas.var_names) == list(deng.var_names[100:])  # the first study's order
    assert sp.issparse(atlas.X) and np.issubdtype(atlas.X.dtype, np.integer)
    for study, source in (("S1", first), ("S2", second)):
        cells = atlas[atlas.obs["study"] == study]
        expected = source[:, atlas.var_names].X.toarray()
        assert np.array_equal(cells.X.toarray(), expected)
    labelled = atlas.obs.loc[some_cell]
    assert (labelled["cell_ontology_id"], labelled["cell_ontology_name"]) == ("CL:0000353", "blastoderm cell")
    others = atlas.obs.drop(index=some_cell)
    assert (others["cell_ontology_name"] == "unlabelled").all() and (others["cell_ontology_id"] == "").all()
    assert {"study", "sample", "run", "label_source"} <= set(atlas.obs.columns)


def test_merge_refuses_studies_without_counts_or_shared_genes(deng, tmp_path):
    good = as_study(deng[:20], "S1", tmp_path)
    rpkm = deng[20:40].copy()
    rpkm.X = rpkm.X * 1.37  # a normalised matrix: not integers, and no counts layer
    no_counts = as_study(rpkm, "S2", tmp_path, counts_layer=False)
    with pytest.raises(InputError, match=r"S2\.h5ad: X holds non-integer values"):
        merge_studies({"S1": good, "S2": no_counts}, [], tmp_path / "atlas.h5ad")
    renamed = deng[40:60].copy()
    renamed.var_names = [f"other_{g}" for g in renamed.var_names]
    disjoint = as_study(renamed, "S3", tmp_path)
    with pytest.raises(InputError, match=r"S3\.h5ad: study S3 has no genes in common"):
        merge_studies({"S1": good, "S3": disjoint}, [], tmp_path / "atlas.h5ad")
    not_h5ad = tmp_path / "S4.h5ad"
    not_h5ad.write_text("cells\n")
    with pytest.raises(InputError, match=r"S4\.h5ad: not a readable h5ad"):
        merge_studies({"S1": good, "S4": not_h5ad}, [], tmp_path / "atlas.h5ad")
    assert not (tmp_path / "atlas.h5ad").exists()


def test_preprocessing_of_real_counts(tmp_path):
    romanov = ad.read_h5ad(BENCHMARKS / "romanov_neurons_845.h5ad")
    path = as_study(romanov, "romanov", tmp_path)
    merge_studies({"romanov": path}, [], tmp_path / "atlas.h5ad")
    out = preprocess_atlas(tmp_path / "atlas.h5ad", tmp_path / "pre.h5ad", tmp_path / "qc.tsv", n_top_genes=1000)
    raw = sp.csr_matrix(romanov.X)
    detected = np.asarray((raw > 0).sum(axis=1)).ravel()
    too_many = set(f"romanov_{c}" for c in romanov.obs_names[(detected < 200) | (detected > 5000)])
    assert len(too_many) == 168  # Romanov's deeply sequenced neurons: > 5000 detected genes
    qc = pd.read_csv(tmp_path / "qc.tsv", sep="\t")
    removed_cells = qc[qc["kind"] == "cell"]
    assert set(removed_cells["id"]) == too_many
    assert removed_cells["reason"].str.contains("detected genes > max_genes 5000").all()
    kept = raw[(detected >= 200) & (detected <= 5000)]
    in_cells = np.asarray((kept > 0).sum(axis=0)).ravel()
    assert set(qc.loc[qc["kind"] == "gene", "id"]) == set(romanov.var_names[in_cells < 3])
    written = ad.read_h5ad(tmp_path / "pre.h5ad")
    assert written.shape == out.shape == (845 - 168, int((in_cells >= 3).sum()))
    counts = written.layers["counts"]
    assert np.array_equal(counts.toarray(), kept[:, in_cells >= 3].toarray())
    totals = np.asarray(counts.sum(axis=1)).ravel()
    assert np.allclose(written.obs["size_factor"] * 1e4, totals)
    assert np.allclose(np.expm1(written.X.toarray()).sum(axis=1), 1e4, rtol=1e-4)  # log1p of counts per 10^4
    assert written.var["highly_variable"].sum() == 1000


def test_mitochondrial_fraction_filter():
    # three cells x four genes, two mitochondrial: fractions 0.05, 0.5, 0.1
    counts = sp.csr_matrix(np.array([[1, 0, 10, 9], [5, 5, 5, 5], [1, 1, 9, 9]]))
    adata = ad.AnnData(
        X=counts, var=pd.DataFrame({"gene_name": ["mt-Co1", "MT-ND1", "Actb", "Gapdh"]}, index=["g1", "g2", "g3", "g4"])
    )
    adata.obs_names = ["a", "b", "c"]
    kept, removed = qc_filter(adata, min_genes=1, max_genes=10, max_mito_fraction=0.10, min_cells=1)
    assert list(kept.obs_names) == ["a", "c"]  # 10 % is kept: the threshold is "at most"
    assert removed.to_dict("records") == [
        {"kind": "cell", "id": "b", "study": "", "reason": "mitochondrial fraction 50.0% > 10%"}
    ]


def test_qc_removing_every_cell_writes_an_empty_atlas_and_says_why(deng, tmp_path):
    merge_studies({"S1": as_study(deng[:10], "S1", tmp_path)}, [], tmp_path / "atlas.h5ad")
    out = preprocess_atlas(tmp_path / "atlas.h5ad", tmp_path / "pre.h5ad", tmp_path / "qc.tsv", max_genes=1000)
    assert out.n_obs == 0 and ad.read_h5ad(tmp_path / "pre.h5ad").n_obs == 0
    qc = pd.read_csv(tmp_path / "qc.tsv", sep="\t")
    assert len(qc) == 10 and qc["reason"].str.contains("> max_genes 1000").all()  # Deng's cells: > 4800 genes
