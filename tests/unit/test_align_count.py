"""The per-run path at atlas scale: HISAT2's SAM counted as it is written, equal to featureCounts on a BAM."""

import bz2
import subprocess

import numpy as np
import pandas as pd
import pytest
from conftest import tool_env

from scatlas.align import align_run
from scatlas.quant import quantify_run
from scatlas.reference import build_hisat2_index, gene_table, read_exons, write_gene_gtf


@pytest.fixture(scope="module")
def quasr_index(quasr, tmp_path_factory):
    scratch = tmp_path_factory.mktemp("quasr")
    exons = read_exons(quasr / "hg19sub_annotation.gtf")
    write_gene_gtf(exons, gene_table(exons).index, scratch / "genes.gtf")
    build_hisat2_index(quasr / "hg19sub.fa", quasr / "hg19sub_annotation.gtf", scratch / "idx", threads=1)
    return scratch


@pytest.mark.parametrize("sample", ["rna_1", "rna_2"])
def test_counts_from_hisat2_sam_equal_featurecounts_on_the_bam(quasr, quasr_index, tmp_path, sample):
    fastqs = []
    for mate in (1, 2):  # QuasR's real paired-end Phred+64 reads
        fastqs.append(tmp_path / f"{sample}_{mate}.fq")
        fastqs[-1].write_bytes(bz2.decompress((quasr / f"{sample}_{mate}.fq.bz2").read_bytes()))
    gtf, tables, stats = quasr_index / "genes.gtf", {}, {}
    for kind in ("sam", "bam"):  # the workflow's path, and the BAM the workflow wrote before
        align_run(fastqs, quasr_index / "idx", tmp_path / f"run.{kind}", tmp_path / f"{kind}.summary.txt")
        stats[kind] = quantify_run(tmp_path / f"run.{kind}", gtf, tmp_path / f"{kind}.tsv", paired=True)
        tables[kind] = pd.read_csv(tmp_path / f"{kind}.tsv", sep="\t", index_col="gene_id")
    pd.testing.assert_frame_equal(tables["sam"], tables["bam"])
    assert stats["sam"] == stats["bam"]
    direct = tmp_path / "direct.txt"
    subprocess.run(
        ["featureCounts", "-p", "--countReadPairs", "-a", gtf, "-o", direct, tmp_path / "run.bam"],
        check=True,
        capture_output=True,
        env=tool_env(),
    )
    expected = pd.read_csv(direct, sep="\t", comment="#", index_col="Geneid").iloc[:, -1]
    np.testing.assert_array_equal(tables["sam"]["count"].to_numpy(), expected.loc[tables["sam"].index].to_numpy())
    assert tables["sam"]["count"].sum() > 2000  # most of the 3,002 pairs land on the slice's genes
