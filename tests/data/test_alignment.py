"""Sub-token alignment, word-level windows for long sentences, and merging predictions back to words.

The tiny tokenizer splits words outside its vocabulary into one piece per character
("xyz" -> "x", "##y", "##z") and adds [CLS] ... [SEP].
"""

from __future__ import annotations

import datasets
import numpy as np
import pytest

from ner_imbalance.data.alignment import (
    NO_WORD,
    choose_word_positions,
    gather_word_values,
    tokenize_and_align,
    word_windows,
)

LABELS = ["O", "B-location", "I-location", "B-person", "I-person"]
LABEL2ID = {label: index for index, label in enumerate(LABELS)}
O, B_LOC, I_LOC, B_PER, I_PER = range(5)
IGNORE = -100


def _word_tags(
    tokenized: datasets.Dataset, values: np.ndarray | list[np.ndarray], labels: list[str], num_words: list[int]
) -> list[list[str]]:
    """Each word's label (arg-maxed if `values` are scores) from the window `gather_word_values` picks."""
    word_values = gather_word_values(values, tokenized, num_words)
    label_ids = word_values.argmax(-1) if word_values.ndim == 2 else word_values
    tags = [labels[int(index)] for index in label_ids]
    starts = np.concatenate(([0], np.cumsum(num_words)))
    return [tags[start:end] for start, end in zip(starts[:-1], starts[1:])]


def _dataset(tokens: list[list[str]], tags: list[list[str]] | None = None) -> datasets.Dataset:
    return datasets.Dataset.from_dict({"tokens": tokens} if tags is None else {"tokens": tokens, "tags": tags})


def _labels_as_predictions(tokenized: datasets.Dataset) -> np.ndarray:
    """[windows, longest] predictions equal to the gold labels (padding and -100 positions: O)."""
    predictions = np.full((len(tokenized), max(tokenized["length"]) + 3), IGNORE)
    for row, labels in enumerate(tokenized["labels"]):
        predictions[row, : len(labels)] = np.maximum(labels, O)
    return predictions


def test_first_sub_token_carries_the_label(tiny_tokenizer):
    tokenized = tokenize_and_align(
        _dataset([["john", "visited", "xyz", "paris"]], [["B-person", "O", "B-location", "I-location"]]),
        tiny_tokenizer,
        LABEL2ID,
    )
    row = tokenized[0]
    assert tiny_tokenizer.convert_ids_to_tokens(row["input_ids"]) == [
        "[CLS]",
        "john",
        "visited",
        "x",
        "##y",
        "##z",
        "paris",
        "[SEP]",
    ]
    assert row["labels"] == [IGNORE, B_PER, O, B_LOC, IGNORE, IGNORE, I_LOC, IGNORE]
    assert row["word_ids"] == [-1, 0, 1, 2, 2, 2, 3, -1]
    assert row["length"] == 8 and row["example_index"] == 0
    assert set(tokenized.column_names) == {
        "input_ids",
        "attention_mask",
        "token_type_ids",
        "labels",
        "word_ids",
        "length",
        "example_index",
    }


def test_label_all_tokens_turns_b_into_i_on_continuations(tiny_tokenizer):
    tokenized = tokenize_and_align(
        _dataset([["xyz", "ab"]], [["B-location", "I-location"]]), tiny_tokenizer, LABEL2ID, label_all_tokens=True
    )
    assert tokenized[0]["labels"] == [IGNORE, B_LOC, I_LOC, I_LOC, I_LOC, I_LOC, IGNORE]


