rule embed_train:
    """scQuery's supervised embedding of the atlas's labelled cells (Cell Ontology terms of the label
    stage) with the HNSW index of its training cells, whole studies held out as the query set and scored
    (a GPU in profiles/slurm). Too few labelled cells or studies: the log says so, the model folder holds
    SKIPPED and the scores file the reason.
    """
    input:
        h5ad="atlas/preprocessed.h5ad",
        ontology=ontology_source(),
        code=embed_code(),
    output:
        model=directory("models/embed/atlas/{model}/seed{seed}"),
        metrics="results/embed/atlas/{model}/seed{seed}/metrics.json",
        predictions="results/embed/atlas/{model}/seed{seed}/query_predictions.tsv",
    log:
        "logs/embed/{model}/seed{seed}.log",
    benchmark:
        "results/benchmarks/embed/{model}/seed{seed}.tsv"
    wildcard_constraints:
        model=EMBEDDING.pattern(),
        seed=r"\d+",
    conda:
        "../envs/scatlas.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=240,
    params:
        embed=config["embed"],
    script:
        "../scripts/embed.py"
