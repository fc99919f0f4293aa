"""Tag strings: prefix and type, schemes, IOB1 -> IOB2, and conlleval's lenient reading (pinned to seqeval)."""

from __future__ import annotations

import doctest
import itertools
import warnings

import pytest
from seqeval.metrics.sequence_labeling import end_of_chunk, get_entities, start_of_chunk

from ner_imbalance import tags
from ner_imbalance.constants import IOB2, IOBES
from ner_imbalance.tags import (
    canonical_scheme,
    conlleval_split,
    continuation_tag,
    detect_scheme,
    entity_types,
    find_invalid_transitions,
    iob1_to_iob2,
    is_tag,
    join_tag,
    repair,
    split_tag,
)

ODD_LABELS = ["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-creative-work", "B-", "I", "BPER", "PER", "E--X", "U-X", "-X"]


def test_the_doctests_pass():
    assert doctest.testmod(tags).failed == 0


@pytest.mark.parametrize(
    ("tag", "parts"),
    [("O", ("O", "")), ("B-PER", ("B", "PER")), ("S-X", ("S", "X")), ("I-creative-work", ("I", "creative-work"))],
)
def test_split_and_join_are_inverse(tag, parts):
    assert is_tag(tag)
    assert split_tag(tag) == parts
    assert join_tag(*parts) == tag


@pytest.mark.parametrize("text", ["", "B-", "B", "X-PER", "BB-PER", "PER", "o", "b-PER", "U-PER", "L-PER", "-PER"])
def test_what_is_not_a_tag_is_one_clear_error(text):
    assert not is_tag(text)
    with pytest.raises(ValueError, match=r"is not a tag: a tag is 'O' or B-/I-/E-/S-<type>") as raised:
        split_tag(text)
    assert repr(text) in str(raised.value)


def test_join_rejects_parts_that_make_no_tag():
    with pytest.raises(ValueError, match="not a tag"):
        join_tag("B", "")
    with pytest.raises(ValueError, match="not a tag"):
        join_tag("X", "PER")


def test_entity_types_are_sorted_unique_and_leave_out_o():
    assert entity_types(["O", "S-b", "B-a", "I-a", "E-b", "B-creative-work"]) == ["a", "b", "creative-work"]
    assert entity_types(["O"]) == entity_types([]) == []
    with pytest.raises(ValueError, match="'PER' is not a tag"):
        entity_types(["B-PER", "PER"])


def test_continuation_tag_turns_only_beginnings_into_inside():
    assert [continuation_tag(tag) for tag in ("B-a", "I-a", "E-a", "S-a", "O")] == ["I-a", "I-a", "E-a", "S-a", "O"]


@pytest.mark.parametrize(("name", "canonical"), [("iob2", IOB2), ("Iob2", IOB2), ("IOBES", IOBES), ("bioes", IOBES)])
def test_canonical_scheme_in_any_case(name, canonical):
    assert canonical_scheme(name) == canonical


@pytest.mark.parametrize("name", ["iob1", "bilou", "IOB", ""])
def test_unknown_scheme_names_the_known_ones(name):
    with pytest.raises(ValueError, match=f"{name!r}: expected one of iob2, iobes, bioes"):
        canonical_scheme(name)


def test_scheme_prefixes_are_in_label_list_order():
    assert tags.SCHEME_PREFIXES == {IOB2: ("B", "I"), IOBES: ("B", "I", "E", "S")}
    assert set(tags.SCHEME_NAMES.values()) == set(tags.SCHEME_PREFIXES)


def test_detect_scheme():
    assert detect_scheme(["O", "B-a", "E-a"]) == detect_scheme(["S-a"]) == IOBES
    assert detect_scheme(["O", "B-a", "I-a"]) == detect_scheme([]) == IOB2
    assert detect_scheme(["LABEL_0", "LABEL_1", "Sx", "E-"]) == IOB2, "strings that are not tags have no scheme"
    assert detect_scheme(iter(["O", "S-a"])) == IOBES, "any iterable, read once"


@pytest.mark.parametrize(
    ("sequence", "invalid"),
    [
        (["I-a", "I-a"], [0]),
        (["B-a", "I-a", "O", "I-a"], [3]),
        (["B-a", "I-b"], [1]),
        (["B-a", "I-a", "E-a", "E-a"], [3]),
        (["S-a", "I-a", "B-a", "E-a"], [1]),
        (["O", "E-a", "B-b", "E-b"], [1]),
        (["B-PER", "I-PER", "O"], []),
        (["O", "I-PER"], [1]),
        (["B-PER", "I-LOC", "I-LOC"], [1]),
        (["B-PER", "O", "I-PER", "B-LOC", "I-LOC"], [2]),
        (["B-PER", "E-PER", "E-PER", "S-LOC", "I-LOC"], [2, 4]),
        ([], []),
    ],
)
def test_invalid_transitions(sequence, invalid):
    assert find_invalid_transitions(sequence) == invalid


def test_repair_starts_an_entity_where_an_inside_tag_continues_nothing():
    assert repair(["I-a", "E-a", "O", "E-b", "B-c", "I-a"]) == ["B-a", "E-a", "O", "S-b", "B-c", "B-a"]
    valid = ["B-a", "I-a", "E-a", "S-b", "O"]
    assert repair(valid) == valid


def test_iob1_to_iob2_leaves_iob2_unchanged():
    assert iob1_to_iob2(["I-a", "I-a", "B-a", "O", "I-b", "I-c"]) == ["B-a", "I-a", "B-a", "O", "B-b", "B-c"]
    iob2 = ["B-a", "I-a", "B-a", "O", "B-b"]
    assert iob1_to_iob2(iob2) == iob2


def test_conlleval_split_reads_labels_as_seqeval_does():
    expected = {
        "O": ("O", "_"),
        "B-PER": ("B", "PER"),
        "B-creative-work": ("B", "creative-work"),
        "B-": ("B", "_"),
        "I": ("I", "_"),
        "BPER": ("B", "PER"),
        "PER": ("P", "ER"),
        "E--X": ("E", "-X"),
        "-X": ("-", "X"),
    }
    assert {label: conlleval_split(label) for label in expected} == expected


@pytest.mark.parametrize("label", [label for label in ODD_LABELS if label[0] != "O"])
def test_a_lone_label_is_one_entity_of_the_type_seqeval_reads(label):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # seqeval warns about labels that are not NE tags
        assert get_entities([label]) == [(conlleval_split(label)[1], 0, 0)]


def test_seqeval_chunks_every_pair_of_labels_as_the_split_predicts():
    """Chunk starts and ends on the split pairs (what `ChunkTables` tabulates) give seqeval's entities."""
    for first, second in itertools.product(ODD_LABELS, repeat=2):
        sequence = [first, second]
        states = [("O", ""), *(conlleval_split(label) for label in sequence), ("O", "_")]
        entities, begin = [], None
        for position in range(1, len(states)):
            (previous, previous_type), (current, current_type) = states[position - 1], states[position]
            if end_of_chunk(previous, current, previous_type, current_type):
                entities.append((previous_type, begin, position - 2))
            if start_of_chunk(previous, current, previous_type, current_type):
                begin = position - 1
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert get_entities(sequence) == entities, sequence
