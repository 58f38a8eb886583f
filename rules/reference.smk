rule reference_download:
    output:
        "reference/download/{filename}",
    log:
        "logs/reference_download/{filename}.log",
    conda:
        "../envs/scatlas.yaml"
    resources:
        runtime=120,
    params:
        url=reference_url,
    script:
        "../scripts/reference_download.py"


rule reference_genes:
    input:
        gtf=reference_source("gtf"),
    output:
        gtf="reference/genes.gtf",
        table="reference/genes.tsv",
    log:
        "logs/reference_genes.log",
    conda:
        "../envs/scatlas.yaml"
    resources:
        mem_mb=8000,
    params:
        biotypes=config["reference"]["gene_biotypes"],
    script:
        "../scripts/reference_genes.py"


if REFERENCE["hisat2_index"]:

    # A prebuilt index (reference.hisat2_index): a folder linked, or an archive downloaded once
    # (md5-checked) and unpacked; only the archive's md5 is a param, not where it is served from.
    rule hisat2_index_install:
        input:
            reference_source("hisat2_index"),
        output:
            hisat2_index(),
        log:
            "logs/hisat2_index_install.log",
        conda:
            "../envs/scatlas.yaml"
        resources:
            runtime=120,
        params:
            prefix=lambda wildcards, output: output[0].removesuffix(".1.ht2"),
            md5=REFERENCE["hisat2_index_md5"],
        script:
            "../scripts/hisat2_index_install.py"

else:

    rule hisat2_build:
        input:
            fasta=reference_source("genome_fasta"),
            gtf=reference_source("gtf"),
        output:
            hisat2_index(),
        log:
            "logs/hisat2_build.log",
        benchmark:
            "results/benchmarks/hisat2_build.tsv"
        conda:
            "../envs/hisat2.yaml"
        threads: 8
        resources:
            mem_mb=hisat2_build_mem_mb,
            runtime=720,
        params:
            prefix=lambda wildcards, output: output[0].removesuffix(".1.ht2"),
            splice_aware=REFERENCE["splice_aware_index"],
        script:
            "../scripts/hisat2_build.py"
