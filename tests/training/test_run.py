"""The main job end to end on a tiny model and a hand-made corpus: files in, a usable model out."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
import torch
from tiny_models import TINY_CORPUS, tiny_corpus_flags
from transformers import AutoModelForTokenClassification, AutoTokenizer, pipeline

from ner_imbalance.calibration import load_word_logits, tags_from_logits
from ner_imbalance.cli import predict, train
from ner_imbalance.config.arguments import parse_arguments
from ner_imbalance.evaluation import evaluate_tags, read_gold_and_pred, read_predictions
from ner_imbalance.training import run as pipeline_module
from ner_imbalance.training.run import build_trainer

CORPUS = TINY_CORPUS


@pytest.fixture(scope="module")
def trained_output(tmp_path_factory, tiny_model_dir) -> Path:
    output_dir = tmp_path_factory.mktemp("run")
    exit_code = train.main(
        [
            *tiny_corpus_flags(tiny_model_dir, output_dir),
            "--test_file",
            str(CORPUS / "test.conll"),
            "--loss",
            "ghmc",
            "--bins",
            "10",
            "--momentum",
            "0.75",
            "--class_weights",
            "sqrt_inverse_frequency",
            "--max_seq_length",
            "16",
            "--stride",
            "4",
            "--num_train_epochs",
            "2",
            "--learning_rate",
            "1e-3",
            "--per_device_train_batch_size",
            "8",
            "--use_cpu",
            "true",
            "--disable_tqdm",
            "true",
            "--seed",
            "1",
        ]
    )
    assert exit_code == 0
    return output_dir


def test_run_writes_model_metrics_predictions_and_card(trained_output):
    for name in (
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "train_results.json",
        "eval_results.json",
        "test_results.json",
        "predictions_validation.conll",
        "predictions_test.conll",
        "loss_config.json",
        "loss_state.pt",
        "README.md",
    ):
        assert (trained_output / name).is_file(), name
    config = json.loads((trained_output / "config.json").read_text())
    assert config["id2label"]["0"] == "O"
    assert list(config["id2label"].values()) == ["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
    assert json.loads((trained_output / "loss_config.json").read_text())["loss"] == "ghmc"
    card = (trained_output / "README.md").read_text()
    assert "| eval |" in card and "| test |" in card
    assert list(trained_output.glob("checkpoint-*")), "epoch checkpoints are kept"


def test_metrics_are_word_level_and_match_the_written_predictions(trained_output):
    eval_results = json.loads((trained_output / "eval_results.json").read_text())
    for key in ("eval_f1", "eval_precision", "eval_recall", "eval_macro_f1", "eval_PER_f1", "eval_LOC_f1", "eval_loss"):
        assert key in eval_results, key
    tokens, gold, pred = read_predictions(trained_output / "predictions_validation.conll")
    gold_tokens, gold_tags, _ = read_gold_and_pred(
        CORPUS / "dev.conll", trained_output / "predictions_validation.conll"
    )
    assert tokens == gold_tokens and gold == gold_tags, "every input word, in input order"
    assert evaluate_tags(gold, pred)["f1"] == pytest.approx(eval_results["eval_f1"])


def test_written_predictions_are_the_saved_models_own_predictions(trained_output):
    """Guards the order of evaluation: each word's tag is what the saved model predicts for it."""
    tokenizer = AutoTokenizer.from_pretrained(trained_output)
    model = AutoModelForTokenClassification.from_pretrained(trained_output).eval()
    tokens, _, written = read_predictions(trained_output / "predictions_validation.conll")
    checked = 0
    for words, written_tags in zip(tokens, written):
        encoding = tokenizer(words, is_split_into_words=True, return_tensors="pt")
        if encoding["input_ids"].shape[1] > 16:
            continue  # split into windows by the run; a single forward pass would see other context
        with torch.no_grad():
            label_ids = model(**encoding).logits.argmax(-1)[0].tolist()
        word_ids = encoding.word_ids()
        first_pieces = [word_ids.index(word) for word in range(len(words))]
        assert [model.config.id2label[label_ids[piece]] for piece in first_pieces] == written_tags
        checked += 1
    assert checked >= 5


