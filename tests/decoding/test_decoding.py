"""Decoding word-level scores: transition constraints, BIO-constrained Viterbi and argmax.

Viterbi is checked against brute-force enumeration of every tag sequence and against a validity checker written
here from the scheme's rules on tag strings (independent of the module's constraint matrices).
"""

from __future__ import annotations

import functools
import itertools

import numpy as np
import pytest

from ner_imbalance.constants import DECODING_METHODS, IOB2, IOBES
from ner_imbalance.decoding import argmax_decode, decode, tag_constraints, viterbi_decode
from ner_imbalance.tags import canonical_scheme

PER_LOC = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


def label_list(scheme: str, num_types: int) -> list[str]:
    prefixes = ("B", "I") if scheme == IOB2 else ("B", "I", "E", "S")
    return ["O"] + [f"{prefix}-T{index}" for index in range(num_types) for prefix in prefixes]


# IOB2 with 1-3 types (3, 5, 7 labels) and IOBES with 1 type (5 labels), up to 6 words; IOBES with 2 types
# (9 labels) up to 4 words, to keep the enumeration small.
BRUTE_FORCE_CASES = [(IOB2, 1, 6), (IOB2, 2, 6), (IOB2, 3, 6), (IOBES, 1, 6), (IOBES, 2, 4)]


def may_follow(previous: str | None, tag: str, scheme: str) -> bool:
    """The scheme's rule on tag strings (`previous` None: first word): an inside tag continues an open entity of
    its type; under IOBES an open entity (after `B-`/`I-`) must be continued, not left for `O`, `B-` or `S-`."""
    open_type = previous.partition("-")[2] if previous is not None and previous[0] in ("B", "I") else None
    prefix, _, entity_type = tag.partition("-")
    if prefix in ("I", "E") and open_type != entity_type:
        return False
    return not (scheme == IOBES and prefix in ("O", "B", "S") and open_type is not None)


def may_end(tag: str, scheme: str) -> bool:
    return scheme == IOB2 or tag[0] not in ("B", "I")


def is_valid(tags: list[str], scheme: str) -> bool:
    return all(may_follow(previous, tag, scheme) for previous, tag in zip([None, *tags], tags)) and (
        not tags or may_end(tags[-1], scheme)
    )


@functools.lru_cache(maxsize=None)
def valid_sequences(scheme: str, num_types: int, length: int) -> np.ndarray:
    """Every valid label-id sequence of `length` words, `[num_valid, length]`."""
    labels = label_list(scheme, num_types)
    every = itertools.product(range(len(labels)), repeat=length)
    return np.array([ids for ids in every if is_valid([labels[i] for i in ids], scheme)]).reshape(-1, length)


def brute_force_best(scores: np.ndarray, scheme: str, num_types: int) -> np.ndarray:
    sequences = valid_sequences(scheme, num_types, len(scores))
    totals = scores[np.arange(len(scores)), sequences].sum(axis=1)
    return sequences[totals.argmax()]


def split(values: np.ndarray, lengths: list[int]) -> list[np.ndarray]:
    return np.split(values, np.cumsum(lengths)[:-1])


def path_score(scores: np.ndarray, ids: np.ndarray) -> float:
    return float(scores[np.arange(len(ids)), ids].sum())


def reference_viterbi(scores: np.ndarray, labels: list[str], scheme: str) -> tuple[float, list[str]]:
    """Best (score, tags) of one sentence by a plain dynamic programme over tag strings: the best valid prefix
    ending in each tag, extended one word at a time."""
    best = {tag: (scores[0, j], [tag]) for j, tag in enumerate(labels) if may_follow(None, tag, scheme)}
    for t in range(1, len(scores)):
        extended = {}
        for j, tag in enumerate(labels):
            candidates = [
                (score + scores[t, j], path) for score, path in best.values() if may_follow(path[-1], tag, scheme)
            ]
            if candidates:
                score, path = max(candidates, key=lambda candidate: candidate[0])
                extended[tag] = (score, [*path, tag])
        best = extended
    return max(((score, path) for score, path in best.values() if may_end(path[-1], scheme)), key=lambda pair: pair[0])


# --- transition constraints -----------------------------------------------------------------------------------


def test_iob2_constraints_are_the_scheme_rules():
    constraints = tag_constraints(PER_LOC, "iob2")
    #                      O  B-P I-P B-L I-L   (to)
    expected = np.array(
        [
            [1, 1, 0, 1, 0],  # from O
            [1, 1, 1, 1, 0],  # from B-PER
            [1, 1, 1, 1, 0],  # from I-PER
            [1, 1, 0, 1, 1],  # from B-LOC
            [1, 1, 0, 1, 1],  # from I-LOC
        ],
        dtype=bool,
    )
    np.testing.assert_array_equal(constraints.allowed_transitions, expected)
    np.testing.assert_array_equal(constraints.allowed_start, [1, 1, 0, 1, 0])
    np.testing.assert_array_equal(constraints.allowed_end, [1, 1, 1, 1, 1])


