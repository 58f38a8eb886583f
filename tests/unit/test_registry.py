"""The methods registry: the command line, the workflow's schema and rules, and the fits agree with it."""

import re

import pytest
from conftest import REPO

from scatlas.cli import build_parser
from scatlas.config import config_schema
from scatlas.registry import CLUSTERING, STAGES


def subcommand_option(command: str, dest: str):
    commands = next(a for a in build_parser()._actions if a.dest == "command")
    return next(a for a in commands.choices[command]._actions if a.dest == dest)


def test_the_cluster_command_offers_the_registrys_methods():
    assert (
        subcommand_option("cluster", "method").choices
        == CLUSTERING.names()
        == ["scdmac", "scsmd", "pca-kmeans", "leiden"]
    )


def test_the_config_schema_names_the_registrys_methods():
    cluster = config_schema()["properties"]["cluster"]["properties"]
    assert cluster["methods"]["items"]["enum"] == CLUSTERING.names()
    assert list(cluster["params"]["properties"]) == CLUSTERING.names()
    assert set(cluster["methods"]["default"]) <= set(CLUSTERING.names())


def test_the_rules_wildcard_patterns_split_the_methods_by_kind():
    deep, baseline = CLUSTERING.pattern("deep"), CLUSTERING.pattern("baseline")
    for name in CLUSTERING.names():
        kind = CLUSTERING.method(name).kind
        assert bool(re.fullmatch(deep, name)) == (kind == "deep")
        assert bool(re.fullmatch(baseline, name)) == (kind == "baseline")
    assert CLUSTERING.names("deep") == ["scdmac", "scsmd"]


@pytest.mark.parametrize("stage", STAGES, ids=lambda stage: stage.name)
def test_each_methods_code_exists_and_holds_its_fit_and_parameters(stage):
    for name in stage.names():
        method = stage.method(name)
        code = stage.code_of(name)
        assert len(set(code)) == len(code), f"{name}: a file listed twice"
        for file in code:
            assert (REPO / "scatlas" / file).is_file(), f"{name}: scatlas/{file} does not exist"
        for target in (method.fit, method.params):
            module = target.partition(":")[0]
            assert module.removeprefix("scatlas.").replace(".", "/") + ".py" in code, f"{name}: {target}"
        assert callable(method.fit_function()) and hasattr(method.parameter_class(), "from_dict")


def test_an_unknown_method_or_parameter_is_named():
    with pytest.raises(KeyError, match="unknown cluster method 'kmeans'; choose from scdmac, scsmd"):
        CLUSTERING.method("kmeans")
    with pytest.raises(KeyError, match=r"unknown pca-kmeans parameter\(s\): n_component"):
        CLUSTERING.method("pca-kmeans").parameters({"n_component": 10})
    with pytest.raises(KeyError, match="leiden n_neighbors must be a whole number, not 'many'"):
        CLUSTERING.method("leiden").parameters({"n_neighbors": "many"})
    assert CLUSTERING.method("pca-kmeans").parameters({"n_comps": 20.0}).n_comps == 20
