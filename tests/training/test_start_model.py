"""Issue 35: a run starts from any folder, its token-classification head matched to the run's labels by name.

Each case saves a tiny tagger whose head has some labels, loads it for the run's labels with
`load_start_model`, and reads the rows of the new head against the stored one; the last test runs
a real training from a folder whose head has other labels.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch
from tiny_models import TINY_CORPUS, make_tiny_tokenizer, save_tiny_encoder, save_tiny_tagger, tiny_corpus_flags

from ner_imbalance.config.arguments import parse_arguments
from ner_imbalance.training.run import execute_run, prepare_run
from ner_imbalance.training.start_model import load_start_model
from ner_imbalance.training.start_model import logger as start_model_logger

RUN_LABELS = ["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
"""The labels of the tiny corpus, in the order a run builds them."""


def stored_rows(folder: Path) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """label -> (weight row, bias) of the head saved in `folder`."""
    model = load_start_model(str(folder), json_labels(folder))
    return {
        label: (model.classifier.weight[index].detach().clone(), model.classifier.bias[index].detach().clone())
        for index, label in model.config.id2label.items()
    }


def json_labels(folder: Path) -> list[str]:
    id2label = json.loads((folder / "config.json").read_text(encoding="utf-8"))["id2label"]
    return [id2label[str(index)] for index in range(len(id2label))]


def head_rows(model: torch.nn.Module, label: str) -> tuple[torch.Tensor, torch.Tensor]:
    index = model.config.label2id[label]
    return model.classifier.weight[index].detach(), model.classifier.bias[index].detach()


def check_fitted(model: torch.nn.Module, stored: dict, kept: set[str]) -> None:
    """The model has the run's labels in order; the `kept` labels have their stored rows, the others new ones."""
    assert model.config.id2label == dict(enumerate(RUN_LABELS))
    assert model.config.label2id == {label: index for index, label in enumerate(RUN_LABELS)}
    assert model.classifier.out_features == len(RUN_LABELS) == model.num_labels
    stored_weights = [weight for weight, _bias in stored.values()]
    for label in RUN_LABELS:
        weight, bias = head_rows(model, label)
        if label in kept:
            torch.testing.assert_close(weight, stored[label][0], rtol=0, atol=0)
            torch.testing.assert_close(bias, stored[label][1], rtol=0, atol=0)
        else:  # a new row: initialised as a new head (zero bias), not a stored row moved here
            assert not any(torch.equal(weight, row) for row in stored_weights), label
            assert bias.item() == 0.0


START_MODEL_LOGGER = start_model_logger.name


def start_model_lines(caplog) -> list[str]:
    """What the start-model loader logged. Only its own records count: under CI=true transformers'
    loggers propagate to the root (its own load report of a new head among them)."""
    return [record.getMessage() for record in caplog.records if record.name == START_MODEL_LOGGER]


@pytest.mark.parametrize(
    ("stored_labels", "kept"),
    [
        pytest.param(
            ["O", "B-X", "I-X", "B-LOC", "I-LOC", "B-PER", "I-PER"],
            {"O", "B-LOC", "I-LOC", "B-PER", "I-PER"},
            id="other names, same count",
        ),
        pytest.param(["O", "B-PER", "I-PER", "B-MISC", "I-MISC"], {"O", "B-PER", "I-PER"}, id="other count"),
        pytest.param([f"LABEL_{index}" for index in range(7)], set(), id="generic LABEL_n names"),
    ],
)
def test_another_label_set_keeps_the_rows_of_shared_names(tmp_path, caplog, stored_labels, kept):
    folder = save_tiny_tagger(tmp_path / "start", stored_labels, seed=3)
    stored = stored_rows(folder)
    with caplog.at_level(logging.INFO, logger=START_MODEL_LOGGER):
        model = load_start_model(str(folder), RUN_LABELS)
    check_fitted(model, stored, kept)
    (line,) = start_model_lines(caplog)
    assert f"head for {len(stored_labels)} labels" in line
    assert f"{len(RUN_LABELS) - len(kept)} new rows" in line
    assert all(label in line for label in kept)


def test_the_same_labels_in_another_order_are_reordered(tmp_path, tiny_tokenizer, caplog):
    stored_labels = ["B-PER", "I-PER", "O", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]
    folder = save_tiny_tagger(tmp_path / "start", stored_labels, seed=5)
    original = load_start_model(str(folder), stored_labels).eval()
    with caplog.at_level(logging.INFO, logger=START_MODEL_LOGGER):
        reordered = load_start_model(str(folder), RUN_LABELS).eval()
    assert reordered.config.id2label == dict(enumerate(RUN_LABELS))
    batch = tiny_tokenizer(["john visited paris", "the new phone"], padding=True, return_tensors="pt")
    with torch.no_grad():
        before, after = original(**batch).logits, reordered(**batch).logits
    for label in RUN_LABELS:
        torch.testing.assert_close(after[..., RUN_LABELS.index(label)], before[..., stored_labels.index(label)])
    (line,) = start_model_lines(caplog)
    assert "reordered" in line


def test_the_same_labels_in_the_same_order_load_unchanged(tmp_path, caplog):
    folder = save_tiny_tagger(tmp_path / "start", RUN_LABELS, seed=7)
    stored = stored_rows(folder)
    with caplog.at_level(logging.INFO, logger=START_MODEL_LOGGER):
        model = load_start_model(str(folder), RUN_LABELS)
    check_fitted(model, stored, kept=set(RUN_LABELS))
    assert not start_model_lines(caplog)


def test_a_plain_encoder_gets_a_new_head_for_the_run_labels(tmp_path, tiny_tokenizer, caplog):
    folder = save_tiny_encoder(tmp_path / "encoder", tiny_tokenizer)
    with caplog.at_level(logging.INFO, logger=START_MODEL_LOGGER):
        model = load_start_model(str(folder), RUN_LABELS)
    check_fitted(model, {}, kept=set())
    assert not start_model_lines(caplog)  # no stored head: nothing kept, nothing to report


def test_a_run_starts_from_a_folder_whose_head_has_other_labels(tmp_path):
    start = save_tiny_tagger(tmp_path / "conll_tagger", ["O", "B-PER", "I-PER", "B-MISC", "I-MISC"], seed=1)
    make_tiny_tokenizer().save_pretrained(start)
    output = tmp_path / "run"
    flags = tiny_corpus_flags(start, output, "--test_file", str(TINY_CORPUS / "test.conll"))
    flags += ["--max_steps", "1", "--max_seq_length", "32", "--stride", "8", "--use_cpu", "true"]
    flags += ["--eval_strategy", "no", "--save_strategy", "no", "--load_best_model_at_end", "false"]
    flags += ["--report_to", "none", "--disable_tqdm", "true"]
    results = execute_run(prepare_run(*parse_arguments(flags)))
    assert "eval_f1" in results["eval"] and "test_f1" in results["test"]
    saved = json.loads((output / "config.json").read_text(encoding="utf-8"))
    assert saved["id2label"] == {str(index): label for index, label in enumerate(RUN_LABELS)}
