rule hisat2_align:
    input:
        fastqs=run_fastqs,
        index=hisat2_index_first(),
    output:
        # HISAT2's SAM as written, read once by featureCounts in the same per_run group: no BAM is
        # compressed or kept (--notemp keeps it, for a look with samtools)
        bam=temp("align/{study}/{run}.sam"),
        summary="align/{study}/{run}.summary.txt",
        stats="align/{study}/{run}.json",
    log:
        "logs/hisat2_align/{study}/{run}.log",
    benchmark:
        "results/benchmarks/hisat2_align/{study}/{run}.tsv"
    group:
        "per_run"
    conda:
        "../envs/hisat2.yaml"
    threads: config["align"]["threads"]
    resources:
        mem_mb=12000,
        runtime=120,
    params:
        prefix=lambda wildcards, input: input.index.removesuffix(".1.ht2"),
        phred=config["align"]["phred"],
        extra=config["align"]["extra"],
    script:
        "../scripts/hisat2_align.py"
