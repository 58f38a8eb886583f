"""Simulate a small single-cell RNA-seq data set whose true counts per gene are known.

Four studies of tens of cells drawn from four expression programs (cell types),
sequenced single-end or paired-end, one of them with old Phred+64 qualities, plus one
run of non-genomic reads that must fail alignment QC. Everything follows from the seed.
"""

from __future__ import annotations

import gzip
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from Bio import SeqIO
from Bio.Seq import Seq
from Bio.SeqRecord import SeqRecord

from scatlas.demo.responses import write_responses
from scatlas.io import atomic_output

REPLAY_TOKEN = "@REPLAY@"  # the replay server's host:port, filled in when the demo runs
CELL_TYPES = ("hepatocyte", "B cell", "astrocyte", "T cell")
TISSUES = {"hepatocyte": "liver", "B cell": "spleen", "astrocyte": "brain cortex", "T cell": "thymus"}
# listed in its series but not single-cell: the query stage must exclude it
BULK_SAMPLE = {
    "study": "GSE990001",
    "sample": "GSM99000099",
    "organism": "Mus musculus",
    "source_name": "liver",
    "title": "bulk liver RNA, population control",
    "characteristics": "tissue: liver",
    "description": "",
    "library_strategy": "RNA-Seq",
    "library_source": "TRANSCRIPTOMIC",
    "has_reads": False,
}
BASES = np.array(list("ACGT"))
READ_LENGTH = 75
FRAGMENT_MEAN, FRAGMENT_SD = 220, 30
MEAN_READS_PER_CELL = 3000
# The Cell Ontology terms (CL release 2022-12-15: id, name, exact synonyms, is_a parents) of the
# demo's cell types up to the root, so that the demo labels its samples offline.
ONTOLOGY_TERMS = (
    ("CL:0000000", "cell", (), ()),
    ("CL:0000003", "native cell", (), ("CL:0000000",)),
    ("CL:0000084", "T cell", ("T lymphocyte", "T-cell", "T-lymphocyte"), ("CL:0000542",)),
    ("CL:0000066", "epithelial cell", ("epitheliocyte",), ("CL:0000548",)),
    ("CL:0000095", "neuron associated cell", (), ("CL:0002319",)),
    ("CL:0000125", "glial cell", ("neuroglial cell",), ("CL:0000095",)),
    ("CL:0000126", "macroglial cell", ("macrogliocyte",), ("CL:0000125",)),
    ("CL:0000127", "astrocyte", ("astrocytic glia",), ("CL:0000126",)),
    ("CL:0000182", "hepatocyte", (), ("CL:0000066", "CL:0000417", "CL:0002371")),
    ("CL:0000219", "motile cell", (), ("CL:0000003",)),
    ("CL:0000226", "single nucleate cell", (), ("CL:0002242",)),
    ("CL:0000236", "B cell", ("B lymphocyte", "B-cell", "B-lymphocyte"), ("CL:0000945",)),
    ("CL:0000255", "eukaryotic cell", (), ("CL:0000003",)),
    ("CL:0000412", "polyploid cell", (), ("CL:0000003",)),
    ("CL:0000417", "endopolyploid cell", (), ("CL:0000412",)),
    ("CL:0000542", "lymphocyte", (), ("CL:0000842",)),
    ("CL:0000548", "animal cell", (), ("CL:0000255",)),
    ("CL:0000738", "leukocyte", ("leucocyte", "white blood cell"), ("CL:0000219", "CL:0000988", "CL:0002242")),
    ("CL:0000842", "mononuclear cell", ("mononuclear leukocyte",), ("CL:0000226", "CL:0000738")),
    ("CL:0000945", "lymphocyte of B lineage", (), ("CL:0000542",)),
    ("CL:0000988", "hematopoietic cell", ("haematopoietic cell", "hemopoietic cell"), ("CL:0000548", "CL:0002371")),
    ("CL:0002242", "nucleate cell", (), ("CL:0000003",)),
    ("CL:0002319", "neural cell", (), ("CL:0000548", "CL:0002371")),
    ("CL:0002371", "somatic cell", (), ("CL:0000003",)),
)
STUDIES = (  # study, layout, phred offset, cells
    ("GSE990001", "SINGLE", 33, 16),
    ("GSE990002", "PAIRED", 33, 16),
    ("GSE990003", "SINGLE", 64, 16),
    ("GSE990004", "PAIRED", 33, 16),
)


@dataclass
class Gene:
    gene_id: str
    gene_name: str
    biotype: str
    seqname: str
    strand: str
    exons: list[tuple[int, int]]  # 1-based closed genomic intervals, ascending

    def mrna(self, genome: dict[str, str]) -> str:
        return "".join(genome[self.seqname][start - 1 : end] for start, end in self.exons)