def test_iobes_constraints_are_the_scheme_rules():
    labels = ["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "I-LOC", "E-LOC", "S-LOC"]
    constraints = tag_constraints(labels, "IOBES")
    for i, previous in enumerate(labels):
        for j, tag in enumerate(labels):
            assert constraints.allowed_transitions[i, j] == may_follow(previous, tag, IOBES), (previous, tag)
    np.testing.assert_array_equal(constraints.allowed_start, [1, 1, 0, 0, 1, 1, 0, 0, 1])
    np.testing.assert_array_equal(constraints.allowed_end, [1, 0, 0, 1, 1, 0, 0, 1, 1])


@pytest.mark.parametrize(
    ("labels", "scheme", "named"),
    [
        (["O", "B-PER", "X-PER"], "iob2", ["'X-PER'"]),
        (["O", "B-PER", "I-PER", "E-PER", "S-PER"], "iob2", ["'E-PER'", "'S-PER'", "IOBES"]),
        (["O", "B-PER", "I-PER", "I-product"], "iob2", ["'I-product'"]),
        (["O", "B-", "X", "B-PER"], "iob2", ["'B-'", "'X'"]),
        (["O", "B-PER", "BB-PER", "b-PER"], "iobes", ["malformed", "'BB-PER'", "'b-PER'"]),
        (["O", "B-PER", "B-PER"], "iob2", ["duplicate", "'B-PER'"]),
        (["B-PER", "I-PER"], "iob2", ["no 'O'"]),
        (["O", "I-PER", "E-PER", "S-PER"], "iobes", ["'I-PER'", "'E-PER'"]),
        (["O", "B-PER", "I-PER", "S-PER"], "bioes", ["'B-PER'", "'I-PER'"]),
    ],
)
def test_label_list_misfits_raise_one_line_naming_labels_and_scheme(labels, scheme, named):
    with pytest.raises(ValueError) as raised:
        tag_constraints(labels, scheme)
    message = str(raised.value)
    assert "\n" not in message
    assert canonical_scheme(scheme) in message
    for part in named:
        assert part in message


def test_all_misfits_are_reported_together():
    with pytest.raises(ValueError) as raised:
        tag_constraints(["O", "B-", "E-PER", "I-LOC"], "iob2")
    message = str(raised.value)
    assert all(part in message for part in ("'B-'", "'E-PER'", "'I-LOC'")), message


# --- Viterbi against brute force --------------------------------------------------------------------------------


@pytest.mark.parametrize(("scheme", "num_types", "max_length"), BRUTE_FORCE_CASES)
@pytest.mark.parametrize("seed", range(8))
def test_viterbi_equals_brute_force_over_several_sentences_in_one_call(scheme, num_types, max_length, seed):
    rng = np.random.default_rng(seed)
    labels = label_list(scheme, num_types)
    lengths = [*range(1, max_length + 1), *rng.integers(1, max_length + 1, size=6)]
    rng.shuffle(lengths)
    scores = rng.normal(scale=2.0, size=(sum(lengths), len(labels)))
    decoded = viterbi_decode(scores, np.array(lengths), *tag_constraints(labels, scheme))
    for sentence_scores, ids in zip(split(scores, lengths), split(decoded, lengths)):
        expected = brute_force_best(sentence_scores, scheme, num_types)
        np.testing.assert_array_equal(ids, expected)


@pytest.mark.parametrize(("scheme", "num_types", "max_length"), BRUTE_FORCE_CASES)
def test_viterbi_never_emits_an_invalid_sequence(scheme, num_types, max_length):
    rng = np.random.default_rng(7)
    labels = label_list(scheme, num_types)
    lengths = rng.integers(0, 40, size=200)
    # large scores on inside tags make the argmax sequences mostly invalid
    scores = rng.normal(size=(lengths.sum(), len(labels))) + 3.0 * np.array([tag[0] in "IE" for tag in labels])
    argmax_ids = argmax_decode(scores, lengths)
    assert not all(is_valid([labels[i] for i in ids], scheme) for ids in split(argmax_ids, list(lengths)))
    decoded = viterbi_decode(scores, lengths, *tag_constraints(labels, scheme))
    for ids in split(decoded, list(lengths)):
        assert is_valid([labels[i] for i in ids], scheme), [labels[i] for i in ids]


@pytest.mark.parametrize("scheme", [IOB2, IOBES])
def test_viterbi_equals_argmax_when_argmax_is_valid(scheme):
    rng = np.random.default_rng(3)
    labels = label_list(scheme, 2)
    checked = 0
    for _ in range(300):
        length = int(rng.integers(1, 8))
        scores = rng.normal(size=(length, len(labels)))
        scores[:, 0] += 1.5  # mostly O, so that the argmax is often valid
        argmax_ids = argmax_decode(scores, np.array([length]))
        if is_valid([labels[i] for i in argmax_ids], scheme):
            checked += 1
            decoded = viterbi_decode(scores, np.array([length]), *tag_constraints(labels, scheme))
            np.testing.assert_array_equal(decoded, argmax_ids)
    assert checked >= 50


def test_ties_go_to_the_lowest_label_id_like_argmax():
    scores = np.zeros((4, len(PER_LOC)))
    decoded = viterbi_decode(scores, np.array([4]), *tag_constraints(PER_LOC, "iob2"))
    np.testing.assert_array_equal(decoded, [0, 0, 0, 0])
    np.testing.assert_array_equal(decoded, argmax_decode(scores, np.array([4])))


# --- hand-written fixture --------------------------------------------------------------------------------------

#                          O    B-PER I-PER B-LOC I-LOC
HAND_SCORES = np.array(
    [
        [2.0, 0.0, 0.0, 0.0, 0.0],  # sentence 1, word 1: O
        [0.0, 2.5, 3.0, 0.0, 0.0],  # sentence 1, word 2: I-PER best, B-PER close
        [0.0, 3.0, 0.0, 2.0, 0.0],  # sentence 2, word 1: B-PER best, B-LOC second
        [0.0, 0.0, 1.0, 0.0, 3.0],  # sentence 2, word 2: I-LOC best
        [0.0, 0.0, 0.0, 0.0, 0.0],  # sentence 3, word 1: a tie, O wins
    ]
)
HAND_LENGTHS = np.array([2, 0, 2, 1])


def test_hand_fixture_argmax_is_invalid_and_viterbi_finds_the_best_valid_sequence():
    argmax_tags = [PER_LOC[i] for i in argmax_decode(HAND_SCORES, HAND_LENGTHS)]
    viterbi_tags = [PER_LOC[i] for i in decode(HAND_SCORES, HAND_LENGTHS, PER_LOC, scheme="iob2", method="viterbi")]
    assert argmax_tags == ["O", "I-PER", "B-PER", "I-LOC", "O"]
    # sentence 1: O B-PER (2 + 2.5 = 4.5) beats B-PER I-PER (0 + 3 = 3); sentence 2: B-LOC I-LOC (2 + 3 = 5) beats
    # B-PER I-PER (3 + 1 = 4) and B-PER O (3 + 0 = 3)
    assert viterbi_tags == ["O", "B-PER", "B-LOC", "I-LOC", "O"]
    assert label_list(IOB2, 2) == ["O", "B-T0", "I-T0", "B-T1", "I-T1"]  # PER_LOC's structure: brute force applies
    for scores, expected_tags in zip(split(HAND_SCORES, [2, 2, 1]), [["O", "B-PER"], ["B-LOC", "I-LOC"], ["O"]]):
        assert [PER_LOC[i] for i in brute_force_best(scores, IOB2, 2)] == expected_tags


# --- shapes and edge cases ---------------------------------------------------------------------------------------


def test_empty_sentence_in_the_middle_and_one_word_sentences():
    rng = np.random.default_rng(11)
    labels = label_list(IOBES, 1)
    lengths = np.array([3, 0, 1, 0, 0, 2, 1])
    scores = rng.normal(size=(lengths.sum(), len(labels)))
    decoded = viterbi_decode(scores, lengths, *tag_constraints(labels, IOBES))
    assert decoded.shape == (7,)
    nonempty = [length for length in lengths if length]
    for sentence_scores, ids in zip(split(scores, nonempty), split(decoded, nonempty)):
        np.testing.assert_array_equal(ids, brute_force_best(sentence_scores, IOBES, 1))
    one_word = [labels[i] for i in decoded[[3, 6]]]
    assert all(tag == "O" or tag.startswith("S-") for tag in one_word)


def test_only_empty_sentences_decode_to_nothing():
    constraints = tag_constraints(PER_LOC, "iob2")
    decoded = viterbi_decode(np.zeros((0, 5), dtype=np.float16), np.array([0, 0]), *constraints)
    assert decoded.shape == (0,) and decoded.dtype == np.int64
    assert viterbi_decode(np.zeros((0, 5)), np.array([], dtype=np.int64), *constraints).shape == (0,)


@pytest.mark.parametrize("scheme", [IOB2, IOBES])
def test_very_long_sentence_matches_a_plain_dynamic_programme(scheme):
    rng = np.random.default_rng(5)
    labels = label_list(scheme, 2)
    lengths = np.array([300, 4, 0, 17])
    scores = rng.normal(scale=2.0, size=(lengths.sum(), len(labels)))
    decoded = viterbi_decode(scores, lengths, *tag_constraints(labels, scheme))
    for sentence_scores, ids in zip(split(scores, [300, 4, 17]), split(decoded, [300, 4, 17])):
        best_score, best_tags = reference_viterbi(sentence_scores, labels, scheme)
        assert [labels[i] for i in ids] == best_tags
        assert path_score(sentence_scores, ids) == pytest.approx(best_score, abs=1e-9)


def test_logits_and_log_softmax_give_the_same_path():
    rng = np.random.default_rng(13)
    labels = label_list(IOB2, 3)
    lengths = rng.integers(0, 30, size=100)
    logits = rng.normal(scale=3.0, size=(lengths.sum(), len(labels))) + rng.normal(scale=20.0, size=(lengths.sum(), 1))
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probabilities = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    constraints = tag_constraints(labels, IOB2)
    from_logits = viterbi_decode(logits, lengths, *constraints)
    np.testing.assert_array_equal(from_logits, viterbi_decode(log_probabilities, lengths, *constraints))
    assert (from_logits != argmax_decode(logits, lengths)).any()  # the constraints did change something


def test_float16_input_decodes_like_its_float64_values():
    rng = np.random.default_rng(17)
    labels = label_list(IOB2, 3)
    lengths = rng.integers(1, 25, size=50)
    half = rng.normal(scale=4.0, size=(lengths.sum(), len(labels))).astype(np.float16)
    constraints = tag_constraints(labels, IOB2)
    decoded = viterbi_decode(half, lengths, *constraints)
    np.testing.assert_array_equal(decoded, viterbi_decode(half.astype(np.float64), lengths, *constraints))
    for ids in split(decoded, list(lengths)):
        assert is_valid([labels[i] for i in ids], IOB2)


def test_no_valid_sequence_is_an_error():
    # IOBES constraints where nothing may both start and end a sentence: no one-word sentence is possible
    allowed_start = np.array([True, False])
    allowed_end = np.array([False, True])
    with pytest.raises(ValueError, match="no label sequence"):
        viterbi_decode(np.zeros((1, 2)), np.array([1]), np.ones((2, 2), dtype=bool), allowed_start, allowed_end)


@pytest.mark.parametrize(
    ("scores", "lengths", "match"),
    [
        (np.zeros((3, 5)), np.array([2, 2]), "sum to 4"),
        (np.zeros((3, 5)), np.array([4, -1]), ">= 0"),
        (np.zeros((3, 5)), np.array([1.5, 1.5]), "integer"),
        (np.zeros(15), np.array([3]), "shape"),
        (np.array([[0.0, np.nan, 0, 0, 0]]), np.array([1]), "finite"),
    ],
)
def test_bad_inputs_raise(scores, lengths, match):
    with pytest.raises(ValueError, match=match):
        viterbi_decode(scores, lengths, *tag_constraints(PER_LOC, "iob2"))


def test_constraints_of_another_label_count_raise():
    with pytest.raises(ValueError, match="do not fit 3 labels"):
        viterbi_decode(np.zeros((2, 3)), np.array([2]), *tag_constraints(PER_LOC, "iob2"))


# --- the entry point ----------------------------------------------------------------------------------------------


def test_decode_dispatches_by_method():
    by_method = {
        method: decode(HAND_SCORES, HAND_LENGTHS, PER_LOC, scheme="IOB2", method=method) for method in DECODING_METHODS
    }
    np.testing.assert_array_equal(by_method["argmax"], argmax_decode(HAND_SCORES, HAND_LENGTHS))
    np.testing.assert_array_equal(
        by_method["viterbi"], viterbi_decode(HAND_SCORES, HAND_LENGTHS, *tag_constraints(PER_LOC, "iob2"))
    )
    assert (by_method["argmax"] != by_method["viterbi"]).any()
    from_array_labels = decode(HAND_SCORES, HAND_LENGTHS, np.array(PER_LOC), scheme="iob2", method="viterbi")
    np.testing.assert_array_equal(from_array_labels, by_method["viterbi"])  # label lists as stored in .npz files


def test_decode_rejects_an_unknown_method_naming_the_allowed_ones():
    with pytest.raises(ValueError, match="'beam'.*argmax, viterbi"):
        decode(HAND_SCORES, HAND_LENGTHS, PER_LOC, scheme="iob2", method="beam")


def test_decode_rejects_a_label_list_of_another_size_and_unknown_schemes():
    with pytest.raises(ValueError, match="4 labels"):
        decode(HAND_SCORES, HAND_LENGTHS, PER_LOC[:4], scheme="iob2", method="argmax")
    with pytest.raises(ValueError, match="tag scheme"):
        decode(HAND_SCORES, HAND_LENGTHS, PER_LOC, scheme="bilou", method="argmax")
