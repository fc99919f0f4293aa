"""The decision step of a run: calibration under the run's decoding, and a run's facts computed once.

- `search_bias(decoding="viterbi")` scores every candidate exactly as `evaluate_tags` scores the
  Viterbi-decoded tags, and its sentence-subset scan finds the same best `O` bias as decoding
  every sentence at every grid value;
- a bias that ends on its bound is reported (`at_bound`), and the `O` bound can be widened;
- one run parses and validates its flags once and builds its loss once;
- every committed run config parses and passes `prepare_run`.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
from tiny_models import REPO, tiny_corpus_flags

from ner_imbalance.calibration import search_bias, tags_from_logits
from ner_imbalance.config import arguments as arguments_module
from ner_imbalance.config.arguments import parse_arguments
from ner_imbalance.evaluation import evaluate_tags
from ner_imbalance.losses import _base as loss_base
from ner_imbalance.training.run import execute_run, prepare_run

LABELS = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
CONFIGS = sorted((REPO / "configs").glob("*.yaml"))


def random_dev(seed: int, num_sentences: int = 40) -> tuple[np.ndarray, list[list[str]]]:
    """Word logits that often give invalid argmax sequences, and gold tags that are valid IOB2."""
    generator = np.random.default_rng(seed)
    lengths = generator.integers(1, 9, size=num_sentences)
    gold = []
    for length in lengths:
        tags, previous = [], "O"
        for _ in range(length):
            choice = generator.choice(["O", "O", "B-LOC", "B-PER", "I"])
            tag = (f"I-{previous[2:]}" if previous != "O" else "O") if choice == "I" else choice
            tags.append(tag)
            previous = tag
        gold.append(tags)
    logits = generator.normal(size=(int(lengths.sum()), len(LABELS))).astype(np.float32)
    flat_gold = [LABELS.index(tag) for tags in gold for tag in tags]
    logits[np.arange(len(flat_gold)), flat_gold] += 1.0
    return logits, gold


@pytest.mark.parametrize("mode", ["outside", "per_type"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_viterbi_calibration_scores_equal_evaluate_tags_on_the_decoded_tags(mode, seed):
    logits, gold = random_dev(seed)
    lengths = [len(tags) for tags in gold]
    result = search_bias(logits, gold, LABELS, mode=mode, decoding="viterbi", outside_bound=2.0, bound=1.0)
    decoded = tags_from_logits(logits, lengths, LABELS, result.bias, decoding="viterbi")
    assert result.decoding == "viterbi"
    assert result.score_after == evaluate_tags(gold, decoded)["f1"]
    before = tags_from_logits(logits, lengths, LABELS, decoding="viterbi")
    assert result.score_before == evaluate_tags(gold, before)["f1"]
    assert result.score_after >= result.score_before


@pytest.mark.parametrize("seed", [3, 4, 5, 6])
def test_viterbi_outside_scan_equals_decoding_every_sentence_at_every_grid_value(seed):
    logits, gold = random_dev(seed)
    lengths = [len(tags) for tags in gold]
    result = search_bias(logits, gold, LABELS, mode="outside", decoding="viterbi", outside_step=0.25, outside_bound=3)
    grid = np.round(np.arange(-12, 13) * 0.25, 10)
    brute = []
    for value in grid:
        bias = np.zeros(len(LABELS))
        bias[0] = value
        brute.append(evaluate_tags(gold, tags_from_logits(logits, lengths, LABELS, bias, decoding="viterbi"))["f1"])
    assert result.score_after == pytest.approx(max(max(brute), result.score_before))
    assert result.score_after == brute[int(np.flatnonzero(grid == result.bias[0])[0])]


def test_viterbi_and_argmax_calibration_differ_where_argmax_tags_are_invalid():
    logits, gold = random_dev(7, num_sentences=80)
    lengths = [len(tags) for tags in gold]
    argmax_tags = tags_from_logits(logits, lengths, LABELS)
    viterbi_tags = tags_from_logits(logits, lengths, LABELS, decoding="viterbi")
    assert argmax_tags != viterbi_tags, "the fixture must hold invalid argmax sequences"
    for decoding, tags in (("argmax", argmax_tags), ("viterbi", viterbi_tags)):
        result = search_bias(logits, gold, LABELS, mode="outside", decoding=decoding)
        assert result.score_before == evaluate_tags(gold, tags)["f1"]


def test_a_bias_on_its_bound_is_reported_and_the_outside_bound_can_widen():
    logits, gold = random_dev(8)
    logits[:, 0] += 3.0  # O dominates: the best O bias lies below -bound
    narrow = search_bias(logits, gold, LABELS, mode="outside", outside_bound=1.0, outside_step=0.5)
    assert narrow.at_bound == ("O",) and narrow.bias[0] == -1.0
    assert narrow.to_json()["at_bound"] == ["O"]
    wide = search_bias(logits, gold, LABELS, mode="outside", outside_bound=1.0, outside_step=0.5, outside_widenings=5)
    assert wide.settings["outside_bound"] > 1.0 and wide.bias[0] < -1.0
    assert wide.score_after >= narrow.score_after


def test_a_run_validates_its_flags_once_and_builds_its_loss_once(tmp_path, tiny_model_dir, monkeypatch):
    validations, losses_built = [], []
    validate = arguments_module.validate_arguments
    monkeypatch.setattr(arguments_module, "validate_arguments", lambda *args: validations.append(1) or validate(*args))
    loss_init = loss_base.TokenLoss.__init__

    @functools.wraps(loss_init)  # keeps the signature the loss registry reads
    def counting_init(self, *args, **kwargs):
        losses_built.append(type(self).__name__)
        loss_init(self, *args, **kwargs)

    monkeypatch.setattr(loss_base.TokenLoss, "__init__", counting_init)
    flags = tiny_corpus_flags(tiny_model_dir, tmp_path / "run", "--max_steps", "1", "--use_cpu", "true")
    prepared = prepare_run(*parse_arguments([*flags, "--loss", "focal", "--calibrate", "outside"]))
    assert prepared.calibration is not None and prepared.calibration["mode"] == "outside"
    assert prepared.decoding == "viterbi"
    execute_run(prepared)
    assert len(validations) == 1
    assert losses_built == ["FocalLoss"]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda path: path.name)
def test_every_committed_config_parses_and_passes_prepare_run(config, tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    arguments = parse_arguments(["--config", str(config), "--output_dir", str(tmp_path / "out")])
    data_args = arguments[1]
    missing = [path for path in (data_args.train_file, data_args.validation_file) if path and not Path(path).is_file()]
    if missing:
        pytest.skip(f"{config.name} reads {missing[0]}, which is not beside this clone (../shared)")
    prepared = prepare_run(*arguments)
    assert prepared.word_corpus.label_list[0] == "O"
    assert prepared.loss_fn is not None