def _genome_and_genes(rng: np.random.Generator) -> tuple[dict[str, str], list[Gene]]:
    layout = {"chr1": 60_000, "chr2": 60_000, "chr3": 60_000, "chrM": 8_000}
    genome, genes = {}, []
    for seqname, size in layout.items():
        genome[seqname] = "".join(rng.choice(BASES, size=size, p=[0.28, 0.22, 0.22, 0.28]))
        position = int(rng.integers(500, 1500))
        while True:
            n_exons = int(rng.integers(1, 5))
            lengths = rng.integers(450, 900, size=1) if n_exons == 1 else rng.integers(160, 450, size=n_exons)
            introns = rng.integers(150, 1200, size=n_exons - 1)
            span = int(lengths.sum() + introns.sum())
            if position + span + 500 > size:
                break
            exons, start = [], position
            for i, length in enumerate(lengths):
                exons.append((start, start + int(length) - 1))
                start += int(length) + (int(introns[i]) if i < n_exons - 1 else 0)
            number = len(genes) + 1
            mitochondrial = seqname == "chrM"
            genes.append(
                Gene(
                    gene_id=f"DMG{number:08d}",
                    gene_name=f"mt-Demo{number}" if mitochondrial else f"Demo{number}",
                    biotype="lincRNA" if number % 9 == 0 else "protein_coding",
                    seqname=seqname,
                    strand="+" if rng.random() < 0.5 else "-",
                    exons=exons,
                )
            )
            position += span + int(rng.integers(600, 2000))
    return genome, genes


def _gtf_lines(genes: list[Gene]) -> list[str]:
    lines = []
    for gene in genes:
        attributes = f'gene_id "{gene.gene_id}"; gene_name "{gene.gene_name}"; gene_biotype "{gene.biotype}";'
        transcript = f'{attributes} transcript_id "{gene.gene_id.replace("DMG", "DMT")}";'
        span = (gene.exons[0][0], gene.exons[-1][1])
        lines.append(f"{gene.seqname}\tdemo\tgene\t{span[0]}\t{span[1]}\t.\t{gene.strand}\t.\t{attributes}")
        lines.append(f"{gene.seqname}\tdemo\ttranscript\t{span[0]}\t{span[1]}\t.\t{gene.strand}\t.\t{transcript}")
        for number, (start, end) in enumerate(gene.exons, start=1):
            exon = f'{transcript} exon_number "{number}";'
            lines.append(f"{gene.seqname}\tdemo\texon\t{start}\t{end}\t.\t{gene.strand}\t.\t{exon}")
    return lines


def _expression_programs(rng: np.random.Generator, n_genes: int) -> np.ndarray:
    """Relative expression (rows sum to 1) of each cell type: shared baseline, 8 marker genes each."""
    baseline = rng.normal(0.0, 1.0, size=n_genes)
    programs = np.tile(baseline, (len(CELL_TYPES), 1))
    markers = rng.permutation(n_genes)[: 8 * len(CELL_TYPES)].reshape(len(CELL_TYPES), 8)
    for program, genes in enumerate(markers):
        programs[program, genes] += 2.5
    weights = np.exp(programs)
    return weights / weights.sum(axis=1, keepdims=True)


def _reverse_complement(sequence: str) -> str:
    return str(Seq(sequence).reverse_complement())


def _mutate(sequence: str, rng: np.random.Generator, rate: float = 0.002) -> str:
    hits = np.flatnonzero(rng.random(len(sequence)) < rate)
    if not len(hits):
        return sequence
    letters = list(sequence)
    for i in hits:
        letters[i] = "ACGT"[("ACGT".index(letters[i]) + int(rng.integers(1, 4))) % 4]
    return "".join(letters)


def _fragments(rng: np.random.Generator, mrna: str, n: int) -> list[str]:
    """``n`` fragments of a transcript in random orientation (the library is unstranded)."""
    out = []
    for _ in range(n):
        length = int(np.clip(rng.normal(FRAGMENT_MEAN, FRAGMENT_SD), READ_LENGTH, len(mrna)))
        start = int(rng.integers(0, len(mrna) - length + 1))
        fragment = mrna[start : start + length]
        out.append(_reverse_complement(fragment) if rng.random() < 0.5 else fragment)
    return out


def _record(name: str, sequence: str, rng: np.random.Generator) -> SeqRecord:
    record = SeqRecord(Seq(sequence), id=name, description="")
    record.letter_annotations["phred_quality"] = rng.integers(28, 41, size=len(sequence)).tolist()
    return record


