"""scQuery's multi-study DE: per study, a cell type against the other types; studies combined.

For each cell type and each study with at least ``min_cells`` cells of it, the type's cells (at
most ``max_cells``, sampled) are tested against as many cells sampled from the OTHER types of the
same study (so batch effects between studies never enter a test). A gene is DE for the type when
its largest adjusted p over those studies is below ``fdr`` and its fold change has the same sign in
every study; the combined log2 fold change is the mean over studies (single_cell_deg, no
re-adjustment). ``log2fc > 0`` always means higher in the cell type than in the other cells.
"""

from __future__ import annotations

import logging
import re
from dataclasses import asdict, dataclass, field

import anndata as ad
import numpy as np
import pandas as pd

from scatlas.config import checked, default
from scatlas.de.methods import compare_groups
from scatlas.io import InputError, atomic_folder, raw_counts, read_h5ad

log = logging.getLogger(__name__)
COLUMNS = ["gene", "log2fc", "p_adj_max", "z", "n_studies", "significant"]
INDEX_NAME = "_index.tsv"  # never a cell type's file: their names never start with "_"


@dataclass
class DEParams:
    """Parameters of the multi-study DE (config section ``de``, whose defaults are scQuery's)."""

    method: str = default("de.method")
    min_cells: int = default("de.min_cells")
    max_cells: int = default("de.max_cells")
    n_bootstrap: int = default("de.n_bootstrap")
    pseudo_replicates: int = default("de.pseudo_replicates")
    fdr: float = default("de.fdr")
    seed: int = default("de.seed")
    exclude: list[str] = field(default_factory=lambda: default("de.exclude"))

    def __post_init__(self):
        checked(asdict(self), "de", source="DE parameters")  # the config schema's ranges (scatlas.config)


