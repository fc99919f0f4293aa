"""Prediction files: `token<TAB>gold<TAB>pred` columns written and read; gold and prediction files aligned.

`write_predictions` writes what `train_ner.py` leaves as `predictions_<split>.conll`;
`read_gold_and_pred` reads one such file, or a gold file and a prediction file line by line, as
`scripts/evaluate_ner.py` and conlleval read them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

from ner_imbalance.data.conll import ColumnSentence, check_columns, column_values, read_column_sentences
from ner_imbalance.utils.atomic import write_text_atomic

logger = logging.getLogger(__name__)


def write_predictions(
    path: str | os.PathLike,
    tokens: Sequence[Sequence[str]],
    gold: Sequence[Sequence[str]],
    pred: Sequence[Sequence[str]],
) -> None:
    """Write `token<TAB>gold<TAB>pred` per word and a blank line after every sentence.

    Every word is written (sentences without words have nothing to write). TAB-separated, so
    tokens may hold spaces; conlleval reads it with `-d '\\t'`.
    """
    if not len(tokens) == len(gold) == len(pred):
        raise ValueError(f"{len(tokens)} token, {len(gold)} gold and {len(pred)} predicted sentences")
    lines = []
    for number, (words, gold_tags, pred_tags) in enumerate(zip(tokens, gold, pred), start=1):
        if not len(words) == len(gold_tags) == len(pred_tags):
            raise ValueError(
                f"sentence {number}: {len(words)} tokens, {len(gold_tags)} gold and {len(pred_tags)} predicted tags"
            )
        for word in words:
            if not word.strip() or "\t" in word or "\n" in word:
                raise ValueError(f"sentence {number}: token {word!r} cannot be written to a column file")
        lines.extend(f"{word}\t{g}\t{p}\n" for word, g, p in zip(words, gold_tags, pred_tags))
        if words:
            lines.append("\n")
    write_text_atomic(path, "".join(lines))


def read_predictions(path: str | os.PathLike) -> tuple[list[list[str]], list[list[str]], list[list[str]]]:
    """Tokens, gold and predicted tags of a `token ... gold pred` file (first and last two columns)."""
    sentences = read_column_sentences(path)
    check_columns(path, sentences, tag_columns=(-2, -1))
    return column_values(sentences, 0), column_values(sentences, -2), column_values(sentences, -1)


def read_gold_and_pred(
    gold_path: str | os.PathLike,
    pred_path: str | os.PathLike | None = None,
    *,
    allow_token_mismatch: bool = False,
) -> tuple[list[list[str]], list[list[str]], list[list[str]]]:
    """Tokens, gold and predicted tags from a GOLD file and a PRED file aligned line by line
    (token first, tag last), or from one `token gold pred` file when `pred_path` is None.

    The two files must have the same sentences with the same number of tokens; the first
    difference is an error naming the sentence number, both tokens and their lines. Tokens must
    also be equal, unless `allow_token_mismatch`: real prediction files sometimes normalise tokens
    (`gt` -> `get`) and conlleval scores by line, so then differing tokens give one warning (their
    count and the first of them) and the tags are scored by position. The tokens returned are
    the gold file's.
    """
    if pred_path is None:
        return read_predictions(gold_path)
    gold_sentences = read_column_sentences(gold_path)
    check_columns(gold_path, gold_sentences, tag_columns=(-1,))
    pred_sentences = read_column_sentences(pred_path)
    check_columns(pred_path, pred_sentences, tag_columns=(-1,))
    differing: list[tuple[int, int]] = []
    for number, (gold_sentence, pred_sentence) in enumerate(zip(gold_sentences, pred_sentences), start=1):
        for position in _differing_tokens(number, gold_path, gold_sentence, pred_path, pred_sentence):
            if not allow_token_mismatch:
                difference = _token_difference(position, gold_path, gold_sentence, pred_path, pred_sentence)
                raise ValueError(f"sentence {number}: {difference}")
            differing.append((number, position))
    if len(gold_sentences) != len(pred_sentences):
        longer, path = (
            (gold_sentences, gold_path) if len(gold_sentences) > len(pred_sentences) else (pred_sentences, pred_path)
        )
        extra = longer[min(len(gold_sentences), len(pred_sentences))]
        raise ValueError(
            f"{gold_path} has {len(gold_sentences)} sentences, {pred_path} has {len(pred_sentences)}: "
            f"sentence {min(len(gold_sentences), len(pred_sentences)) + 1} ({path}, line {extra.lines[0]}) "
            "has no counterpart"
        )
    if differing:
        number, position = differing[0]
        first = _token_difference(
            position, gold_path, gold_sentences[number - 1], pred_path, pred_sentences[number - 1]
        )
        logger.warning(
            "%d token(s) differ between %s and %s; scored by position as conlleval does. First: sentence %d: %s",
            len(differing),
            gold_path,
            pred_path,
            number,
            first,
        )
    return column_values(gold_sentences, 0), column_values(gold_sentences, -1), column_values(pred_sentences, -1)


def _differing_tokens(
    number: int, gold_path: str | os.PathLike, gold: ColumnSentence, pred_path: str | os.PathLike, pred: ColumnSentence
) -> list[int]:
    """Positions where the tokens of two sentences of equal length differ; unequal lengths are an error."""
    if len(gold.rows) != len(pred.rows):
        position = next(
            (index for index, (g, p) in enumerate(zip(gold.rows, pred.rows)) if g[0] != p[0]),
            min(len(gold.rows), len(pred.rows)),
        )
        raise ValueError(
            f"sentence {number}: {gold_path} has {len(gold.rows)} tokens, {pred_path} has {len(pred.rows)}; "
            + _token_difference(position, gold_path, gold, pred_path, pred)
        )
    return [index for index, (g, p) in enumerate(zip(gold.rows, pred.rows)) if g[0] != p[0]]


def _token_difference(
    position: int,
    gold_path: str | os.PathLike,
    gold: ColumnSentence,
    pred_path: str | os.PathLike,
    pred: ColumnSentence,
) -> str:
    return (
        f"token {position + 1} is gold {_token_at(gold, position, gold_path)} "
        f"but pred {_token_at(pred, position, pred_path)}"
    )


def _token_at(sentence: ColumnSentence, position: int, path: str | os.PathLike) -> str:
    if position >= len(sentence.rows):
        return f"<end of sentence> ({path}, after line {sentence.lines[-1]})"
    return f"{sentence.rows[position][0]!r} ({path}, line {sentence.lines[position]})"
