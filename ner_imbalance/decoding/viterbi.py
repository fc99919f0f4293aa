r"""Word-level scores -> label ids: per-word argmax, and Viterbi decoding under hard transition constraints.

Both take the scores of all sentences concatenated, `scores[num_words, C]` (the layout of the word-logits files),
with `sentence_lengths[num_sentences]` saying how many consecutive words belong to each sentence (0 allowed: an
empty sentence decodes to nothing). Both return one label id per word, `int64[num_words]`.

Viterbi finds, for each sentence of words `1..T`, the label sequence `y` of highest total score among the valid
ones:

    y* = argmax_y  log a_start(y_1) + sum_{t=1..T} s_t(y_t) + sum_{t=2..T} log A(y_{t-1}, y_t) + log a_end(y_T)

where `s_t(j)` is the score of label `j` at word `t`, and `A`, `a_start`, `a_end` are the 0/1 constraint arrays
(`log 1 = 0`, `log 0 = -inf`: a disallowed transition removes every path through it; there are no learned
transition scores). The recursion over positions is

    delta_1(j) = s_1(j) + log a_start(j)
    delta_t(j) = s_t(j) + max_i [delta_{t-1}(i) + log A(i, j)],   psi_t(j) = argmax_i [delta_{t-1}(i) + log A(i, j)]
    y*_T = argmax_j [delta_T(j) + log a_end(j)],                   y*_{t-1} = psi_t(y*_t)

`delta_t(j)` is the best score of a valid prefix of length `t` that ends in `j` and `psi_t(j)` its
predecessor (the backpointer). Ties go to the lowest label id (numpy's `argmax` returns the first maximum), so
the result is deterministic and equals the per-word argmax whenever the argmax sequence is itself valid.

The recursion is vectorised over sentences: they are sorted by length (longest first), so the sentences that
still have a word at position `t` are a leading slice, and each step is one `[k, C, C]` array operation for the
`k` such sentences (laid out `[k, j, i]`, so that the max over predecessors `i` runs along the last axis).
The only Python loops run over positions. Scores are computed in float64 whatever the input dtype (float16
word logits included).
"""

from __future__ import annotations

import numpy as np


def argmax_decode(scores: np.ndarray, sentence_lengths: np.ndarray) -> np.ndarray:
    """The best label of each word on its own: `y_t = argmax_j s_t(j)` (lowest id on ties); `int64[num_words]`."""
    scores = np.asarray(scores)
    _check_inputs(scores, sentence_lengths)
    return scores.argmax(axis=1).astype(np.int64)


def viterbi_decode(
    scores: np.ndarray,
    sentence_lengths: np.ndarray,
    allowed_transitions: np.ndarray,
    allowed_start: np.ndarray,
    allowed_end: np.ndarray,
) -> np.ndarray:
    """The valid label sequence of highest summed score for every sentence (see the module docstring).

    `scores`: `[num_words, C]`, all sentences concatenated (logits or log-probabilities; finite values).
    `sentence_lengths`: `[num_sentences]` words per sentence, summing to `num_words`.
    `allowed_transitions` `[C, C]` (label `i` -> label `j`), `allowed_start` `[C]`, `allowed_end` `[C]`: bool
    arrays, as `transitions.tag_constraints` returns them.
    Returns the label ids `int64[num_words]`. A `ValueError` when a sentence has no valid sequence at all.
    """
    scores = np.asarray(scores, dtype=np.float64)
    lengths = _check_inputs(scores, sentence_lengths)
    num_labels = scores.shape[1]
    allowed_transitions, allowed_start, allowed_end = (
        np.asarray(allowed, dtype=bool) for allowed in (allowed_transitions, allowed_start, allowed_end)
    )
    if (
        allowed_transitions.shape != (num_labels, num_labels)
        or allowed_start.shape != (num_labels,)
        or allowed_end.shape != (num_labels,)
    ):
        raise ValueError(
            f"constraints of shapes {allowed_transitions.shape}, {allowed_start.shape}, {allowed_end.shape} "
            f"do not fit {num_labels} labels: expected ({num_labels}, {num_labels}), ({num_labels},), ({num_labels},)"
        )
    log_start, log_end = (np.where(allowed, 0.0, -np.inf) for allowed in (allowed_start, allowed_end))
    # log A(i, j) indexed [j, i], so that the max over predecessors i runs along the contiguous last axis
    log_transition_into = np.ascontiguousarray(np.where(allowed_transitions, 0.0, -np.inf).T)
    labels = np.empty(len(scores), dtype=np.int64)
    sentence_starts = np.cumsum(lengths) - lengths
    longest_first = np.argsort(-lengths, kind="stable")
    longest_first = longest_first[lengths[longest_first] > 0]
    if longest_first.size == 0:
        return labels
    sorted_lengths = lengths[longest_first]
    sorted_starts = sentence_starts[longest_first]
    positions = np.arange(sorted_lengths[0])
    active_per_position = len(sorted_lengths) - np.searchsorted(sorted_lengths[::-1], positions, side="right")

    best_prefix = scores[sorted_starts] + log_start
    backpointers = []
    for position in range(1, sorted_lengths[0]):
        active = active_per_position[position]
        candidates = best_prefix[:active, None, :] + log_transition_into  # [sentence, label j, predecessor i]
        best_predecessor = candidates.argmax(axis=2)
        backpointers.append(best_predecessor)
        best = np.take_along_axis(candidates, best_predecessor[:, :, None], axis=2)[:, :, 0]  # the max, read once
        best_prefix[:active] = best + scores[sorted_starts[:active] + position]

    final_scores = best_prefix + log_end
    current = final_scores.argmax(axis=1)
    if np.isneginf(final_scores[np.arange(len(current)), current]).any():
        raise ValueError("some sentence has no label sequence that satisfies the constraints")
    for position in range(sorted_lengths[0] - 1, -1, -1):
        active = active_per_position[position]
        labels[sorted_starts[:active] + position] = current[:active]
        if position > 0:
            current[:active] = backpointers[position - 1][np.arange(active), current[:active]]
    return labels


def _check_inputs(scores: np.ndarray, sentence_lengths: np.ndarray) -> np.ndarray:
    """The sentence lengths as int64 after checking them and the scores; a `ValueError` on a misfit."""
    if scores.ndim != 2:
        raise ValueError(f"scores must be [num_words, num_labels], got shape {scores.shape}")
    lengths = np.asarray(sentence_lengths)
    if lengths.ndim != 1 or (lengths.size and not np.issubdtype(lengths.dtype, np.integer)):
        raise ValueError(f"sentence_lengths must be a 1-D integer array, got {lengths.dtype} of shape {lengths.shape}")
    lengths = lengths.astype(np.int64)
    if (lengths < 0).any():
        raise ValueError(f"sentence_lengths must be >= 0, got {lengths[lengths < 0][:5].tolist()}")
    if lengths.sum() != len(scores):
        raise ValueError(f"sentence_lengths sum to {lengths.sum()} but scores has {len(scores)} words")
    if not np.isfinite(scores).all():
        raise ValueError("scores must be finite (no NaN or inf)")
    return lengths
