"""Running the study: build and check each run's arguments, train the unfinished runs, resume, list the plan.

Runs happen in this process through `ner_imbalance.training.run.run_experiment`, the code path of
`scripts/train_ner.py`. Each run trains for the fixed budget with no checkpoint, evaluates dev
after every epoch for its learning curve, and is scored on the dev split at the end: the study
reports the final model, not a best-of-epochs pick. Its word-level dev logits go beside the
record. A rerun skips runs that have a record; a failing run leaves `<run_id>.error.txt` and the
study goes on.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import logging
import math
import os
import shutil
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ner_imbalance.calibration import WORD_LOGITS_FILE
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
    DevOutputs,
    MissingDevOutputsError,
    RunArguments,
    build_record,
    dev_outputs_path,
    error_path,
    is_finished,
    load_records,
    tag_ids,
    write_dev_outputs,
    write_record,
)
from ner_imbalance.utils.atomic import write_text_atomic

logger = logging.getLogger(__name__)

DEFAULT_CHECKPOINT_ROOT = Path("results/checkpoints")
"""What a run (`training.run`) writes for the dev split: `logits` [num_words, C], `sentence_lengths`, `labels`."""
PREDICTIONS_FILE = "predictions_validation.conll"

RunFn = Callable[..., Mapping[str, Mapping[str, float]]]
StatisticsFn = Callable[[Any, int], dict[str, Any]]
TrainSizeFn = Callable[[Any, Any], int]


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
    """The argument objects of one run, built and checked once, as `train_ner.py` checks them.

    An `equal_steps` or sampling run gets its `max_steps` when it starts (`run_study`): the budget
    in optimizer steps needs the full training set's size.
    """
    from ner_imbalance.config.arguments import (  # imported here: transformers is slow to import for a dry run
        DataArguments,
        LossArguments,
        ModelArguments,
        NerTrainingArguments,
        validate_arguments,
    )

    if spec.equal_steps and "max_steps" in spec.training:
        raise StudyConfigError(f"{spec.experiment}: `equal_steps` derives max_steps; do not set it in `training`")
    try:
        arguments = RunArguments(
            model=ModelArguments(**spec.model),
            data=DataArguments(**spec.data, **spec.sampling, entity_keep_ratio=spec.entity_keep_ratio),
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


def full_train_windows(model_args: Any, data_args: Any) -> int:
    """Number of training windows of the full training set (keep ratio 1) of a dataset."""
    from transformers import AutoTokenizer

    from ner_imbalance.training.corpus import prepare_corpus
    from ner_imbalance.training.run import packaged_model_path

    tokenizer = AutoTokenizer.from_pretrained(
        model_args.tokenizer_name or model_args.model_name_or_path or packaged_model_path()
    )
    full = dataclasses.replace(data_args, entity_keep_ratio=1.0)
    return len(prepare_corpus(full, tokenizer, seed=0).windows["train"])


def optimizer_steps_for(num_windows: int, training_args: Any) -> int:
    """Optimizer steps of the budget in epochs on `num_windows` windows, counted as the Trainer counts them."""
    batches = math.ceil(num_windows / (training_args.per_device_train_batch_size * training_args.world_size))
    per_epoch = max(math.ceil(batches / training_args.gradient_accumulation_steps), 1)
    return math.ceil(training_args.num_train_epochs * per_epoch)


def store_dev_outputs(output_dir: str | os.PathLike, results_dir: str | os.PathLike, run_id: str) -> str:
    """Keep the run's word-level dev logits, with gold and predicted tags, as `<run_id>.logits.npz`.

    Returns the file name. A run writes the logits whenever it evaluates a validation
    split, so their absence is an error: the run gets no record.
    """
    from ner_imbalance.evaluation import read_predictions

    logits_path = Path(output_dir) / WORD_LOGITS_FILE
    if not logits_path.is_file():
        raise MissingDevOutputsError(f"{logits_path}: run {run_id} wrote no word-level dev logits")
    with np.load(logits_path) as stored:
        logits, lengths = stored["logits"], stored["sentence_lengths"]
        labels = [str(label) for label in stored["labels"]]
    _tokens, gold, predicted = read_predictions(Path(output_dir) / PREDICTIONS_FILE)
    outputs = DevOutputs(logits, tag_ids(gold, labels), tag_ids(predicted, labels), lengths, labels)
    return write_dev_outputs(dev_outputs_path(results_dir, run_id), outputs).name


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
    train_size_fn: TrainSizeFn = full_train_windows,
    checkpoint_root: str | os.PathLike = DEFAULT_CHECKPOINT_ROOT,
    keep_models: bool = False,
    max_runs: int | None = None,
    fail_fast: bool = False,
) -> StudySummary:
    """Run the unfinished specs in this process with `run_fn` (default: `training.run.run_experiment`).

    The arguments of every unfinished run are built and checked first, so a typo in a config
    fails before hours of training. Each run trains in `checkpoint_root/<run_id>/`, deleted after
    its record is written unless `keep_models`. `run_fn` gets the study's `LearningCurveCallback`
    as `callbacks=[...]`; `train_size_fn` counts the full training set's windows of an
    `equal_steps` run.
    """
    from ner_imbalance.study.curves import LearningCurveCallback

    if run_fn is None:
        from ner_imbalance.training.run import run_experiment

        run_fn = run_experiment
    checkpoint_root = Path(checkpoint_root)
    arguments_of = {
        spec.run_id: build_arguments(spec, checkpoint_root / spec.run_id)
        for spec in specs
        if not is_finished(results_dir, spec.run_id)
    }
    statistics_cache: dict[str, dict[str, Any] | None] = {}
    windows_cache: dict[str, int] = {}

    def execute(spec: RunSpec) -> dict[str, Any]:
        output_dir = checkpoint_root / spec.run_id
        # The scratch folder of a run without a record is what an interrupted attempt left: the
        # study owns it, and a run refuses a non-empty output folder, so start it afresh.
        shutil.rmtree(output_dir, ignore_errors=True)
        arguments = arguments_of[spec.run_id]
        if spec.steps_from_full_set and "max_steps" not in spec.training:
            dataset = json.dumps(canonical_settings([spec.dataset, spec.data]), sort_keys=True)
            if dataset not in windows_cache:
                windows_cache[dataset] = train_size_fn(arguments.model, arguments.data)
            # The budget in steps is known only now; the Trainer reads max_steps when it trains.
            arguments.training.max_steps = optimizer_steps_for(windows_cache[dataset], arguments.training)
        train_set = json.dumps(
            canonical_settings([spec.dataset, spec.data, spec.entity_keep_ratio, spec.seed]), sort_keys=True
        )
        if train_set not in statistics_cache:
            statistics_cache[train_set] = (
                statistics_fn(arguments.data, spec.seed) if statistics_fn is not None else None
            )
        curve = LearningCurveCallback()
        results = run_fn(*arguments, callbacks=[curve])
        return build_record(
            spec,
            results,
            arguments,
            statistics_cache[train_set],
            learning_curve=curve.points,
            loss_shares=curve.loss_shares,
            optimizer_steps=curve.optimizer_steps,
            dev_outputs=store_dev_outputs(output_dir, results_dir, spec.run_id),
        )

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
    """The `--dry_run` listing: one line per run (`<run_id>  done|todo`), then totals."""
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
