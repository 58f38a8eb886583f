"""The install metadata is true: what the code needs is declared, in pyproject.toml and in each rule's conda env.

The code is read with ``ast``, nothing imported, installed or downloaded. (a) Every third-party module that
``scatlas/**/*.py`` or ``scripts/*.py`` imports (function-local imports included; the standard library, the
package and scripts/_common.py left out), mapped to its distribution, is in ``[project] dependencies``.
(b) For each rule of ``rules/*.smk`` with a ``conda:`` env and a ``script:``, its env's yaml holds what the
script reaches: its imports and those of the ``scatlas`` modules it imports, transitively, and the
command-line tools they run (``tools.run``, ``require``, ``subprocess``). What runs on import always counts;
what is inside a function or class counts when a reached file uses that name (see :func:`reached`).
"""

import ast
import importlib.metadata
import re
import sys
import tomllib
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import NamedTuple

import pytest
import yaml
from conftest import REPO

PACKAGE = REPO / "scatlas"
SCRIPTS = REPO / "scripts"

# Import name → distribution, where importlib.metadata.packages_distributions() does not know it (the
# distribution is not installed here) or is ambiguous.
IMPORT_DISTRIBUTIONS = {
    "Bio": "biopython",
    "GEOparse": "GEOparse",
    "igraph": "igraph",
    "magic": "magic-impute",
    "sklearn": "scikit-learn",
    "yaml": "PyYAML",
}


# Distributions the code needs without importing them: file → (distribution, why).
RUNTIME_NEEDS = {
    "scatlas/partition.py": [("igraph", "scanpy's sc.tl.leiden(flavor=\"igraph\") runs igraph's Leiden")],
}

# Distribution (PEP 503 name) → its conda-forge/bioconda name, where they differ.
CONDA_NAMES = {
    "torch": "pytorch",
    "igraph": "python-igraph",
    "matplotlib": "matplotlib-base",  # conda-forge's matplotlib without the Qt back end
}

# Command-line tool → the conda package that provides it.
TOOL_PACKAGES = {
    "hisat2": "hisat2",
    "hisat2-build": "hisat2",
    "hisat2_extract_splice_sites.py": "hisat2",
    "hisat2_extract_exons.py": "hisat2",
    "samtools": "samtools",
    "featureCounts": "subread",
    "fasterq-dump": "sra-tools",
    "multiqc": "multiqc",
}
RUNNERS = {"run", "require", "version", "Popen", "check_call", "check_output"}  # their first argument is a tool


def normalise(name: str) -> str:
    """PEP 503."""
    return re.sub(r"[-_.]+", "-", name).lower()


def python_files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py")) + sorted(SCRIPTS.glob("*.py"))


