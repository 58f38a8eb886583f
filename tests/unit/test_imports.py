"""The package's import graph: no cycle between its sub-packages and top-level modules.

Data flows one way (STYLE.md): a stage's package may use a lower one, never the reverse. Imports are read
with ``ast``, function-local ones included, and a method the registry names counts as imported by the
stage that runs it (``scatlas.cluster`` imports ``scatlas.models.scdmac`` when it fits scDMAC).
"""

import ast

from conftest import REPO

from scatlas.registry import STAGES

PACKAGE = REPO / "scatlas"


def unit(module: str) -> str:
    """The sub-package or top-level module a module of the package belongs to (``scatlas.cluster.data`` →
    ``cluster``); the package's own ``__init__`` and its attributes (``scatlas.__version__``) → ``scatlas``."""
    parts = module.removesuffix(".__init__").split(".")
    if len(parts) > 1 and ((PACKAGE / parts[1]).is_dir() or (PACKAGE / f"{parts[1]}.py").exists()):
        return parts[1]
    return "scatlas"


def imported_modules(path) -> set[str]:
    """The ``scatlas`` modules a file imports, anywhere in it (``from scatlas import tools``: scatlas.tools)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import (the package imports by absolute names)"
            names.add(node.module)
            if node.module == "scatlas":
                names.update(f"scatlas.{alias.name}" for alias in node.names)
    return {name for name in names if name == "scatlas" or name.startswith("scatlas.")}


def import_graph() -> dict[str, set[str]]:
    """Unit → the other units its files import, or whose methods it runs."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        source = unit(".".join(path.relative_to(REPO).with_suffix("").parts))
        targets = {unit(name) for name in imported_modules(path)} - {source}
        graph.setdefault(source, set()).update(targets)
    for stage in STAGES:
        for method in stage.methods.values():
            targets = {unit(target.partition(":")[0]) for target in (method.fit, method.params)} - {stage.name}
            graph.setdefault(stage.name, set()).update(targets)
    return graph


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path that ends where it starts, or None."""
    done: set[str] = set()

    def visit(path: list[str]) -> list[str] | None:
        for successor in sorted(graph.get(path[-1], ())):
            if successor in path:
                return [*path[path.index(successor) :], successor]
            if successor not in done:
                found = visit([*path, successor])
                if found:
                    return found
        done.add(path[-1])
        return None

    for node in sorted(graph):
        found = None if node in done else visit([node])
        if found:
            return found
    return None


def test_the_cycle_check_finds_a_cycle():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycle_between_the_packages_parts():
    graph = import_graph()
    assert {"nn", "preprocess", "partition"} <= graph["models"]
    assert {"cluster", "de", "quant"} <= graph["cli"]  # function-local imports
    assert "models" in graph["cluster"]  # through the registry
    found = cycle(graph)
    assert found is None, "import cycle: " + " → ".join(found)


def test_the_models_never_import_the_clustering_stage():
    # scatlas.cluster runs the models; the pieces both need live below both (preprocess, partition)
    assert "cluster" not in import_graph()["models"]