def safe_file_name(name: str) -> str:
    """A file name for a cell type: characters other than letters, digits, '.', '-', '_' become '_';
    leading '.', '_' and '-' are dropped (no hidden files, no traversal, never the index's name)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", str(name)).lstrip("._-")
    return cleaned or "cell_type"


def file_names(cell_types) -> dict[str, str]:
    """Cell type → file name, unique: a clash after cleaning gets ``-2``, ``-3`` ... in sorted order."""
    names, used = {}, set()
    for cell_type in sorted(cell_types):
        base = candidate = safe_file_name(cell_type)
        n = 1
        while candidate.lower() in used:
            n += 1
            candidate = f"{base}-{n}"
        used.add(candidate.lower())
        names[cell_type] = candidate
    return names


def combine_studies(per_study: dict[str, pd.DataFrame], fdr: float) -> pd.DataFrame:
    """Meta-analysis of per-study results (each indexed by gene: ``log2fc``, ``z``, ``p_adj``).

    ``p_adj_max`` = largest adjusted p; ``log2fc`` = mean; ``significant`` = p_adj_max < fdr and the
    same non-zero sign of log2fc in every study. ``z`` = the weakest uncorrected evidence for a change
    in the same direction in every study: the smallest Z when every study's Z is positive, the largest
    when every one is negative, 0 when they disagree in sign — the intersection-union statistic of
    that hypothesis, the continuous counterpart of the max-p-and-same-sign rule (BH ties most genes
    at one adjusted p, so the ranking needs the uncorrected statistic). Rows sorted: significant
    first, then p_adj_max, then |log2fc| desc (scQuery's filter_degs.py).
    """
    studies = list(per_study)
    fc = pd.concat({s: per_study[s]["log2fc"] for s in studies}, axis=1)
    p = pd.concat({s: per_study[s]["p_adj"] for s in studies}, axis=1)
    z = pd.concat({s: per_study[s]["z"] for s in studies}, axis=1)
    signs = np.sign(fc.to_numpy())
    same_sign = (np.abs(signs.sum(1)) == len(studies)) & (signs[:, 0] != 0)
    z_values = z.to_numpy()
    # min Z if all up, max Z if all down; otherwise both terms are <= 0 and the evidence is 0.
    weakest = np.maximum(np.maximum(z_values.min(1), -z_values.max(1)), 0.0) * np.sign(z_values[:, 0])
    table = pd.DataFrame(
        {
            "gene": fc.index.astype(str),
            "log2fc": fc.mean(1).to_numpy(),
            "p_adj_max": p.max(1).to_numpy(),
            "z": weakest + 0.0,  # + 0.0: no -0.0 in the tables
            "n_studies": len(studies),
        }
    )
    table["significant"] = (table["p_adj_max"] < fdr) & same_sign
    table["_abs"] = -table["log2fc"].abs()
    table = table.sort_values(["significant", "p_adj_max", "_abs"], ascending=[False, True, True], kind="stable")
    return table.drop(columns="_abs").reset_index(drop=True)


def study_designs(obs: pd.DataFrame, group_key: str, study_key: str, params: DEParams):
    """Which (cell type, study) tests to run, with the cells of each side, and what was skipped.

    Returns
    -------
    designs : {cell_type: [(study, positions of the type's cells, positions of the others)]}
    skipped : list of (cell_type, study, reason)
    """
    rng = np.random.default_rng(params.seed)
    groups = obs[group_key].astype(str).to_numpy()
    studies = obs[study_key].astype(str).to_numpy()
    keep = ~np.isin(groups, params.exclude)
    designs, skipped = {}, []
    for cell_type in sorted(set(groups[keep])):
        for study in sorted(set(studies[keep & (groups == cell_type)])):
            in_study = keep & (studies == study)
            mine = np.flatnonzero(in_study & (groups == cell_type))
            others = np.flatnonzero(in_study & (groups != cell_type))
            if len(mine) < params.min_cells:
                skipped.append((cell_type, study, f"{len(mine)} cells < min_cells {params.min_cells}"))
                continue
            if len(others) < 2:
                skipped.append((cell_type, study, "fewer than 2 cells of other types in the study"))
                continue
            size = len(mine) if params.max_cells <= 0 else min(params.max_cells, len(mine))
            mine = np.sort(rng.choice(mine, size, replace=False))
            others = np.sort(rng.choice(others, min(size, len(others)), replace=False))
            designs.setdefault(cell_type, []).append((study, mine, others))
    return designs, skipped


def differential_expression(
    adata: ad.AnnData, group_key: str, study_key: str, params: DEParams, path="input"
) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Multi-study DE of every cell type against the other types of its studies.

    Parameters
    ----------
    adata : cells × genes; raw counts in layer ``counts`` (else ``X``, else ``raw.X``); obs ``group_key`` (cell
        type) and ``study_key``.
    path : the input's name, for error messages.

    Returns
    -------
    tables : {cell_type: combined table with :data:`COLUMNS`}
    runs : one row per (cell_type, study): ``used`` and the reason when skipped.
    """
    for key in (group_key, study_key):
        if key not in adata.obs:
            raise InputError(path, f"obs has no column {key!r} (columns: {', '.join(map(str, adata.obs.columns))})")
        if adata.obs[key].isna().any():
            raise InputError(path, f"obs column {key!r} has {int(adata.obs[key].isna().sum())} missing values")
    counts, genes = raw_counts(adata, path)
    designs, skipped = study_designs(adata.obs, group_key, study_key, params)
    genes = genes.astype(str)
    tables, runs = {}, [(t, s, False, reason) for t, s, reason in skipped]
    for number, (cell_type, tests) in enumerate(designs.items(), start=1):
        per_study = {}
        for i, (study, mine, others) in enumerate(tests):
            log.info(
                "DE %s in %s: %d vs %d cells (%s; cell type %d of %d)",
                cell_type,
                study,
                len(mine),
                len(others),
                params.method,
                number,
                len(designs),
            )
            per_study[study] = compare_groups(
                counts[mine].toarray(),
                counts[others].toarray(),
                genes,
                params.method,
                seed=params.seed + i,
                n_bootstrap=params.n_bootstrap,
                pseudo_replicates=params.pseudo_replicates,
            )
            runs.append((cell_type, study, True, ""))
        tables[cell_type] = combine_studies(per_study, params.fdr)
    for cell_type, study, _, reason in runs:
        if reason:
            log.warning("DE %s in %s skipped: %s", cell_type, study, reason)
    runs = pd.DataFrame(runs, columns=["cell_type", "study", "used", "reason"])
    return tables, runs.sort_values(["cell_type", "study"]).reset_index(drop=True)


def write_de_tables(tables: dict[str, pd.DataFrame], runs: pd.DataFrame, outdir) -> dict[str, str]:
    """Write ``outdir/{file}.tsv`` per cell type and ``outdir/_index.tsv`` (cell type → file, studies), as
    one folder replacing any earlier ``outdir`` whole (no table of a cell type no longer present stays).

    Returns the cell type → file name mapping (:func:`file_names` over every cell type seen).
    """
    from pathlib import Path

    names = file_names(set(runs["cell_type"]))
    index = runs.assign(file=[f"{names[t]}.tsv" if t in tables else "" for t in runs["cell_type"]])
    with atomic_folder(Path(outdir)) as tmp:
        for cell_type, table in tables.items():
            table[COLUMNS].to_csv(tmp / f"{names[cell_type]}.tsv", sep="\t", index=False, float_format="%.6g")
        index[["cell_type", "file", "study", "used", "reason"]].to_csv(tmp / INDEX_NAME, sep="\t", index=False)
    return names


def run_de(input_path, output_dir, group_key: str, study_key: str, params: DEParams) -> dict[str, pd.DataFrame]:
    """``scatlas de``: read the h5ad, run :func:`differential_expression`, write the tables."""
    adata = read_h5ad(input_path)
    tables, runs = differential_expression(adata, group_key, study_key, params, path=input_path)
    if not tables:
        log.warning("%s: no cell type has %d cells in any study; no DE table written", input_path, params.min_cells)
    write_de_tables(tables, runs, output_dir)
    return tables
