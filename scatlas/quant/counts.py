"""Counts per gene for one run with featureCounts, and RPKM from them."""

from __future__ import annotations

import json
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from scatlas import tools
from scatlas.io import InputError, atomic_output
from scatlas.reference import gene_table, read_exons

STRANDEDNESS = {"unstranded": 0, "forward": 1, "reverse": 2}


def count_fragments(
    bam: str | os.PathLike,
    gtf: str | os.PathLike,
    paired: bool,
    strandedness: str = "unstranded",
    threads: int = 1,
    summary: str | os.PathLike | None = None,
) -> pd.Series:
    """Reads (single-end) or fragments (paired-end) per gene, counted by featureCounts.

    featureCounts' defaults apply: a read counts for a gene when it overlaps one of
    its exons and no other gene's; multi-mapping and ambiguous reads are not counted.
    ``summary``: where featureCounts' own summary (reads per assignment status, which MultiQC reads) is kept.
    """
    with tempfile.TemporaryDirectory(prefix="featurecounts.") as scratch:
        table = Path(scratch) / "counts.tsv"
        cmd = ["featureCounts", "-T", threads, "-s", STRANDEDNESS[strandedness], "-t", "exon", "-g", "gene_id"]
        if paired:
            cmd += ["-p", "--countReadPairs"]
        tools.run([*cmd, "--tmpDir", scratch, "-a", gtf, "-o", table, bam])
        counts = pd.read_csv(table, sep="\t", comment="#", index_col=0)
        if summary is not None:
            with atomic_output(summary) as tmp:
                tmp.write_bytes(Path(f"{table}.summary").read_bytes())
    series = counts.iloc[:, -1].astype(np.int64)
    series.index.name = "gene_id"
    return series.rename("count")


def mapped_fragments(bam: str | os.PathLike, paired: bool) -> int:
    """Reads (single-end) or fragments with at least one mate aligned (paired-end), from ``samtools flagstat``.

    Counted from primary alignments, so a multi-mapping read counts once.
    """
    out = tools.run(["samtools", "flagstat", "-O", "json", bam])
    stats = json.loads(out)["QC-passed reads"]
    if not paired:
        return int(stats["primary mapped"])
    # primary mapped = 2 x (pairs with both mates mapped) + singletons
    return (int(stats["primary mapped"]) + int(stats["singletons"])) // 2


def reference_names(bam: str | os.PathLike) -> list[str]:
    """The chromosome (reference sequence) names of a BAM/SAM header, in header order."""
    header = tools.run(["samtools", "view", "-H", bam])
    return [
        field[3:]
        for line in header.splitlines()
        if line.startswith("@SQ")
        for field in line.split("\t")[1:]
        if field.startswith("SN:")
    ]


def check_shared_chromosomes(bam: str | os.PathLike, gtf: str | os.PathLike, gtf_chromosomes) -> None:
    """Refuse a BAM and a GTF with no chromosome name in common (``chr1`` vs ``1``): every count would be 0."""
    in_bam = reference_names(bam)
    in_gtf = list(dict.fromkeys(gtf_chromosomes))
    if in_bam and not set(in_bam) & set(in_gtf):

        def examples(names):
            return ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")

        raise InputError(bam, f"no chromosome in common with {gtf}: BAM {examples(in_bam)} vs GTF {examples(in_gtf)}")


def rpkm(counts: np.ndarray, length_bp: np.ndarray, total_fragments: int | np.ndarray) -> np.ndarray:
    """Reads per kilobase of gene per million mapped reads: count · 10^9 / (length · total)."""
    counts = np.asarray(counts, dtype=np.float64)
    denominator = np.asarray(length_bp, dtype=np.float64) * np.asarray(total_fragments, dtype=np.float64)
    return np.divide(counts * 1e9, denominator, out=np.zeros_like(counts), where=denominator > 0)


def quantify_run(
    bam: str | os.PathLike,
    gtf: str | os.PathLike,
    output: str | os.PathLike,
    paired: bool = False,
    strandedness: str = "unstranded",
    threads: int = 1,
    summary: str | os.PathLike | None = None,
) -> dict:
    """Write ``output`` (TSV: ``gene_id``, ``count``, ``length``, ``rpkm``) for one run's BAM or SAM.

    Genes are every gene of ``gtf``, in GTF order; ``length`` is the union of the
    gene's exons in bp (a gene_id on two chromosomes is refused by :func:`read_exons`); ``summary``:
    featureCounts' summary file (MultiQC's input). A BAM and GTF without a chromosome in common are refused
    rather than counted as zeros. Returns the run's counting statistics for provenance.
    """
    exons = read_exons(gtf)
    check_shared_chromosomes(bam, gtf, exons["seqname"])
    with ThreadPoolExecutor(max_workers=1) as pool:  # flagstat's pass beside featureCounts', on another core
        total = pool.submit(mapped_fragments, bam, paired)
        genes = gene_table(exons, biotypes=())
        counts = count_fragments(bam, gtf, paired, strandedness, threads, summary).reindex(genes.index, fill_value=0)
        total = total.result()
    table = pd.DataFrame({"count": counts.to_numpy(), "length": genes["length"].to_numpy()}, index=genes.index)
    table["rpkm"] = rpkm(table["count"], table["length"], total)
    with atomic_output(output) as tmp:
        table.to_csv(tmp, sep="\t", float_format="%.6g")
    return {
        "mapped_fragments": total,
        "assigned_fragments": int(counts.sum()),
        "featurecounts_version": tools.version("featureCounts", "-v"),
    }