def test_saved_folder_gives_whole_words_in_a_transformers_pipeline_with_first(trained_output):
    """The README's and model card's loading line: "first" aggregation takes each word's first sub-token,
    as the model was trained, and returns whole words; "simple" can split a word into ## fragments."""
    assert 'aggregation_strategy="first"' in (trained_output / "README.md").read_text()
    tagger = pipeline("token-classification", model=str(trained_output), aggregation_strategy="first", device="cpu")
    # words outside the tiny vocabulary split into one sub-token per character
    text = "John visited Xyzzy with Mary in Abcde and Qrst Uvw yesterday ."
    word_spans = [(match.start(), match.end()) for match in re.finditer(r"\S+", text)]
    entities = tagger(text)
    assert entities, "the tiny model tags some entity on this sentence"
    for entity in entities:
        assert entity["entity_group"] in {"PER", "LOC", "ORG"}
        assert "##" not in entity["word"]
        assert any(start == entity["start"] for start, _ in word_spans)
        assert any(end == entity["end"] for _, end in word_spans)


def test_predict_ner_reproduces_the_runs_word_level_predictions(trained_output, tmp_path):
    """scripts/predict_ner.py on the dev file (tags ignored), with the run's windows, gives exactly
    the tags the pipeline wrote to predictions_validation.conll, long sentences included."""
    output = tmp_path / "dev_predicted.conll"
    flags = ["--max_seq_length", "16", "--stride", "4", "--device", "cpu", "--no_progress"]
    args = ["--model", str(trained_output), "--input", str(CORPUS / "dev.conll"), "--output", str(output)]
    assert predict.main([*args, *flags]) == 0
    tokens, _, written = read_predictions(trained_output / "predictions_validation.conll")
    predicted_tokens, _, predicted = read_gold_and_pred(CORPUS / "dev.conll", output)
    assert predicted_tokens == tokens and predicted == written
    tokenizer = AutoTokenizer.from_pretrained(trained_output)
    lengths = [len(tokenizer(words, is_split_into_words=True)["input_ids"]) for words in tokens]
    assert max(lengths) > 16, "some dev sentence is split into windows"


def test_default_batching_is_length_grouped_dynamic_padding_without_per_step_syncs(tmp_path, tiny_model_dir):
    arguments = parse_arguments([*tiny_corpus_flags(tiny_model_dir, tmp_path), "--use_cpu", "true"])
    trainer, _ = build_trainer(*arguments)
    assert trainer.args.train_sampling_strategy == "group_by_length"
    assert "length" in trainer.train_dataset.column_names, "lengths are precomputed, not measured per batch"
    assert trainer.data_collator.pad_to_multiple_of is None, "multiples of 8 only pay off on CUDA tensor cores"
    assert not trainer.args.logging_nan_inf_filter, "the base Trainer's NaN filter reads every step's loss on the host"


def calibrated_run_flags(model_dir: Path, output_dir: Path, *extra: str) -> list[str]:
    return [
        *tiny_corpus_flags(model_dir, output_dir),
        "--test_file",
        str(CORPUS / "test.conll"),
        "--loss",
        "ce",
        "--max_seq_length",
        "16",
        "--stride",
        "4",
        "--num_train_epochs",
        "1",
        "--learning_rate",
        "1e-3",
        "--save_strategy",
        "no",
        "--eval_strategy",
        "no",
        "--load_best_model_at_end",
        "false",
        "--use_cpu",
        "true",
        "--disable_tqdm",
        "true",
        "--seed",
        "1",
        *extra,
    ]


@pytest.fixture(scope="module")
def calibrated_output(tmp_path_factory, tiny_model_dir) -> Path:
    output_dir = tmp_path_factory.mktemp("calibrated")
    flags = calibrated_run_flags(tiny_model_dir, output_dir, "--calibrate", "per_type", "--calibration_margin", "0")
    assert train.main(flags) == 0
    return output_dir


def test_calibrated_run_records_the_bias_and_both_scores(calibrated_output):
    record = json.loads((calibrated_output / "calibration.json").read_text())
    labels = list(json.loads((calibrated_output / "config.json").read_text())["id2label"].values())
    assert record["labels"] == labels and len(record["bias"]) == len(labels)
    assert record["mode"] == "per_type" and record["metric"] == "micro_f1"
    assert any(record["bias"]), "an untrained head is far from its best decision bias"
    eval_results = json.loads((calibrated_output / "eval_results.json").read_text())
    test_results = json.loads((calibrated_output / "test_results.json").read_text())
    for key in ("f1", "precision", "recall", "macro_f1", "loss", "PER_f1"):
        assert f"eval_uncalibrated_{key}" in eval_results and f"eval_{key}" in eval_results
        assert f"test_uncalibrated_{key}" in test_results and f"test_{key}" in test_results
    assert record["score_before"] == pytest.approx(eval_results["eval_uncalibrated_f1"])
    assert record["score_after"] == pytest.approx(eval_results["eval_f1"])
    assert eval_results["eval_f1"] > eval_results["eval_uncalibrated_f1"]
    _tokens, gold, pred = read_predictions(calibrated_output / "predictions_validation.conll")
    assert evaluate_tags(gold, pred)["f1"] == pytest.approx(eval_results["eval_f1"]), "predictions are calibrated"
    card = (calibrated_output / "README.md").read_text()
    assert "| eval (uncalibrated) |" in card and "| test (uncalibrated) |" in card
    assert "Decision bias calibrated on the validation split (`per_type`, for micro_f1" in card