def test_long_sentence_is_windowed_by_whole_words_and_merges_back(tiny_tokenizer):
    words = ["john", "visited", "xyz", "paris", "and", "abcd", "london", "today", "with", "mary", "qq"]
    tags = ["B-person", "O", "B-location", "B-location", "O", "B-location", "I-location", "O", "O", "B-person", "O"]
    pieces = [1, 1, 3, 1, 1, 4, 1, 1, 1, 1, 2]
    tokenized = tokenize_and_align(
        _dataset([["paris"], words], [["B-location"], tags]), tiny_tokenizer, LABEL2ID, max_seq_length=8, stride=2
    )
    windows = [row for row in tokenized if row["example_index"] == 1]
    assert len(windows) > 1
    covered = set()
    for window, following in zip(windows, windows[1:] + [None]):
        assert window["length"] == len(window["input_ids"]) <= 8
        word_ids = [word for word in window["word_ids"] if word >= 0]
        first, last = word_ids[0], word_ids[-1]
        assert word_ids == [word for word in range(first, last + 1) for _ in range(pieces[word])]
        labelled = [(word, label) for word, label in zip(window["word_ids"], window["labels"]) if label != IGNORE]
        assert labelled == [(word, LABEL2ID[tags[word]]) for word in range(first, last + 1)]
        covered.update(word_ids)
        if following is not None:
            shared = [word for word in following["word_ids"] if first <= word <= last]
            assert len(shared) <= 2
    assert covered == set(range(len(words)))
    merged = _word_tags(tokenized, _labels_as_predictions(tokenized), LABELS, [1, len(words)])
    assert merged == [["B-location"], tags]


def test_each_word_takes_the_window_where_it_has_most_context(tiny_tokenizer):
    words = ["john", "visited", "paris", "and", "london", "today", "the", "city", "was", "great"]
    tokenized = tokenize_and_align(_dataset([words]), tiny_tokenizer, LABEL2ID, max_seq_length=6, stride=2)
    assert [sorted({w for w in row["word_ids"] if w >= 0}) for row in tokenized] == [
        [0, 1, 2, 3],
        [2, 3, 4, 5],
        [4, 5, 6, 7],
        [6, 7, 8, 9],
    ]
    window_names = ["w0", "w1", "w2", "w3"]
    predictions = np.repeat(np.arange(4)[:, None], 6, axis=1)
    merged = _word_tags(tokenized, predictions, window_names, [len(words)])
    assert merged == [["w0", "w0", "w0", "w1", "w1", "w2", "w2", "w3", "w3", "w3"]]


def _window_start_predictions(tokenized: datasets.Dataset) -> np.ndarray:
    """Every window predicts, at every position, the label id = the sentence index of its first word."""
    starts = [min(word for word in row if word != NO_WORD) for row in tokenized["word_ids"]]
    return np.repeat(np.asarray(starts)[:, None], max(tokenized["length"]), axis=1)


def test_equal_context_goes_to_the_earlier_window_whatever_the_row_order(tiny_tokenizer):
    words = ["john", "visited", "paris", "and", "london", "today", "the", "city", "was", "great"]
    tokenized = tokenize_and_align(_dataset([words]), tiny_tokenizer, LABEL2ID, max_seq_length=7, stride=3)
    assert [sorted({w for w in row if w >= 0}) for row in tokenized["word_ids"]] == [
        [0, 1, 2, 3, 4],
        [2, 3, 4, 5, 6],
        [4, 5, 6, 7, 8],
        [6, 7, 8, 9],
    ]
    names = [f"from{start}" for start in range(10)]
    # words 3, 5 and 7 have equal context (1 sub-token) in two windows: the earlier one wins
    expected = [["from0"] * 4 + ["from2"] * 2 + ["from4"] * 2 + ["from6"] * 2]
    assert _word_tags(tokenized, _window_start_predictions(tokenized), names, [10]) == expected
    for order in ([3, 2, 1, 0], [1, 3, 0, 2], [2, 0, 3, 1]):
        shuffled = tokenized.select(order)
        assert _word_tags(shuffled, _window_start_predictions(shuffled), names, [10]) == expected
        rows, positions = choose_word_positions(shuffled)
        assert [order[row] for row in rows] == [0, 0, 0, 0, 1, 1, 2, 2, 3, 3]
        assert [shuffled[int(row)]["word_ids"][position] for row, position in zip(rows, positions)] == list(range(10))


