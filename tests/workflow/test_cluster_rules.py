"""The cluster rule group: methods × datasets × seeds from config, and the scores table, on real data."""

import pandas as pd
import yaml
from conftest import REPO, SHARED, snakemake

DENG = SHARED / "data" / "benchmarks" / "deng_subset_133.h5ad"


def test_cluster_rules_run_every_method_and_seed_and_score_them(tmp_path):
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["runs"] = str(tmp_path / "no_runs_yet.tsv")
    config["cluster"] = {
        "datasets": {"deng": {"h5ad": str(DENG)}},  # K from its 5 labels
        "methods": ["scdmac", "pca-kmeans", "leiden"],
        "seeds": [0, 1],
        "device": "cpu",
        "params": {"scdmac": {"n_top_genes": 300, "zinb_epochs": 2, "mae_epochs": 3, "cluster_epochs": 1}},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    snakemake(tmp_path, path, "results/cluster/scores.tsv")
    scores = pd.read_csv(tmp_path / "results/cluster/scores.tsv", sep="\t")
    assert len(scores) == 6 and set(scores["method"]) == {"scdmac", "pca-kmeans", "leiden"}
    assert (scores["n_cells"] == 133).all()
    assert (scores["ari"] > 0.1).all()  # every method finds some of the embryo stages
    for method in ("scdmac", "pca-kmeans", "leiden"):
        clusters = pd.read_csv(tmp_path / f"results/cluster/deng/{method}/seed0.tsv", sep="\t")
        assert clusters["cluster"].nunique() == 5
    assert (tmp_path / "logs/cluster/deng/scdmac/seed1.log").exists()


def test_default_config_runs_no_clustering(tmp_path):
    done = snakemake(tmp_path, REPO / "config.yaml", "-n")
    assert "rule cluster" not in done.stdout
