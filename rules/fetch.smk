# Each mate downloads on its own (resumable, md5-checked); `--resources fetch_slots=N` caps parallel downloads.
# Only the file's identity (its md5) is a param: a new mirror or base URL must not refetch or rerun anything.
rule fetch_fastq:
    output:
        temp("reads/{run}_{mate}.fastq.gz"),
    log:
        "logs/fetch_fastq/{run}_{mate}.log",
    conda:
        "../envs/sra-tools.yaml"
    threads: 2
    resources:
        runtime=240,
        fetch_slots=1,
    params:
        md5=lambda wildcards: RUNS.loc[wildcards.run, f"fastq_md5_{wildcards.mate}"],
    script:
        "../scripts/fetch_fastq.py"