def _write_fastq(path: Path, records: list[SeqRecord], phred_offset: int) -> None:
    fastq_format = "fastq-sanger" if phred_offset == 33 else "fastq-illumina"
    # no file name and mtime=0 in the gzip header: the same seed gives the same bytes
    with (
        atomic_output(path) as tmp,
        open(tmp, "wb") as raw,
        gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as gz,
        io.TextIOWrapper(gz, "ascii") as text,
    ):
        SeqIO.write(records, text, fastq_format)


def simulate(outdir: str | os.PathLike, seed: int = 0, cells_per_study: int | None = None) -> Path:
    """Write the demo into ``outdir`` and return the path of its workflow ``config.yaml``.

    The workflow finds the studies by querying ``outdir/replay`` (recorded-format GEO, ENA and
    BioStudies responses describing them) through :mod:`scatlas.demo.replay`; its config names the
    server as ``@REPLAY@``, which :func:`scatlas.demo.workflow.run_demo` fills in.

    Files: ``genome.fa``, ``genes.gtf``, ``fastq/*.fastq.gz``, ``runs.tsv`` (the runs sheet),
    ``samples.tsv`` (each sample's free-text metadata, phrased differently in each study, as
    submitters do), ``cl-demo.obo`` (the Cell Ontology terms of the demo's cell types), ``cells.tsv``
    (each run's study and true cell type) and ``truth_counts.tsv`` (runs × genes, the number of
    reads or fragments simulated from each gene).
    """
    outdir = Path(outdir).resolve()
    rng = np.random.default_rng(seed)
    genome, genes = _genome_and_genes(rng)
    with atomic_output(outdir / "genome.fa") as tmp:
        SeqIO.write([SeqRecord(Seq(seq), id=name, description="") for name, seq in genome.items()], tmp, "fasta")
    with atomic_output(outdir / "genes.gtf") as tmp:
        tmp.write_text("\n".join(_gtf_lines(genes)) + "\n")
    programs = _expression_programs(rng, len(genes))
    mrnas = [gene.mrna(genome) for gene in genes]
    runs, cells, samples, truth = [], [], [], {}
    number = 0
    for study, layout, phred, n_cells in STUDIES:
        n_cells = cells_per_study or n_cells  # smaller demos for the cluster and interruption tests
        types = rng.permutation(np.resize(np.arange(len(CELL_TYPES)), n_cells))
        for cell_type in types:
            number += 1
            run = f"SRR{99_000_000 + number}"
            library_size = rng.lognormal(np.log(MEAN_READS_PER_CELL), 0.3)
            means = programs[cell_type] * library_size
            counts = rng.poisson(rng.gamma(shape=5.0, scale=means / 5.0))  # NB with dispersion 0.2
            fragments = [f for gene, n in enumerate(counts) for f in _fragments(rng, mrnas[gene], int(n))]
            order = rng.permutation(len(fragments))
            fragments = [_mutate(fragments[i], rng) for i in order]
            sample = f"GSM{99_000_000 + number}"
            runs.append(_write_run(outdir, study, sample, run, layout, phred, fragments, rng))
            cells.append({"run": run, "study": study, "cell_type": CELL_TYPES[cell_type]})
            samples.append(_sample_metadata(study, sample, CELL_TYPES[cell_type], number))
            truth[run] = counts
        if phred == 64:  # a failed library: reads from no known genome
            number += 1
            run = f"SRR{99_000_000 + number}"
            junk = ["".join(rng.choice(BASES, size=FRAGMENT_MEAN)) for _ in range(2000)]
            sample = f"GSM{99_000_000 + number}"
            runs.append(_write_run(outdir, study, sample, run, layout, phred, junk, rng))
            cells.append({"run": run, "study": study, "cell_type": "unknown"})
            samples.append(_sample_metadata(study, sample, None, number))
    _write_table(pd.DataFrame(runs), outdir / "runs.tsv")
    _write_table(pd.DataFrame(cells), outdir / "cells.tsv")
    _write_table(pd.DataFrame(samples), outdir / "samples.tsv")
    write_responses(outdir, pd.DataFrame(samples), pd.DataFrame(runs), [BULK_SAMPLE])
    _write_ontology(outdir / "cl-demo.obo")
    truth_table = pd.DataFrame(truth, index=[g.gene_id for g in genes]).T.rename_axis("run")
    _write_table(truth_table, outdir / "truth_counts.tsv", index=True)
    config = {  # the workflow queries the replay server (scatlas.demo.workflow) for runs and samples
        "runs": "manifests/runs.tsv",
        "samples": "manifests/samples.tsv",
        "query": {"since": "2020-01-01"},
        "repositories": {
            "services": {
                name: {"base_url": f"http://{REPLAY_TOKEN}/{name}", "requests_per_second": 50}
                for name in ("eutils", "geo", "ena", "biostudies")
            },
            "retries": 2,
            "backoff": 0.1,
        },
        "fetch": {"scheme": "http"},
        "reference": {"genome_fasta": str(outdir / "genome.fa"), "gtf": str(outdir / "genes.gtf")},
        "align": {"threads": 1},
        "label": {"ontology": str(outdir / "cl-demo.obo")},
        # ~50 genes per cell: QC thresholds scaled to the tiny genome
        "preprocess": {"min_genes": 10, "n_top_genes": 20},
        # 4 cells of each type per study: every type is tested in every study, 4 cells against 4
        "de": {"min_cells": 3, "max_cells": 4, "n_bootstrap": 50},
        # LATE on the 20 highly variable genes: small layers, a tenfold learning rate and up to 150 epochs (20 at
        # LATE's rate left the imputed values flat: held-out r about 0)
        "impute": {
            "enabled": True,
            "params": {"hidden": [16, 8], "max_epochs": 150, "batch_size": 16, "learning_rate": 0.003},
        },
        # the atlas clustered by scDMAC (short stages, one member) and the baselines, over two seeds
        "cluster": {
            "seeds": [0, 1],
            "device": "cpu",
            "params": {
                "scdmac": {"n_top_genes": 100, "ensemble": 1, "min_steps": 60, "mae_epochs": 30, "cluster_epochs": 10},
                "pca-kmeans": {"n_top_genes": 100, "n_comps": 10},
                "leiden": {"n_top_genes": 100, "n_comps": 10},
            },
        },
        # 4 cells of each type per study: a small dense embedding, one study held out and scored
        "embed": {
            "enabled": True,
            "min_cells": 3,
            "params": {"hidden": [16, 4], "n_top_genes": 20, "epochs": 20, "batch_size": 8, "n_neighbors": 10},
        },
    }
    with atomic_output(outdir / "config.yaml") as tmp:
        tmp.write_text(yaml.safe_dump(config, sort_keys=False))
    return outdir / "config.yaml"


