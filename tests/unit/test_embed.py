"""Supervised embeddings (issue 39): the split by study, the losses, the type similarity and retrieval scores,
a short fit on real cells against PCA-100 kNN, the saved model, ``scatlas map``, and bad input refused with
one line and nothing written."""

import json

import anndata as ad
import networkx as nx
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from quality import EMBED_SHORT, embed_kang, kang_small

from scatlas.cli import main
from scatlas.embed.metrics import average_flexible_precision, classification_scores, retrieval_scores
from scatlas.embed.similarity import nearest_studies, type_similarity
from scatlas.embed.split import eligible_cells, single_labels, study_split
from scatlas.io import InputError
from scatlas.models.embed import Embedder
from scatlas.nn.embed import EmbeddingNetwork, batch_hard_triplet_loss, contrastive_loss, pair_distance
from scatlas.ontology.load import Ontology, Term
from scatlas.ontology.similarity import similarity_matrix

SHORT = [f"{key}={json.dumps(value)}" for key, value in EMBED_SHORT.items()]


def train_args(h5ad, out, *extra):
    params = [arg for item in SHORT for arg in ("--param", item)]
    common = ["--label-key", "label", "--study-key", "condition", "--min-cells", "20", "--threads", "1"]
    return ["embed", "train", "--input", str(h5ad), *common, *params, *extra, "--output", str(out)]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Small networks: one torch thread (two threads' synchronisation costs more than it saves)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def kang(tmp_path_factory):
    path = tmp_path_factory.mktemp("kang") / "kang.h5ad"
    kang_small().write_h5ad(path)
    return path


@pytest.fixture(scope="module")
def trained(kang, tmp_path_factory):
    """A short dense fit on kang_small (held out by condition), trained through the command line."""
    out = tmp_path_factory.mktemp("model") / "dense"
    metrics = out.parent / "metrics.json"
    assert main(train_args(kang, out, "--metrics", str(metrics))) == 0
    return out, json.loads(metrics.read_text())


# ---------------------------------------------------------------- split
def test_split_holds_out_the_median_study_of_each_label():
    labels = pd.Series(["a"] * 10 + ["a"] * 20 + ["a"] * 30 + ["b"] * 5 + ["b"] * 6)
    studies = pd.Series(["s1"] * 10 + ["s2"] * 20 + ["s3"] * 30 + ["s1"] * 5 + ["s3"] * 6)
    side = study_split(labels, studies)
    # a: s2 (median of 10/20/30) held out; b's median (the lower of s1's 5, s3's 6) is s1, already training a
    assert set(studies[side == "query"]) == {"s2"}
    assert set(studies[side == "train"]) == {"s1", "s3"}


@pytest.mark.parametrize("seed", range(20))
def test_split_never_puts_a_study_on_both_sides(seed):
    rng = np.random.default_rng(seed)
    n = 3000
    labels = pd.Series(rng.choice([f"type{i}" for i in range(12)], n, p=rng.dirichlet(np.ones(12))))
    studies = pd.Series(rng.choice([f"GSE{i}" for i in range(7)], n, p=rng.dirichlet(np.ones(7))))
    side = study_split(labels, studies)
    query, train = set(studies[side == "query"]), set(studies[side == "train"])
    assert query and train and not query & train
    # every query study tests some label that the training side also has
    for study in query:
        assert set(labels[(studies == study)]) & set(labels[side == "train"])


def test_labels_with_several_terms_or_none_are_not_training_labels():
    labels = pd.Series(["B cell"] * 80 + ["B cell|T cell"] * 80 + ["unlabelled"] * 80 + ["T cell"] * 10)
    assert single_labels(labels).isna().sum() == 160
    kept = eligible_cells(labels, 75)
    assert kept[:80].all() and not kept[80:].any()


# ---------------------------------------------------------------- losses
def test_contrastive_loss_pulls_same_pairs_and_pushes_others_to_the_margin():
    distance = torch.tensor([0.0, 0.5, 1.5, 0.5])
    same = torch.tensor([1.0, 1.0, 0.0, 0.0])
    # same pairs: D² (0, 0.25); different pairs: max(1 - D, 0)² (0 beyond the margin, 0.25 inside)
    assert contrastive_loss(distance, same).item() == pytest.approx((0 + 0.25 + 0 + 0.25) / 4)
    # dynamic margin: similar types (s = 0.5) are pushed to 0.5 only: the pair at 0.5 costs nothing
    similarity = torch.tensor([0.0, 0.0, 0.0, 0.5])
    assert contrastive_loss(distance, same, similarity=similarity).item() == pytest.approx(0.25 / 4)
    assert pair_distance(torch.zeros(1, 3), torch.ones(1, 3)).item() == pytest.approx(3**0.5)


def test_batch_hard_triplet_loss_uses_the_hardest_positive_and_negative():
    embedding = torch.tensor([[0.0], [1.0], [3.0], [3.5]])
    labels = torch.tensor([0, 0, 1, 1])
    # anchor 0: farthest positive 1, nearest negative 3 -> softplus(-2); anchor 1: softplus(1 - 2);
    # anchor 2: softplus(0.5 - 2); anchor 3: softplus(0.5 - 2.5)
    gaps = torch.tensor([-2.0, -1.0, -1.5, -2.0])
    assert batch_hard_triplet_loss(embedding, labels).item() == pytest.approx(
        torch.nn.functional.softplus(gaps).mean().item()
    )
    assert batch_hard_triplet_loss(embedding, labels, margin=1.5).item() == pytest.approx((0 + 0.5 + 0 + 0) / 4)


def test_the_dense_network_is_scquerys_1136_100_tanh_with_a_softmax_head():
    network = EmbeddingNetwork(2000, n_types=7)
    assert [(layer.in_features, layer.out_features) for layer in network.layers] == [(2000, 1136), (1136, 100)]
    x = torch.randn(5, 2000) * 10
    assert network.embed(x).abs().max() <= 1  # tanh embedding
    assert network(x).shape == (5, 7)
    assert EmbeddingNetwork(50, (20, 10), linear_last=True).embed(torch.randn(3, 50) * 100).abs().max() > 1


# ---------------------------------------------------------------- similarity and scores
def test_type_similarity_sums_one_over_one_plus_distance_per_type():
    distances = np.array([[0.0, 1.0, 3.0]])
    types = np.array([[0, 1, 0]])
    similarity = type_similarity(distances, types, 3)
    total = 1 + 0.5 + 0.25
    np.testing.assert_allclose(similarity, [[1.25 / total, 0.5 / total, 0.0]])
    studies = nearest_studies(["c1"], np.array([[1, 0, 1]]), ["GSE1", "GSE2"])
    assert studies.to_dict("records") == [
        {"cell": "c1", "study": "GSE2", "neighbours": 2},
        {"cell": "c1", "study": "GSE1", "neighbours": 1},
    ]


def test_average_flexible_precision_by_hand():
    # ranked relevances 1, 0, 0.5: precisions 1/1, 1/2, 1.5/3 -> mean 2/3; an unknown position is skipped
    np.testing.assert_allclose(average_flexible_precision(np.array([[1.0, 0.0, 0.5]])), [2 / 3])
    np.testing.assert_allclose(average_flexible_precision(np.array([[1.0, np.nan, 0.0]])), [(1 + 0.5) / 2])


def test_mafp_counts_related_types_and_weights_by_cells():
    names = {"CL:1": "leukocyte", "CL:2": "lymphocyte", "CL:3": "B cell", "CL:4": "hepatocyte"}
    graph = nx.DiGraph([("CL:2", "CL:1"), ("CL:3", "CL:2")])
    graph.add_node("CL:4")
    ontology = Ontology({t: Term(t, name) for t, name in names.items()}, graph, {}, "test")
    similarity = similarity_matrix(ontology, ["CL:3", "CL:2", "CL:4"])
    assert similarity[0, 1] == pytest.approx(0.75) and np.isnan(similarity[0, 2]) and similarity[2, 2] == 1
    truth = np.array([0, 0, 2])
    ranked = np.array([[0, 1], [1, 1], [2, 2]])
    scores = retrieval_scores(truth, ranked, np.nan_to_num(similarity))
    # relevances: cell 0 (1, 0.75) -> precisions 1, 1.75/2; cell 1 (0.75, 0.75); cell 2 (1, 1)
    afp = [(1 + 1.75 / 2) / 2, 0.75, 1.0]
    assert scores["mafp"] == pytest.approx(np.mean(afp))
    assert scores["mafp_unweighted"] == pytest.approx(np.mean([(afp[0] + afp[1]) / 2, afp[2]]))
    assert scores["map"] == pytest.approx(np.mean([(1 + 0.5) / 2, 0.0, 1.0]))
    assert classification_scores(["a", "a", "b"], ["a", "b", "b"])["macro_f1"] == pytest.approx(2 / 3)


# ---------------------------------------------------------------- a short fit on real cells
@pytest.mark.slow
def test_a_short_fit_maps_held_out_condition_better_than_chance_and_pca():
    figures = embed_kang(seed=0)
    # 8 types: chance 0.125. Lowest of seeds 0-4 x native/avx2 kernels, 1 thread
    # (benchmarks/results/*/test_margins.tsv): accuracy 0.82, lead over PCA-100 kNN 0.14
    assert torch.get_num_threads() == 1
    assert figures["accuracy"] > 0.7
    assert figures["lead_over_pca"] > 0.03
    assert figures["map"] > figures["pca_map"]


@pytest.mark.slow
def test_train_writes_the_model_folder_and_query_scores(trained):
    out, metrics = trained
    for name in ("model.pt", "params.yaml", "history.tsv", "env.json", "index.bin", "genes.tsv"):
        assert (out / name).is_file(), name
    split = pd.read_csv(out / "split.tsv", sep="\t")
    assert not set(split.loc[split.side == "query", "study"]) & set(split.loc[split.side == "train", "study"])
    assert metrics["n_query_cells"] > 300 and metrics["accuracy"] > 0.7
    assert len(pd.read_csv(out / "history.tsv", sep="\t")) == EMBED_SHORT["epochs"]


@pytest.mark.slow
def test_a_saved_model_reloads_and_gives_identical_predictions(trained, kang, tmp_path):
    out, _ = trained
    adata = ad.read_h5ad(kang)
    first = Embedder.load(out, "cpu")
    emb1, sim1, found1, _ = first.query(adata.X, adata.var_names)
    emb2, sim2, found2, _ = Embedder.load(out, "cpu").query(adata.X, adata.var_names)
    np.testing.assert_array_equal(emb1, emb2)
    np.testing.assert_array_equal(found1, found2)
    np.testing.assert_array_equal(sim1, sim2)
    pred = tmp_path / "pred.tsv"
    assert main(["embed", "query", "--model", str(out), "--input", str(kang), "--output", str(pred)]) == 0
    table = pd.read_csv(pred, sep="\t")
    assert list(table.columns[:3]) == ["cell", "predicted", "score"]
    np.testing.assert_allclose(table[first.types].sum(axis=1), 1, atol=1e-5)  # the similarity columns sum to 1
    np.testing.assert_allclose(table["score"], table[first.types].max(axis=1), atol=1e-5)


@pytest.mark.slow
def test_map_writes_predictions_studies_and_mapped_h5ad_independent_of_gene_order(trained, kang, tmp_path):
    out, _ = trained
    adata = ad.read_h5ad(kang)
    order = np.random.default_rng(1).permutation(adata.n_vars)
    shuffled = tmp_path / "shuffled.h5ad"
    adata[:, order].copy().write_h5ad(shuffled)
    for name, path in (("plain", kang), ("shuffled", shuffled)):
        assert main(["map", "--model", str(out), "--input", str(path), "--output", str(tmp_path / name)]) == 0
    plain = pd.read_csv(tmp_path / "plain" / "predictions.tsv", sep="\t")
    pd.testing.assert_frame_equal(plain, pd.read_csv(tmp_path / "shuffled" / "predictions.tsv", sep="\t"))
    mapped = ad.read_h5ad(tmp_path / "plain" / "mapped.h5ad")
    assert mapped.obsm["X_scatlas"].shape == (adata.n_obs, EMBED_SHORT["hidden"][-1])
    assert (mapped.obs["scatlas_type"].astype(str).to_numpy() == plain["predicted"].to_numpy()).all()
    studies = pd.read_csv(tmp_path / "plain" / "studies.tsv", sep="\t")
    assert set(studies["study"]) <= {"CTRL", "STIM"}
    assert (studies.groupby("cell")["neighbours"].sum() == 100).all()
    # the training condition's cells find mostly their own condition among their neighbours
    accuracy = (plain["predicted"].to_numpy() == adata.obs["label"].astype(str).to_numpy()).mean()
    assert accuracy > 0.7


@pytest.mark.slow
def test_missing_genes_are_zeros_with_a_warning_and_too_few_are_refused(trained, kang, tmp_path, caplog):
    out, _ = trained
    model = Embedder.load(out, "cpu")
    adata = ad.read_h5ad(kang)
    dropped = set(model.genes[:100])
    some = adata[:, ~adata.var_names.isin(dropped)].copy()
    with caplog.at_level("WARNING"):
        model.transform(some.X, some.var_names, "some.h5ad")
    assert "lacks 100 of the model's" in caplog.text
    few = adata[:, ~adata.var_names.isin(model.genes[: len(model.genes) * 6 // 10])].copy()
    path = tmp_path / "few.h5ad"
    few.write_h5ad(path)
    assert main(["map", "--model", str(out), "--input", str(path), "--output", str(tmp_path / "out")]) == 2
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
@pytest.mark.parametrize("model", ["siamese", "triplet"])
def test_siamese_and_triplet_fits_map_better_than_chance(model, kang, tmp_path):
    metrics = tmp_path / "metrics.json"
    short = ["--param", "epochs=4", "--param", "same_pairs=100"]
    args = train_args(kang, tmp_path / model, "--model", model, *short, "--metrics", str(metrics))
    assert main(args) == 0
    assert json.loads(metrics.read_text())["accuracy"] > 0.5  # 8 types: chance 0.125


def test_pretraining_adds_one_stage_per_layer_and_a_seed_repeats_the_fit():
    rng = np.random.default_rng(0)
    counts = sp.csr_matrix(rng.poisson(rng.gamma(1, 2, (1, 40)) * np.repeat([[1], [3]], 30, axis=0), (60, 40)))
    labels = np.repeat(["x", "y"], 30)
    params = {"hidden": [16, 4], "epochs": 3, "pretrain": True, "pretrain_epochs": 2, "batch_size": 16}
    from scatlas.models.embed import EmbedParams

    fits = [Embedder(EmbedParams.from_dict(params), 3, "cpu").fit(counts, np.arange(40), labels) for _ in range(2)]
    stages = pd.DataFrame(fits[0].history)["stage"]
    assert stages.value_counts().to_dict() == {"pretrain1": 2, "pretrain2": 2, "dense": 3}
    np.testing.assert_array_equal(fits[0].transform(counts, np.arange(40)), fits[1].transform(counts, np.arange(40)))


# ---------------------------------------------------------------- bad input
def _write(adata, path):
    adata.write_h5ad(path)
    return path


def _toy(labels, studies, counts=None):
    rng = np.random.default_rng(0)
    n = len(labels)
    x = counts if counts is not None else sp.csr_matrix(rng.poisson(2, (n, 30)).astype(np.float32))
    adata = ad.AnnData(x, obs=pd.DataFrame({"label": labels, "condition": studies}, index=[f"c{i}" for i in range(n)]))
    adata.var_names = [f"g{i}" for i in range(30)]
    return adata


@pytest.mark.parametrize(
    "case, message",
    [
        ("few_cells", "no cell type has 20 or more cells"),
        ("one_study", "a held-out-study split needs 2 or more"),
        ("not_counts", "non-integer values"),
        ("no_label_column", "obs has no column 'label'"),
    ],
)
def test_bad_training_input_is_one_line_and_writes_nothing(case, message, tmp_path, capsys):
    labels = np.repeat(["a", "b"], 30)
    studies = np.tile(["s1", "s2"], 30)
    if case == "few_cells":
        adata = _toy(np.repeat(["a", "b", "c"], 10), np.tile(["s1", "s2"], 15))
    elif case == "one_study":
        adata = _toy(labels, np.full(60, "s1"))
    elif case == "not_counts":
        adata = _toy(labels, studies, sp.csr_matrix(np.random.default_rng(0).random((60, 30)).astype(np.float32)))
    else:
        adata = _toy(labels, studies)
        adata.obs = adata.obs.drop(columns="label")
    path = _write(adata, tmp_path / "in.h5ad")
    out = tmp_path / "model"
    assert main(train_args(path, out)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and str(path) in err
    assert not out.exists() and not list(tmp_path.glob(".model*"))


@pytest.mark.slow
@pytest.mark.parametrize("case", ["no_shared_genes", "not_counts"])
def test_bad_query_input_is_one_line_and_writes_nothing(case, trained, kang, tmp_path, capsys):
    out, _ = trained
    adata = ad.read_h5ad(kang)[:50].copy()
    if case == "no_shared_genes":
        adata.var_names = [f"other{i}" for i in range(adata.n_vars)]
    else:
        adata.X = sp.csr_matrix(np.log1p(adata.X.toarray()))
    path = _write(adata, tmp_path / "q.h5ad")
    for command in (
        ["map", "--output", str(tmp_path / "dir")],
        ["embed", "query", "--output", str(tmp_path / "p.tsv")],
    ):
        assert main([*command, "--model", str(out), "--input", str(path)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and str(path) in err
        assert ("0 of the model's" in err) if case == "no_shared_genes" else ("non-integer" in err)
    assert not (tmp_path / "dir").exists() and not (tmp_path / "p.tsv").exists()


def test_a_folder_that_is_not_a_model_is_refused(tmp_path):
    with pytest.raises(InputError, match="not a saved scatlas model"):
        Embedder.load(tmp_path)


def test_the_workflow_skips_an_atlas_too_small_to_split_and_says_why(tmp_path, caplog):
    from scatlas.embed import train_atlas_embedding

    path = _write(_toy(np.repeat(["a", "b"], 30), np.full(60, "s1")), tmp_path / "atlas.h5ad")
    metrics = tmp_path / "metrics.json"
    with caplog.at_level("WARNING"):
        scores = train_atlas_embedding(
            path, tmp_path / "model", metrics, label_key="label", study_key="condition", model="dense", min_cells=20
        )
    assert "embedding skipped" in caplog.text and "needs 2 or more" in scores["skipped"]
    assert json.loads(metrics.read_text())["n_query_cells"] == 0
    assert (tmp_path / "model" / "SKIPPED").is_file()
    with pytest.raises(InputError, match="no embedding was trained here"):
        Embedder.load(tmp_path / "model")


def test_holdout_none_trains_on_every_cell_of_a_single_study(tmp_path):
    rng = np.random.default_rng(0)
    x = np.vstack(
        [
            rng.poisson(np.r_[np.full(15, 5), np.full(15, 0.2)], (30, 30)),
            rng.poisson(np.r_[np.full(15, 0.2), np.full(15, 5)], (30, 30)),
        ]
    )
    path = _write(
        _toy(np.repeat(["a", "b"], 30), np.full(60, "s1"), sp.csr_matrix(x.astype(np.float32))), tmp_path / "in.h5ad"
    )
    out = tmp_path / "model"
    args = ["--holdout", "none", "--param", "hidden=[8, 4]", "--param", "epochs=30", "--param", "batch_size=16"]
    assert main(train_args(path, out, *args)) == 0
    assert len(pd.read_csv(out / "training_cells.tsv", sep="\t")) == 60
    pred = tmp_path / "pred.tsv"
    assert main(["embed", "query", "--model", str(out), "--input", str(path), "--output", str(pred)]) == 0
    assert (pd.read_csv(pred, sep="\t")["predicted"].to_numpy() == np.repeat(["a", "b"], 30)).mean() > 0.9
