"""The workflow configuration's schema (``scatlas/schemas/config.schema.yaml``): the one source of its
defaults, for the Snakefile's validation, the command line's options and the package's functions, and
one-line messages for what fails it (and what fails the sheets' schemas)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from functools import cache
from importlib.resources import files
from typing import Any

import jsonschema
import yaml

CONFIG_SCHEMA = files("scatlas") / "schemas" / "config.schema.yaml"


@cache
def config_schema() -> dict:
    return yaml.safe_load(CONFIG_SCHEMA.read_text())


def default(key: str) -> Any:
    """The schema's default of a config key, dotted: ``default("query.term")``; ``*`` stands for any name
    of a mapping (``default("cluster.datasets.*.label_key")``). A copy: changing it changes no other's."""
    node = config_schema()
    for part in key.split("."):
        node = node["additionalProperties"] if part == "*" else node["properties"][part]
    return copy.deepcopy(node["default"])


def with_defaults(config: Mapping | None) -> dict:
    """``config`` with the schema's default for every key it leaves out, at every level: what the workflow
    sees after its validation, for a caller that did not go through it (``scatlas query --config``)."""
    return _filled(dict(config or {}), config_schema())


def _filled(value, schema: dict):
    if not isinstance(value, Mapping):
        return value
    properties, others = schema.get("properties", {}), schema.get("additionalProperties")
    filled = dict(value)
    for key, subschema in properties.items():
        if key not in filled and "default" in subschema:
            filled[key] = copy.deepcopy(subschema["default"])
    for key in filled:
        subschema = properties.get(key, others if isinstance(others, dict) else None)
        if subschema is not None:
            filled[key] = _filled(filled[key], subschema)
    return filled


def describe(error: jsonschema.ValidationError) -> str:
    """One line naming where a JSON-schema violation is and what it is."""
    where = ".".join(map(str, error.absolute_path))
    if error.validator == "required":
        return error.message.replace("is a required property", "is required")
    return f"{where}: {error.message}" if where else error.message


def validation_message(error: BaseException, source: str = "config") -> str:
    """One line for a failed ``snakemake.utils.validate``: the key at fault and the problem."""
    seen = error
    while seen is not None:
        for candidate in (seen, *getattr(seen, "args", ())):
            if isinstance(candidate, jsonschema.ValidationError):
                return f"{source}: {describe(candidate)}"
        seen = seen.__cause__ or seen.__context__
    return f"{source}: {str(error).splitlines()[0]}"
