"""Word-level tags <-> sub-token labels, with no word lost to truncation.

A sentence longer than `max_seq_length` sub-tokens is cut into windows at word boundaries that
overlap by up to `stride` sub-tokens. (The fast tokenizers' own overflow, `return_overflowing_tokens`
with `stride`, windows at the sub-token level: a window can start in the middle of a word, whose
first sub-token then lives only in the previous window. Windowing by words keeps every word whole.)

At prediction time every word takes the value (label id, logits) of its first sub-token from the
window where it has the most context on both sides (`choose_word_positions`, with a worked
example): `gather_word_values` returns exactly one value per input word, in input order (the
decoding, `ner_imbalance.decoding`, then turns word scores into tags).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from itertools import chain

import datasets
import numpy as np
import pyarrow.compute as pc
from transformers import PreTrainedTokenizerBase

from ner_imbalance.constants import IGNORE_INDEX, MAX_SEQ_LENGTH, STRIDE
from ner_imbalance.data.readers import TAG_COLUMN, TOKEN_COLUMN
from ner_imbalance.tags import continuation_tag

NO_WORD = -1
"""`word_ids` entry of a sub-token that belongs to no word ([CLS], [SEP]: the tokenizer's `None`)."""


def tokenize_and_align(
    dataset: datasets.Dataset,
    tokenizer: PreTrainedTokenizerBase,
    label2id: Mapping[str, int],
    *,
    max_seq_length: int = MAX_SEQ_LENGTH,
    stride: int = STRIDE,
    label_all_tokens: bool = False,
    num_proc: int | None = None,
) -> datasets.Dataset:
    """Tokenize pre-split words into windows and align the word tags to sub-token labels.

    One row per window, columns: `input_ids`, `attention_mask`, `token_type_ids` (when the
    tokenizer makes them), `labels` (the word's label id on its first sub-token, `-100` on the
    others, or with `label_all_tokens` the label on every sub-token with `B-X` turned into `I-X`
    on continuations; all `-100` when the dataset has no `tags`), `length` (sub-tokens),
    `example_index` (row of `dataset`) and `word_ids` (word index in the sentence, `-1` for
    special tokens). A word that the tokenizer turns into no sub-token at all (such as a lone
    U+FE0F) is fed as the unknown token so that it keeps its label and gets a prediction.
    """
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(
            f"{type(tokenizer).__name__} is not a fast tokenizer; word alignment needs word_ids(): "
            "load it with AutoTokenizer.from_pretrained(..., use_fast=True)"
        )
    budget = max_seq_length - tokenizer.num_special_tokens_to_add(pair=False)
    if budget < 1:
        raise ValueError(f"max_seq_length {max_seq_length} leaves no room next to the special tokens")
    if not 0 <= stride < budget:
        raise ValueError(f"stride must be in [0, {budget}) for max_seq_length {max_seq_length}, got {stride}")
    if tokenizer.unk_token is None:
        raise ValueError(f"{type(tokenizer).__name__} has no unknown token to stand in for words without sub-tokens")
    align = partial(
        _align_batch,
        tokenizer=tokenizer,
        label2id=label2id,
        max_seq_length=max_seq_length,
        budget=budget,
        stride=stride,
        continuation_ids=_continuation_ids(label2id) if label_all_tokens else None,
    )
    return dataset.map(
        align,
        batched=True,
        with_indices=True,
        remove_columns=dataset.column_names,
        num_proc=num_proc,
        desc="tokenizing and aligning labels",
    )


def word_windows(piece_counts: Sequence[int], budget: int, stride: int) -> list[tuple[int, int]]:
    """Word ranges `[start, end)` of the windows of one sentence.

    Each window holds as many whole words as fit into `budget` sub-tokens (at least one word; a
    single word longer than `budget` is truncated by the tokenizer, its first sub-token kept), and
    the next window starts at the first word such that at most `stride` sub-tokens are shared.
    """
    counts = np.asarray(piece_counts, dtype=np.int64)
    if counts.sum() <= budget:
        return [(0, len(counts))]
    ends = np.cumsum(counts)
    starts = ends - counts
    windows = []
    start = 0
    while True:
        end = max(int(np.searchsorted(ends, starts[start] + budget, side="right")), start + 1)
        windows.append((start, end))
        if end >= len(counts):
            return windows
        start = max(int(np.searchsorted(starts, ends[end - 1] - stride, side="left")), start + 1)


def choose_word_positions(
    windows: datasets.Dataset, num_words: Sequence[int] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The sub-token every word is predicted from: `(rows, positions)`, one entry per word.

    Words of all source sentences are concatenated in input order (sentence 0's words, then
    sentence 1's, ...). `rows[k]` is the row of `windows` (as `tokenize_and_align` returns them, in
    any row order) that word `k` is predicted from and `positions[k]` the position of its first
    sub-token in that row. A word seen by several windows is predicted from the one where the
    smaller of its distances (in sub-tokens) to the window's first and last word sub-tokens is
    largest, and on equal distances from the window that starts earlier in the sentence, whatever
    the order of the rows.

    Example: a 10-word sentence of one-piece words, `max_seq_length=6` (4 words next to [CLS] and
    [SEP]), `stride=2`, has the windows w0 = words 0-3, w1 = 2-5, w2 = 4-7, w3 = 6-9::

        word          0   1   2   3   4   5   6   7   8   9
        w0 distance   0   1   1   0
        w1 distance           0   1   1   0
        w2 distance                   0   1   1   0
        w3 distance                           0   1   1   0
        chosen       w0  w0  w0  w1  w1  w2  w2  w3  w3  w3

    (word 2 has distance 1 in w0 and 0 in w1, so w0; word 3 the other way round, so w1.) With
    `max_seq_length=7`, `stride=3` the windows are 0-4, 2-6, 4-8, 6-9 and word 3 has distance 1 in
    both of the first two: it takes the earlier, 0-4.

    `num_words[i]`: the words of source row `i`, checked against the windows. Without it they are
    read off the windows (each row of `tokenize_and_align`'s input has at least one window).
    """
    lengths, word_ids, examples = _window_table(windows)
    return _chosen_positions(lengths, word_ids, examples, num_words)


def gather_word_values(
    values: np.ndarray | Sequence[np.ndarray], windows: datasets.Dataset, num_words: Sequence[int] | None = None
) -> np.ndarray:
    """Per word, the value of any per-sub-token array at its first sub-token in the window it is
    predicted from (`choose_word_positions`); words of all sentences concatenated in input order.

    `values`: one entry per row of `windows`, either a padded array `[rows, seq_len, ...]` (such as
    label ids `[rows, seq_len]` or logits `[rows, seq_len, num_labels]`; positions beyond a row's
    `length` are ignored) or a sequence of per-row arrays `[length_i, ...]`. Returns
    `[num_words, ...]`: label ids `[num_words]`, logits `[num_words, num_labels]`.
    """
    lengths, word_ids, examples = _window_table(windows)
    rows, positions = _chosen_positions(lengths, word_ids, examples, num_words)
    if isinstance(values, np.ndarray) and values.ndim >= 2:
        _check_window_count(len(values), lengths)
        if len(lengths) and values.shape[1] < lengths.max():
            raise ValueError(f"values cover {values.shape[1]} sub-tokens, the longest window has {lengths.max()}")
        return values[rows, positions]
    per_row = [np.asarray(row_values) for row_values in values]
    _check_window_count(len(per_row), lengths)
    short = [row for row, (row_values, length) in enumerate(zip(per_row, lengths)) if len(row_values) < length]
    if short:
        row = short[0]
        raise ValueError(f"window {row} has {lengths[row]} sub-tokens but only {len(per_row[row])} values")
    if not len(rows):
        return np.zeros((0, *(per_row[0].shape[1:] if per_row else ())))
    return np.stack([per_row[row][position] for row, position in zip(rows.tolist(), positions.tolist())])


def _align_batch(
    batch: dict[str, list],
    indices: list[int],
    *,
    tokenizer: PreTrainedTokenizerBase,
    label2id: Mapping[str, int],
    max_seq_length: int,
    budget: int,
    stride: int,
    continuation_ids: np.ndarray | None,
) -> dict[str, list]:
    """`tokenize_and_align` on one batch of sentences: their windows, one output row per window.

    Example: a 10-word sentence of one-piece words `w0 ... w9` tagged `t0 ... t9`, with
    `max_seq_length=6` (a budget of 4 word sub-tokens next to [CLS] and [SEP]) and `stride=2`, gives
    4 rows (`word_windows`: each window takes 4 words, the next starts so that 2 are shared)::

        row  example_index  words    word_ids                labels (first-sub-token only)
        0    i              w0-w3    [-1, 0, 1, 2, 3, -1]    [-100, t0, t1, t2, t3, -100]
        1    i              w2-w5    [-1, 2, 3, 4, 5, -1]    [-100, t2, t3, t4, t5, -100]
        2    i              w4-w7    [-1, 4, 5, 6, 7, -1]    [-100, t4, t5, t6, t7, -100]
        3    i              w6-w9    [-1, 6, 7, 8, 9, -1]    [-100, t6, t7, t8, t9, -100]

    `word_ids` hold the word's index in the whole sentence (not in the window) and `NO_WORD` (-1)
    for special tokens. Every window is trained on all of its words; at prediction time
    `choose_word_positions` takes words 0-2 from row 0, 3-4 from row 1, 5-6 from row 2 and 7-9 from
    row 3 (the window where each has most context).
    """
    window_words, window_rows, window_offsets = _windows_of_batch(batch[TOKEN_COLUMN], tokenizer, budget, stride)
    encoded = tokenizer(window_words, is_split_into_words=True, truncation=True, max_length=max_seq_length)
    word_id_lists = [encoded.word_ids(index) for index in range(len(window_words))]
    lengths = np.fromiter(map(len, word_id_lists), dtype=np.int64, count=len(word_id_lists))
    window = np.repeat(np.arange(len(window_words)), lengths)
    in_window = np.fromiter(
        (NO_WORD if word is None else word for word in chain.from_iterable(word_id_lists)),
        dtype=np.int64,
        count=int(lengths.sum()),
    )
    is_word = in_window != NO_WORD
    word_ids = np.where(is_word, in_window + np.asarray(window_offsets, dtype=np.int64)[window], NO_WORD)

    labels = np.full(len(word_ids), IGNORE_INDEX, dtype=np.int64)
    if TAG_COLUMN in batch:
        tag_ids = _tag_ids(batch[TAG_COLUMN], label2id, indices)
        sentence_start = np.concatenate(([0], np.cumsum([len(tags) for tags in batch[TAG_COLUMN]])))
        word_labels = np.full(len(word_ids), IGNORE_INDEX, dtype=np.int64)
        word_labels[is_word] = tag_ids[
            (sentence_start[np.asarray(window_rows, dtype=np.int64)][window] + word_ids)[is_word]
        ]
        _, is_first = _first_pieces(word_ids, lengths)
        labels[is_first] = word_labels[is_first]
        if continuation_ids is not None:
            is_continuation = is_word & ~is_first
            labels[is_continuation] = continuation_ids[word_labels[is_continuation]]

    bounds = np.cumsum(lengths)[:-1]
    output = {key: encoded[key] for key in ("input_ids", "attention_mask", "token_type_ids") if key in encoded}
    output["labels"] = [part.tolist() for part in np.split(labels, bounds)]
    output["word_ids"] = [part.tolist() for part in np.split(word_ids, bounds)]
    output["length"] = lengths.tolist()
    output["example_index"] = [indices[row] for row in window_rows]
    return output


def _windows_of_batch(
    sentences: list[list[str]], tokenizer: PreTrainedTokenizerBase, budget: int, stride: int
) -> tuple[list[list[str]], list[int], list[int]]:
    """The words of every window, the batch row it comes from, and the index of its first word.

    Words the tokenizer turns into no sub-token are replaced by the unknown token."""
    pieces = tokenizer(sentences, is_split_into_words=True, add_special_tokens=False)
    window_words, window_rows, window_offsets = [], [], []
    for row, words in enumerate(sentences):
        counts = np.bincount([word for word in pieces.word_ids(row) if word is not None], minlength=len(words))
        if not counts.all():
            words = [word if count else tokenizer.unk_token for word, count in zip(words, counts)]
        for start, end in word_windows(np.maximum(counts, 1), budget, stride):
            window_words.append(words[start:end])
            window_rows.append(row)
            window_offsets.append(start)
    return window_words, window_rows, window_offsets


def _first_pieces(word_ids: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For windows concatenated (`lengths` sub-tokens each): the window of every position, and
    whether the position holds the first sub-token of a word within its window."""
    window = np.repeat(np.arange(len(lengths)), lengths)
    previous = np.concatenate(([NO_WORD], word_ids[:-1]))
    previous[np.concatenate(([0], np.cumsum(lengths)[:-1]))[lengths > 0]] = NO_WORD
    return window, (word_ids != NO_WORD) & (word_ids != previous)


def _tag_ids(tag_lists: list[list[str]], label2id: Mapping[str, int], indices: list[int]) -> np.ndarray:
    try:
        return np.array([label2id[tag] for tags in tag_lists for tag in tags], dtype=np.int64)
    except KeyError as error:
        row = next(index for index, tags in zip(indices, tag_lists) if error.args[0] in tags)
        raise ValueError(f"tag {error.args[0]!r} of row {row} is not in label2id ({len(label2id)} labels)") from None


def _continuation_ids(label2id: Mapping[str, int]) -> np.ndarray:
    """label id -> the id continuation sub-tokens get: that of `I-X` for `B-X` (`tags.continuation_tag`) where
    the labels have it, the same id otherwise."""
    continuation = np.arange(max(label2id.values()) + 1)
    for tag, index in label2id.items():
        continuation[index] = label2id.get(continuation_tag(tag), index)
    return continuation


def _window_table(windows: datasets.Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sub-tokens of every window, the word ids of all windows concatenated, the source row of every window."""
    table = windows.select_columns(["example_index", "word_ids"]).with_format("arrow")[:]
    word_lists = table.column("word_ids").combine_chunks()
    lengths = pc.list_value_length(word_lists).to_numpy(zero_copy_only=False).astype(np.int64)
    word_ids = word_lists.flatten().to_numpy(zero_copy_only=False).astype(np.int64)
    examples = table.column("example_index").to_numpy().astype(np.int64)
    return lengths, word_ids, examples


def _chosen_positions(
    lengths: np.ndarray, word_ids: np.ndarray, examples: np.ndarray, num_words: Sequence[int] | None
) -> tuple[np.ndarray, np.ndarray]:
    """`choose_word_positions` on the columns of `_window_table`."""
    window, is_first = _first_pieces(word_ids, lengths)
    is_word = word_ids != NO_WORD
    word_pieces_before = np.concatenate(([0], np.cumsum(is_word)))
    window_start = np.concatenate(([0], np.cumsum(lengths)))[:-1]
    before = word_pieces_before[:-1] - word_pieces_before[window_start][window]
    in_window = (word_pieces_before[window_start + lengths] - word_pieces_before[window_start])[window]
    context = np.minimum(before, in_window - 1 - before)

    if num_words is None:
        num_words = np.zeros(examples.max() + 1 if len(examples) else 0, dtype=np.int64)
        np.maximum.at(num_words, examples[window[is_word]], word_ids[is_word] + 1)
    num_words = np.asarray(num_words, dtype=np.int64)
    sentence_start = np.concatenate(([0], np.cumsum(num_words)))
    if len(examples) and examples.max() >= len(num_words):
        raise ValueError(f"windows refer to row {examples.max()}, but num_words covers {len(num_words)} rows")
    if np.any(word_ids >= num_words[examples][window]):
        raise ValueError("the windows hold more words than num_words gives: they describe another dataset")
    word_key = sentence_start[examples][window] + word_ids
    candidates = np.flatnonzero(is_first)
    # Sort by word, then most context first, then earliest window of the sentence first: the windows of
    # one sentence start at increasing words, so the earlier a window starts, the more sub-tokens the
    # word has before it in that window. The row order of `windows` plays no part.
    order = candidates[np.lexsort((-before[candidates], -context[candidates], word_key[candidates]))]
    keys = word_key[order]
    best = order[np.concatenate(([True], keys[1:] != keys[:-1]))] if len(order) else order
    if len(best) != sentence_start[-1]:
        missing = np.setdiff1d(np.arange(sentence_start[-1]), word_key[best])[0]
        row = int(np.searchsorted(sentence_start, missing, side="right") - 1)
        raise ValueError(
            f"word {missing - sentence_start[row]} of row {row} is in no window: "
            "the windows and num_words do not describe the same dataset"
        )
    rows = window[best]
    return rows, best - window_start[rows]


def _check_window_count(num_predicted: int, lengths: np.ndarray) -> None:
    if num_predicted != len(lengths):
        raise ValueError(f"got values for {num_predicted} windows, the tokenized dataset has {len(lengths)}")
