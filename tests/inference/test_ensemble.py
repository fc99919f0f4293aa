"""Seed ensembles: `Tagger.from_folders` and `ner_pipeline([...])` average the members' word log-probabilities
before decoding, each member with its own calibration bias folded into its classifier."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import transformers
from tiny_models import make_tiny_tokenizer, save_tiny_tagger
from transformers import AutoModelForTokenClassification

import ner_imbalance
from ner_imbalance.calibration import fold_bias_into_classifier
from ner_imbalance.constants import DECODING_CONFIG_KEY, PIPELINE_TASK, VITERBI
from ner_imbalance.errors import UsageError
from ner_imbalance.inference import Tagger
from ner_imbalance.inference.ensemble import LogProbabilityEnsemble
from ner_imbalance.inference.pipeline import entity_record

LABELS = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER", "B-product", "I-product"]
SENTENCES = [
    ["the", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog", "in", "new", "york"],
    ["hello", "world"],
    ["a"],
    ["paris", "is", "a", "city", "and", "the", "fox", "is", "brown"],
]
SETTINGS = {"device": "cpu", "batch_size": 3, "max_seq_length": 8, "stride": 2}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("ensemble")
    first, second = (save_tiny_tagger(root / f"seed{seed}", LABELS, seed=seed) for seed in (1, 2))
    permuted = root / "seed1_permuted"
    model = AutoModelForTokenClassification.from_pretrained(first)
    order = [4, 0, 6, 2, 1, 5, 3]
    with torch.no_grad():
        model.classifier.weight.copy_(model.classifier.weight[order])
        model.classifier.bias.copy_(model.classifier.bias[order])
    model.config.id2label = {index: LABELS[old] for index, old in enumerate(order)}
    model.config.label2id = {label: index for index, label in model.config.id2label.items()}
    model.save_pretrained(permuted)
    make_tiny_tokenizer().save_pretrained(permuted)
    other = save_tiny_tagger(root / "other_labels", ["O", "B-LOC", "I-LOC"], seed=1)
    return {"first": first, "second": second, "permuted": permuted, "other": other}


def _tags(tagger: Tagger) -> list[list[str]]:
    return [sentence.tags for sentence in tagger.tag(SENTENCES)]


@pytest.mark.parametrize("decoding", ["argmax", "viterbi"])
def test_two_copies_of_a_folder_give_exactly_its_tags(folders, decoding):
    single = Tagger.from_folder(folders["first"], decoding=decoding, **SETTINGS)
    twice = Tagger.from_folders([folders["first"], folders["first"]], decoding=decoding, **SETTINGS)
    assert _tags(twice) == _tags(single)
    np.testing.assert_allclose(twice.word_probabilities(SENTENCES), single.word_probabilities(SENTENCES), atol=1e-6)


@pytest.mark.parametrize("decoding", ["argmax", "viterbi"])
def test_labels_in_another_order_are_aligned_by_name(folders, decoding):
    single = Tagger.from_folder(folders["first"], decoding=decoding, **SETTINGS)
    with_permuted = Tagger.from_folders([folders["first"], folders["permuted"]], decoding=decoding, **SETTINGS)
    assert list(with_permuted.labels) == LABELS
    assert _tags(with_permuted) == _tags(single)


def test_a_words_probability_is_the_softmax_of_the_mean_log_probabilities(folders):
    members = [Tagger.from_folder(folders[name], **SETTINGS) for name in ("first", "second")]
    ensemble = Tagger.from_folders([folders["first"], folders["second"]], **SETTINGS)
    mean_log = np.mean([np.log(member.word_probabilities(SENTENCES)) for member in members], axis=0)
    expected = np.exp(mean_log) / np.exp(mean_log).sum(axis=1, keepdims=True)
    probabilities = ensemble.word_probabilities(SENTENCES)
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)
    assert not np.allclose(probabilities, members[0].word_probabilities(SENTENCES), atol=1e-3)


def test_another_label_set_is_refused_naming_both_folders(folders):
    with pytest.raises(UsageError, match="other_labels") as raised:
        Tagger.from_folders([folders["first"], folders["other"]], **SETTINGS)
    assert str(folders["first"]) in str(raised.value) and "\n" not in str(raised.value)


TEXTS = ["John  visited Paris and London today, with Mary!", "The city of Xyzzy and Qrst Uvw , abcd", "", "Mary"]
BIASES = {"seed3": [1.0, 0.0, -0.5, 0.3, 0.0, 0.2, 0.0], "seed4": [-0.4, 0.6, 0.0, 0.0, 0.1, 0.0, -0.3]}


def _scaled_folder(folder, seed: int, bias: list[float] | None) -> Path:
    """A tiny tagger with word-dependent tags (its classifier scaled), Viterbi recorded as its decoding
    and, unless `bias` is None, a calibration bias folded into its classifier (as `train_ner.py` leaves it)."""
    save_tiny_tagger(folder, LABELS, seed=seed)
    model = AutoModelForTokenClassification.from_pretrained(folder)
    with torch.no_grad():
        model.classifier.weight.mul_(10.0)
    if bias is not None:
        fold_bias_into_classifier(model, bias)
    setattr(model.config, DECODING_CONFIG_KEY, VITERBI)
    model.save_pretrained(folder)
    return Path(folder)


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    """Two calibrated members and the same two folders without their biases."""
    root = tmp_path_factory.mktemp("calibrated")
    folders = {}
    for seed, name in enumerate(BIASES, start=3):
        folders[name] = _scaled_folder(root / name, seed, BIASES[name])
        folders[f"{name}_uncalibrated"] = _scaled_folder(root / f"{name}_uncalibrated", seed, None)
    return folders


def _approximate_scores(texts_entities: list[list[dict]]) -> list[list[dict]]:
    """Entity dicts to compare exactly but for the score (a float's rounding: softmax of a log-softmax)."""
    return [
        [{**entity, "score": pytest.approx(entity["score"], rel=1e-5)} for entity in ents] for ents in texts_entities
    ]


def _spans(texts_entities: list[list[dict]]) -> list[list[tuple]]:
    return [[(entity["entity_group"], entity["start"], entity["end"]) for entity in ents] for ents in texts_entities]


def _pipeline_entities(sentences) -> list[list[dict]]:
    return [[entity_record(entity) for entity in sentence.entities] for sentence in sentences]


@pytest.mark.parametrize("decoding", [None, "argmax"], ids=["folders_viterbi", "argmax"])
def test_ner_pipeline_of_two_copies_gives_exactly_the_folders_entities(calibrated, decoding):
    folder = calibrated["seed3"]
    settings = {"device": "cpu", "decoding": decoding, "max_seq_length": 8, "stride": 2}
    single = ner_imbalance.ner_pipeline(folder, **settings)(TEXTS)
    twice = ner_imbalance.ner_pipeline([folder, folder], **settings)
    assert isinstance(twice.model, LogProbabilityEnsemble) and twice.decoder.method == (decoding or VITERBI)
    assert sum(map(len, single)) >= 3, "entities to compare"
    assert twice(TEXTS) == _approximate_scores(single)


def test_ner_pipeline_of_folders_gives_the_ensemble_taggers_entities(calibrated):
    folders = [calibrated["seed3"], calibrated["seed4"]]
    windows = {"max_seq_length": 8, "stride": 2}
    entities = _pipeline_entities(Tagger.from_folders(folders, device="cpu", **windows).tag_text(TEXTS))
    members = [_pipeline_entities(Tagger.from_folder(f, device="cpu", **windows).tag_text(TEXTS)) for f in folders]
    assert all(_spans(entities) != _spans(member) for member in members), "the ensemble is not one member here"
    expected = _approximate_scores(entities)
    assert ner_imbalance.ner_pipeline(folders, device="cpu", **windows)(TEXTS) == expected
    by_task = transformers.pipeline(PIPELINE_TASK, model=[str(f) for f in folders], device="cpu", **windows)
    assert by_task(TEXTS) == expected


def test_ner_pipeline_refuses_another_label_set(folders):
    with pytest.raises(UsageError, match="other_labels"):
        ner_imbalance.ner_pipeline([folders["first"], folders["other"]], device="cpu")


def _softmax(scores: np.ndarray) -> np.ndarray:
    exponentials = np.exp(scores - scores.max(axis=1, keepdims=True))
    return exponentials / exponentials.sum(axis=1, keepdims=True)


def test_the_ensemble_applies_the_mean_of_the_members_calibration_biases(calibrated):
    """log_softmax(z + b) = z + b - logsumexp(z + b): the mean over members of calibrated log-probabilities is,
    up to a constant per word, the mean of the uncalibrated ones plus the mean bias."""
    names = list(BIASES)
    ensemble = Tagger.from_folders([calibrated[name] for name in names], **SETTINGS)
    uncalibrated = [Tagger.from_folder(calibrated[f"{name}_uncalibrated"], **SETTINGS) for name in names]
    mean_log = np.mean([np.log(member.word_probabilities(SENTENCES)) for member in uncalibrated], axis=0)
    probabilities = ensemble.word_probabilities(SENTENCES)
    np.testing.assert_allclose(probabilities, _softmax(mean_log + np.mean(list(BIASES.values()), axis=0)), atol=1e-5)
    assert not np.allclose(probabilities, _softmax(mean_log + BIASES[names[0]]), atol=1e-3), "not the first's bias"
