"""`EntityCounter` counts entities on label ids exactly as `evaluate_tags` (seqeval's conlleval chunking) does on
tag strings, for well-formed IOB2 and IOBES label lists and for labels seqeval reads leniently
(`tags.conlleval_split`), and its counts are additive over sentences."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from ner_imbalance.evaluation import evaluate_tags
from ner_imbalance.evaluation.entity_counts import ChunkTables, EntityCounter, tag_ids

LABEL_LISTS = {
    "iob2": ["O", "B-LOC", "I-LOC", "B-creative-work", "I-creative-work"],
    "iobes": ["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "I-LOC", "E-LOC", "S-LOC"],
    "lenient": ["O", "B-PER", "I-PER", "B-", "I", "BPER", "PER", "E--X", "Ofoo", "S-PER"],
}


def _random_sentences(generator: np.random.Generator, num_labels: int) -> tuple[np.ndarray, list[int]]:
    lengths = [int(length) for length in generator.integers(0, 7, size=12)]
    lengths[0] = max(lengths[0], 1)
    return generator.integers(0, num_labels, size=sum(lengths)), lengths


def _split(ids: np.ndarray, lengths: list[int], label_list: list[str]) -> list[list[str]]:
    ends = np.cumsum(lengths)
    return [[label_list[i] for i in ids[end - length : end]] for end, length in zip(ends, lengths)]


@pytest.mark.parametrize("name", sorted(LABEL_LISTS))
@pytest.mark.parametrize("seed", range(5))
def test_counts_on_label_ids_equal_evaluate_tags(name, seed):
    label_list = LABEL_LISTS[name]
    generator = np.random.default_rng(seed)
    gold_ids, lengths = _random_sentences(generator, len(label_list))
    gold = _split(gold_ids, lengths, label_list)
    pred_ids = np.where(generator.random(len(gold_ids)) < 0.4, generator.integers(0, len(label_list)), gold_ids)
    tables = ChunkTables(label_list)
    counter = EntityCounter(tag_ids(gold, label_list), lengths, tables)
    counts = counter.counts(pred_ids)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # seqeval warns about labels that are not NE tags
        per_type = evaluate_tags(gold, _split(pred_ids, lengths, label_list))["per_type"]
    for index, entity_type in enumerate(tables.types):
        scores = per_type.get(entity_type, {"support": 0, "predicted": 0, "correct": 0})
        assert counts[:, index].tolist() == [scores["support"], scores["predicted"], scores["correct"]], entity_type
    assert set(per_type) <= set(tables.types)


def test_counts_are_additive_over_sentences():
    label_list = LABEL_LISTS["lenient"]
    generator = np.random.default_rng(7)
    gold_ids, lengths = _random_sentences(generator, len(label_list))
    pred_ids = generator.integers(0, len(label_list), size=len(gold_ids))
    counter = EntityCounter(gold_ids, lengths, ChunkTables(label_list))
    chosen = generator.random(len(lengths)) < 0.5
    words = np.repeat(chosen, lengths)
    parts = [np.flatnonzero(chosen), np.flatnonzero(~chosen)]
    both = sum(counter.select(part).counts(pred_ids[counter.words_of(part)]) for part in parts)
    np.testing.assert_array_equal(both, counter.counts(pred_ids))
    np.testing.assert_array_equal(counter.words_of(parts[0]), np.flatnonzero(words))


@pytest.mark.parametrize("name", sorted(LABEL_LISTS))
def test_sentence_counts_are_the_counts_of_each_sentence_alone(name):
    label_list = LABEL_LISTS[name]
    generator = np.random.default_rng(11)
    gold_ids, lengths = _random_sentences(generator, len(label_list))
    pred_ids = np.where(generator.random(len(gold_ids)) < 0.5, generator.integers(0, len(label_list)), gold_ids)
    counter = EntityCounter(gold_ids, lengths, ChunkTables(label_list))
    per_sentence = counter.sentence_counts(pred_ids)
    for sentence in range(len(lengths)):
        alone = np.array([sentence])
        expected = counter.select(alone).counts(pred_ids[counter.words_of(alone)])
        np.testing.assert_array_equal(per_sentence[sentence], expected)
    np.testing.assert_array_equal(per_sentence.sum(axis=0), counter.counts(pred_ids))
    # one sentence chosen twice, in any order, is counted twice
    picked = np.array([len(lengths) - 1, 0, 0, 2])
    repeated = counter.select(picked).sentence_counts(pred_ids[counter.words_of(picked)])
    np.testing.assert_array_equal(repeated, per_sentence[picked])
