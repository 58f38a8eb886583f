"""The demo through labelling, atlas merge and preprocessing; the label/atlas rules' wiring."""

import anndata as ad
import numpy as np
import pandas as pd
import yaml
from conftest import snakemake

from scatlas.demo import simulate

CELL_ONTOLOGY = {"hepatocyte": "CL:0000182", "B cell": "CL:0000236", "astrocyte": "CL:0000127", "T cell": "CL:0000084"}


def test_demo_samples_get_their_cell_ontology_ids(demo):
    cells = pd.read_csv(demo / "data/cells.tsv", sep="\t")
    runs = pd.read_csv(demo / "data/runs.tsv", sep="\t").merge(cells, on=["run", "study"])
    labels = pd.concat([pd.read_csv(p, sep="\t", keep_default_na=False) for p in sorted(demo.glob("labels/*.tsv"))])
    labels = runs.merge(labels, on=["study", "sample"], how="left", validate="one_to_one")
    real = labels[labels["cell_type"] != "unknown"]
    assert (real["cell_ontology_id"] == real["cell_type"].map(CELL_ONTOLOGY)).all()
    # each study names the type in another field: characteristics, title ("B-cells, ..."), source name, description
    sources = real.groupby("study")["label_source"].first().str.split(":").str[0].to_dict()
    assert sources == {
        "GSE990001": "characteristics[cell type]",
        "GSE990002": "title",
        "GSE990003": "source_name",
        "GSE990004": "description",
    }
    junk = labels[labels["cell_type"] == "unknown"]  # "library failed: no cells captured" is not "cell"
    assert junk["cell_ontology_id"].tolist() == [""] and junk["cell_ontology_name"].tolist() == ["unlabelled"]


def test_demo_atlas_and_preprocessed_atlas(demo):
    cells = pd.read_csv(demo / "data/cells.tsv", sep="\t", index_col="run")
    atlas = ad.read_h5ad(demo / "atlas/atlas.h5ad")
    real = cells[cells["cell_type"] != "unknown"]
    assert set(atlas.obs_names) == set(real.index)  # the failed run was excluded at alignment
    assert (atlas.obs["cell_ontology_id"] == real.loc[atlas.obs_names, "cell_type"].map(CELL_ONTOLOGY)).all()
    assert np.issubdtype(atlas.X.dtype, np.integer)
    for study in real["study"].unique():
        quant = ad.read_h5ad(demo / f"quant/{study}.h5ad")
        assert np.array_equal(atlas[quant.obs_names, quant.var_names].X.toarray(), quant.layers["counts"].toarray())
    pre = ad.read_h5ad(demo / "atlas/preprocessed.h5ad")
    assert pre.n_obs == atlas.n_obs  # demo thresholds (config from simulate) keep every real cell
    assert np.allclose(np.expm1(pre.X.toarray()).sum(axis=1), 1e4, rtol=1e-4)
    assert pre.var["highly_variable"].sum() == 20
    assert "size_factor" in pre.obs and "counts" in pre.layers
    qc = pd.read_csv(demo / "results/qc_removed.tsv", sep="\t")
    assert list(qc.columns) == ["kind", "id", "study", "reason"]


def test_ontology_url_is_downloaded_once_and_config_checked(tmp_path):
    config_path = simulate(tmp_path / "data")
    config = yaml.safe_load(config_path.read_text())
    config["label"]["ontology"] = "http://purl.obolibrary.org/obo/cl/cl-basic.obo"
    # the simulated sheets, as a user would write them by hand (no query stage)
    config.update(runs=str(tmp_path / "data/runs.tsv"), samples=str(tmp_path / "data/samples.tsv"))
    config_path.write_text(yaml.safe_dump(config))
    done = snakemake(tmp_path, config_path, "-n")
    for rule in ("ontology_download", "label", "atlas_merge", "atlas_preprocess"):
        assert rule in done.stdout
    assert "reference/ontology/cl-basic.obo" in done.stdout
    config["preprocess"]["max_mito_fraction"] = 5
    config_path.write_text(yaml.safe_dump(config))
    done = snakemake(tmp_path, config_path, "-n", check=False)
    assert done.returncode != 0
    assert "config: preprocess.max_mito_fraction: 5 is greater than the maximum of 1" in done.stderr + done.stdout


def test_demo_de_ranks_each_types_markers_first(demo):
    # 4 cells of each type per study (demo config: min_cells 3, max_cells 4): every type is tested
    # in all four studies. Its top genes and its calls must be genes the simulation made higher
    # (log2fc > 0) or lower in it, by the true expression shares.
    index = pd.read_csv(demo / "de/_index.tsv", sep="\t")
    assert set(index["cell_type"]) == set(CELL_ONTOLOGY) and index["used"].all()
    truth = pd.read_csv(demo / "data/truth_counts.tsv", sep="\t", index_col="run")
    cells = pd.read_csv(demo / "data/cells.tsv", sep="\t", index_col="run")
    cells = cells[cells["cell_type"] != "unknown"]
    share = truth.loc[cells.index].div(truth.loc[cells.index].sum(axis=1), axis=0)
    n_called = 0
    for cell_type, file in index.groupby("cell_type")["file"].first().items():
        table = pd.read_csv(demo / "de" / file, sep="\t").set_index("gene")
        assert list(table.columns) == ["log2fc", "p_adj_max", "z", "n_studies", "significant"]
        assert (table["n_studies"] == 4).all()
        mine = cells["cell_type"] == cell_type
        ratio = share[mine].mean() / share[~mine].mean()
        checked = table.index[:5].union(table.index[table["significant"]])
        truly = np.where(table.loc[checked, "log2fc"] > 0, ratio[checked] > 2, ratio[checked] < 0.5)
        assert truly.all(), f"{cell_type}: {ratio[checked].round(2).to_dict()}"
        n_called += table["significant"].sum()
    assert n_called >= 3  # with 4 cells a side some types have none: the max p over 3 studies is strict
