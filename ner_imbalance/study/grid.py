"""Study configs and their grids: a config -> the `RunSpec`s to run, with `from_sweep` resolved.

Config keys:

- `name` (required): the experiment name, stored in each record it produces (informational).
- `title`, `section` (`sweep`, `comparison`, `imbalance`, `convergence` or `loss_shares`): how the
  report presents it; `section` defaults to `imbalance` for more than one keep ratio, else
  `comparison`. A `loss_shares` section is a comparison whose plot is the share of the training
  loss from `O` over training (from the records' `loss_shares`).
- `model`: `ModelArguments` fields (default: the packaged MiniLM).
- `training`: `NerTrainingArguments` fields shared by every run: the training budget.
- `datasets`: name -> `DataArguments` fields, plus an optional `training` mapping that overrides
  the shared budget for that dataset.
- `seeds`, `entity_keep_ratios` (default `[1.0]`).
- `equal_steps` (default false): every keep ratio trains for the same number of optimizer steps,
  those of the full training set under the budget (`max_steps` is derived at run time and stored
  in the record), so that fewer entities no longer also means fewer updates. At keep ratio 1
  this is the plain budget, and the run shares its record with the same run without the option.
- `losses`: a list of entries `{loss: NAME, <hyperparameter>: value or list, class_weights: ...,
  sentence_sampling: ..., repeat_threshold: ..., augment: ..., augment_rate: ...}`, each expanded as
  the product of its lists (the sampling keys `SAMPLING_KEYS` and augmentation keys `AUGMENT_KEYS`
  are `DataArguments` fields: a remedy at the data level is a cell of its own, paired with the loss
  it trains; a run keeps them together as its `sampling`); or `{loss: NAME, from_sweep: best}`, the setting
  of that loss with the best mean dev `sweep_metric` (default `f1`) in the finished runs of the
  config named by the top-level key `sweep`.
- `calibration` (default none): the post-hoc decision-bias calibration modes (`outside`,
  `per_type`) the report gives beside the uncalibrated scores, 2-fold cross-fitted on dev from
  the word-level dev logits kept beside each record (`crossfit`). It changes no run.
- `paired_with` (default none): what the config's cells change relative to runs found anywhere in
  the study, `{learning_rate: 5.0e-5}` or `{augment: none}`; the report pairs each run with that
  counterpart of the same seed (`counterparts`). It changes no run.

Sentence sampling changes the length of an epoch (`data/sampling.py`), so a sampling run trains
for the optimizer steps of the same run without it: those of the full training set under the
budget, as `equal_steps` (below keep 1 a sampling run needs `equal_steps`). Augmentation alone
keeps the epoch's length (`data/augmentation.py`) and its budget.

Run identity: a run is its settings, not its experiment. The run id is readable and ends with a
hash of every setting that can change the result (dataset files and options, budget, model, keep
ratio, loss, hyperparameters, class weights, sampling), so two experiments that ask for the same run share
one record instead of training twice, while a different budget never reuses a record. Give every
hyperparameter of a loss explicitly in configs: an omitted one takes the library default, which
may change; the effective values are stored in each record (`loss_arguments`).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ner_imbalance.constants import ARGMAX, CALIBRATION_MODES, NO_AUGMENTATION, NO_SAMPLING

SECTION_KINDS = ("sweep", "comparison", "imbalance", "convergence", "loss_shares")
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
        "equal_steps",
        "calibration",
        "paired_with",
    }
)
# Training settings every study run gets: train on the fixed budget, evaluate dev after every epoch
# for the learning curve, keep no checkpoint, score the final model.
STUDY_TRAINING_SETTINGS: dict[str, Any] = {
    "do_train": True,
    "do_eval": True,
    "do_predict": False,
    "eval_strategy": "epoch",
    "save_strategy": "no",
    "load_best_model_at_end": False,
    "report_to": "none",
    "disable_tqdm": True,
    # Records keep each word's argmax and its logits; the report applies every decoding to the logits
    # (study/decoding.py), so runs of any session stay comparable.
    "decoding": ARGMAX,
}
RESERVED_TRAINING_KEYS = frozenset(STUDY_TRAINING_SETTINGS) | {"output_dir", "seed"}
# The `DataArguments` fields a `losses` entry may set: sentence sampling and augmentation are remedies of their own.
SAMPLING_KEYS = ("sentence_sampling", "repeat_threshold")
AUGMENT_KEYS = ("augment", "augment_rate")
# What a config's `paired_with` may change back (`counterparts.counterpart_settings`): a learning
# rate, or `augment: none`.
PAIRED_WITH_KEYS = ("learning_rate", "augment")


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
    equal_steps: bool = False
    sampling: dict[str, Any] = field(default_factory=dict)  # SAMPLING_KEYS, AUGMENT_KEYS set by the config

    @property
    def samples_sentences(self) -> bool:
        """Whether the run re-samples its training sentences (`sentence_sampling`)."""
        return "sentence_sampling" in self.sampling

    @property
    def steps_from_full_set(self) -> bool:
        """Whether this run's `max_steps` is derived from the full training set: `equal_steps` below keep 1,
        or sentence sampling (its epochs have another length, so the budget is fixed in steps)."""
        return (self.equal_steps and self.entity_keep_ratio < 1.0) or self.samples_sentences

    @property
    def label(self) -> str:
        """The setting in words, e.g. `focal gamma=2`, `ce sampling=repeat_factor t=0.3`."""
        return loss_label(self.loss, self.hyperparameters, self.class_weights, sampling=self.sampling)

    @property
    def setting_id(self) -> str:
        """The run id without the seed: what the seeds of one table cell share."""
        readable = "__".join(
            [
                self.dataset,
                f"keep{format_value(self.entity_keep_ratio)}",
                loss_label(self.loss, self.hyperparameters, self.class_weights, "_", self.sampling),
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
        if self.equal_steps and self.entity_keep_ratio < 1.0:  # only then: keep 1 shares the plain run's record
            settings["equal_steps"] = True
        if self.sampling:  # only then: the ids of the runs without sampling stay
            settings["sampling"] = self.sampling
        canonical = json.dumps(canonical_settings(settings), sort_keys=True)
        return hashlib.sha1(canonical.encode("utf-8")).hexdigest()[:8]


def format_value(value: Any) -> str:
    """Numbers as `%g` (2.0 -> `2`, 0.75 -> `0.75`), anything else as `str`."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return format(value, "g")
    return str(value)


