import gc
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

sys.path.insert(0, workflow.basedir)  # the scatlas package beside the Snakefile

from scatlas.config import checked
from scatlas.io import InputError
from scatlas.lock import AtlasLocked, hold
from scatlas.reference.index import hisat2_index_files
from scatlas.reference.presets import resolved_reference
from scatlas.reference.sources import download_name, is_url
from scatlas.registry import CLUSTERING, EMBEDDING, IMPUTATION
from scatlas.report.paths import embedding_predictions
from scatlas.sheets import fetched, load_runs, load_samples, runs_schema

try:  # the one check of scatlas.config: the command line's options and parameter files get it too
    config.update(checked(config))
except InputError as err:
    raise WorkflowError(str(err)) from None


def hold_atlas_lock():
    """onstart: the atlas lock (scatlas.lock) until this run ends; refused while another run holds it."""
    if not workflow.is_main_process:  # a job on a cluster node runs under its main run's lock
        return
    try:
        hold(".", "snakemake")
    except AtlasLocked as err:
        raise WorkflowError(str(err)) from None


def read_runs_sheet(path):
    if not Path(path).exists():
        logger.warning(
            f"runs sheet {path} does not exist yet: only the reference is built "
            "(run `snakemake query` to query GEO/ArrayExpress first)"
        )
        return None
    try:
        return load_runs(path)
    except InputError as err:
        raise WorkflowError(str(err)) from None


# Planning holds a few objects per job for every run: fewer, later garbage collections (the package
# and sheet frozen out of them) spare rescanning them all as the plan grows.
gc.freeze()
gc.set_threshold(200_000, 20, 1000)
RUNS = read_runs_sheet(config["runs"])
# a header-only sheet is an empty atlas (the last query found nothing): plan none of the atlas
EMPTY_ATLAS = RUNS is not None and RUNS.empty
if EMPTY_ATLAS:
    logger.warning(
        f"runs sheet {config['runs']} lists no runs yet (empty atlas): nothing of the atlas to do "
        "until `snakemake query` (or `scatlas refresh`) finds studies"
    )
STUDIES = sorted(set(RUNS["study"])) if RUNS is not None else []
# Per-run and per-study lookups made once: input functions run for every job of every run, and a
# pandas lookup or a filter of the whole sheet in each would make planning quadratic in the sheet.
RUN_ROWS = {} if RUNS is None else RUNS.to_dict("index")
STUDY_RUNS = {} if RUNS is None else RUNS.groupby("study", sort=False)["run"].agg(list).to_dict()


wildcard_constraints:
    study=runs_schema()["properties"]["study"]["pattern"].strip("^$"),
    run=runs_schema()["properties"]["run"]["pattern"].strip("^$"),
    mate="[12]",


try:
    REFERENCE = resolved_reference(
        config
    )  # genome and genes: as configured, else query.organism's preset
except ValueError as err:
    raise WorkflowError(str(err)) from None
if is_url(REFERENCE["hisat2_index"]) and not REFERENCE["hisat2_index_md5"]:
    raise WorkflowError(
        f"reference.hisat2_index is a URL ({REFERENCE['hisat2_index']}): set reference.hisat2_index_md5 "
        "to its md5, so that a corrupt or changed archive is refused"
    )


def reference_source(key):
    """A reference file's local path: as configured, or where its URL is downloaded to."""
    source = REFERENCE[key]
    return f"reference/download/{download_name(source)}" if is_url(source) else source


def reference_url(wildcards):
    for key in ("genome_fasta", "gtf", "hisat2_index"):
        source = REFERENCE[key]
        if is_url(source) and download_name(source) == wildcards.filename:
            return source
    raise WorkflowError(f"no configured reference URL ends in {wildcards.filename}")


def read_samples_table(path):
    if not Path(path).exists():
        if RUNS is not None:
            logger.warning(
                f"samples table {path} does not exist: the atlas's cells stay unlabelled"
            )
        return None
    try:
        return load_samples(path)
    except InputError as err:
        raise WorkflowError(str(err)) from None


SAMPLES = read_samples_table(config["samples"])


def study_labels():
    """Each study's label table, or none when there is no samples table (every cell stays unlabelled)."""
    return [] if SAMPLES is None else expand("labels/{study}.tsv", study=STUDIES)


def study_samples(wildcards):
    """The study's rows of the samples table, as a param: a query adding other studies reruns nothing here."""
    return SAMPLES[SAMPLES["study"] == wildcards.study].to_dict("records")


