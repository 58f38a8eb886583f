"""One source of defaults: the config schema's, for the workflow, the command line and the package."""

import argparse
import copy
from pathlib import Path

import yaml
from conftest import REPO
from snakemake.utils import validate

from scatlas.cli import build_parser
from scatlas.config import CONFIG_SCHEMA, config_schema, default, with_defaults
from scatlas.preprocess.normalize import TARGET_SUM
from scatlas.repositories import query as query_module

# command-line options whose config key has another name than the option
RENAMED = {
    ("reference", "biotypes"): "reference.gene_biotypes",
    ("ontology match", "scopes"): "label.synonym_scopes",
    ("ontology match", "exclude"): "label.exclude_terms",
    ("score", "key"): "cluster.datasets.*.label_key",
}
# options whose default (None) leaves the value to the config file the command reads, and its defaults
FROM_CONFIG = {("query", "since"), ("query", "until")}


def options(parser: argparse.ArgumentParser, command: str = ""):
    """(command, dest, default) of every optional option of every sub-command (``ontology match`` ...)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, subparser in action.choices.items():
                yield from options(subparser, f"{command} {name}".strip())
        elif action.option_strings and not action.required and action.dest not in ("help", "version"):
            yield command, action.dest, action.default


def schema_key(command: str, dest: str) -> str | None:
    """The config key of a command's option: renamed, else the option's name in the command's section."""
    if (command, dest) in RENAMED:
        return RENAMED[command, dest]
    section = config_schema()["properties"].get(command, {}).get("properties", {})
    return f"{command}.{dest}" if dest in section else None


def test_every_command_line_option_with_a_config_key_has_the_schemas_default():
    checked = []
    for command, dest, value in options(build_parser()):
        key = schema_key(command, dest)
        if key is None or (command, dest) in FROM_CONFIG:
            continue
        assert value == default(key), f"scatlas {command} --{dest.replace('_', '-')}: {value!r}, config {key}"
        checked.append(key)
    assert {"de.min_cells", "align.threads", "quantify.strandedness", "cluster.device"} <= set(checked)
    assert len(checked) >= 15
    assert {(c, d) for c, d, _ in options(build_parser())} >= FROM_CONFIG | set(RENAMED)


def test_flags_and_folders_follow_the_schema_too():
    defaults = {(command, dest): value for command, dest, value in options(build_parser())}
    assert defaults["reference", "no_splice_sites"] is not default("reference.splice_aware_index")
    assert Path(defaults["query", "manifests"]) == Path(default("runs")).parent


def test_the_schemas_defaults_fill_a_config_as_the_workflows_validation_does():
    for config in (
        yaml.safe_load((REPO / "config.yaml").read_text()),
        {},
        {"cluster": {"datasets": {"d": {"h5ad": "x"}}}},
    ):
        validated = copy.deepcopy(config)
        validate(validated, str(CONFIG_SCHEMA))
        assert with_defaults(config) == validated


def test_the_atlas_normalises_as_the_clustering_methods_do_by_default():
    assert default("preprocess.target_sum") == TARGET_SUM


def test_a_query_without_a_config_searches_with_the_schemas_term(tmp_path, monkeypatch):
    searched = []
    monkeypatch.setattr(query_module.geo, "search_series", lambda remote, term, *args: searched.append(term) or [])
    query_module.run_query(
        {"query": {"sources": ["geo"]}, "repositories": {"cache_dir": ""}}, tmp_path, today="2026-01-02"
    )
    assert searched == [default("query.term")] and "single-cell" in searched[0]


def test_default_is_a_copy():
    default("de.exclude").append("B cell")
    assert default("de.exclude") == ["unlabelled"]


def test_every_numeric_option_with_a_config_key_checks_the_schemas_range():
    """One validation: an option below its config key's minimum (or above its maximum) is refused by the
    command line as the workflow refuses it in the config."""
    import pytest

    from scatlas.config import checked
    from scatlas.io import InputError

    def actions(parser, command=""):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, subparser in action.choices.items():
                    yield from actions(subparser, f"{command} {name}".strip())
            elif action.option_strings:
                yield command, action

    tried = []
    for command, action in actions(build_parser()):
        key = schema_key(command, action.dest)
        if key is None:
            continue
        node = config_schema()
        for part in key.split("."):
            node = node["additionalProperties"] if part == "*" else node["properties"][part]
        for bound, outside in (("minimum", -1), ("exclusiveMinimum", 0), ("maximum", 1)):
            if bound in node:
                value = node[bound] + outside
                with pytest.raises(argparse.ArgumentTypeError, match=rf"\(config {key}\)"):
                    action.type(str(value))
                section, name = key.split(".")
                with pytest.raises(InputError, match=rf"{key}: "):
                    checked({section: {name: value}})
                tried.append(key)
    assert {"de.fdr", "de.min_cells", "de.n_bootstrap", "quantify.threads", "align.threads"} <= set(tried)