def loss_label(
    loss: str,
    hyperparameters: Mapping[str, Any],
    class_weights: str = "none",
    separator: str = " ",
    sampling: Mapping[str, Any] | None = None,
) -> str:
    """`focal gamma=2`, `ce weights=sqrt_inverse_frequency`, `ce sampling=repeat_factor t=0.3`,
    `ce augment=mention_replacement p=0.3 t=0.3`: a setting in one line."""
    parts = [loss] + [f"{name}={format_value(value)}" for name, value in sorted(hyperparameters.items())]
    if class_weights != "none":
        parts.append(f"weights={class_weights}")
    sampling = sampling or {}
    if "sentence_sampling" in sampling:
        parts.append(f"sampling={sampling['sentence_sampling']}")
    if "augment" in sampling:
        parts += [f"augment={sampling['augment']}", f"p={format_value(sampling['augment_rate'])}"]
    if "repeat_threshold" in sampling:
        parts.append(f"t={format_value(sampling['repeat_threshold'])}")
    return separator.join(parts)


def _file_safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=-]", "-", text)


def canonical_settings(value: Any) -> Any:
    """Numbers as floats so that `gamma: 2` and `gamma: 2.0` name the same run."""
    if isinstance(value, Mapping):
        return {str(key): canonical_settings(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [canonical_settings(item) for item in value]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return value


def load_study_config(path: str | os.PathLike) -> dict[str, Any]:
    """Read a study config and check its shape (not yet the argument names: see `runner.build_arguments`)."""
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
    modes = config.get("calibration", [])
    if not isinstance(modes, list) or not set(modes) <= set(CALIBRATION_MODES):
        raise StudyConfigError(f"{path}: `calibration` must be a list of {', '.join(CALIBRATION_MODES)}, got {modes!r}")
    _check_paired_with(path, config.get("paired_with", {}))
    return config


def _check_paired_with(path: Path, paired_with: Any) -> None:
    """`paired_with` maps `learning_rate` to a positive number and/or `augment` to `none`."""
    if not isinstance(paired_with, Mapping) or not set(paired_with) <= set(PAIRED_WITH_KEYS):
        raise StudyConfigError(
            f"{path}: `paired_with` must map {' and/or '.join(PAIRED_WITH_KEYS)} to a value, got {paired_with!r}"
        )
    rate = paired_with.get("learning_rate", 1.0)
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or rate <= 0:
        raise StudyConfigError(f"{path}: `paired_with: learning_rate` must be a positive number, got {rate!r}")
    if paired_with.get("augment", NO_AUGMENTATION) != NO_AUGMENTATION:
        raise StudyConfigError(f"{path}: `paired_with: augment` can only be {NO_AUGMENTATION}")


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
    for seed, (dataset, (data, training)), ratio, (loss, hyperparameters, class_weights, sampling) in itertools.product(
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
            equal_steps=bool(config.get("equal_steps", False)),
            sampling=sampling,
        )
        if spec.samples_sentences and ratio < 1.0 and not spec.equal_steps:
            raise StudyConfigError(f"{name}: sentence sampling below keep 1 needs `equal_steps: true` (see the grid)")
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
    if set(SAMPLING_KEYS + AUGMENT_KEYS) & set(data):
        raise StudyConfigError(
            f"dataset {dataset}: give sentence sampling and augmentation in a `losses` entry, not per dataset"
        )
    return data, training


LossSetting = tuple[str, dict[str, Any], str, dict[str, Any]]  # loss, hyperparameters, class weights, sampling


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
        yield str(entry["loss"]), chosen, class_weights, split_sampling(chosen)


def split_sampling(chosen: dict[str, Any]) -> dict[str, Any]:
    """Move the `SAMPLING_KEYS` and `AUGMENT_KEYS` out of `chosen` (the rest are loss hyperparameters):
    the run's data-level remedies, without the keys that say none; {} for none."""
    sampling = {key: chosen.pop(key) for key in SAMPLING_KEYS + AUGMENT_KEYS if key in chosen}
    if sampling.get("sentence_sampling") == NO_SAMPLING:
        del sampling["sentence_sampling"]
    if sampling.get("augment") == NO_AUGMENTATION:
        del sampling["augment"]
    if "augment_rate" in sampling and "augment" not in sampling:
        raise StudyConfigError("`augment_rate` needs an `augment` in the same `losses` entry")
    if "augment" in sampling and "augment_rate" not in sampling:
        raise StudyConfigError("`augment` needs an `augment_rate` in the same `losses` entry")
    if "repeat_threshold" in sampling and not {"sentence_sampling", "augment"} & set(sampling):
        raise StudyConfigError(
            "`repeat_threshold` needs a `sentence_sampling` or an `augment` in the same `losses` entry"
        )
    return sampling


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
    return loss, chosen, class_weights, split_sampling(chosen)


def best_settings(
    records: Iterable[Mapping[str, Any]], dataset: str | None = None, metric: str = "f1"
) -> dict[str, dict[str, Any]]:
    """Per loss, the setting with the highest mean dev `metric` over its seeds.

    Returns `{loss: {hyperparameter: value, ..., "class_weights": ..., "sentence_sampling": ...}}`
    (class weights and sampling only when used), the form of a `losses` entry. Only records of
    `dataset` count when it is given; a tie goes to the setting seen first.
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
            chosen = {**record["hyperparameters"], **record.get("sampling", {})}
            if record["class_weights"] != "none":
                chosen["class_weights"] = record["class_weights"]
            best[record["loss"]] = (mean, chosen)
    return {loss: chosen for loss, (_mean, chosen) in best.items()}


def uses_sweep(config: Mapping[str, Any]) -> bool:
    """Whether any `losses` entry of the config takes its setting from a sweep."""
    return any(isinstance(entry, Mapping) and "from_sweep" in entry for entry in config["losses"])
