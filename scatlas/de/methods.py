"""One test of a group of cells against another, by SCDE, Wilcoxon (scanpy) or pseudo-bulk DESeq2.

Every method returns the same per-gene frame: ``log2fc`` (positive = higher in the FIRST group),
``z`` (the method's signed, uncorrected test statistic, same convention: SCDE's Z, the Wilcoxon
score, the DESeq2 Wald statistic) and ``p_adj`` (two-sided, Benjamini–Hochberg over the genes).
"""

from __future__ import annotations

import logging

import anndata as ad
import numpy as np
import pandas as pd

from scatlas.de.scde import scde_test

METHODS = ("scde", "wilcoxon", "pydeseq2")


def compare_groups(
    first: np.ndarray,
    second: np.ndarray,
    genes: pd.Index,
    method: str,
    seed: int,
    n_bootstrap: int = 150,
    pseudo_replicates: int = 3,
) -> pd.DataFrame:
    """Test every gene between two groups of cells.

    Parameters
    ----------
    first, second : (n_cells_1, n_genes), (n_cells_2, n_genes) dense raw integer counts; ``first``
        is the cell type tested.
    genes : gene names, the columns of both.
    method : one of :data:`METHODS`.
    seed : seed of the method's random steps (SCDE bootstrap, pseudo-replicate split).

    Returns
    -------
    DataFrame indexed by gene: ``log2fc``, ``z``, ``p_adj``.
    """
    if method == "scde":
        result = scde_test(first, second, seed=seed, n_bootstrap=n_bootstrap)
        frame = pd.DataFrame(
            {"log2fc": result["mle"].to_numpy(), "z": result["z"].to_numpy(), "p_adj": result["p_adj"].to_numpy()},
            index=genes,
        )
    elif method == "wilcoxon":
        frame = _wilcoxon(first, second, genes)
    elif method == "pydeseq2":
        frame = _pseudobulk_deseq2(first, second, genes, pseudo_replicates, seed)
    else:
        raise ValueError(f"unknown DE method {method!r}; choose from {', '.join(METHODS)}")
    return frame.rename_axis("gene")


def _wilcoxon(first, second, genes) -> pd.DataFrame:
    """scanpy's Wilcoxon rank-sum on log1p of counts normalised to 10^4 per cell."""
    import scanpy as sc

    adata = ad.AnnData(np.vstack([first, second]).astype(np.float32), var=pd.DataFrame(index=genes))
    adata.obs["group"] = pd.Categorical(["first"] * len(first) + ["second"] * len(second))
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    sc.tl.rank_genes_groups(adata, "group", groups=["first"], reference="second", method="wilcoxon", tie_correct=True)
    table = sc.get.rank_genes_groups_df(adata, group="first").set_index("names").reindex(genes)
    return pd.DataFrame(
        {
            "log2fc": table["logfoldchanges"].to_numpy(),
            "z": table["scores"].fillna(0.0).to_numpy(),
            "p_adj": table["pvals_adj"].fillna(1.0).to_numpy(),
        },
        index=genes,
    )


def _pseudobulk_deseq2(first, second, genes, pseudo_replicates, seed) -> pd.DataFrame:
    """pydeseq2 on pseudo-bulk samples: each group's cells split at random into pseudo-replicates.

    Within one study the cells of a type have no biological replicates, so each group is split
    (seeded) into ``pseudo_replicates`` parts whose counts are summed.
    """
    from pydeseq2.dds import DeseqDataSet
    from pydeseq2.ds import DeseqStats

    rng = np.random.default_rng(seed)
    samples, condition = [], []
    for name, group in (("first", first), ("second", second)):
        parts = np.array_split(rng.permutation(len(group)), min(pseudo_replicates, len(group)))
        samples += [group[part].sum(0) for part in parts]
        condition += [name] * len(parts)
    counts = pd.DataFrame(
        np.vstack(samples).astype(np.int64), columns=genes, index=[f"s{i}" for i in range(len(samples))]
    )
    detected = counts.columns[counts.sum(0) > 0]
    metadata = pd.DataFrame({"condition": condition}, index=counts.index)
    logging.getLogger("pydeseq2").setLevel(logging.WARNING)
    dds = DeseqDataSet(
        counts=counts[detected],
        metadata=metadata,
        design="~condition",
        size_factors_fit_type="poscounts",
        quiet=True,
        n_cpus=1,
    )
    dds.deseq2()
    stat = DeseqStats(dds, contrast=["condition", "first", "second"], quiet=True, n_cpus=1)
    stat.summary()
    table = stat.results_df.reindex(genes)
    return pd.DataFrame(
        {
            "log2fc": table["log2FoldChange"].fillna(0.0).to_numpy(),
            "z": table["stat"].fillna(0.0).to_numpy(),
            "p_adj": table["padj"].fillna(1.0).to_numpy(),
        },
        index=genes,
    )
