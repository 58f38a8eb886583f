import torch
from _common import setup

log = setup(snakemake)

from scatlas.de import DEParams, run_de  # noqa: E402

torch.set_num_threads(snakemake.threads)
settings = dict(snakemake.params.de)
group_key, study_key = settings.pop("group_key"), settings.pop("study_key")
settings.pop("threads")
tables = run_de(snakemake.input[0], snakemake.output[0], group_key, study_key, DEParams(**settings))
log.info("DE tables for %d cell types in %s", len(tables), snakemake.output[0])