def _write_ontology(path: Path) -> None:
    lines = ["format-version: 1.2", "ontology: cl/scatlas-demo", ""]
    for term_id, name, synonyms, parents in ONTOLOGY_TERMS:
        lines += ["[Term]", f"id: {term_id}", f"name: {name}"]
        lines += [f'synonym: "{synonym}" EXACT []' for synonym in synonyms]
        lines += [f"is_a: {parent}" for parent in parents] + [""]
    with atomic_output(path) as tmp:
        tmp.write_text("\n".join(lines))


def _sample_metadata(study: str, sample: str, cell_type: str | None, number: int) -> dict:
    """Metadata text of one single-cell sample; each study names the cell type in another field."""
    record = {
        "study": study,
        "sample": sample,
        "organism": "Mus musculus",
        "title": f"single cell {number}",
        "source_name": "",
        "characteristics": "strain: C57BL/6J",
        "description": "",
        "library_strategy": "RNA-Seq",
        "library_source": "TRANSCRIPTOMIC SINGLE CELL",
    }
    if cell_type is None:
        record["description"] = "library failed: no cells captured"
    elif study == "GSE990001":
        record["characteristics"] = f"cell type: {cell_type} | tissue: {TISSUES[cell_type]} | strain: C57BL/6J"
    elif study == "GSE990002":
        record["title"] = f"{cell_type.replace(' ', '-')}s, single cell #{number}"
        record["source_name"] = TISSUES[cell_type]
    elif study == "GSE990004":
        record["source_name"] = f"adult mouse {TISSUES[cell_type]}"
        record["description"] = f"one {cell_type} picked by hand"
    else:
        record["source_name"] = f"{cell_type}s sorted from adult mouse {TISSUES[cell_type]}"
    return record


def _write_run(outdir, study, sample, run, layout, phred, fragments, rng) -> dict:
    mates = [[f[:READ_LENGTH] for f in fragments]]
    if layout == "PAIRED":
        mates.append([_reverse_complement(f)[:READ_LENGTH] for f in fragments])
    paths = []
    for mate, reads in enumerate(mates, start=1):
        path = outdir / "fastq" / f"{run}_{mate}.fastq.gz"
        _write_fastq(path, [_record(f"{run}.{i + 1}", read, rng) for i, read in enumerate(reads)], phred)
        paths.append(str(path))
    return {
        "study": study,
        "sample": sample,
        "run": run,
        "layout": layout,
        "fastq_1": paths[0],
        "fastq_2": paths[1] if len(paths) > 1 else "",
    }


def _write_table(table: pd.DataFrame, path: Path, index: bool = False) -> None:
    with atomic_output(path) as tmp:
        table.to_csv(tmp, sep="\t", index=index)
