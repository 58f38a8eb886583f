rule featurecounts:
    input:
        bam="align/{study}/{run}.sam",
        gtf="reference/genes.gtf",
    output:
        table="quant/{study}/{run}.tsv",
        stats="quant/{study}/{run}.json",
        summary="quant/{study}/{run}.featureCounts.summary",
    log:
        "logs/featurecounts/{study}/{run}.log",
    benchmark:
        "results/benchmarks/featurecounts/{study}/{run}.tsv"
    group:
        "per_run"
    conda:
        "../envs/subread.yaml"
    threads: config["quantify"]["threads"]
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        paired=is_paired,
        strandedness=config["quantify"]["strandedness"],
    script:
        "../scripts/featurecounts.py"


rule quant_study:
    input:
        tables=study_files("quant/{study}/{run}.tsv"),
        quant_stats=study_files("quant/{study}/{run}.json"),
        align_stats=study_files("align/{study}/{run}.json"),
        genes="reference/genes.tsv",
    output:
        h5ad="quant/{study}.h5ad",
        excluded="quant/{study}.excluded.tsv",
    log:
        "logs/quant_study/{study}.log",
    conda:
        "../envs/scatlas.yaml"
    resources:
        mem_mb=8000,
    params:
        runs=study_metadata,
        min_alignment_rate=config["align"]["min_alignment_rate"],
    script:
        "../scripts/quant_study.py"


rule excluded_runs:
    input:
        expand("quant/{study}.excluded.tsv", study=STUDIES),
    output:
        "results/excluded_runs.tsv",
    log:
        "logs/excluded_runs.log",
    conda:
        "../envs/scatlas.yaml"
    script:
        "../scripts/excluded_runs.py"
