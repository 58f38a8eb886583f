"""The figures and tables of the workflow's HTML report (``snakemake --report``), one function per figure.

Each function reads the stage outputs it shows (documented files: alignment JSONs, the atlas, the clustering
scores and labels, the models' ``history.tsv``, the imputed atlas, the DE tables, the embedding's
predictions) and writes one SVG (matplotlib; no display needed) or TSV atomically. :func:`embedding_predictions`
names the one file the mapping figure reads.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from scatlas.io import atomic_output
from scatlas.report.paths import embedding_predictions  # noqa: F401

log = logging.getLogger(__name__)

# ARI / NMI the papers report on the benchmark sets (SPEC §4): dataset → method → metric → value
PUBLISHED = {
    "adam": {"scdmac": {"ari": 0.9354, "nmi": 0.9224}, "pca-kmeans": {"ari": 0.5354}},
    "deng": {"scdmac": {"ari": 0.8896, "nmi": 0.8802}, "pca-kmeans": {"ari": 0.6013}},
    "muraro": {"scdmac": {"ari": 0.8698, "nmi": 0.8459}, "pca-kmeans": {"ari": 0.6810}},
    "pollen": {"scdmac": {"ari": 0.9151, "nmi": 0.9363}, "pca-kmeans": {"ari": 0.7563}},
    "chen": {"scdmac": {"ari": 0.8821, "nmi": 0.8973}, "pca-kmeans": {"ari": 0.2284}},
    "zeisel": {
        "scdmac": {"ari": 0.7983, "nmi": 0.7692},
        "pca-kmeans": {"ari": 0.4732},
        "scsmd": {"ari": 0.803, "nmi": 0.755},
    },
    "baron": {"scsmd": {"ari": 0.724, "nmi": 0.798}},
    "pbmc": {"scsmd": {"ari": 0.852, "nmi": 0.824}},
}


def published_figure(dataset: str, method: str, metric: str) -> float | None:
    """A paper's figure for the dataset (matched by the start of its name, e.g. deng_subset_133 → deng)."""
    for name, methods in PUBLISHED.items():
        if dataset.lower().startswith(name):
            return methods.get(method, {}).get(metric)
    return None


def _save(figure, output: str | os.PathLike) -> None:
    with atomic_output(output) as tmp:
        figure.savefig(tmp, format="svg", bbox_inches="tight")
    plt.close(figure)


def _empty(output, message: str) -> None:
    """A figure that says why it has nothing to show (the report still lists it)."""
    figure, axis = plt.subplots(figsize=(5, 1.2))
    axis.axis("off")
    axis.text(0.5, 0.5, message, ha="center", va="center", wrap=True)
    _save(figure, output)


# ------------------------------------------------------------------ alignment and cells
def alignment_table(stats: Iterable[str | os.PathLike]) -> pd.DataFrame:
    """One row per run (study, run, n_reads, alignment_rate) from the align stage's ``align/{study}/{run}.json``."""
    rows = []
    for path in stats:
        path = Path(path)
        rows.append({"study": path.parent.name, "run": path.name.removesuffix(".json"), **json.loads(path.read_text())})
    return pd.DataFrame(rows, columns=["study", "run", "n_reads", "alignment_rate"])


def alignment_figure(stats: Sequence[str | os.PathLike], min_rate: float, output: str | os.PathLike) -> None:
    """Alignment rate and reads (or pairs) per run, by study; the exclusion threshold dashed."""
    table = alignment_table(stats)
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    studies = sorted(table["study"].unique())
    for axis, column, title in ((axes[0], "alignment_rate", "alignment rate"), (axes[1], "n_reads", "reads per run")):
        values = [table.loc[table["study"] == s, column].to_numpy() for s in studies]
        axis.boxplot(values, showfliers=False)
        for i, v in enumerate(values, start=1):
            axis.scatter(np.full(len(v), i) + np.random.default_rng(i).uniform(-0.15, 0.15, len(v)), v, s=8, alpha=0.6)
        axis.set_xticks(range(1, len(studies) + 1), studies, rotation=30, ha="right")
        axis.set_title(title)
    axes[0].axhline(min_rate, ls="--", c="grey")
    axes[0].set_ylim(0, 1.02)
    _save(figure, output)


