"""Hyperparameter search: `Trainer.hyperparameter_search` with optuna over the learning rate and the loss.

Each trial trains from the pretrained weights again (`model_init`), with a learning rate and the
chosen loss's own hyperparameters drawn by optuna's TPE sampler from their search spaces, and is
scored by the dev entity F1 (`eval_f1`) after every epoch. Those per-epoch scores go to optuna's
`MedianPruner`, which stops a trial whose F1 falls below the median of earlier trials at the same
step. The objective of a trial is its last dev F1.

The Trainer applies a trial's parameters to `TrainingArguments` only; the loss lives in
`ImbalanceTrainer.loss_fn`, so `SearchTrainer.train` rebuilds it for every trial from the same
trial (its suggestions are cached per trial, and fixed on other processes under DDP).

The study lives in `<output_dir>/optuna.db` (SQLite) under a fixed name per loss, so running the
same command again resumes it: finished trials are kept, `n_trials` is the total wanted of
complete and pruned trials, and a trial that was running when the search was killed is marked
failed (optuna's heartbeat) and retried once with the same parameters. Trials keep no
checkpoints; retrain the best parameters with `scripts/train_ner.py`. At the end the trials are
written as `trials.csv` and `trials.md` beside the study.

A study folder holds one study only: `study.json` records its fingerprint (the data: the content of
the training and dev files and every data flag; the model; the loss and its flags that are not
searched), and a search whose fingerprint differs is refused with a `UsageError` naming what
differs, before it adds a trial.

Needs optuna: `pip install 'ner_imbalance[tune]'`.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import logging
import math
import os
import warnings
from dataclasses import dataclass, field
from typing import Any

from ner_imbalance.config.arguments import DataArguments, LossArguments, ModelArguments, NerTrainingArguments
from ner_imbalance.errors import UsageError
from ner_imbalance.losses import SearchSpace, loss_search_space
from ner_imbalance.training.corpus import PreparedCorpus
from ner_imbalance.training.run import build_corpus_loss, build_trainer
from ner_imbalance.training.trainer import ImbalanceTrainer
from ner_imbalance.utils.atomic import write_json_atomic
from ner_imbalance.utils.extras import import_extra

logger = logging.getLogger(__name__)

TUNE_EXTRA = "tune"
STUDY_FILE = "optuna.db"
FINGERPRINT_FILE = "study.json"
HASHED_DATA_FLAGS = ("train_file", "validation_file")
TRIALS_CSV = "trials.csv"
TRIALS_MARKDOWN = "trials.md"
OBJECTIVE = "eval_f1"
HEARTBEAT_SECONDS = 60
STALE_AFTER_SECONDS = 180


@dataclass
class TuningArguments:
    """How many trials, the learning-rate range, and the pruner."""

    n_trials: int = field(
        default=20, metadata={"help": "Complete or pruned trials the study should hold (a rerun resumes to this)."}
    )
    learning_rate_low: float = field(default=1e-5, metadata={"help": "Lowest learning rate (log-uniform)."})
    learning_rate_high: float = field(default=2e-4, metadata={"help": "Highest learning rate (log-uniform)."})
    tune_loss: bool = field(
        default=True, metadata={"help": "Search the loss's own hyperparameters too (else the learning rate only)."}
    )
    pruner_startup_trials: int = field(
        default=3, metadata={"help": "MedianPruner: trials that run to the end before any is pruned."}
    )

    def __post_init__(self) -> None:
        if self.n_trials < 1:
            raise ValueError(f"--n_trials must be >= 1, got {self.n_trials}")
        if not 0 < self.learning_rate_low < self.learning_rate_high:
            raise ValueError(
                "--learning_rate_low and --learning_rate_high must satisfy 0 < low < high, "
                f"got {self.learning_rate_low} and {self.learning_rate_high}"
            )


def suggest(trial: Any, name: str, space: SearchSpace | tuple[Any, ...]) -> Any:
    """Ask `trial` (an `optuna.Trial`) for `name` from `space`."""
    if isinstance(space, tuple):
        return trial.suggest_categorical(name, space)
    if isinstance(space.low, int) and isinstance(space.high, int):
        return trial.suggest_int(name, space.low, space.high, log=space.log)
    return trial.suggest_float(name, space.low, space.high, log=space.log)


class SearchTrainer(ImbalanceTrainer):
    """`ImbalanceTrainer` whose loss is rebuilt from every hyperparameter-search trial.

    `trial_loss(trial)` returns the trial's loss module; it is set by `run_search`.
    """

    trial_loss = None

    def train(self, resume_from_checkpoint: str | bool | None = None, trial: Any = None, **kwargs: Any) -> Any:
        if trial is not None and self.trial_loss is not None:
            self.loss_fn = self.trial_loss(trial).to(self.args.device)
            # A diverged earlier trial must not stop this one.
            self._first_nonfinite_loss.zero_()
        return super().train(resume_from_checkpoint=resume_from_checkpoint, trial=trial, **kwargs)


@dataclass
class SearchResult:
    """The best trial and the table of all trials of the study."""

    best_params: dict[str, Any]
    best_value: float
    best_trial: int
    trials: list[dict[str, Any]]
    study_path: str


def study_name(loss: str) -> str:
    """The fixed name of the study of one loss, so that reruns in the same folder resume it."""
    return f"ner_imbalance-{loss}"


def run_search(
    model_args: ModelArguments,
    data_args: DataArguments,
    loss_args: LossArguments,
    training_args: NerTrainingArguments,
    tuning_args: TuningArguments,
) -> SearchResult:
    """Search, maximising dev entity F1; write `trials.csv`/`trials.md`; return the best trial and the table."""
    optuna = import_extra("optuna", extra=TUNE_EXTRA, feature="hyperparameter search (tune_ner.py)")
    if training_args.eval_strategy == "no":
        raise ValueError("--eval_strategy no: the search needs dev F1 during training (use epoch or steps)")
    os.makedirs(training_args.output_dir, exist_ok=True)
    searched = loss_search_space(loss_args.loss) if tuning_args.tune_loss else {}
    claim_study_folder(training_args.output_dir, study_fingerprint(model_args, data_args, loss_args, searched))
    study_path = os.path.join(os.path.abspath(training_args.output_dir), STUDY_FILE)
    with warnings.catch_warnings():
        # The heartbeat and its retry callback are marked experimental since optuna 2.8.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        storage = optuna.storages.RDBStorage(
            f"sqlite:///{study_path}",
            heartbeat_interval=HEARTBEAT_SECONDS,
            grace_period=STALE_AFTER_SECONDS,
            failed_trial_callback=optuna.storages.RetryFailedTrialCallback(max_retry=1),
        )
    name = study_name(loss_args.loss)
    study = optuna.create_study(storage=storage, study_name=name, direction="maximize", load_if_exists=True)
    done = len(
        study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED))
    )
    remaining = tuning_args.n_trials - done
    if remaining > 0:
        logger.info("study %s in %s: %d trial(s) done, running %d more", name, study_path, done, remaining)
        # A resumed search must not replay the first draws of a sampler seeded as before: the
        # sampler's seed moves on by the number of trials the study already holds.
        sampler_seed = training_args.seed + len(study.trials)
        _search(
            optuna, storage, name, remaining, sampler_seed, model_args, data_args, loss_args, training_args, tuning_args
        )
    else:
        logger.info("study %s in %s already holds %d trial(s): nothing to run", name, study_path, done)
    study = optuna.load_study(study_name=name, storage=storage)
    trials = trials_table(study)
    write_trials(trials, training_args.output_dir)
    best = study.best_trial
    return SearchResult(best.params, best.value, best.number, trials, study_path)


def study_fingerprint(
    model_args: ModelArguments, data_args: DataArguments, loss_args: LossArguments, searched: dict[str, Any]
) -> dict[str, Any]:
    """What makes the trials of a study comparable: the model, the data (the training and dev files by
    content, not by name) and the loss with its flags that the search does not draw (`searched`)."""
    data = {name: value for name, value in dataclasses.asdict(data_args).items() if name != "test_file"}
    for flag in HASHED_DATA_FLAGS:
        if data[flag] and os.path.isfile(data[flag]):  # a missing file is reported with the other data errors
            data[flag] = f"sha256:{_file_sha256(data[flag])}"
    loss = {name: value for name, value in dataclasses.asdict(loss_args).items() if name not in searched}
    model = {"model_name_or_path": model_args.model_name_or_path, "tokenizer_name": model_args.tokenizer_name}
    return json.loads(json.dumps({"model": model, "data": data, "loss": loss}))  # as read back from study.json


def claim_study_folder(folder: str | os.PathLike, fingerprint: dict[str, Any]) -> None:
    """Record `fingerprint` in `folder`, or refuse (`UsageError`, one line) if the study there has another.

    A study written before fingerprints existed is adopted, with a warning.
    """
    path = os.path.join(folder, FINGERPRINT_FILE)
    if os.path.isfile(path):
        try:
            with open(path, encoding="utf-8") as handle:
                recorded = json.load(handle)
        except ValueError as error:
            raise UsageError(f"{path} is damaged ({error}): delete it, or give another --output_dir") from None
        differences = [
            _difference(flag, fingerprint[part].get(flag), recorded.get(part, {}).get(flag))
            for part in fingerprint
            for flag in sorted(set(fingerprint[part]) | set(recorded.get(part, {})))
            if fingerprint[part].get(flag) != recorded.get(part, {}).get(flag)
        ]
        if differences:
            raise UsageError(
                f"--output_dir {folder} holds a study of other data, model or loss: {'; '.join(differences)}; "
                f"give another --output_dir, or delete {STUDY_FILE} and {FINGERPRINT_FILE} there to start over"
            )
        return
    if os.path.isfile(os.path.join(folder, STUDY_FILE)):
        logger.warning(
            "%s has no %s (an older study): adopted as one of this data, model and loss", folder, FINGERPRINT_FILE
        )
    write_json_atomic(path, fingerprint, sort_keys=True)


def _difference(flag: str, value: Any, recorded: Any) -> str:
    if flag in HASHED_DATA_FLAGS:
        return f"--{flag} has other content"
    return f"--{flag} {value} (the study's: {recorded})"


def _file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _search(
    optuna: Any,
    storage: Any,
    name: str,
    n_trials: int,
    sampler_seed: int,
    model_args: ModelArguments,
    data_args: DataArguments,
    loss_args: LossArguments,
    training_args: NerTrainingArguments,
    tuning_args: TuningArguments,
) -> None:
    # Trials are compared on their last dev F1 and keep no checkpoints (a search would otherwise
    # write a model per trial and epoch); there is no test split to predict.
    search_args = dataclasses.replace(training_args, save_strategy="no", load_best_model_at_end=False, do_predict=False)
    trainer, corpus = build_trainer(
        model_args, data_args, loss_args, search_args, trainer_class=SearchTrainer, reinitialise_model=True
    )
    loss_space = loss_search_space(loss_args.loss) if tuning_args.tune_loss else {}
    trainer.trial_loss = _trial_loss_builder(loss_args, corpus, loss_space, training_args.label_smoothing_factor)
    learning_rate = SearchSpace(tuning_args.learning_rate_low, tuning_args.learning_rate_high, log=True)
    trainer.hyperparameter_search(
        hp_space=lambda trial: {"learning_rate": suggest(trial, "learning_rate", learning_rate)},
        compute_objective=lambda metrics: metrics[OBJECTIVE],
        n_trials=n_trials,
        direction="maximize",
        backend="optuna",
        storage=storage,
        study_name=name,
        load_if_exists=True,
        sampler=optuna.samplers.TPESampler(seed=sampler_seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=tuning_args.pruner_startup_trials),
        catch=(FloatingPointError,),
    )


def _trial_loss_builder(
    loss_args: LossArguments, corpus: PreparedCorpus, space: dict[str, Any], label_smoothing: float
) -> Any:
    def trial_loss(trial: Any) -> Any:
        suggested = {flag: suggest(trial, flag, flag_space) for flag, flag_space in space.items()}
        return build_corpus_loss(dataclasses.replace(loss_args, **suggested), corpus, label_smoothing)

    return trial_loss


def trials_table(study: Any) -> list[dict[str, Any]]:
    """One row per trial: number, state, dev F1 (last reported for pruned trials), epochs reported, parameters."""
    rows = []
    for trial in study.get_trials(deepcopy=False):
        reported = trial.intermediate_values
        value = trial.value if trial.value is not None else (reported[max(reported)] if reported else math.nan)
        duration = trial.duration.total_seconds() if trial.duration is not None else math.nan
        rows.append(
            {
                "trial": trial.number,
                "state": trial.state.name.lower(),
                "dev_f1": value,
                "evaluations": len(reported),
                "seconds": duration,
                **trial.params,
            }
        )
    return rows


def format_trials(rows: list[dict[str, Any]]) -> str:
    """The trials as a Markdown table, best dev F1 first."""
    columns = _columns(rows)
    ordered = sorted(rows, key=lambda row: -row["dev_f1"] if not math.isnan(row["dev_f1"]) else math.inf)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row.get(column)) for column in columns) + " |" for row in ordered]
    return "\n".join(lines)


def write_trials(rows: list[dict[str, Any]], folder: str | os.PathLike) -> None:
    """`trials.csv` (one row per trial, in trial order) and `trials.md` (best first) in `folder`."""
    columns = _columns(rows)
    with open(os.path.join(folder, TRIALS_CSV), "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    with open(os.path.join(folder, TRIALS_MARKDOWN), "w", encoding="utf-8") as handle:
        handle.write(format_trials(rows) + "\n")


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    columns = ["trial", "state", "dev_f1", "evaluations", "seconds"]
    return columns + sorted({key for row in rows for key in row} - set(columns))


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
