"""Bad input to every command: a non-zero exit, one line naming the file or the field, no traceback, and
nothing written or changed (no output, no temporary file, no earlier file touched).

Each case writes its inputs into its own folder, runs ``scatlas`` in this process (the subprocess cases
at the end run the console command and Snakemake as a user does) and compares the folder before and after.
"""

from __future__ import annotations

import os
import random
import re
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest
from conftest import BIN, REPO, SHARED, tool_env
from inputs import FASTA, FASTQ, counts_h5ad, gtf, gz, listing, not_anndata_h5, run_cli, sam

ONTOLOGY = SHARED / "data" / "ontology" / "cl-basic_2022-12-15.obo"
CONFIG_OK = "query:\n  sources: [geo]\n"


@dataclass
class Case:
    id: str
    argv: str  # {t}: the case's folder
    expect: str  # a regular expression the one error line must match
    files: dict = field(default_factory=dict)  # name → text, bytes or a writer taking the path


def _good(**more) -> dict:
    return {"ok.h5ad": counts_h5ad(), "ok.gtf": gtf(), "ok.sam": sam(), "genome.fa": FASTA, "r.fq": FASTQ, **more}


DE = "de --input {t}/ok.h5ad --group-key label --study-key study --output {t}/de"
CLUSTER = "cluster --method pca-kmeans --input {t}/ok.h5ad --n-clusters 2 --output {t}/out.tsv"
QUANT = "quantify --bam {t}/ok.sam --gtf {t}/ok.gtf --output {t}/out.tsv"
REFERENCE = "reference --fasta {t}/genome.fa --gtf {t}/ok.gtf --outdir {t}/ref"
ALIGN = "align --fastq {t}/r.fq --index {i} --bam {t}/out.bam --summary {t}/out.txt"  # {i}: a real index
IMPUTE = "impute --method late --input {t}/ok.h5ad --output {t}/out.h5ad"
BENCH = "impute-benchmark --input {t}/ok.h5ad --methods none"
QUERY = "query --manifests {t}/m"

