"""The package's import rules, read from every `import` statement with `ast` (function-level ones included).

Data flows one way: losses know no data or Trainer, data knows no losses, decoding and evaluation
know no model, nothing imports `study/` or `scripts/`, and no module imports itself back through
others. `ALLOWED` lists, per subpackage, the other parts of `ner_imbalance` it may import; a test
plants a violation in a copy of the package to show that the checks fail on one.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "ner_imbalance"

LEAVES = {"constants", "errors", "utils", "tags"}
IMPORTABLE_BY_ALL = {"tags"}
"""Leaves that every part of the package may import (tag strings are read everywhere)."""
ALLOWED = {
    "<root>": set(),  # ner_imbalance/__init__.py imports its exports lazily, by name, at first use
    "constants": set(),
    "errors": set(),
    "tags": {"constants"},
    "utils": set(),
    "losses": {"constants"},
    "data": {"constants", "errors", "utils"},
    "decoding": {"constants"},
    "evaluation": {"constants", "data", "utils"},
    "calibration": {"constants", "decoding", "evaluation", "utils"},
    "inference": {"constants", "data", "decoding", "evaluation", "errors", "utils"},
    "config": {"calibration", "constants", "errors", "losses", "utils"},
    "training": {
        "calibration",
        "config",
        "constants",
        "data",
        "decoding",
        "errors",
        "evaluation",
        "losses",
        "utils",
    },
    "study": {"calibration", "config", "constants", "data", "evaluation", "training", "utils"},
    # The installed commands: they parse flags and call the library; nothing imports them.
    "cli": {
        "calibration",
        "config",
        "constants",
        "data",
        "decoding",
        "errors",
        "evaluation",
        "inference",
        "losses",
        "training",
        "utils",
    },
}


def module_name(path: Path, package: Path) -> str:
    parts = ("ner_imbalance", *path.relative_to(package).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, package: Path) -> set[str]:
    """Every module of ours (or `scripts`) that `path` imports anywhere in its body, relative imports resolved."""
    found = set()
    this = module_name(path, package)
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = this.split(".")[: len(this.split(".")) - node.level + (path.name == "__init__.py")]
                found.add(".".join([*base, *([node.module] if node.module else [])]))
            elif node.module:
                found.add(node.module)
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] in ("ner_imbalance", "scripts", "benchmarks")}


def part_of(module: str) -> str:
    """The subpackage (or root module) of `ner_imbalance` a module belongs to."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "<root>"


def import_graph(package: Path) -> dict[str, set[str]]:
    """`{module: modules of ner_imbalance it imports}`, names narrowed to modules that exist."""
    modules = {module_name(path, package): path for path in package.rglob("*.py")}
    graph = {}
    for module, path in modules.items():
        targets = set()
        for name in imports_of(path, package):
            while name and name not in modules and name.count("."):
                name = name.rsplit(".", 1)[0]  # `from pkg.mod import function` -> pkg.mod
            targets.add(name)
        graph[module] = targets - {module}
    return graph


def violations(package: Path) -> list[str]:
    """Each broken rule, as one line."""
    graph = import_graph(package)
    problems = []
    for module, targets in sorted(graph.items()):
        for target in sorted(targets):
            if target.split(".")[0] in ("scripts", "benchmarks"):
                problems.append(f"{module} imports {target}: nothing in the package imports scripts or benchmarks")
                continue
            source_part, target_part = part_of(module), part_of(target)
            allowed = ALLOWED.get(source_part, set()) | IMPORTABLE_BY_ALL
            if source_part != target_part and target_part not in allowed:
                problems.append(f"{module} ({source_part}/) imports {target} ({target_part}/)")
    problems += [f"import cycle: {' -> '.join(cycle)}" for cycle in find_cycles(graph)]
    return problems


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected set of modules that import each other (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in graph.get(module, ()):
            if target not in graph:
                continue
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return cycles


def test_every_subpackage_has_a_rule():
    parts = {part_of(module) for module in import_graph(PACKAGE)}
    assert parts <= set(ALLOWED), f"subpackages without an import rule: {sorted(parts - set(ALLOWED))}"


def test_the_package_keeps_its_import_rules():
    assert violations(PACKAGE) == []


def test_losses_know_no_data_trainer_or_transformers():
    for path in (PACKAGE / "losses").rglob("*.py"):
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source)
        names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        names |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        assert not any(name.split(".")[0] in ("transformers", "datasets", "seqeval") for name in names), path


@pytest.mark.parametrize(
    ("planted_in", "line", "expected"),
    [
        ("losses/focal.py", "from ner_imbalance.data import corpus", "losses/) imports ner_imbalance.data"),
        ("data/corpus.py", "    from ner_imbalance.losses import build_loss", "data/) imports ner_imbalance.losses"),
        ("training/run.py", "import ner_imbalance.study.grid", "training/) imports ner_imbalance.study.grid"),
        ("evaluation/scores.py", "from ner_imbalance.calibration import search", "evaluation/) imports"),
        ("constants.py", "from ner_imbalance.errors import UsageError", "constants/) imports ner_imbalance.errors"),
        ("tags.py", "from ner_imbalance.data import labels", "tags/) imports ner_imbalance.data"),
        ("training/run.py", "    from ner_imbalance.cli import train", "training/) imports ner_imbalance.cli"),
        ("cli/train.py", "from ner_imbalance.study import runner", "cli/) imports ner_imbalance.study"),
    ],
)
def test_a_planted_violation_is_found(tmp_path, planted_in, line, expected):
    copy = tmp_path / "ner_imbalance"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / planted_in
    source = target.read_text(encoding="utf-8")
    if line.startswith(" "):  # a function-level import: inside a new function
        source += f"\n\ndef _planted():\n{line}\n"
    else:
        source += f"\n{line}\n"
    target.write_text(source, encoding="utf-8")
    assert any(expected in problem for problem in violations(copy)), violations(copy)


def test_a_planted_cycle_is_found(tmp_path):
    copy = tmp_path / "ner_imbalance"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    with (copy / "evaluation" / "entity_counts.py").open("a", encoding="utf-8") as handle:
        handle.write("\n\ndef _planted():\n    from ner_imbalance.evaluation import scores\n")
    assert any(problem.startswith("import cycle:") for problem in violations(copy))


def test_importing_the_package_imports_no_torch_and_exports_lazily():
    code = (
        "import sys, ner_imbalance\n"
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'eager import'\n"
        "names = ['build_loss', 'ImbalanceTrainer', 'Tagger', 'evaluate_tags', 'decode', 'search_bias']\n"
        "assert all(callable(getattr(ner_imbalance, name)) for name in names)\n"
        "assert 'torch' in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_leaf_modules_import_nothing_of_ours_but_their_rule():
    graph = import_graph(PACKAGE)
    for module, targets in graph.items():
        if part_of(module) in LEAVES:
            assert {part_of(target) for target in targets} <= {part_of(module)} | ALLOWED[part_of(module)], module


def test_every_part_may_import_tags_but_constants_may_not(tmp_path):
    copy = tmp_path / "ner_imbalance"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    before = violations(copy)
    with (copy / "losses" / "focal.py").open("a", encoding="utf-8") as handle:
        handle.write("\nfrom ner_imbalance.tags import split_tag\n")
    assert violations(copy) == before
    with (copy / "constants.py").open("a", encoding="utf-8") as handle:
        handle.write("\nfrom ner_imbalance.tags import split_tag\n")
    assert any(problem.startswith("import cycle:") for problem in violations(copy))
