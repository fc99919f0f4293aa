"""The docs name only what exists: every dotted name of the package and every project file path that
README.md and docs/*.md write in backticks resolves.

A name resolves when its module imports and each attribute is there; a method or field counts only
on the class that defines it (`Trainer.compute_loss` is not `ImbalanceTrainer.compute_loss`). Names
of other libraries (`transformers.Trainer`), output files (`config.json`) and paths outside the
project (`../shared/...`) are not checked.
"""

from __future__ import annotations

import importlib
import inspect
import re
import subprocess
from pathlib import Path

import pytest
from tiny_models import REPO

PACKAGE = "ner_imbalance"
DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
CODE_SPAN = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
DOTTED_NAME = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+$")
PROJECT_FILE_SUFFIXES = (".py", ".md", ".yaml", ".yml", ".toml", ".cfg")
PROJECT_TOP_FOLDERS = ("ner_imbalance", "scripts", "configs", "docs", "tests", "benchmarks", "results")
PROJECT_PATH_PREFIXES = tuple(f"{top}/" for top in PROJECT_TOP_FOLDERS)
FILE_NAME_SUFFIXES = (".json", ".jsonl", ".npz", ".pt", ".txt", ".html", ".conll", ".onnx", ".safetensors", ".csv")
"""Names of files a run or a command writes (`config.json`): not module paths, and not the project's files."""


def _code_spans(document: Path) -> list[tuple[int, str]]:
    """(line number, text) of every inline code span outside fenced blocks."""
    spans, fenced = [], False
    for number, line in enumerate(document.read_text(encoding="utf-8").splitlines(), start=1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if not fenced:
            spans += [(number, match.group(1).strip()) for match in CODE_SPAN.finditer(line)]
    return spans


def _package_names() -> set[str]:
    """The package's subpackages and top-level modules, and the names it exports."""
    package = importlib.import_module(PACKAGE)
    folder = Path(package.__file__).parent
    modules = {path.stem for path in folder.glob("*.py") if path.stem != "__init__"}
    subpackages = {path.parent.name for path in folder.glob("*/__init__.py")}
    return modules | subpackages | set(getattr(package, "__all__", ()))


def _resolve(dotted: str) -> str | None:
    """None when `dotted` (`ner_imbalance.x.y`) resolves, else what is missing."""
    parts = dotted.split(".")
    module, index = None, len(parts)
    while index > 0:
        try:
            module = importlib.import_module(".".join(parts[:index]))
            break
        except ModuleNotFoundError as error:
            if error.name is None or not ".".join(parts[:index]).startswith(error.name):
                raise
            index -= 1
    owner: object = module
    for part in parts[index:]:
        if inspect.isclass(owner):
            defined = vars(owner).keys() | getattr(owner, "__annotations__", {}).keys()
            if part not in defined:
                return f"{owner.__qualname__} does not define {part}"
            owner = vars(owner).get(part, None)
            continue
        if not hasattr(owner, part):
            return f"{getattr(owner, '__name__', owner)} has no {part}"
        owner = getattr(owner, part)
    return None


def _dotted_problem(text: str, package_names: set[str]) -> str | None:
    name = re.sub(r"\(.*\)$", "", text)
    if not DOTTED_NAME.match(name) or name.endswith(PROJECT_FILE_SUFFIXES + FILE_NAME_SUFFIXES):
        return None
    first = name.split(".")[0]
    if first == PACKAGE:
        return _resolve(name)
    if first in package_names:
        return _resolve(f"{PACKAGE}.{name}")
    return None


def _path_problem(text: str) -> str | None:
    if " " in text or text.startswith(("../", "-", "/", "~")) or "<" in text or "{" in text:
        return None
    path = text.rstrip("/").split("::")[0]
    if path.split("/")[0].isupper():  # a placeholder folder: `OUTPUT_DIR/trials.md`
        return None
    if not path.endswith(PROJECT_FILE_SUFFIXES) and not path.startswith(PROJECT_PATH_PREFIXES):
        return None
    problem = _missing(path)
    return None if problem is None or _ignored_by_git(path) else problem  # `results/cache/`: written, not cloned


def _missing(path: str) -> str | None:
    """What is missing of a project path, or None when it is there."""
    if "/" not in path:  # a bare file name: somewhere in the project
        found = [found for top in PROJECT_TOP_FOLDERS for found in (REPO / top).rglob(path)]
        return None if found or (REPO / path).exists() else f"no file {path} in the project"
    if "*" in path:
        return None if any(REPO.glob(path)) else f"no file matches {path}"
    candidates = [REPO / path, REPO / PACKAGE / path, REPO / "tests" / path]
    return None if any(candidate.exists() for candidate in candidates) else f"no file {path}"


def _ignored_by_git(path: str) -> bool:
    """Whether git ignores `path` (a folder a command writes, such as `results/cache/`: never in a clone)."""
    # `git check-ignore` reads the path as written: a pattern ending in / matches only a path ending in /.
    return any(
        subprocess.run(["git", "check-ignore", "-q", name], cwd=REPO, check=False).returncode == 0
        for name in (path, f"{path}/")
    )


def _problems(document: Path, package_names: set[str]) -> list[str]:
    problems = []
    for line, text in _code_spans(document):
        problem = _dotted_problem(text, package_names) or _path_problem(text)
        if problem:
            problems.append(f"{document.name}:{line}: `{text}`: {problem}")
    return problems


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.name)
def test_every_name_and_path_the_docs_give_exists(document):
    assert _problems(document, _package_names()) == []


def test_the_check_catches_a_missing_method_a_missing_module_and_a_missing_file(tmp_path):
    document = tmp_path / "bad.md"
    document.write_text(
        "`ImbalanceTrainer.compute_loss` and `ImbalanceTrainer.loss_from_outputs`, `training.no_such_module.x`,\n"
        "`scripts/no_such_script.py`, `transformers.Trainer.compute_loss`, `config.json`, `losses/focal.py`\n",
        encoding="utf-8",
    )
    problems = [problem.split(": ", 1)[1] for problem in _problems(document, _package_names())]
    assert problems == [
        "`ImbalanceTrainer.compute_loss`: ImbalanceTrainer does not define compute_loss",
        "`training.no_such_module.x`: ner_imbalance.training has no no_such_module",
        "`scripts/no_such_script.py`: no file scripts/no_such_script.py",
    ]
