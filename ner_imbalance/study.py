"""The loss study: a grid of fine-tuning runs, one JSON record per finished run, resumable.

A study config (`configs/study/*.yaml`) names datasets, entity keep ratios, loss settings and
seeds; `expand_study` turns it into `RunSpec`s, and `run_study` runs them in this process through
`ner_imbalance.pipeline.run_experiment` (the code path of `scripts/train_ner.py`).

Config keys:

- `name` (required): the experiment name, stored in each record it produces (informational).
- `title`, `section` (`sweep`, `comparison` or `imbalance`): how `reporting` presents the grid;
  `section` defaults to `imbalance` for more than one keep ratio, else `comparison`.
- `model`: `ModelArguments` fields (default: the packaged MiniLM).
- `training`: `NerTrainingArguments` fields shared by every run: the training budget.
- `datasets`: name -> `DataArguments` fields, plus an optional `training` mapping that overrides
  the shared budget for that dataset.
- `seeds`, `entity_keep_ratios` (default `[1.0]`).
- `losses`: a list of entries `{loss: NAME, <hyperparameter>: value or list, class_weights: ...}`,
  each expanded as the product of its lists; or `{loss: NAME, from_sweep: best}`, the setting
  of that loss with the best mean dev `sweep_metric` (default `f1`) in the finished runs of the
  config named by the top-level key `sweep`.

Run identity: a run is its settings, not its experiment. The run id is readable and ends with a
hash of every setting that can change the result (dataset files and options, budget, model, keep
ratio, loss, hyperparameters, class weights), so two experiments that ask for the same run share
one record instead of training twice, while a different budget never reuses a record. Give every
hyperparameter of a loss explicitly in configs: an omitted one takes the library default, which
may change; the effective values are stored in each record (`loss_arguments`).

Each run trains for the fixed budget with no evaluation or checkpoint during training and is
scored once on the dev split at the end: the study reports the final model, not a best-of-epochs
pick. The record exists only once the run finished (written atomically), so a rerun skips it; a
failing run leaves `<run_id>.error.txt` and the study goes on.
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import importlib.metadata
import itertools
import json
import logging
import os
import platform
import re
import shutil
import statistics
import subprocess
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from ner_imbalance.atomic import write_json_atomic, write_text_atomic
from ner_imbalance.constants import TYPE_METRICS

logger = logging.getLogger(__name__)

DEFAULT_RESULTS_DIR = Path("results/runs")
DEFAULT_CHECKPOINT_ROOT = Path("results/checkpoints")
SECTION_KINDS = ("sweep", "comparison", "imbalance")
CONFIG_KEYS = frozenset(
    {
        "name",
        "title",
        "section",
        "model",
        "training",
        "datasets",
        "seeds",
        "entity_keep_ratios",
        "losses",
        "sweep",
        "sweep_metric",
    }
)
# Training settings every study run gets: train on the fixed budget, score dev once at the end.
STUDY_TRAINING_SETTINGS: dict[str, Any] = {
    "do_train": True,
    "do_eval": True,
    "do_predict": False,
    "eval_strategy": "no",
    "save_strategy": "no",
    "load_best_model_at_end": False,
    "report_to": "none",
    "disable_tqdm": True,
}
RESERVED_TRAINING_KEYS = frozenset(STUDY_TRAINING_SETTINGS) | {"output_dir", "seed"}
BUDGET_FIELDS = (
    "num_train_epochs",
    "max_steps",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "learning_rate",
    "warmup_steps",
    "weight_decay",
    "train_sampling_strategy",
)
RUNTIME_METRICS = frozenset({"runtime", "samples_per_second", "steps_per_second", "epoch"})
RECORD_SUFFIX = ".json"
ERROR_SUFFIX = ".error.txt"


class StudyConfigError(ValueError):
    """A study config that cannot be expanded: one line says what to fix."""


class SweepIncompleteError(StudyConfigError):
    """A `from_sweep` entry whose sweep has unfinished runs: run the sweep first."""


@dataclass(frozen=True)
class RunSpec:
    """Everything that defines one run of the study."""

    experiment: str
    dataset: str
    data: dict[str, Any]
    training: dict[str, Any]
    model: dict[str, Any]
    entity_keep_ratio: float
    loss: str
    hyperparameters: dict[str, Any]
    class_weights: str
    seed: int

    @property
    def label(self) -> str:
        """The loss setting in words, e.g. `focal gamma=2`."""
        return loss_label(self.loss, self.hyperparameters, self.class_weights)

    @property
    def setting_id(self) -> str:
        """The run id without the seed: what the seeds of one table cell share."""
        readable = "__".join(
            [
                self.dataset,
                f"keep{format_value(self.entity_keep_ratio)}",
                loss_label(self.loss, self.hyperparameters, self.class_weights, "_"),
            ]
        )
        return f"{_file_safe(readable)}__{self._settings_digest()}"

    @property
    def run_id(self) -> str:
        """Readable, deterministic and independent of the experiment name."""
        return f"{self.setting_id}__seed{self.seed}"

    def _settings_digest(self) -> str:
        settings = {
            "dataset": self.dataset,
            "data": self.data,
            "training": self.training,
            "model": self.model,
            "entity_keep_ratio": self.entity_keep_ratio,
            "loss": self.loss,
            "hyperparameters": self.hyperparameters,
            "class_weights": self.class_weights,
        }
        canonical = json.dumps(_canonical(settings), sort_keys=True)
        return hashlib.sha1(canonical.encode("utf-8")).hexdigest()[:8]


class RunArguments(NamedTuple):
    """The four argument objects `run_experiment` takes, in its order."""

    model: Any
    data: Any
    loss: Any
    training: Any


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


RunFn = Callable[..., Mapping[str, Mapping[str, float]]]
StatisticsFn = Callable[[Any, int], dict[str, Any]]


def format_value(value: Any) -> str:
    """Numbers as `%g` (2.0 -> `2`, 0.75 -> `0.75`), anything else as `str`."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return format(value, "g")
    return str(value)


