# fetch_fastq, hisat2_align and featurecounts of a run form the group "per_run": profiles/slurm
# submits many runs' groups as one job, and a run's temporary FASTQs and alignments go when it ends.
# Each mate downloads on its own (resumable, md5-checked); `--resources fetch_slots=N` caps parallel downloads.
# Only the file's identity (its md5) is a param: a new mirror or base URL must not refetch or rerun anything.
rule fetch_fastq:
    output:
        temp("reads/{run}_{mate}.fastq.gz"),
    log:
        "logs/fetch_fastq/{run}_{mate}.log",
    group:
        "per_run"
    conda:
        "../envs/sra-tools.yaml"
    threads: 2
    resources:
        runtime=240,
        fetch_slots=1,
    params:
        md5=run_md5,
    script:
        "../scripts/fetch_fastq.py"
