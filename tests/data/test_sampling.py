"""Repeat factors (LVIS) of sentences from their entity types, and the sampler that draws sentences by them
and yields their windows: epoch length, determinism, windows of a sentence together, shards, length groups."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from ner_imbalance.data.sampling import (
    SentenceRepeatSampler,
    TypeRepeatFactor,
    inclusion_probabilities,
    repeat_factors,
)

# Ten sentences; with t = 0.4: PER is in 4 of them (f = 0.4, r = max(1, sqrt(0.4/0.4)) = 1), LOC in 2
# (f = 0.2, r = sqrt(2)), MISC in 1 (f = 0.1, r = sqrt(4) = 2). Sentence 3 has PER and LOC: sqrt(2).
TEN_SENTENCES = [
    ["O", "O"],
    ["B-PER", "I-PER", "O"],
    ["B-LOC"],
    ["B-PER", "O", "B-LOC"],
    ["O"],
    ["O", "B-MISC", "I-MISC"],
    ["B-PER"],
    ["O", "B-PER"],
    ["O", "O", "O"],
    ["O"],
]
SQRT2 = math.sqrt(2)


def sampler_yields(sampler: SentenceRepeatSampler, epoch: int) -> list[int]:
    sampler.set_epoch(epoch)
    return list(sampler)


def windows_of_sentences(windows_per_sentence: list[int]) -> list[int]:
    """`example_index` of the windows of sentences with these window counts, sentences interleaved
    (as the windows of a corpus are not necessarily ordered by sentence)."""
    example_index = [sentence for sentence, count in enumerate(windows_per_sentence) for _ in range(count)]
    return example_index[::2] + example_index[1::2]


# Repeat factors


def test_repeat_factors_of_a_hand_computed_example():
    factors, per_type = repeat_factors(TEN_SENTENCES, threshold=0.4)
    np.testing.assert_allclose(factors, [1, 1, SQRT2, SQRT2, 1, 2, 1, 1, 1, 1])
    assert list(per_type) == ["LOC", "MISC", "PER"]
    assert per_type["PER"] == TypeRepeatFactor(num_sentences=4, sentence_share=0.4, repeat_factor=1.0)
    assert per_type["LOC"].num_sentences == 2 and per_type["LOC"].sentence_share == 0.2
    assert math.isclose(per_type["LOC"].repeat_factor, SQRT2)
    assert per_type["MISC"] == TypeRepeatFactor(num_sentences=1, sentence_share=0.1, repeat_factor=2.0)


def test_repeat_factors_read_iobes_types_and_a_low_threshold_repeats_nothing():
    iobes = [["S-ORG"], ["B-ORG", "E-ORG", "O"], ["O"], ["O", "S-PER"]]
    factors, per_type = repeat_factors(iobes, threshold=1.0)
    # ORG in 2 of 4 (f = 0.5): sqrt(1 / 0.5) = sqrt(2); PER in 1 of 4: sqrt(4) = 2.
    np.testing.assert_allclose(factors, [SQRT2, SQRT2, 1, 2])
    assert {name: value.num_sentences for name, value in per_type.items()} == {"ORG": 2, "PER": 1}
    factors, _ = repeat_factors(iobes, threshold=0.25)  # every type is in at least a quarter of the sentences
    np.testing.assert_array_equal(factors, [1, 1, 1, 1])


@pytest.mark.parametrize(
    ("tag_sequences", "threshold", "message"),
    [
        (TEN_SENTENCES, 0.0, "threshold"),
        (TEN_SENTENCES, 1.5, "threshold"),
        (TEN_SENTENCES, True, "threshold"),
        ([], 0.1, "at least one"),
        ([["PER"]], 0.1, "PER"),
        ([["B-"]], 0.1, "B-"),
    ],
)
def test_repeat_factors_reject_bad_input(tag_sequences, threshold, message):
    with pytest.raises(ValueError, match=message):
        repeat_factors(tag_sequences, threshold)


# Drawing sentences


def test_inclusion_probabilities_are_proportional_capped_at_one_and_sum_to_the_sample_size():
    np.testing.assert_allclose(inclusion_probabilities(np.array([0.9, 0.6, 0.5]), 2), [0.9, 0.6, 0.5])
    np.testing.assert_allclose(inclusion_probabilities(np.array([0.1, 0.3, 0.0]), 1), [0.25, 0.75, 0.0])
    # 0.99 * 2 / 1.5 > 1: taken for sure, the other gets the remaining draw.
    np.testing.assert_allclose(inclusion_probabilities(np.array([0.99, 0.51, 0.0]), 2), [1.0, 1.0, 0.0])
    np.testing.assert_allclose(inclusion_probabilities(np.array([0.9, 0.1, 0.1]), 2), [1.0, 0.5, 0.5])


def test_each_sentence_is_drawn_r_times_per_epoch_on_average():
    # Fractional parts 0.9, 0.6, 0.5 sum to 2: two extra draws per epoch, the expected draws are exactly r.
    # (Drawing the extras one after the other in proportion to the fractions, without replacement, would
    # give the first sentence 1.79 instead of 1.9: far outside the tolerance.)
    factors = [1.9, 1.6, 1.5, 1.0, 3.0]
    sampler = SentenceRepeatSampler(range(5), factors, group_by_length=False, seed=7)
    assert len(sampler) == sampler.num_sentence_draws == 9
    np.testing.assert_allclose(sampler.expected_draws, factors)
    epochs = 4000
    draws = np.zeros((epochs, 5))
    for epoch in range(epochs):
        counts = Counter(sampler_yields(sampler, epoch))
        draws[epoch] = [counts[sentence] for sentence in range(5)]
    assert (draws.sum(1) == 9).all()
    # Whole parts always, at most one extra: floor(r) or floor(r) + 1 draws.
    assert ((draws == np.floor(factors)) | (draws == np.floor(factors) + 1)).all()
    # The standard error of a mean of 4000 epochs is at most 0.5 / sqrt(4000) = 0.008: 0.04 is 5 of them.
    np.testing.assert_allclose(draws.mean(0), factors, atol=0.04)


def test_fractions_that_do_not_sum_to_an_integer_are_scaled_and_capped():
    # Fractions 0.99 + 0.51 = 1.5 round to 2 extra draws: both sentences get one in every epoch.
    sampler = SentenceRepeatSampler(range(3), [1.99, 1.51, 1.0], group_by_length=False)
    for epoch in range(20):
        assert sorted(sampler_yields(sampler, epoch)) == [0, 0, 1, 1, 2]


def test_weighted_mode_draws_with_replacement_in_proportion_to_the_factors():
    factors = np.array([1.0, 1.0, 2.0, 4.0, 8.0])
    sampler = SentenceRepeatSampler(range(5), factors, mode="weighted", group_by_length=False, seed=3)
    assert len(sampler) == 5
    epochs = 2000
    counts = Counter()
    repeated_within_an_epoch = 0
    for epoch in range(epochs):
        drawn = sampler_yields(sampler, epoch)
        assert len(drawn) == 5
        counts.update(drawn)
        repeated_within_an_epoch += len(set(drawn)) < 5
    frequencies = np.array([counts[sentence] for sentence in range(5)]) / (5 * epochs)
    # 10000 draws: standard error at most 0.5 / 100 = 0.005; 0.025 is 5 of them.
    np.testing.assert_allclose(frequencies, factors / factors.sum(), atol=0.025)
    assert repeated_within_an_epoch > epochs / 2  # with replacement: the weight-8 sentence comes twice often


# Epoch length, determinism


@pytest.mark.parametrize("mode", ["repeat_factor", "weighted"])
@pytest.mark.parametrize("group_by_length", [True, False])
@pytest.mark.parametrize("num_replicas", [1, 3])
def test_length_is_constant_across_epochs_and_equals_the_yielded_count(mode, group_by_length, num_replicas):
    windows_per_sentence = [1, 3, 2, 1, 4, 1, 2, 1]
    example_index = windows_of_sentences(windows_per_sentence)
    factors = [1.0, 2.5, 1.0, 1.7, 1.2, 3.0, 1.0, 1.4]
    lengths = [(7 * window) % 23 + 2 for window in range(len(example_index))]
    samplers = [
        SentenceRepeatSampler(
            example_index,
            factors,
            mode=mode,
            lengths=lengths,
            group_by_length=group_by_length,
            batch_size=2,
            seed=11,
            num_replicas=num_replicas,
            rank=rank,
        )
        for rank in range(num_replicas)
    ]
    length = len(samplers[0])
    expected = sum(draws * windows for draws, windows in zip(samplers[0].expected_draws, windows_per_sentence))
    assert samplers[0].num_windows == round(expected)
    assert length == math.ceil(samplers[0].num_windows / num_replicas)
    for epoch in range(15):
        for sampler in samplers:
            assert len(sampler) == length
            assert len(sampler_yields(sampler, epoch)) == length


def test_same_seed_and_epoch_give_the_same_indices_whatever_was_iterated_before():
    example_index = windows_of_sentences([1, 2, 1, 3, 1, 1])
    factors = [1.3, 2.2, 1.0, 1.5, 1.8, 1.0]
    lengths = list(range(3, 3 + len(example_index)))

    def build(seed: int = 5) -> SentenceRepeatSampler:
        return SentenceRepeatSampler(example_index, factors, lengths=lengths, batch_size=2, seed=seed)

    uninterrupted = build()
    epochs = [sampler_yields(uninterrupted, epoch) for epoch in range(4)]
    assert sampler_yields(uninterrupted, 3) == epochs[3]  # iterating again does not change the draw
    resumed = build()
    assert sampler_yields(resumed, 3) == epochs[3]  # a new sampler set to epoch 3 (a resumed run)
    assert len({tuple(indices) for indices in epochs}) == 4  # every epoch draws and orders anew
    assert sampler_yields(build(seed=6), 3) != epochs[3]


@pytest.mark.parametrize("mode", ["repeat_factor", "weighted"])
def test_all_windows_of_a_drawn_sentence_are_drawn_as_often_as_the_sentence(mode):
    # Every sentence has two windows: the epoch holds exactly the windows of the drawn sentences.
    example_index = windows_of_sentences([2] * 6)
    factors = [1.0, 2.5, 1.3, 1.0, 3.2, 1.0]
    sampler = SentenceRepeatSampler(example_index, factors, mode=mode, group_by_length=False, seed=2)
    assert len(sampler) == 2 * sampler.num_sentence_draws
    for epoch in range(30):
        counts = Counter(sampler_yields(sampler, epoch))
        draws = Counter()
        for sentence in range(6):
            first, second = [window for window, of in enumerate(example_index) if of == sentence]
            assert counts[first] == counts[second]
            draws[sentence] = counts[first]
        assert sum(draws.values()) == sampler.num_sentence_draws
        if mode == "repeat_factor":
            assert all(math.floor(factors[s]) <= draws[s] <= math.floor(factors[s]) + 1 for s in range(6))


def test_with_uneven_window_counts_at_most_one_sentence_is_partly_repeated():
    windows_per_sentence = [1, 3, 2, 1, 4, 1, 2, 1]
    example_index = windows_of_sentences(windows_per_sentence)
    sampler = SentenceRepeatSampler(example_index, [1.0, 2.5, 1.0, 1.7, 1.2, 3.0, 1.0, 1.4], group_by_length=False)
    for epoch in range(30):
        counts = Counter(sampler_yields(sampler, epoch))
        per_sentence = [
            {counts[window] for window, of in enumerate(example_index) if of == sentence}
            for sentence in range(len(windows_per_sentence))
        ]
        assert sum(len(window_counts) > 1 for window_counts in per_sentence) <= 1


# Processes


@pytest.mark.parametrize("mode", ["repeat_factor", "weighted"])
def test_each_process_takes_every_num_replicas_th_index_of_the_same_epoch(mode):
    example_index = windows_of_sentences([1, 3, 2, 1, 4, 1, 2])
    lengths = [(5 * window) % 17 + 1 for window in range(len(example_index))]
    shards = [
        SentenceRepeatSampler(
            example_index,
            [1.0, 2.5, 1.0, 1.7, 1.2, 3.0, 1.0],
            mode=mode,
            lengths=lengths,
            batch_size=2,
            seed=4,
            num_replicas=3,
            rank=rank,
        )
        for rank in range(3)
    ]
    for epoch in range(5):
        whole_epoch = shards[0].epoch_indices(epoch)
        assert len(whole_epoch) == 3 * len(shards[0]) and 0 <= len(whole_epoch) - shards[0].num_windows < 3
        yielded = [sampler_yields(shard, epoch) for shard in shards]
        assert {len(indices) for indices in yielded} == {len(shards[0])}
        for rank, indices in enumerate(yielded):
            assert indices == whole_epoch[rank::3].tolist()
            assert shards[rank].epoch_indices(epoch).tolist() == whole_epoch.tolist()


# Length grouping


def test_grouping_sorts_each_mega_batch_by_length_with_the_longest_window_first():
    num_sentences, batch_size = 200, 4
    lengths = [(37 * sentence) % 61 + 2 for sentence in range(num_sentences)]
    factors = [1.0 + (sentence % 5) / 4 for sentence in range(num_sentences)]
    grouped = SentenceRepeatSampler(range(num_sentences), factors, lengths=lengths, batch_size=batch_size, seed=9)
    shuffled = SentenceRepeatSampler(range(num_sentences), factors, group_by_length=False, seed=9)
    # The Trainer's mega-batches: min(50, n // (4 * batch_size)) batches.
    mega_batch = min(50, len(grouped) // (4 * batch_size)) * batch_size
    assert len(grouped) > 2 * mega_batch
    for epoch in range(3):
        indices = sampler_yields(grouped, epoch)
        epoch_lengths = [lengths[index] for index in indices]
        assert epoch_lengths[0] == max(epoch_lengths)
        for start in range(0, len(indices), mega_batch):
            # Sorted descending, but for the first window, which may have been swapped with the longest.
            within = epoch_lengths[start + 1 : start + mega_batch]
            assert within == sorted(within, reverse=True)
        # Grouping only orders the epoch's draw.
        assert sorted(indices) == sorted(sampler_yields(shuffled, epoch))
        assert indices != sorted(indices, key=lambda index: -lengths[index])


# Arguments


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"mode": "balanced"}, "mode"),
        ({"sentence_factors": [1.0, 0.5, 1.0]}, "sentence_factors"),
        ({"sentence_factors": [1.0, float("nan"), 1.0]}, "sentence_factors"),
        ({"sentence_factors": [1.0, 0.0, 1.0], "mode": "weighted"}, "sentence_factors"),
        ({"example_index": [0, 3]}, "example_index"),
        ({"example_index": []}, "example_index"),
        ({"lengths": None}, "lengths"),
        ({"lengths": [3]}, "lengths"),
        ({"batch_size": 0}, "batch_size"),
        ({"num_replicas": 0}, "num_replicas"),
        ({"num_replicas": 2, "rank": 2}, "rank"),
    ],
)
def test_bad_arguments_raise_value_error_naming_them(arguments, message):
    keywords = {"example_index": [0, 1, 2], "sentence_factors": [1.0, 2.0, 1.0], "lengths": [3, 4, 5], **arguments}
    with pytest.raises(ValueError, match=message):
        SentenceRepeatSampler(keywords.pop("example_index"), keywords.pop("sentence_factors"), **keywords)