CASES = [
    # --- options: the config schema's ranges and choices (scatlas.config.option) ---
    Case("de-fdr-above-1", f"{DE} --fdr 7", r"--fdr: .*maximum of 1"),
    Case("de-fdr-zero", f"{DE} --fdr 0", r"--fdr: .*minimum of 0"),
    Case("de-fdr-text", f"{DE} --fdr lots", r"--fdr: .*'lots' is not a number"),
    Case("de-min-cells-negative", f"{DE} --min-cells -1", r"--min-cells: .*minimum of 2"),
    Case("de-min-cells-one", f"{DE} --min-cells 1", r"--min-cells: .*minimum of 2"),
    Case("de-max-cells-text", f"{DE} --max-cells all", r"--max-cells: .*whole number"),
    Case("de-n-bootstrap-negative", f"{DE} --n-bootstrap -1", r"--n-bootstrap: .*minimum of 0"),
    Case("de-pseudo-replicates-one", f"{DE} --method pydeseq2 --pseudo-replicates 1", r"--pseudo-replicates"),
    Case("de-seed-fraction", f"{DE} --seed 1.5", r"--seed: .*whole number"),
    Case("de-method-unknown", f"{DE} --method ttest", r"--method: invalid choice: 'ttest'"),
    Case("query-since-not-a-date", f"{QUERY} --since 2020-13-45", r"--since: '2020-13-45' is not a date"),
    Case("query-until-not-a-date", f"{QUERY} --until 2021-02-30", r"--until: '2021-02-30' is not a date"),
    Case("query-until-before-since", f"{QUERY} --since 2021-01-01 --until 2020-01-01", r"until 2020-01-01 is before"),
    Case("refresh-cores-zero", "refresh --directory {t}/atlas --cores 0", r"--cores: '0' is not a whole number"),
    Case("refresh-cores-negative", "refresh --directory {t}/atlas --cores -2", r"--cores"),
    Case("demo-cores-zero", "demo --outdir {t}/demo --run --cores 0", r"--cores: '0'"),
    Case("quantify-threads-zero", f"{QUANT} --threads 0", r"--threads: .*minimum of 1"),
    Case("quantify-strandedness", f"{QUANT} --strandedness both", r"--strandedness: invalid choice"),
    Case("align-threads-zero", f"{ALIGN} --threads 0", r"--threads: .*minimum of 1"),
    Case("align-phred-unknown", f"{ALIGN} --phred 42", r"--phred: invalid choice"),
    Case("reference-threads-zero", f"{REFERENCE} --threads 0", r"--threads: '0'"),
    Case("cluster-n-clusters-zero", f"{CLUSTER.replace('--n-clusters 2', '--n-clusters 0')}", r"--n-clusters: '0'"),
    Case("cluster-threads-zero", f"{CLUSTER} --threads 0", r"--threads: '0'"),
    Case("cluster-method-unknown", CLUSTER.replace("pca-kmeans", "kmeans"), r"--method: invalid choice"),
    Case("cluster-device-unknown", f"{CLUSTER} --device tpu", r"--device: invalid choice"),
    Case("bench-holdout-above-1", f"{BENCH} --holdout 1.5", r"ok\.h5ad: --holdout must lie strictly .*, not 1\.5"),
    Case("bench-holdout-zero", f"{BENCH} --holdout 0", r"ok\.h5ad: --holdout must lie strictly .*, not 0"),
    Case("command-unknown", "clusterize --input x", r"invalid choice: 'clusterize'"),
    Case("required-option-missing", "quantify --gtf {t}/ok.gtf --output {t}/out.tsv", r"--bam"),
    # --- config and parameter files: the same schema (scatlas.config.checked) ---
    Case(
        "query-config-unknown-key",
        f"{QUERY} --config {{t}}/c.yaml",
        r"c\.yaml: query\.sinse: unknown key",
        {"c.yaml": "query:\n  sinse: '2020-01-01'\n"},
    ),
    Case(
        "query-config-unknown-section",
        f"{QUERY} --config {{t}}/c.yaml",
        r"c\.yaml: queries: unknown key",
        {"c.yaml": "queries: {}\n"},
    ),
    Case(
        "query-config-retries-text",
        f"{QUERY} --config {{t}}/c.yaml",
        r"c\.yaml: repositories\.retries: 'many'",
        {"c.yaml": "repositories:\n  retries: many\n"},
    ),
    Case(
        "query-config-page-size-zero",
        f"{QUERY} --config {{t}}/c.yaml",
        r"c\.yaml: query\.page_size: 0",
        {"c.yaml": "query:\n  page_size: 0\n"},
    ),
    Case(
        "query-config-source-unknown",
        f"{QUERY} --config {{t}}/c.yaml",
        r"c\.yaml: query\.sources\.0: 'ncbi'",
        {"c.yaml": "query:\n  sources: [ncbi]\n"},
    ),
    Case(
        "query-config-since-not-a-date",
        f"{QUERY} --config {{t}}/c.yaml",
        r"c\.yaml: query\.since: '2020-13-45'",
        {"c.yaml": "query:\n  since: '2020-13-45'\n"},
    ),
    Case(
        "query-config-window-reversed",
        f"{QUERY} --config {{t}}/c.yaml",
        r"c\.yaml: query\.until .* is before",
        {"c.yaml": "query:\n  since: '2021-01-01'\n  until: '2020-06-01'\n"},
    ),
    Case(
        "query-config-service-without-url",
        f"{QUERY} --config {{t}}/c.yaml",
        r"c\.yaml: repositories\.services\.eutils: 'base_url' is required",
        {"c.yaml": "repositories:\n  services:\n    eutils: {requests_per_second: 3}\n"},
    ),
    Case(
        "query-config-rate-zero",
        f"{QUERY} --config {{t}}/c.yaml",
        r"c\.yaml: repositories\.services\.geo\.requests_per_second",
        {"c.yaml": "repositories:\n  services:\n    geo: {base_url: 'http://x', requests_per_second: 0}\n"},
    ),
    Case(
        "query-config-not-a-mapping",
        f"{QUERY} --config {{t}}/c.yaml",
        r"c\.yaml: not a YAML mapping",
        {"c.yaml": "- geo\n"},
    ),
    Case(
        "query-config-bad-yaml",
        f"{QUERY} --config {{t}}/c.yaml",
        r"c\.yaml: unreadable config",
        {"c.yaml": "query: [\n"},
    ),
    Case("query-config-missing", f"{QUERY} --config {{t}}/none.yaml", r"none\.yaml: unreadable config"),
    Case(
        "cluster-config-mask-ratio",
        f"{CLUSTER.replace('pca-kmeans', 'scdmac')} --config {{t}}/p.yaml",
        r"p\.yaml: scDMAC mask_ratio must be between 0 and 1, not 5\.0",
        {"p.yaml": "mask_ratio: 5.0\n"},
    ),
    Case(
        "cluster-config-unknown-key",
        f"{CLUSTER.replace('pca-kmeans', 'scdmac')} --config {{t}}/p.yaml",
        r"p\.yaml: unknown scDMAC parameter\(s\): mask_ration",
        {"p.yaml": "mask_ration: 0.3\n"},
    ),
    Case(
        "cluster-config-wrong-type",
        f"{CLUSTER.replace('pca-kmeans', 'scdmac')} --config {{t}}/p.yaml",
        r"p\.yaml: scDMAC latent must be a whole number",
        {"p.yaml": "latent: many\n"},
    ),
    Case(
        "cluster-config-not-a-mapping",
        f"{CLUSTER} --config {{t}}/p.yaml",
        r"p\.yaml: parameters must be a YAML mapping",
        {"p.yaml": "- 1\n"},
    ),
    Case(
        "cluster-config-scsmd-latent-zero",
        f"{CLUSTER.replace('pca-kmeans', 'scsmd')} --config {{t}}/p.yaml",
        r"p\.yaml: scSMD latent must be at least 1",
        {"p.yaml": "latent: 0\n"},
    ),
    Case("impute-param-not-assignment", f"{IMPUTE} --param max_epochs", r"--param: 'max_epochs' is not KEY=VALUE"),
    Case("impute-param-unknown", f"{IMPUTE} --param max_epoch=3", r"unknown LATE parameter\(s\): max_epoch"),
    Case(
        "impute-param-dropout-one", f"{IMPUTE} --param hidden_dropout=1.5", r"LATE hidden_dropout must be in \[0, 1\)"
    ),
    Case("impute-output-not-h5ad", IMPUTE.replace("out.h5ad", "out.tsv"), r"out\.tsv: --output must name an \.h5ad"),
    Case("impute-model-missing", f"{IMPUTE} --model {{t}}/nomodel", r"nomodel: not a saved scatlas model"),
    # --- h5ad inputs ---
    Case("cluster-input-missing", CLUSTER.replace("ok.h5ad", "none.h5ad"), r"none\.h5ad: h5ad file not found"),
    Case(
        "cluster-input-text",
        CLUSTER.replace("ok.h5ad", "t.h5ad"),
        r"t\.h5ad: not a readable h5ad",
        {"t.h5ad": "cell\tx\n"},
    ),
    Case(
        "cluster-input-hdf5-not-anndata",
        CLUSTER.replace("ok.h5ad", "h.h5ad"),
        r"h\.h5ad: not a readable h5ad",
        {"h.h5ad": not_anndata_h5},
    ),
    Case(
        "cluster-input-truncated",
        CLUSTER.replace("ok.h5ad", "cut.h5ad"),
        r"cut\.h5ad: not a readable h5ad",
        {"cut.h5ad": lambda p: (counts_h5ad()(p), p.write_bytes(p.read_bytes()[:3000]))},
    ),
    Case(
        "cluster-input-folder",
        CLUSTER.replace("ok.h5ad", "dir.h5ad"),
        r"dir\.h5ad: is a folder",
        {"dir.h5ad": lambda p: p.mkdir()},
    ),
    Case(
        "cluster-input-negative",
        CLUSTER.replace("ok.h5ad", "neg.h5ad"),
        r"neg\.h5ad: X holds negative values",
        {"neg.h5ad": counts_h5ad(transform=lambda x: x - 1)},
    ),
    Case(
        "cluster-input-normalised",
        CLUSTER.replace("ok.h5ad", "log.h5ad"),
        r"log\.h5ad: X holds non-integer values",
        {"log.h5ad": counts_h5ad(transform=lambda x: x * 0.37)},
    ),
    Case(
        "cluster-input-nan",
        CLUSTER.replace("ok.h5ad", "nan.h5ad"),
        r"nan\.h5ad: X holds NaN",
        {"nan.h5ad": counts_h5ad(transform=lambda x: x + float("nan"))},
    ),
    Case(
        "cluster-input-all-zero",
        CLUSTER.replace("ok.h5ad", "zero.h5ad"),
        r"zero\.h5ad: every cell has zero counts",
        {"zero.h5ad": counts_h5ad(transform=lambda x: x * 0)},
    ),
    Case(
        "cluster-one-cell",
        CLUSTER.replace("ok.h5ad", "one.h5ad").replace("--n-clusters 2", "--n-clusters 1"),
        r"one\.h5ad: 1 cell with counts: clustering needs at least 2",
        {"one.h5ad": counts_h5ad(n_cells=1)},
    ),
    Case(
        "cluster-leiden-one-cell",
        "cluster --method leiden --input {t}/one.h5ad --output {t}/out.tsv",
        r"one\.h5ad: 1 cell with counts",
        {"one.h5ad": counts_h5ad(n_cells=1)},
    ),
    Case(
        "cluster-more-clusters-than-cells",
        CLUSTER.replace("--n-clusters 2", "--n-clusters 41"),
        r"ok\.h5ad: --n-clusters 41 is not between 1 and the 40 cells",
    ),
    Case(
        "score-labels-binary",
        "score --labels {t}/b.tsv --truth {t}/ok.h5ad",
        r"b\.tsv: cannot read the clusters table",
        {"b.tsv": bytes(range(256)) * 4},
    ),
    Case(
        "score-labels-no-cluster-column",
        "score --labels {t}/l.tsv --truth {t}/ok.h5ad",
        r"l\.tsv: missing column\(s\) cluster",
        {"l.tsv": "cell\tgroup\nc0\t1\n"},
    ),
    Case("score-labels-missing", "score --labels {t}/none.tsv --truth {t}/ok.h5ad", r"none\.tsv: cannot read"),
    Case(
        "score-truth-key-missing",
        "score --labels {t}/l.tsv --truth {t}/ok.h5ad --key celltype",
        r"ok\.h5ad: .*celltype",
        {"l.tsv": "cell\tcluster\n" + "".join(f"c{i}\t{i % 2}\n" for i in range(40))},
    ),
    Case("de-group-key-missing", DE.replace("--group-key label", "--group-key celltype"), r"ok\.h5ad: .*celltype"),
    Case("de-study-key-missing", DE.replace("--study-key study", "--study-key batch"), r"ok\.h5ad: .*batch"),
    Case(
        "de-labels-with-missing-values",
        DE.replace("ok.h5ad", "na.h5ad"),
        r"na\.h5ad: obs column 'label' has 8 missing",
        {"na.h5ad": counts_h5ad(label=pd.Categorical([None if i % 5 == 0 else "a" for i in range(40)]))},
    ),
    Case(
        "de-input-normalised",
        DE.replace("ok.h5ad", "log.h5ad"),
        r"log\.h5ad: X holds non-integer values",
        {"log.h5ad": counts_h5ad(transform=lambda x: x * 0.37)},
    ),
    Case(
        "de-output-is-a-file",
        DE.replace("{t}/de", "{t}/de.txt"),
        r"de\.txt: exists and is not a folder",
        {"de.txt": "earlier\n"},
    ),
    Case("impute-input-missing", IMPUTE.replace("ok.h5ad", "none.h5ad"), r"none\.h5ad: h5ad file not found"),
    Case(
        "bench-input-negative",
        BENCH.replace("ok.h5ad", "neg.h5ad"),
        r"neg\.h5ad: X holds negative values",
        {"neg.h5ad": counts_h5ad(transform=lambda x: x - 1)},
    ),
    # --- output paths ---
    Case(
        "cluster-output-is-a-folder",
        CLUSTER.replace("{t}/out.tsv", "{t}/outdir"),
        r"outdir: is a folder",
        {"outdir": lambda p: p.mkdir()},
    ),
    Case(
        "quantify-output-is-a-folder",
        QUANT.replace("{t}/out.tsv", "{t}/outdir"),
        r"outdir: is a folder",
        {"outdir": lambda p: p.mkdir()},
    ),
    Case(
        "impute-output-is-a-folder",
        IMPUTE.replace("{t}/out.h5ad", "{t}/o.h5ad"),
        r"o\.h5ad: is a folder",
        {"o.h5ad": lambda p: p.mkdir()},
    ),
    # --- GTF and BAM (quantify) ---
    Case("quantify-gtf-missing", QUANT.replace("ok.gtf", "none.gtf"), r"none\.gtf: GTF file not found"),
    Case(
        "quantify-gtf-empty",
        QUANT.replace("ok.gtf", "e.gtf"),
        r"e\.gtf: GTF (file is empty|has no exon records)",
        {"e.gtf": ""},
    ),
    Case(
        "quantify-gtf-no-exons",
        QUANT.replace("ok.gtf", "g.gtf"),
        r"g\.gtf: GTF has no exon records",
        {"g.gtf": gtf().replace("\texon\t", "\tgene\t")},
    ),
    Case(
        "quantify-gtf-no-gene-id",
        QUANT.replace("ok.gtf", "g.gtf"),
        r"g\.gtf: 1 exon records have no gene_id",
        {"g.gtf": gtf().replace('gene_id "g2"; ', "")},
    ),
    Case(
        "quantify-gtf-bad-coordinates",
        QUANT.replace("ok.gtf", "g.gtf"),
        r"g\.gtf: exon on chr1 has invalid coordinates",
        {"g.gtf": gtf().replace("\t701\t900\t", "\t901\t700\t")},
    ),
    Case(
        "quantify-gtf-binary",
        QUANT.replace("ok.gtf", "g.gtf"),
        r"g\.gtf: not a readable 9-column GTF",
        {"g.gtf": bytes(range(256)) * 8},
    ),
    Case(
        "quantify-gene-on-two-chromosomes",
        QUANT.replace("ok.gtf", "g.gtf"),
        r"g\.gtf: gene_id g1 is on 2 chromosomes \(chr1, chr2",
        {"g.gtf": gtf() + gtf("chr2").splitlines(keepends=True)[0]},
    ),
    Case(
        "quantify-chromosome-names-differ",
        QUANT.replace("ok.gtf", "ens.gtf"),
        r"ok\.sam: no chromosome in common with .*ens\.gtf: BAM chr1 vs GTF 1",
        {"ens.gtf": gtf("1")},
    ),
    Case("quantify-bam-missing", QUANT.replace("ok.sam", "none.bam"), r"samtools failed .*none\.bam"),
    Case(
        "quantify-bam-garbage", QUANT.replace("ok.sam", "g.bam"), r"samtools failed", {"g.bam": bytes(range(256)) * 8}
    ),
    # --- reference: FASTA, GTF validated before HISAT2's scripts ---
    Case("reference-fasta-missing", REFERENCE.replace("genome.fa", "none.fa"), r"none\.fa: genome FASTA not found"),
    Case(
        "reference-fasta-not-fasta",
        REFERENCE.replace("genome.fa", "g.fa"),
        r"g\.fa: not a FASTA file",
        {"g.fa": "ACGT\n"},
    ),
    Case(
        "reference-fasta-truncated-gzip",
        REFERENCE.replace("genome.fa", "g.fa.gz"),
        r"g\.fa\.gz: truncated or corrupt gzip",
        {"g.fa.gz": gz(">chr1\n" + "".join(random.Random(0).choices("ACGT", k=20000)))[:2000]},
    ),
    Case(
        "reference-gtf-eight-columns",
        REFERENCE.replace("ok.gtf", "g.gtf"),
        r"g\.gtf: line 2: 8 tab-separated columns",
        {
            "g.gtf": "\n".join(
                line.rpartition("\t")[0] if i == 1 else line for i, line in enumerate(gtf().splitlines())
            )
            + "\n"
        },
    ),
    Case(
        "reference-gtf-bad-strand",
        REFERENCE.replace("ok.gtf", "g.gtf"),
        r"g\.gtf: line 3: strand 'x'",
        {"g.gtf": gtf().replace("\t-\t", "\tx\t")},
    ),
    Case(
        "reference-gtf-text-coordinates",
        REFERENCE.replace("ok.gtf", "g.gtf"),
        r"g\.gtf: line 1: invalid coordinates 'one'",
        {"g.gtf": 'chr1\tt\tgene\tone\t900\t.\t+\t.\tgene_id "g1";\n' + gtf()},
    ),
    # --- FASTQ and index (align) ---
    Case("align-fastq-missing", ALIGN.replace("r.fq", "none.fq"), r"none\.fq"),
    Case("align-fastq-empty", ALIGN.replace("r.fq", "e.fq"), r"e\.fq: .*(empty|no reads)", {"e.fq": ""}),
    Case("align-fastq-truncated", ALIGN.replace("r.fq", "t.fq"), r"t\.fq: ", {"t.fq": FASTQ[:-30]}),
    Case("align-fastq-not-fastq", ALIGN.replace("r.fq", "x.fq"), r"x\.fq: ", {"x.fq": ">chr1\nACGT\n"}),
    Case(
        "align-fastq-truncated-gzip",
        ALIGN.replace("r.fq", "t.fq.gz"),
        r"t\.fq\.gz: ",
        {"t.fq.gz": gz(FASTQ * 50)[:100]},
    ),
    Case("align-three-fastqs", ALIGN.replace("{t}/r.fq", "{t}/r.fq {t}/r.fq {t}/r.fq"), r"(one|two|2) FASTQ"),
    Case("align-index-missing", ALIGN.replace("{i}", "{t}/idx/genome"), r"idx/genome: no HISAT2 index here"),
    # --- ontology files ---
    Case("ontology-missing", "ontology match --ontology {t}/none.obo beta cell", r"none\.obo"),
    Case(
        "ontology-garbage",
        "ontology match --ontology {t}/g.obo beta cell",
        r"g\.obo: ",
        {"g.obo": bytes(range(256)) * 8},
    ),
    Case("ontology-empty", "ontology match --ontology {t}/e.obo beta cell", r"e\.obo: ", {"e.obo": ""}),
    Case(
        "ontology-json-not-ontology",
        "ontology match --ontology {t}/o.json beta cell",
        r"o\.json: ",
        {"o.json": '{"a": 1}'},
    ),
    Case(
        "ontology-truncated-gzip",
        "ontology match --ontology {t}/o.obo.gz beta cell",
        r"o\.obo\.gz: ",
        {"o.obo.gz": lambda p: p.write_bytes(gz(ONTOLOGY.read_text()[:200000])[:5000])},
    ),
    # --- GEO / SRA metadata files ---
    Case("geo-samples-missing", "geo samples {t}/none.soft", r"none\.soft"),
    Case("geo-samples-garbage", "geo samples {t}/g.soft", r"g\.soft: ", {"g.soft": bytes(range(256)) * 8}),
    Case("geo-samples-empty", "geo samples {t}/e.soft", r"e\.soft: ", {"e.soft": ""}),
    Case(
        "geo-samples-truncated-gzip",
        "geo samples {t}/t.soft.gz",
        r"t\.soft\.gz: ",
        {"t.soft.gz": gz("^SERIES = GSE1\n!Series_title = x\n" * 200)[:60]},
    ),
    Case("geo-samples-bad-xml", "geo samples {t}/x.xml", r"x\.xml: ", {"x.xml": "<EXPERIMENT_PACKAGE_SET><EXPERIMENT"}),
    Case("geo-samples-json", "geo samples {t}/x.json", r"x\.json: ", {"x.json": '{"result": []}'}),
]


