"""GTF parsing, the gene-set filter and per-gene lengths (union of the gene's exons)."""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from scatlas.io import InputError, atomic_output

GTF_COLUMNS = ["seqname", "source", "feature", "start", "end", "score", "strand", "frame", "attribute"]


def _attribute(attributes: pd.Series, key: str) -> pd.Series:
    return attributes.str.extract(rf'(?:^|;)\s*{key}\s+"([^"]*)"', expand=False)


def read_exons(path: str | os.PathLike) -> pd.DataFrame:
    """Read the exon records of a GTF (plain or gzipped).

    Returns one row per exon with the nine GTF columns (1-based, closed
    coordinates) plus ``gene_id``, ``gene_name`` and ``gene_biotype``. The
    biotype is the ``gene_biotype`` (Ensembl) or ``gene_type`` (GENCODE)
    attribute, or the source column in old Ensembl GTFs that kept it there.
    """
    try:
        gtf = pd.read_csv(
            path,
            sep="\t",
            comment="#",
            header=None,
            names=GTF_COLUMNS,
            dtype=str,
            quoting=csv.QUOTE_NONE,
            on_bad_lines="error",
        )
    except FileNotFoundError:
        raise InputError(path, "GTF file not found") from None
    except (pd.errors.ParserError, UnicodeDecodeError, EOFError, OSError) as err:
        raise InputError(path, f"not a readable 9-column GTF ({str(err).splitlines()[0]})") from None
    except pd.errors.EmptyDataError:
        raise InputError(path, "GTF file is empty") from None
    exons = gtf[gtf["feature"] == "exon"].copy()
    if exons.empty:
        raise InputError(path, "GTF has no exon records")
    if exons["attribute"].isna().any():
        raise InputError(path, "GTF has exon records with fewer than 9 columns")
    for column in ("start", "end"):
        exons[column] = pd.to_numeric(exons[column], errors="coerce")
    bad = exons[["start", "end"]].isna().any(axis=1) | (exons["start"] > exons["end"])
    if bad.any():
        row = exons[bad].iloc[0]
        raise InputError(path, f"exon on {row.seqname} has invalid coordinates {row.start!r}-{row.end!r}")
    exons[["start", "end"]] = exons[["start", "end"]].astype(np.int64)
    exons["gene_id"] = _attribute(exons["attribute"], "gene_id")
    missing = exons["gene_id"].isna() | (exons["gene_id"] == "")
    if missing.any():
        row = exons[missing].iloc[0]
        raise InputError(
            path,
            f"{missing.sum()} exon records have no gene_id attribute (first at {row.seqname}:{row.start}-{row.end})",
        )
    chromosomes = exons.groupby("gene_id", sort=False)["seqname"].unique()
    split = chromosomes[chromosomes.map(len) > 1]
    if len(split):
        raise InputError(
            path,
            f"gene_id {split.index[0]} is on {len(split.iloc[0])} chromosomes ({', '.join(split.iloc[0][:3])}; "
            f"{len(split)} such genes): featureCounts would count its loci as one gene with their lengths added; "
            "give each locus its own gene_id (as GENCODE's _PAR_Y ids do)",
        )
    exons["gene_name"] = _attribute(exons["attribute"], "gene_name").fillna(exons["gene_id"])
    biotype = _attribute(exons["attribute"], "gene_biotype")
    for fallback in (_attribute(exons["attribute"], "gene_type"), exons["source"]):
        biotype = biotype.where(biotype.notna(), fallback)
    exons["gene_biotype"] = biotype
    return exons.reset_index(drop=True)


def check_gtf(path: str | os.PathLike) -> None:
    """Refuse a GTF (plain or gzipped) with a line that is not nine tab-separated columns, integer
    coordinates start <= end, a strand of +, - or ., and a gene_id on every exon, naming the file and the
    line: what HISAT2's ``hisat2_extract_splice_sites.py`` would otherwise fail on without saying where."""
    import gzip

    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8", errors="strict") as lines:
            for number, line in enumerate(lines, start=1):
                if line.startswith("#") or not line.strip():
                    continue
                problem = _gtf_line_problem(line.rstrip("\n").split("\t"))
                if problem:
                    raise InputError(path, f"line {number}: {problem}")
    except FileNotFoundError:
        raise InputError(path, "GTF file not found") from None
    except (UnicodeDecodeError, EOFError, OSError) as err:
        raise InputError(path, f"not a readable GTF ({str(err).splitlines()[0]})") from None