def cells_figure(atlas: str | os.PathLike, label_key: str, output: str | os.PathLike) -> None:
    """Cells kept per study × label (a heatmap with counts)."""
    import anndata as ad

    obs = ad.read_h5ad(atlas, backed="r").obs
    table = pd.crosstab(obs[label_key].astype(str), obs["study"].astype(str))
    figure, axis = plt.subplots(figsize=(1.2 + 0.9 * table.shape[1], 1 + 0.45 * table.shape[0]))
    axis.imshow(table.to_numpy(), cmap="Blues", aspect="auto")
    for (i, j), value in np.ndenumerate(table.to_numpy()):
        axis.text(j, i, str(value), ha="center", va="center", fontsize=8)
    axis.set_xticks(range(table.shape[1]), table.columns, rotation=30, ha="right")
    axis.set_yticks(range(table.shape[0]), table.index)
    axis.set_xlabel("study")
    _save(figure, output)


# ------------------------------------------------------------------ clustering
def best_method(scores: pd.DataFrame, dataset: str = "atlas") -> tuple[str, int] | None:
    """(method, seed) of the dataset's method with the highest mean ARI, at its best seed."""
    rows = scores[scores["dataset"] == dataset]
    if rows.empty:
        return None
    method = rows.groupby("method")["ari"].mean().idxmax()
    seed = rows[rows["method"] == method].sort_values("ari", ascending=False)["seed"].iloc[0]
    return str(method), int(seed)


def best_clusters(scores: str | os.PathLike | None, pattern: str, dataset: str = "atlas") -> tuple[str, str] | None:
    """(clusters TSV, "method seed S") of the dataset's best clustering (:func:`best_method`); ``pattern``
    names a clustering's TSV with {dataset}, {method} and {seed}. None without scores."""
    if scores is None:
        return None
    best = best_method(pd.read_csv(scores, sep="\t"), dataset)
    if best is None:
        return None
    method, seed = best
    return pattern.format(dataset=dataset, method=method, seed=seed), f"{method} seed {seed}"


def umap_figure(
    atlas: str | os.PathLike,
    label_key: str,
    clusters: str | os.PathLike | None,
    output: str | os.PathLike,
    seed: int = 0,
) -> None:
    """UMAP of the atlas (PCA of its log-normalised highly variable genes) coloured by label, study and cluster."""
    import anndata as ad
    import scanpy as sc

    adata = ad.read_h5ad(atlas)
    if "highly_variable" in adata.var and adata.var["highly_variable"].sum() >= 2:
        adata = adata[:, adata.var["highly_variable"].to_numpy()].copy()
    n_comps = max(1, min(30, adata.n_obs - 1, adata.n_vars - 1))
    sc.pp.pca(adata, n_comps=n_comps, random_state=seed)
    sc.pp.neighbors(adata, n_neighbors=min(15, adata.n_obs - 1), random_state=seed)
    sc.tl.umap(adata, random_state=seed)
    colours = {"label": adata.obs[label_key].astype(str).to_numpy(), "study": adata.obs["study"].astype(str).to_numpy()}
    if clusters is not None:
        colours["cluster"] = pd.read_csv(clusters, sep="\t")["cluster"].astype(str).to_numpy()
    figure, axes = plt.subplots(1, len(colours), figsize=(4.5 * len(colours), 4))
    xy = adata.obsm["X_umap"]
    for axis, (name, values) in zip(np.atleast_1d(axes), colours.items(), strict=True):
        for value in sorted(set(values)):
            keep = values == value
            axis.scatter(xy[keep, 0], xy[keep, 1], s=10, label=value)
        axis.set_title(f"coloured by {name}")
        axis.set_xticks([])
        axis.set_yticks([])
        axis.legend(fontsize=7, markerscale=1.5, loc="best")
    _save(figure, output)