def loss_label(loss: str, hyperparameters: Mapping[str, Any], class_weights: str = "none", separator: str = " ") -> str:
    """`focal gamma=2`, `ce weights=sqrt_inverse_frequency`: a loss setting in one line."""
    parts = [loss] + [f"{name}={format_value(value)}" for name, value in sorted(hyperparameters.items())]
    if class_weights != "none":
        parts.append(f"weights={class_weights}")
    return separator.join(parts)


def _file_safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=-]", "-", text)


def _canonical(value: Any) -> Any:
    """Numbers as floats so that `gamma: 2` and `gamma: 2.0` name the same run."""
    if isinstance(value, Mapping):
        return {str(key): _canonical(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(item) for item in value]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return value


# Configs and grid expansion


def load_study_config(path: str | os.PathLike) -> dict[str, Any]:
    """Read a study config and check its shape (not yet the argument names: see `build_arguments`)."""
    path = Path(path)
    if not path.is_file():
        raise StudyConfigError(f"study config not found: {path}")
    config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(config, dict):
        raise StudyConfigError(f"{path}: a study config must be a mapping")
    unknown = sorted(set(config) - CONFIG_KEYS)
    if unknown:
        raise StudyConfigError(f"{path}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(CONFIG_KEYS))}")
    for key in ("name", "datasets", "seeds", "losses"):
        if not config.get(key):
            raise StudyConfigError(f"{path}: `{key}` is required")
    if not isinstance(config["datasets"], Mapping) or not isinstance(config["seeds"], list):
        raise StudyConfigError(f"{path}: `datasets` must be a mapping of names to settings and `seeds` a list")
    if section_kind(config) not in SECTION_KINDS:
        raise StudyConfigError(f"{path}: `section` must be one of {', '.join(SECTION_KINDS)}")
    return config


def section_kind(config: Mapping[str, Any]) -> str:
    """How a grid is reported: the config's `section`, else by its number of keep ratios."""
    return config.get("section") or ("imbalance" if len(config.get("entity_keep_ratios", [1.0])) > 1 else "comparison")


def expand_study(config: Mapping[str, Any], records: Mapping[str, dict] | None = None) -> list[RunSpec]:
    """The runs of a config, in the order to run them: seed, then dataset, keep ratio, loss setting.

    Seeds are the outer loop so that an interrupted study already covers every cell once.
    `records` (run id -> record) resolve `from_sweep` entries; duplicates are dropped.
    """
    name = str(config["name"])
    settings = list(_loss_settings(config, records or {}))
    shared_training = dict(config.get("training") or {})
    datasets = {
        dataset: _dataset_settings(dataset, entry, shared_training) for dataset, entry in config["datasets"].items()
    }
    specs: dict[str, RunSpec] = {}
    for seed, (dataset, (data, training)), ratio, (loss, hyperparameters, class_weights) in itertools.product(
        config["seeds"], datasets.items(), config.get("entity_keep_ratios", [1.0]), settings
    ):
        spec = RunSpec(
            experiment=name,
            dataset=dataset,
            data=data,
            training=training,
            model=dict(config.get("model") or {}),
            entity_keep_ratio=float(ratio),
            loss=loss,
            hyperparameters=hyperparameters,
            class_weights=class_weights,
            seed=int(seed),
        )
        specs.setdefault(spec.run_id, spec)
    return list(specs.values())


def _dataset_settings(dataset: str, entry: Mapping[str, Any], shared_training: Mapping[str, Any]) -> tuple[dict, dict]:
    if not isinstance(entry, Mapping):
        raise StudyConfigError(f"dataset {dataset}: expected a mapping of DataArguments fields")
    data = {key: value for key, value in entry.items() if key != "training"}
    training = {**shared_training, **(entry.get("training") or {})}
    reserved = sorted(RESERVED_TRAINING_KEYS & set(training))
    if reserved:
        raise StudyConfigError(f"dataset {dataset}: {', '.join(reserved)} are set by the study, not by configs")
    if "entity_keep_ratio" in data:
        raise StudyConfigError(f"dataset {dataset}: give keep ratios in `entity_keep_ratios`, not per dataset")
    return data, training


LossSetting = tuple[str, dict[str, Any], str]


def _loss_settings(config: Mapping[str, Any], records: Mapping[str, dict]) -> Iterable[LossSetting]:
    for entry in config["losses"]:
        if not isinstance(entry, Mapping) or "loss" not in entry:
            raise StudyConfigError(f"{config['name']}: each `losses` entry needs a `loss`, got {entry!r}")
        if "from_sweep" in entry:
            yield _setting_from_sweep(config, entry, records)
        else:
            yield from _expand_loss_entry(entry)


def _expand_loss_entry(entry: Mapping[str, Any]) -> Iterable[LossSetting]:
    options = {key: value if isinstance(value, list) else [value] for key, value in entry.items() if key != "loss"}
    options.setdefault("class_weights", ["none"])
    names = list(options)
    for values in itertools.product(*options.values()):
        chosen = dict(zip(names, values))
        class_weights = str(chosen.pop("class_weights"))
        yield str(entry["loss"]), chosen, class_weights


def _setting_from_sweep(
    config: Mapping[str, Any], entry: Mapping[str, Any], records: Mapping[str, dict]
) -> LossSetting:
    loss = str(entry["loss"])
    if set(entry) != {"loss", "from_sweep"} or entry["from_sweep"] != "best":
        raise StudyConfigError(f"{config['name']}: write `{{loss: {loss}, from_sweep: best}}` with no other keys")
    if not config.get("sweep"):
        raise StudyConfigError(f"{config['name']}: `from_sweep` needs a top-level `sweep: <sweep config path>`")
    sweep = load_study_config(config["sweep"])
    if any("from_sweep" in sweep_entry for sweep_entry in sweep["losses"]):
        raise StudyConfigError(f"{config['sweep']}: a sweep cannot itself use `from_sweep`")
    if len(sweep["datasets"]) != 1 or len(sweep.get("entity_keep_ratios", [1.0])) != 1:
        raise StudyConfigError(f"{config['sweep']}: a sweep used by `from_sweep` needs one dataset and one keep ratio")
    sweep_specs = [spec for spec in expand_study(sweep) if spec.loss == loss]
    if not sweep_specs:
        raise StudyConfigError(f"{config['sweep']}: the sweep has no `{loss}` runs to choose from")
    missing = [spec.run_id for spec in sweep_specs if spec.run_id not in records]
    if missing:
        raise SweepIncompleteError(
            f"{config['name']}: `{loss}` from the sweep {sweep['name']}: {len(missing)} of {len(sweep_specs)} "
            f"sweep runs are not finished (e.g. {missing[0]}); run {config['sweep']} first"
        )
    chosen = best_settings([records[spec.run_id] for spec in sweep_specs], metric=config.get("sweep_metric", "f1"))[
        loss
    ]
    class_weights = str(chosen.pop("class_weights", "none"))
    return loss, chosen, class_weights


def best_settings(
    records: Iterable[Mapping[str, Any]], dataset: str | None = None, metric: str = "f1"
) -> dict[str, dict[str, Any]]:
    """Per loss, the setting with the highest mean dev `metric` over its seeds.

    Returns `{loss: {hyperparameter: value, ..., "class_weights": ...}}` (class weights only when
    used), the form of a `losses` entry. Only records of `dataset` count when it is given; a tie
    goes to the setting seen first.
    """
    scores: dict[str, list[float]] = {}
    settings: dict[str, dict[str, Any]] = {}
    for record in records:
        if dataset is not None and record["dataset"] != dataset:
            continue
        scores.setdefault(record["setting_id"], []).append(float(record["metrics"][metric]))
        settings.setdefault(record["setting_id"], record)
    best: dict[str, tuple[float, dict[str, Any]]] = {}
    for setting_id, values in scores.items():
        record = settings[setting_id]
        mean = statistics.fmean(values)
        if record["loss"] not in best or mean > best[record["loss"]][0]:
            chosen = dict(record["hyperparameters"])
            if record["class_weights"] != "none":
                chosen["class_weights"] = record["class_weights"]
            best[record["loss"]] = (mean, chosen)
    return {loss: chosen for loss, (_mean, chosen) in best.items()}


def load_study(
    path: str | os.PathLike, results_dir: str | os.PathLike = DEFAULT_RESULTS_DIR, only_dataset: str | None = None
) -> list[RunSpec]:
    """The runs of the config at `path`, resolved against the records in `results_dir`."""
    config = load_study_config(path)
    if only_dataset is not None and only_dataset not in config["datasets"]:
        return []
    specs = expand_study(config, load_records(results_dir) if _uses_sweep(config) else None)
    return [spec for spec in specs if only_dataset is None or spec.dataset == only_dataset]


def _uses_sweep(config: Mapping[str, Any]) -> bool:
    return any(isinstance(entry, Mapping) and "from_sweep" in entry for entry in config["losses"])


# Records


def record_path(results_dir: str | os.PathLike, run_id: str) -> Path:
    return Path(results_dir) / f"{run_id}{RECORD_SUFFIX}"


def error_path(results_dir: str | os.PathLike, run_id: str) -> Path:
    return Path(results_dir) / f"{run_id}{ERROR_SUFFIX}"


def is_finished(results_dir: str | os.PathLike, run_id: str) -> bool:
    """A record exists only for a finished run."""
    return record_path(results_dir, run_id).is_file()


def write_record(results_dir: str | os.PathLike, record: Mapping[str, Any]) -> Path:
    """Write `<run_id>.json` atomically: a crash leaves either the whole record or none."""
    path = record_path(results_dir, record["run_id"])
    write_json_atomic(path, record, sort_keys=True)
    return path


def load_records(results_dir: str | os.PathLike = DEFAULT_RESULTS_DIR) -> dict[str, dict[str, Any]]:
    """Run id -> record for every record in `results_dir` (none if the folder does not exist)."""
    records = {}
    for path in sorted(Path(results_dir).glob(f"*{RECORD_SUFFIX}")):
        record = json.loads(path.read_text(encoding="utf-8"))
        records[record["run_id"]] = record
    return records


def dev_metrics(eval_metrics: Mapping[str, float], prefix: str = "eval_") -> dict[str, Any]:
    """Trainer metrics without the prefix and runtimes; per-type scores under `per_type`.

    An entity type is any name with a `<type>_support` metric, so types with `-` or `_` in
    their names (creative-work) are kept whole.
    """
    metrics = {key[len(prefix) :]: value for key, value in eval_metrics.items() if key.startswith(prefix)}
    entity_types = sorted(key[: -len("_support")] for key in metrics if key.endswith("_support"))
    per_type: dict[str, dict[str, float]] = {}
    for entity_type in entity_types:
        per_type[entity_type] = {
            name: metrics.pop(f"{entity_type}_{name}") for name in TYPE_METRICS if f"{entity_type}_{name}" in metrics
        }
    overall = {key: value for key, value in metrics.items() if key not in RUNTIME_METRICS}
    return {**overall, "per_type": per_type}


def build_record(
    spec: RunSpec,
    results: Mapping[str, Mapping[str, float]],
    arguments: RunArguments,
    train_statistics: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON record of a finished run: its settings, dev metrics, timings and environment."""
    if "eval" not in results:
        raise ValueError(
            f"{spec.run_id}: the run returned no dev metrics ('eval'); does the dataset name a validation_file?"
        )
    training = {name: getattr(arguments.training, name) for name in BUDGET_FIELDS}
    return {
        "run_id": spec.run_id,
        "setting_id": spec.setting_id,
        "experiment": spec.experiment,
        "dataset": spec.dataset,
        "entity_keep_ratio": spec.entity_keep_ratio,
        "loss": spec.loss,
        "hyperparameters": spec.hyperparameters,
        "class_weights": spec.class_weights,
        "seed": spec.seed,
        "data": spec.data,
        "model": spec.model,
        "training": {**training, **spec.training, "max_seq_length": arguments.data.max_seq_length},
        "loss_arguments": dataclasses.asdict(arguments.loss),
        "metrics": dev_metrics(results["eval"]),
        "train_runtime_s": results.get("train", {}).get("train_runtime"),
        "eval_runtime_s": results["eval"].get("eval_runtime"),
        "train_statistics": train_statistics,
        "git_commit": git_commit(),
        "versions": library_versions(),
        "machine": machine_description(),
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def git_commit() -> str | None:
    """`git rev-parse HEAD` of the working directory, or None outside a checkout."""
    try:
        completed = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return completed.stdout.strip() or None


def library_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for package in ("torch", "transformers", "datasets", "ner_imbalance"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def machine_description() -> dict[str, Any]:
    import torch

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    return {"processor": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(), "device": device}


# Running


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
        train_set = json.dumps(_canonical([spec.dataset, spec.data, spec.entity_keep_ratio, spec.seed]), sort_keys=True)
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
