"""Shared preamble of the workflow's scripts: log to the rule's log, import the package."""

import logging
import sys
from pathlib import Path


def setup(snakemake) -> logging.Logger:
    sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115 - lives as long as the job
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the scatlas package beside scripts/
    return logging.getLogger(snakemake.rule)
