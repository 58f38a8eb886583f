"""The workflow configuration's schema (``scatlas/schemas/config.schema.yaml``): the one source of its
defaults and of its checks (ranges, choices, unknown keys), for the Snakefile's validation, the command
line's options, parameter files and the package's functions, with one-line messages for what fails it
(and what fails the sheets' schemas)."""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import os
from collections.abc import Callable, Mapping
from functools import cache
from importlib.resources import files
from typing import Any

import jsonschema
import yaml

from scatlas.io import InputError

CONFIG_SCHEMA = files("scatlas") / "schemas" / "config.schema.yaml"


@cache
def config_schema() -> dict:
    return yaml.safe_load(CONFIG_SCHEMA.read_text())


def _subschema(key: str | None) -> dict:
    node = config_schema()
    for part in key.split(".") if key else ():
        node = node["additionalProperties"] if part == "*" else node["properties"][part]
    return node


def default(key: str) -> Any:
    """The schema's default of a config key, dotted: ``default("query.term")``; ``*`` stands for any name
    of a mapping (``default("cluster.datasets.*.label_key")``). A copy: changing it changes no other's."""
    return copy.deepcopy(_subschema(key)["default"])


def checked(values: Mapping | None, key: str | None = None, source: str | os.PathLike = "config") -> dict:
    """``values`` (the whole config, or the section ``key``) validated against the schema, ranges and
    unknown keys included, with the schema's defaults filled in: the one check of the workflow's config
    and of every parameter file and option of the command line.

    Raises :class:`InputError` naming ``source`` and the key at fault, e.g.
    ``config.yaml: query: Additional properties are not allowed ('sinse' was unexpected)``; a query window
    that is no date or ends before it starts is refused too.
    """
    values = {} if values is None else values
    schema = _subschema(key)
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(values))
    if error is not None:
        raise InputError(source, describe(error, key))
    filled = _filled(dict(values), schema)
    query = filled if key == "query" else filled.get("query") if key is None else None
    if query is not None:
        check_window(query["since"], query["until"] or None, source)
    return filled


def check_window(since: str | None, until: str | None, source: str | os.PathLike = "config") -> None:
    """Refuse a query window whose ends are no ``YYYY-MM-DD`` date or whose end is before its start."""
    dates = {}
    for name, text in (("since", since), ("until", until)):
        if text:
            try:
                dates[name] = dt.date.fromisoformat(text)
            except ValueError:
                raise InputError(source, f"query.{name}: {text!r} is not a date YYYY-MM-DD") from None
    if len(dates) == 2 and dates["until"] < dates["since"]:
        raise InputError(source, f"query.until {until} is before query.since {since}")


def option(key: str) -> Callable[[str], Any]:
    """An argparse ``type`` for the option of config ``key``: the text read as the schema's type, then
    checked against the schema's range, enum and pattern (``--fdr 7``: "7 is greater than the maximum of 1")."""
    schema = _subschema(key)
    kinds = schema.get("type")
    kinds = [kinds] if isinstance(kinds, str) else list(kinds or [])
    validator = jsonschema.Draft202012Validator(schema)

    def parse(text: str):
        value: Any = text
        try:
            if "integer" in kinds:
                value = int(text)
            elif "number" in kinds:
                value = float(text)
        except ValueError:
            kind = "a whole number" if "integer" in kinds else "a number"
            raise argparse.ArgumentTypeError(f"{text!r} is not {kind}") from None
        error = jsonschema.exceptions.best_match(validator.iter_errors(value))
        if error is not None:
            raise argparse.ArgumentTypeError(f"{error.message} (config {key})")
        return value

    parse.__name__ = key  # argparse names the type in "invalid <type> value"
    return parse


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


def describe(error: jsonschema.ValidationError, prefix: str | None = None) -> str:
    """One line naming where a JSON-schema violation is (under the dotted key ``prefix``) and what it is."""
    path = [*(prefix.split(".") if prefix else []), *map(str, error.absolute_path)]
    if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
        known = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(map(str, error.instance)) - set(known))
        if unknown:
            allowed = f" (known: {', '.join(known)})" if known else ""
            return f"{'.'.join([*path, unknown[0]])}: unknown key{allowed}"
    message = error.message.replace("is a required property", "is required")
    where = ".".join(path)
    return f"{where}: {message}" if where else message