def rel(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


class Use(NamedTuple):
    """What a file uses: a module it imports (``kind`` "import"), a command-line tool it runs ("tool") or a name
    ("name": a variable, an attribute), and the functions and classes it is in (none: it runs on import)."""

    kind: str
    name: str
    within: tuple[str, ...]


def every_use(use: Use) -> bool:
    return True


@cache
def uses(path: Path) -> list[Use]:
    """Every import of ``path``, function-local ones included (``from M import a``: M and M.a, which may be a
    module), the ``scatlas`` modules it names as ``"module:attribute"`` (the registry's methods, imported when
    they run), and the tools it runs: the first argument of ``run``/``require``/``version``/``Popen``/..., a
    string or a list's first item (``[*cmd, ...]`` with ``cmd = ["tool", ...]`` assigned in the file)."""
    root = ast.parse(path.read_text(), filename=str(path))
    lists = {
        target.id: node.value.elts
        for node in ast.walk(root)
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.List | ast.Tuple)
        for target in node.targets
        if isinstance(target, ast.Name)
    }

    def tool(arg) -> str | None:
        if isinstance(arg, ast.Starred):
            arg = arg.value
        if isinstance(arg, ast.Name):
            arg = ast.List(lists.get(arg.id, []))
        if isinstance(arg, ast.List | ast.Tuple):
            return tool(arg.elts[0]) if arg.elts else None
        return arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else None

    found = []

    def visit(node, within: tuple[str, ...]):
        if isinstance(node, ast.Import):
            found.extend(Use("import", alias.name, within) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            found.append(Use("import", node.module, within))
            found.extend(Use("import", f"{node.module}.{alias.name}", within) for alias in node.names)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if match := re.fullmatch(r"(scatlas(?:\.\w+)+):(\w+)", node.value):
                found.extend([Use("import", match[1], within), Use("name", match[2], within)])
        elif isinstance(node, ast.Name | ast.Attribute):
            found.append(Use("name", node.id if isinstance(node, ast.Name) else node.attr, within))
        if isinstance(node, ast.Call) and node.args:
            func = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
            if func in RUNNERS and (name := tool(node.args[0])):
                found.append(Use("tool", name, within))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            within = (*within, node.name)
        for child in ast.iter_child_nodes(node):
            visit(child, within)

    visit(root, ())
    return found


def third_party(path: Path, live=every_use) -> set[str]:
    """The top-level names of the third-party modules ``path`` imports (those of its imports that are ``live``)."""
    local = {p.stem for p in SCRIPTS.glob("*.py")}  # scripts/_common.py
    tops = {use.name.split(".")[0] for use in uses(path) if use.kind == "import" and live(use)}
    return {top for top in tops if top not in sys.stdlib_module_names and top != "scatlas" and top not in local}


@cache
def installed_distributions() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


def distribution(module: str) -> str:
    if module in IMPORT_DISTRIBUTIONS:
        return IMPORT_DISTRIBUTIONS[module]
    found = installed_distributions().get(module, [])
    return found[0] if len(found) == 1 else module


def needs(path: Path, live=every_use) -> dict[str, str]:
    """PEP 503 distribution name → why ``path`` needs it (the imports that are ``live``)."""
    out = {normalise(distribution(module)): f"imports {module}" for module in sorted(third_party(path, live))}
    out.update({normalise(dist): why for dist, why in RUNTIME_NEEDS.get(rel(path), [])})
    return out


def module_file(name: str) -> Path | None:
    base = REPO.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def reached(script: Path) -> tuple[list[Path], Callable[[Use], bool]]:
    """``script`` and the package modules it imports, transitively (an imported module's parent packages too),
    and which uses of those files are live: those that run on import, and those in a function or class whose
    name a live use names (by name only, whatever the module: a conservative call graph). So a module reached
    for one function brings the imports and tools of that function, not of all its others."""
    files: list[Path] = [script]
    names: set[str] = set()

    def live(use: Use) -> bool:
        return not use.within or not names.isdisjoint(use.within)

    while True:
        found = [use for path in files for use in uses(path) if live(use)]
        new_names = {use.name for use in found if use.kind == "name"} - names
        names |= new_names
        imported = [use.name.split(".") for use in found if use.kind == "import" and use.name.startswith("scatlas.")]
        candidates = (module_file(".".join(parts[:i])) for parts in imported for i in range(1, len(parts) + 1))
        new_files = [path for path in dict.fromkeys(candidates) if path and path not in files]
        files += new_files
        if not new_names and not new_files:
            return files, live


def declared_dependencies() -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return {normalise(re.split(r"[\s;\[<>=!~]", spec, maxsplit=1)[0]) for spec in project["dependencies"]}


def rules() -> dict[str, dict[str, str]]:
    """Rule name → its directives as written (``conda``, ``script``: paths relative to the repository), from
    ``rules/*.smk`` read as text: a ``rule NAME:`` block runs to the next unindented line; a directive's value
    is on its line or the next."""
    found: dict[str, dict[str, str]] = {}
    for smk in sorted((REPO / "rules").glob("*.smk")):
        rule = directive = None
        for line in smk.read_text().splitlines():
            if match := re.match(r"rule (\w+):", line):
                rule, directive = match[1], None
                found[rule] = {"file": rel(smk)}
            elif line and not line[0].isspace():
                rule = None
            elif rule and (match := re.fullmatch(r"    (\w+):\s*(.*)", line)):
                directive = match[1]
                if match[2]:
                    found[rule][directive] = match[2]
            elif rule and directive and line.strip() and directive not in found[rule]:
                found[rule][directive] = line.strip()
    for directives in found.values():
        for key in ("conda", "script"):
            if key in directives:
                path = REPO / "rules" / ast.literal_eval(directives[key].rstrip(","))
                directives[key] = path.resolve().relative_to(REPO).as_posix()
    return found


def conda_packages(env: Path) -> set[str]:
    """The normalised package names of a conda env file (``name =version``, ``channel::name``, pip entries)."""
    names = set()
    for entry in yaml.safe_load(env.read_text())["dependencies"]:
        specs = entry.get("pip", []) if isinstance(entry, dict) else [entry]
        for spec in specs:
            names.add(normalise(re.split(r"[\s<>=!~\[]", spec.split("::")[-1], maxsplit=1)[0]))
    return names


def test_pyproject_declares_every_import():
    declared = declared_dependencies()
    missing = [
        f"{dist} ({why}: {rel(path)})"
        for path in python_files()
        for dist, why in needs(path).items()
        if dist not in declared
    ]
    assert not missing, "pyproject.toml [project] dependencies lack:\n  " + "\n  ".join(missing)


CONDA_RULES = {name: directives for name, directives in rules().items() if "conda" in directives}


def test_rules_are_found():
    assert {"hisat2_align", "featurecounts", "fetch_fastq", "de", "cluster_deep", "query"} <= CONDA_RULES.keys()
    for name, directives in CONDA_RULES.items():
        assert "script" in directives, (
            f"rule {name} ({directives['file']}) has a conda env but no script: this test follows only script: "
            "directives (extend it for shell:)"
        )
        assert (REPO / directives["conda"]).exists(), f"rule {name}: {directives['conda']} does not exist"
        assert (REPO / directives["script"]).exists(), f"rule {name}: {directives['script']} does not exist"


@pytest.mark.parametrize("rule", sorted(CONDA_RULES))
def test_conda_env_holds_what_the_rule_runs(rule):
    directives = CONDA_RULES[rule]
    env = directives["conda"]
    packages = conda_packages(REPO / env)
    files, live = reached(REPO / directives["script"])
    missing = []
    for path in files:
        for dist, why in needs(path, live).items():
            if CONDA_NAMES.get(dist, dist) not in packages:
                missing.append(f"{CONDA_NAMES.get(dist, dist)} ({why}: {rel(path)})")
        for use in uses(path):
            if use.kind == "tool" and live(use):
                package = TOOL_PACKAGES.get(use.name)
                if package is None:
                    missing.append(f"the package of {use.name} (runs it: {rel(path)}; name it in TOOL_PACKAGES here)")
                elif normalise(package) not in packages:
                    missing.append(f"{package} (runs {use.name}: {rel(path)})")
    assert not missing, f"{env} (rule {rule}, {directives['script']}) lacks:\n  " + "\n  ".join(sorted(set(missing)))


def tools(path: Path, live=every_use) -> set[str]:
    return {use.name for use in uses(path) if use.kind == "tool" and live(use)}


def test_the_scan_sees_imports_and_tools():
    """The scan is not vacuous: known imports, modules and tools are found, function-local ones included."""
    assert "torch" in third_party(SCRIPTS / "de.py")
    assert "GEOparse" in third_party(PACKAGE / "repositories" / "geo.py")
    files, live = reached(SCRIPTS / "cluster.py")
    assert {"scatlas/registry.py", "scatlas/models/scdmac.py", "scatlas/partition.py"} <= set(map(rel, files))
    assert "torch" in third_party(PACKAGE / "cluster" / "__init__.py", live)
    assert {"hisat2-build", "hisat2_extract_exons.py"} <= tools(PACKAGE / "reference" / "index.py")
    assert "featureCounts" in tools(PACKAGE / "quant" / "counts.py")
    assert "fasterq-dump" in tools(PACKAGE / "repositories" / "fetch.py")
    files, live = reached(SCRIPTS / "hisat2_align.py")
    assert {"hisat2", "samtools"} <= set().union(*(tools(path, live) for path in files))


def test_unused_functions_do_not_count():
    """A module reached for one name does not bring the needs of its other functions."""
    files, live = reached(SCRIPTS / "reference_genes.py")
    assert PACKAGE / "reference" / "index.py" in files
    assert not tools(PACKAGE / "reference" / "index.py", live)
    files, live = reached(SCRIPTS / "fetch_fastq.py")
    assert "anndata" not in third_party(PACKAGE / "io.py", live)