def _gtf_line_problem(fields: list[str]) -> str | None:
    if len(fields) != 9:
        return f"{len(fields)} tab-separated columns, not 9"
    start, end = fields[3], fields[4]
    if not (start.isdigit() and end.isdigit()) or int(start) < 1 or int(start) > int(end):
        return f"invalid coordinates {start!r}-{end!r}"
    if fields[6] not in ("+", "-", "."):
        return f"strand {fields[6]!r} is not +, - or ."
    if fields[2] == "exon" and not re.search(r'(?:^|;)\s*gene_id\s+"[^"]+"', fields[8]):
        return "exon without a gene_id attribute"
    return None


def _union_length(exons: pd.DataFrame) -> pd.Series:
    """Length in bp of the union of each gene's exons (overlaps counted once), as featureCounts does."""
    ordered = exons.sort_values(["gene_id", "seqname", "strand", "start", "end"])
    key = [ordered["gene_id"], ordered["seqname"], ordered["strand"]]
    reach = ordered.groupby(key, sort=False)["end"].cummax()
    previous_reach = reach.groupby(key, sort=False).shift().fillna(0).astype(np.int64)
    # Each exon adds only the part that lies beyond everything before it in its gene.
    added = (ordered["end"] - np.maximum(ordered["start"] - 1, previous_reach)).clip(lower=0)
    return added.groupby(ordered["gene_id"]).sum()


def gene_table(exons: pd.DataFrame, biotypes: Sequence[str] = ("protein_coding",)) -> pd.DataFrame:
    """Genes to quantify, indexed by ``gene_id``, with name, biotype, locus and ``length`` (bp).

    ``biotypes`` keeps genes with one of these biotypes; an empty sequence keeps every gene.
    """
    genes = exons.groupby("gene_id", sort=False).agg(
        gene_name=("gene_name", "first"),
        gene_biotype=("gene_biotype", lambda b: ",".join(sorted(set(b)))),
        seqname=("seqname", "first"),
        start=("start", "min"),
        end=("end", "max"),
        strand=("strand", "first"),
    )
    genes["length"] = _union_length(exons)
    if biotypes:
        wanted = set(biotypes)
        keep = exons.groupby("gene_id", sort=False)["gene_biotype"].agg(lambda b: not wanted.isdisjoint(b))
        genes = genes[keep.reindex(genes.index)]
    genes.index.name = "gene_id"
    return genes


def write_gene_gtf(exons: pd.DataFrame, gene_ids: Sequence[str], path: str | os.PathLike) -> None:
    """Write the exon records of ``gene_ids`` as a GTF, the annotation featureCounts counts against."""
    kept = exons[exons["gene_id"].isin(set(gene_ids))]
    lines = kept[GTF_COLUMNS].astype(str).agg("\t".join, axis=1)
    with atomic_output(path) as tmp:
        tmp.write_text("".join(line + "\n" for line in lines))


def write_gene_set(
    gtf: str | os.PathLike,
    biotypes: Sequence[str],
    gtf_output: str | os.PathLike,
    table_output: str | os.PathLike,
) -> pd.DataFrame:
    """The quantified gene set: its exons as a GTF for featureCounts and its gene table (TSV), from a
    GTF that passes :func:`check_gtf` (a bad line is refused with its number, not copied on)."""
    check_gtf(gtf)
    exons = read_exons(gtf)
    genes = gene_table(exons, biotypes)
    write_gene_gtf(exons, genes.index, gtf_output)
    with atomic_output(table_output) as tmp:
        genes.to_csv(tmp, sep="\t")
    return genes