def ontology_source():
    """The Cell Ontology file: as configured, or where its URL is downloaded to."""
    source = config["label"]["ontology"]
    return f"reference/ontology/{download_name(source)}" if is_url(source) else source


def hisat2_index():
    return hisat2_index_files("reference/hisat2/genome")


def hisat2_index_first():
    """The index's first file, for per-run jobs: its eight files appear together (built or unpacked
    in scratch and moved into place), and one input file per run instead of eight plans faster."""
    return hisat2_index()[0]


def hisat2_build_mem_mb(wildcards, input):
    """HISAT2 needs ~55 bytes per genome base with splice sites, ~3 without (its manual's figures)."""
    per_base = 55 if REFERENCE["splice_aware_index"] else 3
    bases_per_byte = 3 if input.fasta.endswith(".gz") else 1
    return max(2000, int(input.size_mb * bases_per_byte * per_base))


def manifests_dir():
    """The query stage writes runs.tsv, samples.tsv, ... beside the configured runs sheet."""
    return str(Path(config["runs"]).parent)


def run_fastqs(wildcards):
    """A run's local FASTQ files from the sheet, or the reads/ files the fetch rule downloads."""
    row = RUN_ROWS[wildcards.run]
    mates = [1, 2] if row["layout"] == "PAIRED" else [1]
    if fetched(row):
        return [f"reads/{wildcards.run}_{mate}.fastq.gz" for mate in mates]
    return [row[f"fastq_{mate}"] for mate in mates]


def is_paired(wildcards):
    return RUN_ROWS[wildcards.run]["layout"] == "PAIRED"


def run_md5(wildcards):
    return RUN_ROWS[wildcards.run][f"fastq_md5_{wildcards.mate}"]


def study_runs(wildcards):
    return STUDY_RUNS[wildcards.study]


def study_metadata(wildcards):
    """The study's runs-sheet rows for obs, without where the reads came from: a moved mirror or
    FASTQ folder changes no result, so it must not rerun the study."""
    return [
        {key: value for key, value in RUN_ROWS[run].items() if not key.startswith("fastq_")}
        for run in study_runs(wildcards)
    ]


def study_files(pattern):
    """Input function: ``pattern`` (with {study} and {run}) for every run of the study."""

    def files(wildcards):
        return expand(pattern, study=wildcards.study, run=study_runs(wildcards))

    return files


def final_outputs():
    outputs = [] if EMPTY_ATLAS else hisat2_index() + ["reference/genes.tsv"]
    if RUNS is not None and not EMPTY_ATLAS:
        outputs += expand("quant/{study}.h5ad", study=STUDIES)
        outputs.append("results/excluded_runs.tsv")
        outputs += ["atlas/preprocessed.h5ad", "results/qc_removed.tsv"]
        outputs += de_outputs()
        if config["impute"]["enabled"]:
            outputs.append("atlas/imputed.h5ad")
        if config["embed"]["enabled"]:
            outputs += embed_outputs()
    if cluster_runs():
        outputs.append("results/cluster/scores.tsv")
    outputs += report_outputs()
    return outputs


def de_outputs():
    """The DE stage's target: the folder of per-cell-type tables (one job; see rules/de.smk)."""
    return ["de"]


# ---- cluster: methods × datasets × seeds (config section `cluster`) ----
CLUSTER = config.get("cluster", {})


def cluster_datasets():
    """Name → entry of every clustering dataset: the atlas (cluster.atlas, once there are runs) and the
    configured cluster.datasets."""
    atlas = CLUSTER.get("atlas", {})
    datasets = {}
    if atlas.get("enabled", True) and RUNS is not None and not EMPTY_ATLAS:
        datasets["atlas"] = {"h5ad": "atlas/preprocessed.h5ad"} | {
            k: v for k, v in atlas.items() if k != "enabled"
        }
    return datasets | CLUSTER.get("datasets", {})


def cluster_runs():
    """(dataset, method, seed) of every clustering the config asks for."""
    return [
        {"dataset": dataset, "method": method, "seed": seed}
        for dataset in cluster_datasets()
        for method in CLUSTER.get("methods", [])
        for seed in CLUSTER.get("seeds", [])
    ]


def cluster_outputs(pattern):
    return [pattern.format(**run) for run in cluster_runs()]


def cluster_code(wildcards):
    """The package files the method's results depend on (scatlas/registry.py): editing a model's code
    reruns that model's jobs and nothing else."""
    files = CLUSTERING.code_of(wildcards.method)
    return [f"{workflow.basedir}/scatlas/{name}" for name in files]


def cluster_input(wildcards):
    return cluster_datasets()[wildcards.dataset]["h5ad"]


