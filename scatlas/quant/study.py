"""One AnnData per study: runs × genes with raw counts and RPKM; poorly aligned runs excluded."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp

from scatlas.io import InputError, atomic_output

if TYPE_CHECKING:  # anndata loads where a study is assembled, not in a per-run job that imports scatlas.quant
    import anndata as ad

EXCLUDED_COLUMNS = ["study", "run", "reason", "alignment_rate", "n_reads"]


def alignment_exclusions(alignment: pd.DataFrame, min_alignment_rate: float) -> pd.DataFrame:
    """Runs whose alignment rate is below ``min_alignment_rate``, with the reason, as ``EXCLUDED_COLUMNS``."""
    low = alignment[alignment["alignment_rate"] < min_alignment_rate]
    reasons = [
        f"alignment rate {rate:.1%} below min_alignment_rate {min_alignment_rate:.0%}" for rate in low["alignment_rate"]
    ]
    return pd.DataFrame(
        {
            "study": low["study"],
            "run": low.index,
            "reason": reasons,
            "alignment_rate": low["alignment_rate"],
            "n_reads": low["n_reads"],
        },
        columns=EXCLUDED_COLUMNS,
    )


def _read_json(path: str | os.PathLike) -> dict:
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(path, f"unreadable run statistics ({err})") from None


def assemble_study(
    runs: pd.DataFrame,
    genes: pd.DataFrame,
    quant_tables: Mapping[str, str],
    quant_stats: Mapping[str, str],
    align_stats: Mapping[str, str],
    min_alignment_rate: float,
    output: str | os.PathLike,
    excluded_output: str | os.PathLike,
) -> ad.AnnData:
    """Write the study's AnnData (cells = runs that passed alignment QC) and its excluded runs.

    Parameters
    ----------
    runs
        The study's rows of the runs sheet, indexed by run; every column goes to ``obs``.
    genes
        The reference gene table (index ``gene_id``; ``gene_name``, ``gene_biotype``, ``length``);
        it fixes the gene order, shared by every study.
    quant_tables, quant_stats, align_stats
        Per run: the ``quantify_run`` TSV, its statistics JSON, and the alignment statistics JSON.

    The AnnData has ``X`` = raw counts (sparse), layers ``counts`` (int) and ``rpkm``,
    ``obs`` = runs with their alignment and counting statistics, ``var`` = genes with lengths.
    """
    import anndata as ad

    stats = pd.DataFrame(
        [{**_read_json(align_stats[run]), **_read_json(quant_stats[run])} for run in runs.index], index=runs.index
    )
    obs = runs.join(stats.drop(columns=[c for c in stats.columns if c in runs.columns]))
    excluded = alignment_exclusions(obs, min_alignment_rate)
    obs = obs.drop(index=excluded["run"])
    counts, rpkm = [], []
    for run in obs.index:
        table = pd.read_csv(quant_tables[run], sep="\t", index_col="gene_id")
        missing = genes.index.difference(table.index)
        if len(missing):
            raise InputError(quant_tables[run], f"{len(missing)} reference genes missing (e.g. {missing[0]})")
        table = table.loc[genes.index]
        counts.append(sp.csr_matrix(table["count"].to_numpy(np.int64)[None, :]))
        rpkm.append(sp.csr_matrix(table["rpkm"].to_numpy(np.float32)[None, :]))
    shape = (0, len(genes))
    count_matrix = sp.vstack(counts, format="csr") if counts else sp.csr_matrix(shape, dtype=np.int64)
    rpkm_matrix = sp.vstack(rpkm, format="csr") if rpkm else sp.csr_matrix(shape, dtype=np.float32)
    obs = obs.astype({c: str for c in obs.columns if obs[c].dtype == object})
    var = genes.copy()
    var.index = var.index.astype(str)
    adata = ad.AnnData(
        X=count_matrix.astype(np.float32),
        obs=obs,
        var=var,
        layers={"counts": count_matrix, "rpkm": rpkm_matrix},
    )
    adata.uns["min_alignment_rate"] = min_alignment_rate
    with atomic_output(output) as tmp:
        adata.write_h5ad(tmp, compression="gzip")
    with atomic_output(excluded_output) as tmp:
        excluded.to_csv(tmp, sep="\t", index=False)
    return adata
