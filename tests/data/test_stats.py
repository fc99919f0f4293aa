"""Corpus statistics, class weights and entity down-sampling, against counts worked out by hand."""

from __future__ import annotations

import math

import datasets
import pytest

from ner_imbalance.data.readers import read_conll
from ner_imbalance.data.stats import (
    compute_class_weights,
    corpus_stats,
    downsample_entities,
    format_stats,
    label_prior,
)


def _tagged(tag_lists: list[list[str]]) -> datasets.Dataset:
    return datasets.Dataset.from_dict(
        {"tokens": [[f"w{i}" for i in range(len(tags))] for tags in tag_lists], "tags": tag_lists}
    )


def test_corpus_stats_of_the_training_fixture(fixtures_dir):
    stats = corpus_stats(read_conll(fixtures_dir / "ner_train.conll"))
    assert stats["sentences"] == 4
    assert stats["tokens"] == 29
    assert stats["tokens_per_tag"] == {
        "O": 19,
        "B-person": 2,
        "B-location": 2,
        "I-person": 1,
        "B-group": 1,
        "I-group": 1,
        "B-corporation": 1,
        "B-product": 1,
        "I-product": 1,
    }
    assert stats["outside_share"] == pytest.approx(19 / 29)
    assert stats["entities"] == 7
    assert stats["entities_per_type"] == {"person": 2, "location": 2, "group": 1, "corporation": 1, "product": 1}
    assert stats["outside_to_entity_ratio"] == pytest.approx(1.9)
    table = format_stats(stats, "train")
    assert "== train" in table and "sentences 4" in table and "O:entity tokens 1.90:1" in table


def test_inverse_frequency_weights_have_token_weighted_mean_one():
    dataset = _tagged([["O", "O", "O", "B-A"], ["O", "O", "O", "B-A"]])
    weights = compute_class_weights(dataset, ["O", "B-A", "I-A"], "inverse_frequency")
    assert weights == pytest.approx([2 / 3, 2.0, 2.0])
    assert (6 * weights[0] + 2 * weights[1]) / 8 == pytest.approx(1.0)


def test_sqrt_inverse_frequency_weights():
    dataset = _tagged([["O", "O", "O", "B-A"], ["O", "O", "O", "B-A"]])
    weights = compute_class_weights(dataset, ["O", "B-A", "I-A"], "sqrt_inverse_frequency")
    scale = 8 / (math.sqrt(6) + math.sqrt(2))
    assert weights == pytest.approx([scale / math.sqrt(6), scale / math.sqrt(2), scale / math.sqrt(2)])


def test_class_weights_reject_unknown_method_and_tags():
    dataset = _tagged([["O", "B-A"]])
    with pytest.raises(ValueError, match="method"):
        compute_class_weights(dataset, ["O", "B-A"], "median_frequency")
    with pytest.raises(ValueError, match="B-A"):
        compute_class_weights(dataset, ["O"], "inverse_frequency")


def test_downsample_keeps_every_outside_sentence_and_a_share_of_the_others():
    tag_lists = [["B-A", "O"] if index % 3 else ["O", "O"] for index in range(30)]
    dataset = _tagged(tag_lists).add_column("row", list(range(30)))
    kept = downsample_entities(dataset, keep_ratio=0.25, seed=3)
    rows = kept["row"]
    assert rows == sorted(rows)
    assert {row for row in range(30) if row % 3 == 0} <= set(rows)
    assert sum(1 for row in rows if row % 3) == 5
    assert downsample_entities(dataset, keep_ratio=0.25, seed=3)["row"] == rows
    assert len(downsample_entities(dataset, keep_ratio=1.0, seed=0)) == 30
    assert downsample_entities(dataset, keep_ratio=0.0, seed=0)["row"] == list(range(0, 30, 3))
    with pytest.raises(ValueError, match="keep_ratio"):
        downsample_entities(dataset, keep_ratio=1.5, seed=0)


def test_effective_number_weights_follow_cui_et_al_and_have_token_weighted_mean_one():
    dataset = _tagged([["O", "O", "O", "B-A"], ["O", "O", "O", "B-A"]])
    beta = 0.9
    weights = compute_class_weights(dataset, ["O", "B-A", "I-A"], "effective_number", beta=beta)
    raw_outside, raw_entity = (1 - beta) / (1 - beta**6), (1 - beta) / (1 - beta**2)
    scale = 8 / (6 * raw_outside + 2 * raw_entity)
    assert weights == pytest.approx([scale * raw_outside, scale * raw_entity, scale * raw_entity])
    assert (6 * weights[0] + 2 * weights[1]) / 8 == pytest.approx(1.0)
    # beta = 0: every seen label counts once (weights 1); beta -> 1: inverse frequency.
    assert compute_class_weights(dataset, ["O", "B-A"], "effective_number", beta=0.0) == pytest.approx([1.0, 1.0])
    inverse = compute_class_weights(dataset, ["O", "B-A"], "inverse_frequency")
    near_one = compute_class_weights(dataset, ["O", "B-A"], "effective_number", beta=1 - 1e-9)
    assert near_one == pytest.approx(inverse, rel=1e-6)
    with pytest.raises(ValueError, match="beta"):
        compute_class_weights(dataset, ["O", "B-A"], "effective_number", beta=1.0)


def test_label_prior_is_the_share_of_tokens_with_unseen_labels_as_rare_as_the_rarest():
    dataset = _tagged([["O", "O", "O", "B-A"], ["O", "O", "B-A", "I-A"]])
    prior = label_prior(dataset, ["O", "B-A", "I-A", "B-B"])
    assert prior == pytest.approx([5 / 9, 2 / 9, 1 / 9, 1 / 9])
    with pytest.raises(ValueError, match="not in the label list"):
        label_prior(dataset, ["O", "B-A"])
