"""The workflow on real reads: QuasR's hg19 slice, its GTF and two paired-end Phred+64 samples."""

import subprocess

import anndata as ad
import numpy as np
import pandas as pd
import pysam
import pytest
import yaml
from conftest import BIN, snakemake, tool_env

STUDY, SAMPLES = "QUASR", {"SRR0000001": "rna_1", "SRR0000002": "rna_2"}


@pytest.fixture(scope="module")
def quasr_run(quasr, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("quasr")
    rows = [f"{STUDY}\t{run}\tPAIRED\t{quasr}/{s}_1.fq.bz2\t{quasr}/{s}_2.fq.bz2" for run, s in SAMPLES.items()]
    (workdir / "runs.tsv").write_text("study\trun\tlayout\tfastq_1\tfastq_2\n" + "\n".join(rows) + "\n")
    config = {
        "runs": str(workdir / "runs.tsv"),
        # every gene kept, so that a direct featureCounts run on the original GTF is comparable gene by gene
        "reference": {
            "genome_fasta": str(quasr / "hg19sub.fa"),
            "gtf": str(quasr / "hg19sub_annotation.gtf"),
            "gene_biotypes": [],
        },
        "align": {"threads": 2},
    }
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    # the quantification only (two bulk samples make no atlas), keeping the BAMs to count them independently
    snakemake(workdir, workdir / "config.yaml", "--notemp", f"quant/{STUDY}.h5ad", "reference/genes.gtf")
    return workdir


def direct_featurecounts(bam, gtf, tmp_path):
    out = tmp_path / "fc.txt"
    subprocess.run(
        ["featureCounts", "-p", "--countReadPairs", "-a", gtf, "-o", out, bam],
        check=True,
        capture_output=True,
        env=tool_env(),
    )
    return pd.read_csv(out, sep="\t", comment="#", index_col="Geneid")


def mapped_fragments(bam):
    """Read pairs with at least one mate aligned, counted from the BAM by name."""
    with pysam.AlignmentFile(bam) as reads:
        return len({r.query_name for r in reads if not (r.is_unmapped or r.is_secondary or r.is_supplementary)})


def test_counts_equal_featurecounts_and_rpkm_follows_the_formula(quasr_run, quasr, tmp_path):
    adata = ad.read_h5ad(quasr_run / f"quant/{STUDY}.h5ad")
    assert list(adata.obs_names) == list(SAMPLES)
    assert (adata.obs["alignment_rate"] > 0.99).all()
    assert (adata.obs["phred_offset"] == 64).all()
    for i, run in enumerate(adata.obs_names):
        bam = quasr_run / f"align/{STUDY}/{run}.sam"  # HISAT2's own SAM, as featureCounts read it
        direct = direct_featurecounts(bam, quasr / "hg19sub_annotation.gtf", tmp_path).loc[adata.var_names]
        counts = adata.layers["counts"][i].toarray().ravel()
        np.testing.assert_array_equal(counts, direct.iloc[:, -1].to_numpy())
        np.testing.assert_array_equal(adata.var["length"].to_numpy(), direct["Length"].to_numpy())
        total = mapped_fragments(bam)
        assert adata.obs.loc[run, "mapped_fragments"] == total
        expected = counts * 1e9 / (direct["Length"].to_numpy() * total)
        np.testing.assert_allclose(adata.layers["rpkm"][i].toarray().ravel(), expected, rtol=1e-5)
        # the ribosomal protein gene carries most reads in both samples (QuasR's own figures)
        assert adata.var["gene_name"].iloc[int(np.argmax(counts))] == "RPS7"


def test_quantify_command_matches_the_workflow(quasr_run, tmp_path):
    run = next(iter(SAMPLES))
    out = tmp_path / "run.tsv"
    subprocess.run(
        [
            BIN / "scatlas",
            "quantify",
            "--bam",
            quasr_run / f"align/{STUDY}/{run}.sam",
            "--gtf",
            quasr_run / "reference/genes.gtf",
            "--paired",
            "--output",
            out,
        ],
        check=True,
        env=tool_env(),
    )
    table = pd.read_csv(out, sep="\t", index_col="gene_id")
    assert list(table.columns) == ["count", "length", "rpkm"]
    adata = ad.read_h5ad(quasr_run / f"quant/{STUDY}.h5ad")
    np.testing.assert_array_equal(table.loc[adata.var_names, "count"], adata[run].layers["counts"].toarray().ravel())


def test_empty_fastq_stops_its_run_with_a_clear_error(quasr, tmp_path):
    import gzip

    empty = tmp_path / "empty.fq.gz"
    with gzip.open(empty, "wb"):
        pass
    (tmp_path / "runs.tsv").write_text(f"study\trun\tlayout\tfastq_1\nBAD\tSRR0000009\tSINGLE\t{empty}\n")
    reference = {"genome_fasta": str(quasr / "hg19sub.fa"), "gtf": str(quasr / "hg19sub_annotation.gtf")}
    config = {"runs": str(tmp_path / "runs.tsv"), "reference": reference}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    done = snakemake(tmp_path, tmp_path / "config.yaml", check=False)
    assert done.returncode != 0
    log = (tmp_path / "logs/hisat2_align/BAD/SRR0000009.log").read_text()
    assert f"{empty}: empty FASTQ (no reads)" in log
    assert not list((tmp_path / "align").rglob("SRR0000009*"))  # nothing half-written is left
    assert (tmp_path / "reference/hisat2/genome.1.ht2").exists()  # what was finished before stays
