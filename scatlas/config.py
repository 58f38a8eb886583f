"""Workflow configuration checks that Snakemake's schema validation leaves multi-line."""

from __future__ import annotations

import jsonschema

from scatlas.sheets import describe


def validation_message(error: BaseException, source: str = "config") -> str:
    """One line for a failed ``snakemake.utils.validate``: the key at fault and the problem."""
    seen = error
    while seen is not None:
        for candidate in (seen, *getattr(seen, "args", ())):
            if isinstance(candidate, jsonschema.ValidationError):
                return f"{source}: {describe(candidate)}"
        seen = seen.__cause__ or seen.__context__
    return f"{source}: {str(error).splitlines()[0]}"
