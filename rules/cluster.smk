rule cluster_deep:
    """Deep clustering models (trained; a GPU in profiles/slurm)."""
    input:
        h5ad=cluster_input,
        code=cluster_code,
    output:
        tsv="results/cluster/{dataset}/{method}/seed{seed}.tsv",
        embedding="results/cluster/{dataset}/{method}/seed{seed}.embedding.npy",
        model=directory("models/cluster/{dataset}/{method}/seed{seed}"),
    log:
        "logs/cluster/{dataset}/{method}/seed{seed}.log",
    benchmark:
        "results/benchmarks/cluster/{dataset}/{method}/seed{seed}.tsv"
    wildcard_constraints:
        method=CLUSTERING.pattern("deep"),
    conda:
        "../envs/scatlas.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=120,
    params:
        dataset=cluster_dataset,
        params=cluster_method_params,
        device=config["cluster"]["device"],
    script:
        "../scripts/cluster.py"


use rule cluster_deep as cluster_baseline with:
    output:
        tsv="results/cluster/{dataset}/{method}/seed{seed}.tsv",
        embedding="results/cluster/{dataset}/{method}/seed{seed}.embedding.npy",
    wildcard_constraints:
        method=CLUSTERING.pattern("baseline"),
    resources:
        mem_mb=8000,
        runtime=60,


rule cluster_scores:
    input:
        tsv=cluster_outputs("results/cluster/{dataset}/{method}/seed{seed}.tsv"),
        truth=cluster_truth_inputs(),
    output:
        report(
            "results/cluster/scores.tsv",
            caption="../report/scores_table.rst",
            category="3 Clustering",
        ),
    log:
        "logs/cluster_scores.log",
    conda:
        "../envs/scatlas.yaml"
    params:
        runs=cluster_runs(),
        datasets=cluster_datasets(),
    script:
        "../scripts/cluster_scores.py"
