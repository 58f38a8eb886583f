rule impute:
    """LATE on the atlas's highly variable genes (TRANSLATE with impute.reference; trained, a GPU in
    profiles/slurm): the layer imputed of atlas/imputed.h5ad, streamed from and to disk in blocks of cells.
    """
    input:
        h5ad="atlas/preprocessed.h5ad",
        reference=impute_reference(),
        code=impute_code(),
    output:
        h5ad="atlas/imputed.h5ad",
        model=directory("atlas/imputed.model"),
    log:
        "logs/impute.log",
    benchmark:
        "results/benchmarks/impute.tsv"
    conda:
        "../envs/scatlas.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=240,
    params:
        method=impute_method(),
        seed=config["impute"]["seed"],
        device=config["impute"]["device"],
        params=config["impute"]["params"],
    script:
        "../scripts/impute.py"
