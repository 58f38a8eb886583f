# scatlas: a uniformly processed single-cell RNA-seq atlas, stage by stage (see README.md).
from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/query.smk"
include: "rules/fetch.smk"
include: "rules/reference.smk"
include: "rules/align.smk"
include: "rules/quantify.smk"
include: "rules/label.smk"
include: "rules/atlas.smk"
include: "rules/de.smk"
include: "rules/cluster.smk"
include: "rules/impute.smk"
include: "rules/embed.smk"
include: "rules/report.smk"


onstart:
    hold_atlas_lock()


rule all:
    default_target: True
    input:
        final_outputs(),
