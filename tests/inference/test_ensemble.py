"""Seed ensembles: `Tagger.from_folders` averages the members' word log-probabilities before decoding."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny_models import make_tiny_tokenizer, save_tiny_tagger
from transformers import AutoModelForTokenClassification

from ner_imbalance.errors import UsageError
from ner_imbalance.inference import Tagger

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
