"""Shared preamble of the workflow's scripts: log to the rule's log, import the package."""

import logging
import sys
from pathlib import Path


def setup(snakemake) -> logging.Logger:
    sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115 - lives as long as the job
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the scatlas package beside scripts/
    sys.excepthook = _one_line
    return logging.getLogger(snakemake.rule)


def _one_line(kind, error, trace):
    """Bad input, a failed tool or service, a full disk: one line in the rule's log, as the CLI prints it."""
    from scatlas.io import InputError, output_error
    from scatlas.repositories.http import RemoteError
    from scatlas.tools import ToolError

    if isinstance(error, InputError | ToolError | RemoteError):
        print(f"error: {error}", file=sys.stderr)
    elif isinstance(error, OSError):
        print(f"error: {output_error(error)}", file=sys.stderr)
    else:
        sys.__excepthook__(kind, error, trace)
