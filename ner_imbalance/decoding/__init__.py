"""Decoding: from word-level scores to one tag per word.

A token-classification model scores every label at every word on its own; decoding turns those scores into a tag
sequence. `argmax` takes each word's best label, which can produce sequences the tag scheme forbids (`O I-product`,
`B-person I-location`). `viterbi` takes, per sentence, the valid sequence (under the IOB2 or IOBES transition
constraints of `transitions.tag_constraints`) with the highest sum of per-word scores (`viterbi.viterbi_decode`).

Viterbi is meant to run on the per-word log-softmax, `log p_t(j) = x_t(j) - log Z_t` with
`log Z_t = log sum_k exp x_t(k)`, so that it finds the valid sequence of highest product of per-word
probabilities. Raw logits give the same path: every sequence takes exactly one label at every word, so the
normaliser adds the same `-sum_t log Z_t` to the total of every sequence of a sentence, and the ranking of the
sequences, hence the best valid one, does not change. `decode` therefore takes logits or log-probabilities alike.

Only numpy, the standard library, `ner_imbalance.constants` and `ner_imbalance.tags` are imported here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ner_imbalance.constants import DECODING_METHODS, VITERBI
from ner_imbalance.decoding.transitions import TagConstraints, tag_constraints
from ner_imbalance.decoding.viterbi import argmax_decode, viterbi_decode
from ner_imbalance.tags import canonical_scheme

__all__ = [
    "TagConstraints",
    "argmax_decode",
    "decode",
    "tag_constraints",
    "viterbi_decode",
]


def decode(
    scores: np.ndarray, sentence_lengths: np.ndarray, label_list: Sequence[str], *, scheme: str, method: str
) -> np.ndarray:
    """Label ids (`int64[num_words]`) of word-level `scores` `[num_words, len(label_list)]` by `method`.

    `sentence_lengths` `[num_sentences]` splits the concatenated words into sentences. `scheme` (`"iob2"`,
    `"iobes"` or `"bioes"`, any case: `tags.canonical_scheme`) is checked for both methods; `method` is one of
    `ner_imbalance.constants.DECODING_METHODS`: `"argmax"` (each word's best label) or `"viterbi"` (the best
    sequence that satisfies the scheme's transition constraints).
    """
    if method not in DECODING_METHODS:
        raise ValueError(f"unknown decoding method {method!r}: expected one of {', '.join(DECODING_METHODS)}")
    canonical_scheme(scheme)
    if np.ndim(scores) != 2 or np.shape(scores)[1] != len(label_list):
        raise ValueError(f"scores must be [num_words, {len(label_list)} labels], got shape {np.shape(scores)}")
    if method == VITERBI:
        return viterbi_decode(scores, sentence_lengths, *tag_constraints(label_list, scheme))
    return argmax_decode(scores, sentence_lengths)