def cluster_truth_inputs():
    return sorted({entry["h5ad"] for entry in cluster_datasets().values()})


def cluster_dataset(wildcards):
    """The dataset's entry (as a param: its K is counted from its labels when the job runs)."""
    return cluster_datasets()[wildcards.dataset]


def cluster_method_params(wildcards):
    return CLUSTER.get("params", {}).get(wildcards.method, {})


# ---- impute: LATE (or TRANSLATE) on the atlas (config section `impute`) ----
def impute_method():
    return "translate" if config["impute"]["reference"] else "late"


def impute_reference():
    """The reference h5ad TRANSLATE pretrains on, when configured."""
    return [config["impute"]["reference"]] if config["impute"]["reference"] else []


def impute_code():
    """The package files the imputation depends on (scatlas/registry.py): editing them reruns the rule."""
    return [f"{workflow.basedir}/scatlas/{name}" for name in IMPUTATION.code_of(impute_method())]


# ---- embed: scQuery embeddings of the atlas (config section `embed`) ----
def embed_outputs():
    """Every configured model × seed's model folder and query-set scores."""
    return expand(
        [
            "models/embed/atlas/{model}/seed{seed}",
            "results/embed/atlas/{model}/seed{seed}/metrics.json",
            "results/embed/atlas/{model}/seed{seed}/query_predictions.tsv",
        ],
        model=config["embed"]["models"],
        seed=config["embed"]["seeds"],
    )


def embed_code():
    """The package files the embeddings depend on (scatlas/registry.py): editing them reruns the rule."""
    return [f"{workflow.basedir}/scatlas/{name}" for name in EMBEDDING.code_of("dense")]


# ---- report: figures and tables of `snakemake --report report.html` (rules/report.smk) ----
REPORT = "results/report"
ATLAS_LABEL_KEY = config["cluster"]["atlas"]["label_key"]


def alignment_stats():
    """Every run's alignment statistics (align/{study}/{run}.json), excluded runs included."""
    if RUNS is None:
        return []
    return [f"align/{study}/{run}.json" for run, study in RUNS["study"].items()]


def multiqc_inputs():
    """HISAT2 summaries and featureCounts summaries of every run (MultiQC's bowtie2 and featureCounts modules)."""
    if RUNS is None:
        return []
    return [
        path
        for run, study in RUNS["study"].items()
        for path in (
            f"align/{study}/{run}.summary.txt",
            f"quant/{study}/{run}.featureCounts.summary",
        )
    ]


def atlas_clusterings():
    """The atlas's clusterings (TSVs) and the scores table, when the atlas is clustered."""
    runs = [run for run in cluster_runs() if run["dataset"] == "atlas"]
    return {
        "clusters": [CLUSTER_TSV.format(**run) for run in runs],
        "scores": ["results/cluster/scores.tsv"] if runs else [],
    }


CLUSTER_TSV = "results/cluster/{dataset}/{method}/seed{seed}.tsv"


def trained_models():
    """Name → folder of each model trained on the atlas whose losses the report plots (the first seed of each
    deep clustering method, and LATE)."""
    deep = CLUSTERING.names("deep")
    seeds = CLUSTER.get("seeds", [])
    models = {}
    if "atlas" in cluster_datasets() and seeds:
        for method in CLUSTER.get("methods", []):
            if method in deep:
                models[f"{method} (atlas, seed {seeds[0]})"] = (
                    f"models/cluster/atlas/{method}/seed{seeds[0]}"
                )
    if config["impute"]["enabled"]:
        models["LATE imputation (atlas)"] = "atlas/imputed.model"
    return models


# the embedding's held-out query predictions (cell, predicted, truth) that the mapping figure reads
EMBED_PREDICTIONS = embedding_predictions()


def report_outputs():
    """The report's figures and tables (all built by the default target once there are runs)."""
    if RUNS is None or EMPTY_ATLAS:
        return []
    outputs = [
        f"{REPORT}/{name}" for name in ("summary.tsv", "alignment.svg", "cells.svg", "umap.svg")
    ]
    outputs += [
        f"{REPORT}/loss.svg",
        f"{REPORT}/volcano.svg",
        f"{REPORT}/de_top_genes.tsv",
        "results/multiqc",
    ]
    if atlas_clusterings()["scores"]:
        outputs += [f"{REPORT}/scores.svg", f"{REPORT}/confusion.svg"]
    if config["impute"]["enabled"]:
        outputs.append(f"{REPORT}/imputation.svg")
    if config["embed"]["enabled"]:
        outputs.append(f"{REPORT}/mapping.svg")
    return outputs
