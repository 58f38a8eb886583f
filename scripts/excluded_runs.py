import pandas as pd
from _common import setup

log = setup(snakemake)

from scatlas.io import atomic_output  # noqa: E402
from scatlas.quant.study import EXCLUDED_COLUMNS  # noqa: E402

tables = [pd.read_csv(path, sep="\t") for path in snakemake.input]
excluded = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=EXCLUDED_COLUMNS)
log.info("%d runs excluded", len(excluded))
with atomic_output(snakemake.output[0]) as tmp:
    excluded.to_csv(tmp, sep="\t", index=False)