def test_gather_returns_any_per_sub_token_array_per_word_from_the_chosen_window(tiny_tokenizer):
    sentences = [["john", "xyz", "paris", "and", "abcd", "london", "today", "with", "mary"], ["qq"], []]
    tokenized = tokenize_and_align(_dataset(sentences), tiny_tokenizer, LABEL2ID, max_seq_length=8, stride=2)
    tokenized = tokenized.sort("length")
    logits = np.random.default_rng(0).normal(size=(len(tokenized), max(tokenized["length"]) + 2, len(LABELS)))
    word_logits = gather_word_values(logits, tokenized, [9, 1, 0])
    assert word_logits.shape == (10, len(LABELS))
    rows, positions = choose_word_positions(tokenized, [9, 1, 0])
    np.testing.assert_array_equal(word_logits, logits[rows, positions])
    np.testing.assert_array_equal(gather_word_values(logits, tokenized), word_logits)
    per_row = [row_logits[:length] for row_logits, length in zip(logits, tokenized["length"])]
    np.testing.assert_array_equal(gather_word_values(per_row, tokenized), word_logits)
    label_ids = logits.argmax(-1)
    np.testing.assert_array_equal(gather_word_values(label_ids, tokenized), word_logits.argmax(-1))
    first_pieces = [tokenized[int(row)]["word_ids"][position] for row, position in zip(rows, positions)]
    assert first_pieces == [*range(9), 0]
    with pytest.raises(ValueError, match="longest window"):
        gather_word_values(logits[:, :3], tokenized)


def test_gather_uses_the_first_sub_token_and_accepts_lists_and_scores(tiny_tokenizer):
    tokenized = tokenize_and_align(_dataset([["xyz", "paris"], ["mary"]]), tiny_tokenizer, LABEL2ID)
    assert tokenized["labels"][0] == [IGNORE] * 6
    first = np.array([O, B_LOC, I_PER, I_PER, O, O])
    expected = [["B-location", "O"], ["B-person"]]
    as_list = [first, np.array([O, B_PER, O, 7, 7])]
    assert _word_tags(tokenized, as_list, LABELS, [2, 1]) == expected
    padded = np.full((2, 6), IGNORE)
    padded[0], padded[1, :3] = first, [O, B_PER, O]
    assert _word_tags(tokenized, padded, LABELS, [2, 1]) == expected
    scores = np.eye(len(LABELS))[np.maximum(padded, 0)]
    assert _word_tags(tokenized, scores, LABELS, [2, 1]) == expected
    with pytest.raises(ValueError, match="1 windows"):
        gather_word_values(padded[:1], tokenized, [2, 1])


def test_word_without_sub_tokens_stands_in_as_unknown(tiny_tokenizer):
    tokenized = tokenize_and_align(
        _dataset([["paris", "\ufe0f", "london"]], [["B-location", "O", "B-location"]]), tiny_tokenizer, LABEL2ID
    )
    assert tiny_tokenizer.convert_ids_to_tokens(tokenized[0]["input_ids"]) == [
        "[CLS]",
        "paris",
        "[UNK]",
        "london",
        "[SEP]",
    ]
    assert tokenized[0]["labels"] == [IGNORE, B_LOC, O, B_LOC, IGNORE]
    merged = _word_tags(tokenized, _labels_as_predictions(tokenized), LABELS, [3])
    assert merged == [["B-location", "O", "B-location"]]


def test_unknown_tag_and_slow_tokenizer_and_bad_stride_are_errors(tiny_tokenizer):
    with pytest.raises(ValueError, match="'B-song' of row 0"):
        tokenize_and_align(_dataset([["la"]], [["B-song"]]), tiny_tokenizer, LABEL2ID)

    class SlowTokenizer:
        is_fast = False

    with pytest.raises(ValueError, match="SlowTokenizer is not a fast tokenizer"):
        tokenize_and_align(_dataset([["la"]]), SlowTokenizer(), LABEL2ID)
    with pytest.raises(ValueError, match="stride"):
        tokenize_and_align(_dataset([["la"]]), tiny_tokenizer, LABEL2ID, max_seq_length=8, stride=6)


@pytest.mark.parametrize(
    ("counts", "budget", "stride", "windows"),
    [
        ([1, 2, 1], 4, 1, [(0, 3)]),
        ([1, 1, 1, 1, 1, 1], 4, 2, [(0, 4), (2, 6)]),
        ([2, 2, 2, 2], 4, 0, [(0, 2), (2, 4)]),
        ([1, 9, 1], 4, 1, [(0, 1), (1, 2), (2, 3)]),
    ],
)
def test_word_windows(counts, budget, stride, windows):
    assert word_windows(counts, budget, stride) == windows
