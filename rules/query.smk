# Stages 1-2 are stateful (a window since the last successful query), so `query` has no declared
# outputs: it runs whenever it is asked for (`snakemake query`, `scatlas refresh`) and merges into
# the manifests in place, atomically. The rest of the workflow reads manifests/runs.tsv.
rule query:
    log:
        "logs/query.log",
    conda:
        "../envs/scatlas.yaml"
    resources:
        runtime=720,
    params:
        manifests=manifests_dir(),
        settings={key: config[key] for key in ("query", "repositories")},
    script:
        "../scripts/query.py"
