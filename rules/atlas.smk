rule atlas_merge:
    input:
        quant=expand("quant/{study}.h5ad", study=STUDIES),
        labels=study_labels(),
    output:
        "atlas/atlas.h5ad",
    log:
        "logs/atlas_merge.log",
    benchmark:
        "results/benchmarks/atlas_merge.tsv"
    conda:
        "../envs/scatlas.yaml"
    resources:
        mem_mb=16000,
        runtime=240,
    params:
        studies=STUDIES,
    script:
        "../scripts/atlas_merge.py"


rule atlas_preprocess:
    input:
        "atlas/atlas.h5ad",
    output:
        h5ad="atlas/preprocessed.h5ad",
        qc="results/qc_removed.tsv",
    log:
        "logs/atlas_preprocess.log",
    benchmark:
        "results/benchmarks/atlas_preprocess.tsv"
    conda:
        "../envs/scatlas.yaml"
    resources:
        mem_mb=32000,
        runtime=240,
    params:
        qc=config["preprocess"],
    script:
        "../scripts/atlas_preprocess.py"
