"""Stage 8a: the per-study AnnData merged into one atlas on the common genes, one study at a time."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping

import h5py
import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata.io import read_elem, sparse_dataset, write_elem

from scatlas.io import InputError, atomic_output, check_raw_counts
from scatlas.ontology.labels import LABEL_COLUMNS, UNLABELLED

log = logging.getLogger(__name__)
LABEL_FIELDS = ["cell_ontology_id", "cell_ontology_name", "label_source"]


def _open(path: str | os.PathLike) -> h5py.File:
    try:
        return h5py.File(path, "r")
    except (OSError, ValueError) as err:
        raise InputError(path, f"not a readable h5ad file ({err})") from None


def read_genes(path: str | os.PathLike) -> pd.DataFrame:
    """The ``var`` table of an h5ad, without reading its matrices."""
    with _open(path) as handle:
        if "var" not in handle:
            raise InputError(path, "no var (genes) in the h5ad")
        return read_elem(handle["var"])


def read_counts(path: str | os.PathLike) -> tuple[pd.DataFrame, sp.csr_matrix]:
    """``obs`` and the raw counts (cells × genes, CSR, int32) of a study h5ad.

    The counts are the ``counts`` layer, else ``X``; non-integer values (RPKM, log-normalised values)
    are refused (:func:`scatlas.io.check_raw_counts`), as the atlas keeps raw counts.
    """
    with _open(path) as handle:
        obs = read_elem(handle["obs"]) if "obs" in handle else None
        from_layer = "layers" in handle and "counts" in handle["layers"]
        if from_layer:
            counts = read_elem(handle["layers/counts"])
        elif "X" in handle:
            counts = read_elem(handle["X"])
        else:
            raise InputError(path, "no raw counts: neither a 'counts' layer nor X")
    if obs is None:
        raise InputError(path, "no obs (cells) in the h5ad")
    counts = check_raw_counts(counts, path, "layer counts" if from_layer else "X")
    values = counts.data
    if values.size and values.max() > np.iinfo(np.int32).max:
        raise InputError(path, "counts exceed the int32 range")
    return obs, counts.astype(np.int32)


def common_genes(study_files: Mapping[str, str | os.PathLike]) -> pd.DataFrame:
    """The genes present in every study, in the first study's order, with the first study's ``var``."""
    genes = None
    for study, path in study_files.items():
        var = read_genes(path)
        if genes is None:
            genes = var
            continue
        kept = genes.index.isin(var.index)
        if not kept.any():
            raise InputError(path, f"study {study} has no genes in common with the studies before it")
        if not kept.all():
            log.warning("%s: %d genes not in study %s are left out of the atlas", path, (~kept).sum(), study)
        genes = genes[kept]
    if genes is None or len(genes) == 0:
        raise InputError(next(iter(study_files.values()), "atlas"), "no genes")
    return genes


def read_labels(paths: Iterable[str | os.PathLike]) -> pd.DataFrame:
    tables = []
    for path in paths:
        try:
            table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
        except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
            raise InputError(path, f"unreadable label table ({err})") from None
        missing = [c for c in LABEL_COLUMNS if c not in table.columns]
        if missing:
            raise InputError(path, f"label table lacks column(s): {', '.join(missing)}")
        tables.append(table[LABEL_COLUMNS])
    labels = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=LABEL_COLUMNS)
    return labels.drop_duplicates(["study", "sample"]).set_index(["study", "sample"])


def _cells(obs: pd.DataFrame, study: str, labels: pd.DataFrame) -> pd.DataFrame:
    obs = obs.copy()
    obs["study"] = study
    if "run" not in obs:
        obs["run"] = obs.index.astype(str)
    if "sample" not in obs:
        obs["sample"] = ""
    obs = obs.drop(columns=[c for c in LABEL_FIELDS if c in obs.columns])
    keys = pd.MultiIndex.from_arrays([obs["study"].astype(str), obs["sample"].astype(str)])
    found = labels.reindex(keys)
    obs["cell_ontology_id"] = found["cell_ontology_id"].fillna("").to_numpy()
    obs["cell_ontology_name"] = found["cell_ontology_name"].fillna(UNLABELLED).replace("", UNLABELLED).to_numpy()
    obs["label_source"] = found["label_source"].fillna("").to_numpy()
    return obs


def merge_studies(
    study_files: Mapping[str, str | os.PathLike],
    label_files: Iterable[str | os.PathLike],
    output: str | os.PathLike,
    compression: str | None = "gzip",
) -> tuple[int, int]:
    """Write the atlas h5ad: every study's cells on the genes common to all studies.

    Parameters
    ----------
    study_files
        ``{study: quant/{study}.h5ad}``; each needs raw counts (layer ``counts`` or integer ``X``).
    label_files
        ``labels/{study}.tsv`` tables (``LABEL_COLUMNS``), joined to cells by study and sample.
    output
        The atlas: ``X`` = raw counts (CSR, int32), ``obs`` = the studies' cell columns plus ``study``,
        ``sample``, ``run``, ``cell_ontology_id``, ``cell_ontology_name`` ("unlabelled" when none),
        ``label_source``; ``var`` = the common genes.

    Only one study's sparse matrix is in memory at a time: it is appended to the on-disk CSR
    matrix, so memory scales with the largest study, not with the atlas. Returns (cells, genes).
    """
    genes = common_genes(study_files)
    labels = read_labels(label_files)
    obs_tables = []
    with atomic_output(output) as tmp, h5py.File(tmp, "w") as out:
        for study, path in study_files.items():
            obs, counts = read_counts(path)
            var_names = read_genes(path).index
            columns = var_names.get_indexer(genes.index)
            if not np.array_equal(columns, np.arange(counts.shape[1])):  # a copy only when genes differ
                counts = counts[:, columns]
            counts.sort_indices()
            if "X" not in out:
                write_elem(out, "X", counts, dataset_kwargs={"compression": compression} if compression else {})
            else:
                sparse_dataset(out["X"]).append(counts)
            obs_tables.append(_cells(obs, study, labels))
            log.info("%s: %d cells appended", study, counts.shape[0])
            del counts
        obs = pd.concat(obs_tables)
        if obs.index.has_duplicates:
            repeated = obs.index[obs.index.duplicated()][0]
            second = study_files[obs.loc[[repeated], "study"].iloc[-1]]
            raise InputError(second, f"cell (run) id {repeated} is also in another study")
        for column in obs.columns:
            if obs[column].dtype == object:
                obs[column] = obs[column].fillna("").astype(str)
        obs.index = obs.index.astype(str)
        var = genes.copy()
        var.index = var.index.astype(str)
        var = var.astype({c: str for c in var.columns if var[c].dtype == object})
        out.attrs["encoding-type"] = "anndata"
        out.attrs["encoding-version"] = "0.1.0"
        write_elem(out, "obs", obs)
        write_elem(out, "var", var)
        for empty in ("layers", "obsm", "varm", "obsp", "varp", "uns"):
            write_elem(out, empty, {})
    return len(obs), len(genes)
