"""Entity-level evaluation of word-level tag sequences, with the numbers of CoNLL `conlleval`.

`mode="conlleval"` finds chunks as the `conlleval` script does (seqeval's default mode: an `I-X`
after `O` or after another type starts an entity); `mode="strict"` uses seqeval's strict scheme
mode, where only entities that are well-formed in the scheme count. Entities are extracted once
per call; every number is derived from the per-type counts of gold, predicted and correct
entities (`entity_counts.precision_recall_f1`, the one home of the formulas).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from seqeval import scheme as seqeval_scheme
from seqeval.metrics.sequence_labeling import get_entities

from ner_imbalance.constants import IOB2, IOBES, TYPE_METRICS
from ner_imbalance.evaluation.entity_counts import precision_recall_f1
from ner_imbalance.tags import canonical_scheme

MODES = ("conlleval", "strict")
_SEQEVAL_SCHEMES = {IOB2: seqeval_scheme.IOB2, IOBES: seqeval_scheme.IOBES}
"""seqeval's class of each canonical scheme (`tags.canonical_scheme`), for strict mode."""


class Span(NamedTuple):
    """An entity of one sentence: its type and its words `start` to `end - 1` (a slice)."""

    type: str
    start: int
    end: int


def evaluate_tags(
    gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], *, mode: str = "conlleval", scheme: str = "IOB2"
) -> dict:
    """Entity-level scores of predicted against gold tags (one list of tags per sentence).

    Returns `precision`, `recall`, `f1` (micro, over all entities), `macro_f1` (unweighted mean of
    the per-type F1 over the types found in gold or predictions, as seqeval's macro average),
    `accuracy` (share of tokens whose tag is right), `per_type` {type: {precision, recall, f1,
    support (gold entities), predicted, correct}} and the counts `gold_entities`,
    `pred_entities`, `correct_entities`, `tokens`, `correct_tokens`. Scores are fractions in
    [0, 1]; a ratio with a zero denominator is 0, as in conlleval. `scheme` ("IOB2", "IOBES" or
    its alias "BIOES", any case: `tags.canonical_scheme`) matters in strict mode only: conlleval's
    chunking reads both.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    canonical_scheme(scheme)
    gold, pred = _checked_sequences(gold, pred)
    gold_entities = _entities(gold, mode, scheme)
    pred_entities = _entities(pred, mode, scheme)
    gold_counts = Counter(span.type for _, span in gold_entities)
    pred_counts = Counter(span.type for _, span in pred_entities)
    correct_counts = Counter(span.type for _, span in gold_entities & pred_entities)
    type_counts = {
        entity_type: (gold_counts[entity_type], pred_counts[entity_type], correct_counts[entity_type])
        for entity_type in gold_counts.keys() | pred_counts.keys()
    }
    tokens = sum(len(tags) for tags in gold)
    correct_tokens = sum(g == p for gold_tags, pred_tags in zip(gold, pred) for g, p in zip(gold_tags, pred_tags))
    return scores_from_counts(type_counts, tokens, correct_tokens)


def scores_from_counts(type_counts: Mapping[str, tuple[int, int, int]], tokens: int, correct_tokens: int) -> dict:
    """`evaluate_tags`' scores from the gold, predicted and correct entities of each type found in gold or
    predictions (`type_counts`, any order) and the numbers of tokens and correctly tagged tokens.

    The one place those scores are formed, so counts found another way (`entity_counts.EntityCounter`) give
    the same dict, float for float: the micro scores of the summed counts, the macro F1 summed over the types
    in sorted order.
    """
    per_type = {
        entity_type: _scores(int(correct), int(predicted), int(gold))
        for entity_type, (gold, predicted, correct) in sorted(type_counts.items())
    }
    correct, predicted, support = (
        sum(scores[field] for scores in per_type.values()) for field in ("correct", "predicted", "support")
    )
    overall = _scores(correct, predicted, support)
    tokens, correct_tokens = int(tokens), int(correct_tokens)
    return {
        "precision": overall["precision"],
        "recall": overall["recall"],
        "f1": overall["f1"],
        "macro_f1": sum(scores["f1"] for scores in per_type.values()) / len(per_type) if per_type else 0.0,
        "accuracy": correct_tokens / tokens,
        "per_type": per_type,
        "gold_entities": overall["support"],
        "pred_entities": overall["predicted"],
        "correct_entities": overall["correct"],
        "tokens": tokens,
        "correct_tokens": correct_tokens,
    }


def sentence_entities(
    sequences: Sequence[Sequence[str]], *, mode: str = "conlleval", scheme: str = "IOB2"
) -> list[list[Span]]:
    """The entities of every sentence, in word order, found as `evaluate_tags` finds them in `mode`."""
    if mode == "conlleval":
        return [[Span(kind, start, end + 1) for kind, start, end in get_entities(list(tags))] for tags in sequences]
    token_class = _SEQEVAL_SCHEMES[canonical_scheme(scheme)]
    entities = seqeval_scheme.Entities([list(tags) for tags in sequences], token_class).entities
    return [sorted(Span(entity.tag, entity.start, entity.end) for entity in sentence) for sentence in entities]


def flatten_metrics(metrics: dict) -> dict[str, float]:
    """Overall scores plus `<type>_precision`, `<type>_recall`, `<type>_f1`, `<type>_support`, for logging."""
    flat = {key: float(metrics[key]) for key in ("precision", "recall", "f1", "macro_f1", "accuracy")}
    for entity_type, scores in metrics["per_type"].items():
        flat.update({f"{entity_type}_{name}": float(scores[name]) for name in TYPE_METRICS})
    return flat


def format_report(metrics: dict) -> str:
    """conlleval's two summary lines, then one row per type and the micro and macro averages."""
    lines = [
        f"processed {metrics['tokens']} tokens with {metrics['gold_entities']} phrases; "
        f"found: {metrics['pred_entities']} phrases; correct: {metrics['correct_entities']}.",
        f"accuracy: {metrics['accuracy']:7.2%}; precision: {metrics['precision']:7.2%}; "
        f"recall: {metrics['recall']:7.2%}; FB1: {100 * metrics['f1']:6.2f}",
        f"{'type':<20}{'precision':>10}{'recall':>10}{'FB1':>8}{'support':>9}{'found':>8}{'correct':>9}",
    ]
    for entity_type, scores in metrics["per_type"].items():
        lines.append(
            f"{entity_type:<20}{scores['precision']:>10.2%}{scores['recall']:>10.2%}{100 * scores['f1']:>8.2f}"
            f"{scores['support']:>9}{scores['predicted']:>8}{scores['correct']:>9}"
        )
    lines.append(
        f"{'micro avg':<20}{metrics['precision']:>10.2%}{metrics['recall']:>10.2%}{100 * metrics['f1']:>8.2f}"
        f"{metrics['gold_entities']:>9}{metrics['pred_entities']:>8}{metrics['correct_entities']:>9}"
    )
    lines.append(f"{'macro avg':<20}{'':>10}{'':>10}{100 * metrics['macro_f1']:>8.2f}")
    return "\n".join(lines)


def _checked_sequences(
    gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]
) -> tuple[list[list[str]], list[list[str]]]:
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold sentences but {len(pred)} predicted")
    for number, (gold_tags, pred_tags) in enumerate(zip(gold, pred), start=1):
        if len(gold_tags) != len(pred_tags):
            raise ValueError(f"sentence {number}: {len(gold_tags)} gold tags but {len(pred_tags)} predicted")
    if not any(gold):
        raise ValueError("nothing to evaluate: no tokens")
    return [list(tags) for tags in gold], [list(tags) for tags in pred]


def _entities(sequences: list[list[str]], mode: str, scheme: str) -> set[tuple[int, Span]]:
    """Entities as `(sentence index, span)`, unique within the sequences."""
    return {
        (number, span)
        for number, spans in enumerate(sentence_entities(sequences, mode=mode, scheme=scheme))
        for span in spans
    }


def _scores(correct: int, predicted: int, support: int) -> dict:
    precision, recall, f1 = precision_recall_f1(correct, predicted, support)
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "support": support,
        "predicted": predicted,
        "correct": correct,
    }
