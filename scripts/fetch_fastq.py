from _common import setup

log = setup(snakemake)

from scatlas.repositories.fetch import fetch_mate  # noqa: E402
from scatlas.repositories.http import Remote  # noqa: E402
from scatlas.sheets import load_run  # noqa: E402

# where to download from is read here, not passed as params, so that it never triggers a rerun
run = load_run(snakemake.config["runs"], snakemake.wildcards.run)
fetch_mate(
    run,
    int(snakemake.wildcards.mate),
    snakemake.output[0],
    Remote.from_config(snakemake.config["repositories"]),
    scheme=snakemake.config["fetch"]["scheme"],
    threads=snakemake.threads,
)
