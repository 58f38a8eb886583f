# The report's figures and tables (scatlas/report/), marked for `snakemake --report report.html`.


rule report_summary:
    input:
        runs=config["runs"],
        excluded_runs="results/excluded_runs.tsv",
        qc="results/qc_removed.tsv",
        atlas="atlas/preprocessed.h5ad",
    output:
        report(
            f"{REPORT}/summary.tsv",
            caption="../report/summary.rst",
            category="0 Summary",
        ),
    log:
        "logs/report/summary.log",
    conda:
        "../envs/scatlas.yaml"
    params:
        excluded_samples=f"{manifests_dir()}/excluded.tsv",
        label_key=ATLAS_LABEL_KEY,
    script:
        "../scripts/report.py"


rule report_alignment:
    input:
        stats=alignment_stats(),
    output:
        report(
            f"{REPORT}/alignment.svg",
            caption="../report/alignment.rst",
            category="1 Alignment",
        ),
    log:
        "logs/report/alignment.log",
    conda:
        "../envs/scatlas.yaml"
    params:
        min_rate=config["align"]["min_alignment_rate"],
    script:
        "../scripts/report.py"


rule multiqc:
    input:
        multiqc_inputs(),
    output:
        report(
            directory("results/multiqc"),
            htmlindex="multiqc_report.html",
            caption="../report/multiqc.rst",
            category="1 Alignment",
        ),
    log:
        "logs/report/multiqc.log",
    conda:
        "../envs/multiqc.yaml"
    script:
        "../scripts/multiqc.py"


rule report_atlas:
    input:
        **atlas_clusterings(),
        atlas="atlas/preprocessed.h5ad",
    output:
        cells=report(
            f"{REPORT}/cells.svg",
            caption="../report/cells.rst",
            category="2 Atlas",
        ),
        umap=report(
            f"{REPORT}/umap.svg",
            caption="../report/umap.rst",
            category="2 Atlas",
        ),
    log:
        "logs/report/atlas.log",
    conda:
        "../envs/scatlas.yaml"
    params:
        label_key=ATLAS_LABEL_KEY,
        pattern=lambda wildcards: CLUSTER_TSV,
    script:
        "../scripts/report.py"


rule report_clustering:
    input:
        **atlas_clusterings(),
        atlas="atlas/preprocessed.h5ad",
    output:
        scores=report(
            f"{REPORT}/scores.svg",
            caption="../report/scores.rst",
            category="3 Clustering",
        ),
        confusion=report(
            f"{REPORT}/confusion.svg",
            caption="../report/confusion.rst",
            category="3 Clustering",
        ),
    log:
        "logs/report/clustering.log",
    conda:
        "../envs/scatlas.yaml"
    params:
        label_key=ATLAS_LABEL_KEY,
        exclude=config["cluster"]["atlas"]["exclude_labels"],
        pattern=lambda wildcards: CLUSTER_TSV,
    script:
        "../scripts/report.py"


rule report_training:
    input:
        histories=list(trained_models().values()),
    output:
        report(
            f"{REPORT}/loss.svg",
            caption="../report/loss.rst",
            category="4 Training",
        ),
    log:
        "logs/report/training.log",
    conda:
        "../envs/scatlas.yaml"
    params:
        names=list(trained_models()),
    script:
        "../scripts/report.py"


rule report_imputation:
    input:
        h5ad="atlas/imputed.h5ad",
        model="atlas/imputed.model",
    output:
        report(
            f"{REPORT}/imputation.svg",
            caption="../report/imputation.rst",
            category="5 Imputation",
        ),
    log:
        "logs/report/imputation.log",
    conda:
        "../envs/scatlas.yaml"
    script:
        "../scripts/report.py"


rule report_mapping:
    input:
        EMBED_PREDICTIONS,
    output:
        report(
            f"{REPORT}/mapping.svg",
            caption="../report/mapping.rst",
            category="6 Mapping",
        ),
    log:
        "logs/report/mapping.log",
    conda:
        "../envs/scatlas.yaml"
    script:
        "../scripts/report.py"


rule report_de:
    input:
        de="de",
    output:
        volcano=report(
            f"{REPORT}/volcano.svg",
            caption="../report/volcano.rst",
            category="7 Differential expression",
        ),
        top_genes=report(
            f"{REPORT}/de_top_genes.tsv",
            caption="../report/de_top_genes.rst",
            category="7 Differential expression",
        ),
    log:
        "logs/report/de.log",
    conda:
        "../envs/scatlas.yaml"
    params:
        fdr=config["de"]["fdr"],
    script:
        "../scripts/report.py"
