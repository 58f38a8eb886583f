import json

from _common import setup

log = setup(snakemake)

from scatlas.repositories.query import run_query  # noqa: E402

counts = run_query(snakemake.params.settings, snakemake.params.manifests)
log.info("query done: %s", json.dumps(counts))