@pytest.fixture(scope="module", autouse=True)
def _quiet_torch():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def hisat2_index(tmp_path_factory) -> Path:
    """A HISAT2 index of the small genome, so that the align cases reach the FASTQ checks."""
    folder = tmp_path_factory.mktemp("index")
    (folder / "genome.fa").write_text(FASTA)
    subprocess.run(["hisat2-build", "-q", folder / "genome.fa", folder / "genome"], check=True, env=tool_env())
    return folder / "genome"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_and_writes_nothing(case, tmp_path, hisat2_index):
    for name, content in _good(**case.files).items():
        path = tmp_path / name
        if callable(content):
            content(path)
        else:
            (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    before = listing(tmp_path)
    status, out, err = run_cli(shlex.split(case.argv.format(t=tmp_path, i=hisat2_index)))
    assert status != 0, f"exit 0: stdout {out[:300]!r}"
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"not one line:\n{err[-2000:]}"
    assert "Traceback" not in err and re.search(case.expect, lines[0]), lines[0]
    assert lines[0].startswith("scatlas")
    assert listing(tmp_path) == before, "the failed run wrote or changed files"


def test_the_suite_covers_every_command():
    commands = {c.argv.split()[0] for c in CASES}
    assert commands >= {"quantify", "align", "reference", "geo", "query", "refresh", "ontology", "de", "cluster"}
    assert commands >= {"score", "impute", "impute-benchmark", "demo"}
    assert len(CASES) + len(WORKFLOW_CASES) + len(SUBPROCESS_CASES) >= 80


# --- the workflow: parse-time checks of the config and the sheets, as `snakemake -n` shows them ---
SHEET = "study\trun\tlayout\tfastq_1\tfastq_2\n"
WORKFLOW_CASES = {
    "config-unknown-key": ({"config.yaml": "query:\n  sinse: '2020-01-01'\n"}, r"query\.sinse: unknown key"),
    "config-de-fdr-above-1": ({"config.yaml": "de:\n  fdr: 7\n"}, r"de\.fdr: 7 is greater than the maximum of 1"),
    "config-retries-text": ({"config.yaml": "repositories:\n  retries: many\n"}, r"repositories\.retries: 'many'"),
    "config-since-not-a-date": ({"config.yaml": "query:\n  since: '2020-13-45'\n"}, r"query\.since: '2020-13-45'"),
    "runs-sheet-bad-layout": (
        {"config.yaml": "runs: runs.tsv\n", "runs.tsv": SHEET + "GSE1\tSRR1\tTRIPLE\ta.fq\t\n"},
        r"runs\.tsv: line 2 \(run SRR1\): layout",
    ),
    "runs-sheet-duplicated-run": (
        {
            "config.yaml": "runs: runs.tsv\n",
            "runs.tsv": SHEET + "GSE1\tSRR1\tSINGLE\ta.fq\t\nGSE1\tSRR1\tSINGLE\tb.fq\t\n",
        },
        r"runs\.tsv: duplicated run accession\(s\): SRR1",
    ),
    "samples-table-missing-column": (
        {
            "config.yaml": "runs: runs.tsv\nsamples: samples.tsv\n",
            "runs.tsv": SHEET + "GSE1\tSRR1\tSINGLE\ta.fq\t\n",
            "samples.tsv": "study\ttitle\nGSE1\tcell 1\n",
        },
        r"samples\.tsv: missing required column",
    ),
}


@pytest.mark.parametrize("name", list(WORKFLOW_CASES))
def test_workflow_refuses_bad_config_and_sheets_in_one_line(name, tmp_path):
    files, expect = WORKFLOW_CASES[name]
    for file, text in files.items():
        (tmp_path / file).write_text(text)
    before = listing(tmp_path)
    cmd = [str(BIN / "snakemake"), "-s", str(REPO / "Snakefile"), "-d", str(tmp_path), "--configfile",
           str(tmp_path / "config.yaml"), "-n", "--cores", "1"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, env=tool_env(), timeout=120)
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert "Traceback" not in output
    assert [line for line in output.splitlines() if re.search(expect, line)], output[-2000:]
    after = {k: v for k, v in listing(tmp_path).items() if not k.startswith(".snakemake")}
    assert after == before


# --- the console command itself, as a user or a script runs it ---
SUBPROCESS_CASES = {
    "de-fdr-above-1": (DE + " --fdr 7", r"--fdr: .*maximum of 1"),
    "quantify-chromosome-names-differ": (QUANT.replace("ok.gtf", "ens.gtf"), r"no chromosome in common"),
    "refresh-cores-zero": ("refresh --directory {t}/atlas --cores 0", r"--cores"),
    "cluster-input-hdf5-not-anndata": (CLUSTER.replace("ok.h5ad", "h.h5ad"), r"h\.h5ad: not a readable h5ad"),
}


@pytest.mark.parametrize("name", list(SUBPROCESS_CASES))
def test_console_command_fails_in_one_line(name, tmp_path):
    argv, expect = SUBPROCESS_CASES[name]
    for file, content in _good(**{"ens.gtf": gtf("1"), "h.h5ad": not_anndata_h5}).items():
        path = tmp_path / file
        content(path) if callable(content) else path.write_text(content)
    before = listing(tmp_path)
    env = {**tool_env(), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [str(BIN / "scatlas"), *shlex.split(argv.format(t=tmp_path))], capture_output=True, text=True, env=env
    )
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert re.search(expect, line) and line.startswith("scatlas ")
    assert listing(tmp_path) == before


# --- a full disk and a read-only file system (a small tmpfs; mounting needs root) ---
@pytest.fixture
def small_fs(tmp_path):
    """Mount a 64 KiB tmpfs at tmp_path/fs (and a read-only one at tmp_path/ro); skip where mounting is refused."""
    mounts = []
    for name, options in (("fs", "size=64k"), ("ro", "ro,size=64k")):
        (tmp_path / name).mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(tmp_path / name)],
                              capture_output=True, text=True)  # fmt: skip
        if done.returncode != 0:
            for mount in mounts:
                subprocess.run(["umount", mount], check=False)
            pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or done.returncode})")
        mounts.append(str(tmp_path / name))
    yield tmp_path
    for mount in mounts:
        subprocess.run(["umount", mount], check=False)


