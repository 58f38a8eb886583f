"""The report's figures and tables: one scatlas.report function per rule (rules/report.smk)."""

from _common import setup

log = setup(snakemake)

import pandas as pd  # noqa: E402

from scatlas import report  # noqa: E402

inp, out, par = snakemake.input, snakemake.output, snakemake.params
if snakemake.rule == "report_alignment":
    report.alignment_figure(inp.stats, par.min_rate, out[0])
elif snakemake.rule == "report_atlas":
    report.cells_figure(inp.atlas, par.label_key, out.cells)
    best = report.best_clusters(inp.scores[0] if inp.scores else None, par.pattern)
    report.umap_figure(inp.atlas, par.label_key, best[0] if best else None, out.umap)
elif snakemake.rule == "report_clustering":
    scores = pd.read_csv(inp.scores[0], sep="\t")
    report.scores_figure(scores, out.scores)
    clusters, title = report.best_clusters(inp.scores[0], par.pattern)
    report.confusion_figure(inp.atlas, par.label_key, par.exclude, clusters, f"atlas: {title}", out.confusion)
elif snakemake.rule == "report_training":
    report.loss_figure(
        {name: f"{folder}/history.tsv" for name, folder in zip(par.names, inp.histories, strict=True)}, out[0]
    )
elif snakemake.rule == "report_imputation":
    report.imputation_figure(inp.h5ad, inp.model, out[0])
elif snakemake.rule == "report_mapping":
    report.mapping_figure(inp[0], out[0])
elif snakemake.rule == "report_de":
    report.volcano_figure(inp.de, par.fdr, out.volcano)
    report.top_genes_table(inp.de, out.top_genes)
elif snakemake.rule == "report_summary":
    report.summary_table(inp.runs, inp.excluded_runs, par.excluded_samples, inp.qc, inp.atlas, par.label_key, out[0])
log.info("%s written", ", ".join(map(str, out)))
