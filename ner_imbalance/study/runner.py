"""Running the study: build and check each run's arguments, train the unfinished runs, resume, list the plan.

Runs happen in this process through `ner_imbalance.pipeline.run_experiment`, the code path of
`scripts/train_ner.py`. Each run trains for the fixed budget with no checkpoint and is scored on
the dev split at the end: the study reports the final model, not a best-of-epochs pick. A rerun
skips runs that have a record; a failing run leaves `<run_id>.error.txt` and the study goes on.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import shutil
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ner_imbalance.atomic import write_text_atomic
from ner_imbalance.study.grid import (
    STUDY_TRAINING_SETTINGS,
    RunSpec,
    StudyConfigError,
    SweepIncompleteError,
    canonical_settings,
    expand_study,
    load_study_config,
    uses_sweep,
)
from ner_imbalance.study.records import (
    DEFAULT_RESULTS_DIR,
    RunArguments,
    build_record,
    error_path,
    is_finished,
    load_records,
    write_record,
)

logger = logging.getLogger(__name__)

DEFAULT_CHECKPOINT_ROOT = Path("results/checkpoints")

RunFn = Callable[..., Mapping[str, Mapping[str, float]]]
StatisticsFn = Callable[[Any, int], dict[str, Any]]


@dataclass
class StudySummary:
    """Run ids by outcome, and the configs that could not be expanded yet."""

    finished: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    not_started: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)

    def extend(self, other: StudySummary) -> None:
        for name in ("finished", "skipped", "failed", "not_started", "blocked"):
            getattr(self, name).extend(getattr(other, name))


def load_study(
    path: str | os.PathLike, results_dir: str | os.PathLike = DEFAULT_RESULTS_DIR, only_dataset: str | None = None
) -> list[RunSpec]:
    """The runs of the config at `path`, resolved against the records in `results_dir`."""
    config = load_study_config(path)
    if only_dataset is not None and only_dataset not in config["datasets"]:
        return []
    specs = expand_study(config, load_records(results_dir) if uses_sweep(config) else None)
    return [spec for spec in specs if only_dataset is None or spec.dataset == only_dataset]


def build_arguments(spec: RunSpec, output_dir: str | os.PathLike) -> RunArguments:
    """The argument objects of one run, checked as `train_ner.py` checks them."""
    from ner_imbalance.arguments import (  # imported here: transformers is slow to import for a dry run
        DataArguments,
        LossArguments,
        ModelArguments,
        NerTrainingArguments,
        validate_arguments,
    )

    try:
        arguments = RunArguments(
            model=ModelArguments(**spec.model),
            data=DataArguments(**spec.data, entity_keep_ratio=spec.entity_keep_ratio),
            loss=LossArguments(loss=spec.loss, class_weights=spec.class_weights, **spec.hyperparameters),
            training=NerTrainingArguments(
                **spec.training, **STUDY_TRAINING_SETTINGS, output_dir=str(output_dir), seed=spec.seed
            ),
        )
        validate_arguments(arguments.model, arguments.data, arguments.loss)
    except (TypeError, ValueError, FileNotFoundError) as error:
        raise StudyConfigError(f"{spec.experiment} / {spec.run_id}: {error}") from error
    return arguments


def train_split_statistics(data_args: Any, seed: int) -> dict[str, Any]:
    """Size and entity-token share of the training split a run really trains on (after down-sampling)."""
    from ner_imbalance.data.corpus import load_word_corpus
    from ner_imbalance.data.stats import corpus_stats

    stats = corpus_stats(load_word_corpus(data_args, seed).splits["train"])
    ratio = stats["outside_to_entity_ratio"]
    return {
        "sentences": stats["sentences"],
        "tokens": stats["tokens"],
        "entities": stats["entities"],
        "entities_per_type": stats["entities_per_type"],
        "entity_token_share": 1.0 - stats["outside_share"],
        "outside_to_entity_ratio": ratio if ratio != float("inf") else None,
    }


def run_grid(
    specs: Sequence[RunSpec],
    results_dir: str | os.PathLike,
    execute: Callable[[RunSpec], dict[str, Any]],
    *,
    max_runs: int | None = None,
    fail_fast: bool = False,
    cleanup: Callable[[RunSpec], None] | None = None,
) -> StudySummary:
    """Run every spec without a record through `execute` (spec -> record) and write its record.

    A failing run writes its traceback to `<run_id>.error.txt` and the loop goes on (`fail_fast`
    re-raises). `max_runs` stops after that many newly finished runs. `cleanup` runs after each
    attempted run, once its record is written.
    """
    summary = StudySummary()
    todo = []
    for spec in specs:
        if is_finished(results_dir, spec.run_id):
            summary.skipped.append(spec.run_id)
        else:
            todo.append(spec)
    for position, spec in enumerate(todo, start=1):
        if max_runs is not None and len(summary.finished) >= max_runs:
            summary.not_started = [later.run_id for later in todo[position - 1 :]]
            break
        logger.info("[%d/%d] %s: running", position, len(todo), spec.run_id)
        started = time.monotonic()
        try:
            record = execute(spec)
            write_record(results_dir, record)
        except Exception:
            _write_error(results_dir, spec)
            summary.failed.append(spec.run_id)
            if fail_fast:
                raise
        else:
            error_path(results_dir, spec.run_id).unlink(missing_ok=True)
            summary.finished.append(spec.run_id)
            logger.info(
                "%s: done in %.0f s, dev F1 %.4f", spec.run_id, time.monotonic() - started, record["metrics"]["f1"]
            )
        finally:
            if cleanup is not None:
                cleanup(spec)
            gc.collect()
    return summary


def _write_error(results_dir: str | os.PathLike, spec: RunSpec) -> None:
    logger.exception("%s: failed; the study goes on", spec.run_id)
    write_text_atomic(
        error_path(results_dir, spec.run_id), f"{spec.experiment} / {spec.run_id}\n\n{traceback.format_exc()}"
    )


def run_study(
    specs: Sequence[RunSpec],
    results_dir: str | os.PathLike = DEFAULT_RESULTS_DIR,
    *,
    run_fn: RunFn | None = None,
    statistics_fn: StatisticsFn | None = train_split_statistics,
    checkpoint_root: str | os.PathLike = DEFAULT_CHECKPOINT_ROOT,
    keep_models: bool = False,
    max_runs: int | None = None,
    fail_fast: bool = False,
) -> StudySummary:
    """Run the unfinished specs in this process with `run_fn` (default: `pipeline.run_experiment`).

    The arguments of every unfinished run are built and checked first, so a typo in a config
    fails before hours of training. Each run trains in `checkpoint_root/<run_id>/`, deleted after
    its record is written unless `keep_models`.
    """
    if run_fn is None:
        from ner_imbalance.pipeline import run_experiment

        run_fn = run_experiment
    checkpoint_root = Path(checkpoint_root)
    for spec in specs:
        if not is_finished(results_dir, spec.run_id):
            build_arguments(spec, checkpoint_root / spec.run_id)
    statistics_cache: dict[str, dict[str, Any] | None] = {}

    def execute(spec: RunSpec) -> dict[str, Any]:
        arguments = build_arguments(spec, checkpoint_root / spec.run_id)
        train_set = json.dumps(
            canonical_settings([spec.dataset, spec.data, spec.entity_keep_ratio, spec.seed]), sort_keys=True
        )
        if train_set not in statistics_cache:
            statistics_cache[train_set] = (
                statistics_fn(arguments.data, spec.seed) if statistics_fn is not None else None
            )
        results = run_fn(*arguments)
        return build_record(spec, results, arguments, statistics_cache[train_set])

    def remove_scratch(spec: RunSpec) -> None:
        if not keep_models:
            shutil.rmtree(checkpoint_root / spec.run_id, ignore_errors=True)
        _free_accelerator_memory()

    return run_grid(specs, results_dir, execute, max_runs=max_runs, fail_fast=fail_fast, cleanup=remove_scratch)


def _free_accelerator_memory() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def run_configs(
    config_paths: Sequence[str | os.PathLike],
    results_dir: str | os.PathLike = DEFAULT_RESULTS_DIR,
    *,
    only_dataset: str | None = None,
    max_runs: int | None = None,
    **run_options: Any,
) -> StudySummary:
    """Run the configs one after the other (a sweep before the configs that use its winners).

    A config whose `from_sweep` entries cannot be resolved yet is reported in `blocked`.
    `run_options` go to `run_study`.
    """
    summary = StudySummary()
    for path in config_paths:
        try:
            specs = load_study(path, results_dir, only_dataset)
        except SweepIncompleteError as error:
            logger.warning("%s: %s", path, error)
            summary.blocked.append(f"{path}: {error}")
            continue
        remaining = None if max_runs is None else max_runs - len(summary.finished)
        summary.extend(run_study(specs, results_dir, max_runs=remaining, **run_options))
    return summary


def describe_plan(
    config_paths: Sequence[str | os.PathLike],
    results_dir: str | os.PathLike = DEFAULT_RESULTS_DIR,
    only_dataset: str | None = None,
) -> list[str]:
    """The `--dry-run` listing: one line per run (`<run_id>  done|todo`), then totals."""
    lines = []
    listed: set[str] = set()
    done = todo = 0
    for path in config_paths:
        try:
            specs = load_study(path, results_dir, only_dataset)
        except SweepIncompleteError as error:
            lines.append(f"# {path}: cannot be listed yet: {error}")
            continue
        lines.append(f"# {path}: {len(specs)} runs")
        for spec in specs:
            finished = is_finished(results_dir, spec.run_id)
            lines.append(
                f"{spec.run_id}  {'done' if finished else 'todo'}{_plan_note(spec, results_dir, listed, finished)}"
            )
            if spec.run_id not in listed:
                done, todo = done + finished, todo + (not finished)
                listed.add(spec.run_id)
    lines.append(f"# total: {done + todo} distinct runs, {done} done, {todo} todo")
    return lines


def _plan_note(spec: RunSpec, results_dir: str | os.PathLike, listed: set[str], finished: bool) -> str:
    if spec.run_id in listed:
        return " (shared with an earlier config)"
    if not finished and error_path(results_dir, spec.run_id).is_file():
        return " (last attempt failed)"
    return ""