def test_a_full_disk_and_a_read_only_folder_are_one_line(small_fs):
    t = small_fs
    counts_h5ad(n_cells=400)(t / "big.h5ad")  # its output table is larger than 64 KiB
    (t / "fs" / "filler").write_bytes(os.urandom(40 * 1024))
    for output, cause in (
        (t / "fs" / "out.tsv", "no space left on device writing"),
        (t / "ro" / "out.tsv", "read-only file system"),
    ):
        status, _, err = run_cli(
            [
                "cluster",
                "--method",
                "pca-kmeans",
                "--input",
                str(t / "big.h5ad"),
                "--n-clusters",
                "2",
                "--output",
                str(output),
            ]
        )
        (line,) = err.strip().splitlines()
        assert status == 2 and cause in line and str(output.parent) in line, line
        assert sorted(p.name for p in output.parent.iterdir()) == (["filler"] if output.parent.name == "fs" else [])


@pytest.mark.parametrize(
    ("splice_aware", "target", "rule"),
    [(True, "reference/hisat2/genome.1.ht2", "hisat2_build"), (False, "reference/genes.tsv", "reference_genes")],
)
def test_a_bad_gtf_line_stops_the_rule_reading_it_with_the_file_and_line_in_its_log(
    tmp_path, splice_aware, target, rule
):
    """A splice-aware index reads the GTF's exons; the gene table always reads it."""
    (tmp_path / "genome.fa").write_text(FASTA)
    (tmp_path / "bad.gtf").write_text(gtf().replace("\t-\t", "\tx\t"))
    (tmp_path / "config.yaml").write_text(
        f"reference:\n  genome_fasta: {tmp_path}/genome.fa\n  gtf: {tmp_path}/bad.gtf\n"
        f"  splice_aware_index: {str(splice_aware).lower()}\n"
    )
    cmd = [str(BIN / "snakemake"), "-s", str(REPO / "Snakefile"), "-d", str(tmp_path), "--configfile",
           str(tmp_path / "config.yaml"), "--cores", "1", target]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, env=tool_env(), timeout=300)
    assert done.returncode != 0
    (line,) = (tmp_path / "logs" / f"{rule}.log").read_text().strip().splitlines()
    assert line == f"error: {tmp_path}/bad.gtf: line 3: strand 'x' is not +, - or ."
    assert not list((tmp_path / "reference").rglob("*.ht2")) and not (tmp_path / "reference/genes.tsv").exists()
