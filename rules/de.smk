rule de:
    input:
        "atlas/preprocessed.h5ad",
    output:
        directory("de"),
    log:
        "logs/de/de.log",
    benchmark:
        "results/benchmarks/de/de.tsv"
    conda:
        "../envs/de.yaml"
    threads: config["de"]["threads"]
    resources:
        mem_mb=16000,
        runtime=720,
    params:
        de=config["de"],
    script:
        "../scripts/de.py"