def test_word_logits_are_the_saved_models_before_calibration(calibrated_output):
    logits, lengths, labels = load_word_logits(calibrated_output / "word_logits_validation.npz")
    _tokens, gold, written = read_predictions(calibrated_output / "predictions_validation.conll")
    assert lengths.tolist() == [len(tags) for tags in gold]
    assert logits.shape == (sum(lengths), len(labels))
    calibration = json.loads((calibrated_output / "calibration.json").read_text())
    from_file = tags_from_logits(logits, lengths, labels, calibration["bias"], decoding=calibration["decoding"])
    flat_file = [tag for tags in from_file for tag in tags]
    flat_written = [tag for tags in written for tag in tags]
    agreement = sum(a == b for a, b in zip(flat_file, flat_written)) / len(flat_written)
    assert agreement >= 0.97, "float16 logits plus the bias give the saved model's predictions (up to near-ties)"


def test_reevaluating_the_saved_calibrated_model_reproduces_its_scores(calibrated_output, tmp_path):
    flags = calibrated_run_flags(calibrated_output, tmp_path, "--do_train", "false")
    assert train.main(flags) == 0
    again = json.loads((tmp_path / "eval_results.json").read_text())
    calibrated = json.loads((calibrated_output / "eval_results.json").read_text())
    assert again["eval_f1"] == calibrated["eval_f1"]
    assert again["eval_macro_f1"] == calibrated["eval_macro_f1"]
    assert (
        json.loads((tmp_path / "test_results.json").read_text())["test_f1"]
        == json.loads((calibrated_output / "test_results.json").read_text())["test_f1"]
    )
    assert not (tmp_path / "calibration.json").exists() and not (tmp_path / "model.safetensors").exists()
    assert (tmp_path / "word_logits_validation.npz").is_file(), "written with or without calibration"


def test_calibration_without_a_validation_split_fails_before_training(tmp_path, tiny_model_dir, capsys, monkeypatch):
    flags = calibrated_run_flags(tiny_model_dir, tmp_path, "--calibrate", "outside")
    del flags[flags.index("--validation_file") : flags.index("--validation_file") + 2]
    assert train.main(flags) == 2
    assert "--calibrate outside needs a validation split" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
    model_args, data_args, loss_args, training_args = parse_arguments(
        [*tiny_corpus_flags(tiny_model_dir, tmp_path), "--use_cpu", "true"]
    )
    data_args.validation_file = None
    training_args = dataclasses.replace(training_args, calibrate="per_type")
    monkeypatch.setattr(pipeline_module, "load_start_model", pytest.fail)
    with pytest.raises(ValueError, match="--calibrate per_type needs a validation split"):
        build_trainer(model_args, data_args, loss_args, training_args)


@pytest.mark.parametrize("decoding", ["argmax", "viterbi"])
def test_predict_and_evaluate_scripts_reproduce_the_runs_eval_f1_under_each_decoding(
    trained_output, tmp_path, decoding
):
    """An evaluation-only run of the saved model under `decoding`, then predict_ner.py with the same
    decoding and evaluate_ner.py on its output: the same dev F1."""
    flags = calibrated_run_flags(trained_output, tmp_path / "evaluated", "--do_train", "false", "--decoding", decoding)
    assert train.main(flags) == 0
    eval_results = json.loads((tmp_path / "evaluated" / "eval_results.json").read_text())
    assert eval_results["eval_decoding"] == decoding
    output = tmp_path / "dev_predicted.conll"
    args = ["--model", str(trained_output), "--input", str(CORPUS / "dev.conll"), "--output", str(output)]
    flags = ["--max_seq_length", "16", "--stride", "4", "--device", "cpu", "--no_progress", "--decoding", decoding]
    assert predict.main([*args, *flags]) == 0
    _tokens, gold, predicted = read_gold_and_pred(CORPUS / "dev.conll", output)
    assert evaluate_tags(gold, predicted)["f1"] == pytest.approx(eval_results["eval_f1"])
