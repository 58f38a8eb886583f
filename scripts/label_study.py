from _common import setup

log = setup(snakemake)

import pandas as pd  # noqa: E402

from scatlas.ontology.labels import label_study  # noqa: E402

labels = label_study(
    pd.DataFrame(snakemake.params.samples, columns=["study", "sample", *snakemake.params.fields]).fillna(""),
    snakemake.wildcards.study,
    snakemake.input.ontology,
    snakemake.output[0],
    scopes=snakemake.params.scopes,
    exclude=snakemake.params.exclude,
    fields=snakemake.params.fields,
)
labelled = (labels["cell_ontology_id"] != "").sum()
log.info("%s: %d of %d samples labelled", snakemake.wildcards.study, labelled, len(labels))