def scores_figure(scores: pd.DataFrame, output: str | os.PathLike) -> None:
    """ARI and NMI per method (mean bar, one dot per seed) for each dataset; the papers' figures as red bars."""
    if scores.empty:
        _empty(output, "no clustering ran (cluster.methods or cluster.seeds empty)")
        return
    datasets = list(dict.fromkeys(scores["dataset"]))
    figure, axes = plt.subplots(len(datasets), 2, figsize=(10, 3.2 * len(datasets)), squeeze=False)
    for row, dataset in enumerate(datasets):
        rows = scores[scores["dataset"] == dataset]
        methods = list(dict.fromkeys(rows["method"]))
        for axis, metric in zip(axes[row], ("ari", "nmi"), strict=True):
            for i, method in enumerate(methods):
                values = rows.loc[rows["method"] == method, metric].to_numpy(dtype=float)
                axis.bar(i, values.mean(), color="lightsteelblue", yerr=values.std() if len(values) > 1 else None)
                axis.scatter(np.full(len(values), i), values, s=12, c="black", zorder=3)
                published = published_figure(dataset, method, metric)
                if published is not None:
                    label = "published" if "published" not in axis.get_legend_handles_labels()[1] else None
                    axis.hlines(published, i - 0.4, i + 0.4, colors="red", lw=2, zorder=4, label=label)
            if axis.get_legend_handles_labels()[1]:
                axis.legend(fontsize=7, loc="lower right")
            axis.set_xticks(range(len(methods)), methods)
            axis.set_ylim(min(0.0, float(rows[metric].min())), 1.0)
            axis.set_title(f"{dataset}: {metric.upper()}")
    _save(figure, output)


def confusion_figure(
    truth: str | os.PathLike, label_key: str, exclude: Sequence[str], clusters: str | os.PathLike, title: str, output
) -> None:
    """Labels × clusters of one clustering (cells counted; unlabelled cells left out)."""
    from scatlas.cluster.data import read_obs_column

    labels = read_obs_column(truth, label_key, exclude).to_numpy()
    predicted = pd.read_csv(clusters, sep="\t")["cluster"].to_numpy()
    keep = pd.notna(labels) & pd.notna(predicted)
    table = pd.crosstab(pd.Series(labels[keep], name="label"), pd.Series(predicted[keep], name="cluster"))
    figure, axis = plt.subplots(figsize=(1.5 + 0.6 * table.shape[1], 1 + 0.45 * table.shape[0]))
    axis.imshow(table.to_numpy(), cmap="Greens", aspect="auto")
    for (i, j), value in np.ndenumerate(table.to_numpy()):
        axis.text(j, i, str(value), ha="center", va="center", fontsize=8)
    axis.set_xticks(range(table.shape[1]), table.columns)
    axis.set_yticks(range(table.shape[0]), table.index)
    axis.set_xlabel("cluster")
    axis.set_title(title)
    _save(figure, output)


# ------------------------------------------------------------------ training
def loss_figure(histories: dict[str, str | os.PathLike], output: str | os.PathLike) -> None:
    """Per-epoch loss of each model (name → its ``history.tsv``), one panel per model, one line per stage
    and loss term."""
    tables = {name: pd.read_csv(path, sep="\t") for name, path in histories.items() if Path(path).exists()}
    tables = {name: table for name, table in tables.items() if not table.empty}
    if not tables:
        _empty(output, "no trained model saved a history")
        return
    figure, axes = plt.subplots(1, len(tables), figsize=(4.5 * len(tables), 3.5), squeeze=False)
    for axis, (name, table) in zip(axes[0], tables.items(), strict=True):
        if "member" in table:
            table = table[table["member"] == table["member"].min()]
        skip = ("stage", "epoch", "seconds", "member")
        terms = [c for c in table.columns if c not in skip and table[c].dtype.kind == "f"]
        step = np.arange(len(table))
        for stage in dict.fromkeys(table["stage"]):
            rows = (table["stage"] == stage).to_numpy()
            for term in terms:
                values = table.loc[rows, term]
                if values.notna().any():
                    axis.plot(step[rows], values, label=f"{stage}: {term}")
        axis.set_yscale("symlog", linthresh=1e-3)
        axis.set_xlabel("epoch (stages one after the other)")
        axis.set_title(name)
        axis.legend(fontsize=6)
    _save(figure, output)


