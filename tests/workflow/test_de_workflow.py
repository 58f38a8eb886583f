"""The DE rule over a small atlas: per-cell-type tables, unlabelled cells never tested."""

import numpy as np
import pandas as pd
import yaml
from conftest import REPO, snakemake

from scatlas.de.simulate import simulate_de


def test_de_rule_writes_a_table_per_cell_type(tmp_path):
    adata = simulate_de(n_studies=2, n_types=3, cells_per_type=40, n_genes=120, n_de=20, seed=4)
    names = {"type_0": "B cell", "type_1": "hepatocyte", "type_2": "unlabelled"}
    adata.obs = adata.obs.assign(cell_ontology_name=adata.obs["label"].map(names))
    adata.layers["counts"] = adata.X.copy()
    adata.X = adata.X.astype(np.float32).log1p()  # the atlas contract: X log-normalised, counts in a layer
    (tmp_path / "atlas").mkdir()
    adata.write_h5ad(tmp_path / "atlas" / "preprocessed.h5ad")
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["de"].update(min_cells=30, n_bootstrap=20)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))

    snakemake(tmp_path, tmp_path / "config.yaml", "de")
    tables = sorted(p.name for p in (tmp_path / "de").iterdir() if not p.name.startswith("."))  # snakemake stamp
    assert tables == ["B_cell.tsv", "_index.tsv", "hepatocyte.tsv"]
    table = pd.read_csv(tmp_path / "de" / "B_cell.tsv", sep="\t").set_index("gene")
    assert (table["n_studies"] == 2).all()
    truth = adata.var["log2fc_type_0"] - adata.var["log2fc_type_1"]  # B cell vs hepatocyte (unlabelled left out)
    called = table.index[table["significant"]]
    assert len(called) >= 5 and (truth[called] != 0).mean() >= 0.8  # B cell's own DE genes
    assert (np.sign(table.loc[called, "log2fc"]) == np.sign(truth[called])).all()
    index = pd.read_csv(tmp_path / "de" / "_index.tsv", sep="\t")
    assert set(index["cell_type"]) == {"B cell", "hepatocyte"} and index["used"].all()
    assert (tmp_path / "logs" / "de" / "de.log").exists()
