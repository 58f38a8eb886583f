# Each mate downloads on its own (resumable, md5-checked); `--resources fetch_slots=N` caps parallel downloads.
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
        run=lambda wildcards: RUNS.loc[wildcards.run].to_dict(),
        repositories=config["repositories"],
        scheme=config["fetch"]["scheme"],
    script:
        "../scripts/fetch_fastq.py"