def imputation_figure(imputed: str | os.PathLike, model: str | os.PathLike, output: str | os.PathLike) -> None:
    """Observed vs imputed values (ln scale) of the non-zero entries of the cells LATE never trained on (its
    validation and test cells), with their Pearson r."""
    import anndata as ad
    import scipy.sparse as sp
    import yaml

    adata = ad.read_h5ad(imputed)
    held_out = _held_out_cells(adata, yaml.safe_load((Path(model) / "params.yaml").read_text()) or {})
    observed = adata.X[held_out]
    observed = observed.toarray() if sp.issparse(observed) else np.asarray(observed)
    values = np.asarray(adata.layers["imputed"][held_out])
    nonzero = observed > 0
    x, y = observed[nonzero], values[nonzero]
    figure, axis = plt.subplots(figsize=(4.5, 4.5))
    if len(x) < 2:
        axis.text(0.5, 0.5, "no observed entry in the held-out cells", ha="center")
    else:
        r = float(np.corrcoef(x, y)[0, 1])
        axis.scatter(x, y, s=4, alpha=0.4)
        top = float(max(x.max(), y.max()))
        axis.plot([0, top], [0, top], ls="--", c="grey")
        axis.set_title(f"{held_out.sum()} held-out cells, {len(x)} entries: r = {r:.2f}")
    axis.set_xlabel("observed ln(1 + normalised count)")
    axis.set_ylabel("imputed")
    _save(figure, output)


def _held_out_cells(adata, description: dict) -> np.ndarray:
    """The cells outside LATE's training split when the model recorded its split, else every cell."""
    from scatlas.models.late import split_cells

    try:
        stage = description.get("stages", [{}])[-1]
        params = description["params"]
        split = split_cells(adata.n_obs, params["valid_fraction"], params["test_fraction"], int(description["seed"]))
        train = split["train"]
        mask = np.ones(adata.n_obs, dtype=bool)
        mask[train] = False
        log.info("held-out cells of the %s stage: %d", stage.get("stage", "late"), mask.sum())
        return mask
    except (KeyError, IndexError, TypeError, ValueError):
        return np.ones(adata.n_obs, dtype=bool)


# ------------------------------------------------------------------ mapping and DE
def mapping_figure(predictions: str | os.PathLike, output: str | os.PathLike) -> None:
    """Accuracy and confusion (true × predicted type) of the embedding's held-out query cells."""
    table = pd.read_csv(predictions, sep="\t")
    if not {"predicted", "truth"} <= set(table.columns):
        _empty(output, f"{predictions}: no predicted and truth columns")
        return
    if table.empty:
        _empty(output, "no held-out query cells (the embedding was skipped or no study was held out)")
        return
    confusion = pd.crosstab(table["truth"].astype(str), table["predicted"].astype(str))
    accuracy = float((table["truth"].astype(str) == table["predicted"].astype(str)).mean())
    figure, axis = plt.subplots(figsize=(1.5 + 0.7 * confusion.shape[1], 1 + 0.45 * confusion.shape[0]))
    axis.imshow(confusion.to_numpy(), cmap="Purples", aspect="auto")
    for (i, j), value in np.ndenumerate(confusion.to_numpy()):
        axis.text(j, i, str(value), ha="center", va="center", fontsize=8)
    axis.set_xticks(range(confusion.shape[1]), confusion.columns, rotation=30, ha="right")
    axis.set_yticks(range(confusion.shape[0]), confusion.index)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title(f"accuracy {accuracy:.2f} on {len(table)} query cells")
    _save(figure, output)


def de_tables(folder: str | os.PathLike) -> dict[str, pd.DataFrame]:
    """Cell type → its DE table (``de/{cell_type}.tsv``; the folder's index file left out)."""
    return {
        path.stem: pd.read_csv(path, sep="\t")
        for path in sorted(Path(folder).glob("*.tsv"))
        if not path.name.startswith("_")
    }


def volcano_figure(folder: str | os.PathLike, fdr: float, output: str | os.PathLike) -> None:
    """log2 fold change vs −log10 of the largest adjusted p over studies, one panel per cell type."""
    tables = de_tables(folder)
    if not tables:
        _empty(output, "no cell type had enough cells in enough studies to be tested")
        return
    columns = min(4, len(tables))
    rows = -(-len(tables) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3.6 * columns, 3.2 * rows), squeeze=False)
    for axis in axes.ravel()[len(tables) :]:
        axis.axis("off")
    for axis, (cell_type, table) in zip(axes.ravel(), tables.items(), strict=False):
        p = np.clip(table["p_adj_max"].to_numpy(dtype=float), 1e-300, 1)
        significant = table["significant"].astype(bool).to_numpy()
        axis.scatter(table["log2fc"], -np.log10(p), s=6, c=np.where(significant, "crimson", "grey"))
        axis.axhline(-np.log10(fdr), ls="--", c="grey", lw=0.8)
        axis.set_title(f"{cell_type} ({significant.sum()} DE genes)", fontsize=9)
        axis.set_xlabel("log2 fold change")
        axis.set_ylabel("-log10 max adj. p")
    _save(figure, output)


def top_genes_table(folder: str | os.PathLike, output: str | os.PathLike, n: int = 10) -> pd.DataFrame:
    """The ``n`` significant genes of largest fold change per cell type (TSV)."""
    rows = []
    for cell_type, table in de_tables(folder).items():
        top = table[table["significant"].astype(bool)].sort_values("log2fc", ascending=False).head(n)
        rows.append(top.assign(cell_type=cell_type)[["cell_type", "gene", "log2fc", "p_adj_max", "n_studies"]])
    columns = ["cell_type", "gene", "log2fc", "p_adj_max", "n_studies"]
    result = pd.concat(rows) if rows else pd.DataFrame(columns=columns)
    with atomic_output(output) as tmp:
        result.to_csv(tmp, sep="\t", index=False, float_format="%.4g")
    return result


# ------------------------------------------------------------------ front page
def summary_table(
    runs: str | os.PathLike,
    excluded_runs: str | os.PathLike,
    excluded_samples: str | os.PathLike | None,
    qc_removed: str | os.PathLike,
    atlas: str | os.PathLike,
    label_key: str,
    output: str | os.PathLike,
) -> pd.DataFrame:
    """The run at a glance (TSV ``item``, ``value``): studies, runs, cells kept, labels, and every run, sample or
    cell that was left out with why."""
    import anndata as ad

    sheet = pd.read_csv(runs, sep="\t")
    obs = ad.read_h5ad(atlas, backed="r").obs
    labels = obs[label_key].astype(str).value_counts()
    rows = [
        ("studies", sheet["study"].nunique()),
        ("runs", len(sheet)),
        ("cells kept in the atlas", len(obs)),
        ("labels", "; ".join(f"{name} ({count})" for name, count in labels.items())),
    ]
    failed = pd.read_csv(excluded_runs, sep="\t")
    rows.append(("runs excluded", len(failed)))
    rows += [(f"excluded run {r.run} ({r.study})", r.reason) for r in failed.itertuples()]
    if excluded_samples is not None and Path(excluded_samples).exists():
        samples = pd.read_csv(excluded_samples, sep="\t")
        rows.append(("samples excluded by the query", len(samples)))
        reason = "reason" if "reason" in samples else samples.columns[-1]
        id_column = "accession" if "accession" in samples else samples.columns[0]
        rows += [(f"excluded sample {row[id_column]}", row[reason]) for _, row in samples.iterrows()]
    removed = pd.read_csv(qc_removed, sep="\t")
    rows.append(("cells removed by QC", len(removed)))
    table = pd.DataFrame(rows, columns=["item", "value"])
    with atomic_output(output) as tmp:
        table.to_csv(tmp, sep="\t", index=False)
    return table
