"""Where a tagger goes wrong: entity outcomes, the SemEval-2013 schemes, a confusion matrix, examples.

Every gold and predicted entity of a sentence ends in one of six outcomes (the categories of
MUC, Chinchor & Sundheim 1993, used by SemEval-2013 Task 9.1, Segura-Bedmar et al.):

- `correct`: a predicted entity with the gold entity's boundaries and type;
- `wrong_type`: same boundaries, another type;
- `wrong_boundary`: same type, overlapping boundaries that differ;
- `both_wrong`: overlapping boundaries that differ and another type;
- `missed`: a gold entity no predicted entity overlaps;
- `spurious`: a predicted entity no gold entity overlaps (or whose gold partner was already taken).

Entities are found exactly as `evaluate_tags` finds them (conlleval's chunking, or seqeval's
strict mode), so `correct` is conlleval's correct count.

The four SemEval-2013 schemes are `nervaluate`'s (`Evaluator`, fed with these entities through its
`dict` loader, so that its chunking cannot differ from conlleval's: its own tag loaders read IOB2
only and chunk differently from conlleval on IOBES). strict: boundaries and type must match;
exact: boundaries must match, any type; partial: overlapping boundaries count half, any type;
type: the type must match on overlapping boundaries.

The six per-type outcome counts are computed here, not by nervaluate, because nervaluate
cannot give them: its per-type results filter gold and predictions to one type before matching,
so a type confusion shows up there as one missed and one spurious entity, and none of its
strategies separates a wrong type from a wrong boundary or from both. A gold entity's outcome
counts for its gold type; a spurious entity counts for its predicted type. The matching is
one-to-one within a sentence: identical boundaries first, then overlapping pairs by decreasing
overlap (a same-type pair first on ties). On such a one-to-one case nervaluate's scheme counts
follow from these outcomes (strict correct = `correct`, exact correct = `correct + wrong_type`,
...); the tests check both against a case worked out by hand.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ner_imbalance.evaluation.scores import Span, sentence_entities
from ner_imbalance.utils.extras import import_extra

ERROR_KINDS = ("wrong_type", "wrong_boundary", "both_wrong", "missed", "spurious")
OUTCOMES = ("correct", *ERROR_KINDS)
SEMEVAL_SCHEMES = {"strict": "strict", "exact": "exact", "partial": "partial", "type": "ent_type"}
"""Our name of each SemEval-2013 scheme -> nervaluate's."""
SCHEME_COUNTS = ("correct", "incorrect", "partial", "missed", "spurious", "possible", "actual")
SCHEME_SCORES = ("precision", "recall", "f1")
ERRORS_EXTRA = "errors"


@dataclass(frozen=True)
class EntityOutcome:
    """What became of one gold entity, one predicted entity, or a matched pair, in sentence `sentence` (0-based)."""

    kind: str
    sentence: int
    gold: Span | None
    pred: Span | None

    @property
    def type(self) -> str:
        """The type this outcome counts for: the gold type, or the predicted type of a spurious entity."""
        return self.gold.type if self.gold is not None else self.pred.type

    @property
    def start(self) -> int:
        return min(span.start for span in (self.gold, self.pred) if span is not None)


def match_entities(gold: Sequence[Span], pred: Sequence[Span], sentence: int = 0) -> list[EntityOutcome]:
    """The outcomes of one sentence's gold and predicted entities, in word order (see the module docstring)."""
    pred_by_boundaries = {(span.start, span.end): span for span in pred}
    outcomes: list[EntityOutcome] = []
    unmatched_gold: list[Span] = []
    taken: set[Span] = set()
    for gold_span in gold:
        partner = pred_by_boundaries.get((gold_span.start, gold_span.end))
        if partner is None:
            unmatched_gold.append(gold_span)
            continue
        kind = "correct" if partner.type == gold_span.type else "wrong_type"
        outcomes.append(EntityOutcome(kind, sentence, gold_span, partner))
        taken.add(partner)
    overlapping = [
        (_overlap(gold_span, pred_span), gold_span, pred_span)
        for gold_span in unmatched_gold
        for pred_span in pred
        if pred_span not in taken and _overlap(gold_span, pred_span) > 0
    ]
    overlapping.sort(key=lambda pair: (-pair[0], pair[1].type != pair[2].type, pair[1].start, pair[2].start))
    matched_gold: set[Span] = set()
    for _, gold_span, pred_span in overlapping:
        if gold_span in matched_gold or pred_span in taken:
            continue
        kind = "wrong_boundary" if gold_span.type == pred_span.type else "both_wrong"
        outcomes.append(EntityOutcome(kind, sentence, gold_span, pred_span))
        matched_gold.add(gold_span)
        taken.add(pred_span)
    outcomes += [EntityOutcome("missed", sentence, span, None) for span in unmatched_gold if span not in matched_gold]
    outcomes += [EntityOutcome("spurious", sentence, None, span) for span in pred if span not in taken]
    return sorted(outcomes, key=lambda outcome: (outcome.start, OUTCOMES.index(outcome.kind)))


def _overlap(first: Span, second: Span) -> int:
    return min(first.end, second.end) - max(first.start, second.start)


@dataclass
class ErrorAnalysis:
    """The entities and outcomes of a tagged corpus, and the SemEval-2013 scheme scores."""

    tokens: list[list[str]]
    gold_entities: list[list[Span]]
    pred_entities: list[list[Span]]
    outcomes: list[EntityOutcome]
    schemes: dict[str, dict[str, float]]

    @property
    def types(self) -> list[str]:
        """Every entity type found in gold or predictions, sorted."""
        return sorted({span.type for spans in self.gold_entities + self.pred_entities for span in spans})

    def counts(self) -> dict[str, dict[str, int]]:
        """`{type: {outcome: count}}` for every type, then `"total"`."""
        counts = {entity_type: dict.fromkeys(OUTCOMES, 0) for entity_type in self.types}
        for outcome in self.outcomes:
            counts[outcome.type][outcome.kind] += 1
        counts["total"] = {kind: sum(by_type[kind] for by_type in counts.values()) for kind in OUTCOMES}
        return counts

    def confusion(self) -> tuple[list[str], list[str], list[list[int]]]:
        """Row labels (gold types, then `spurious`), column labels (predicted types, then `missed`), counts.

        A cell counts the matched pairs (correct, wrong type, wrong boundary, both wrong) of a gold
        and a predicted type; the last column the missed gold entities of each type, the last row
        the spurious predicted entities of each type.
        """
        types = self.types
        index = {entity_type: position for position, entity_type in enumerate(types)}
        matrix = [[0] * (len(types) + 1) for _ in range(len(types) + 1)]
        for outcome in self.outcomes:
            row = index[outcome.gold.type] if outcome.gold is not None else len(types)
            column = index[outcome.pred.type] if outcome.pred is not None else len(types)
            matrix[row][column] += 1
        return [*types, "spurious"], [*types, "missed"], matrix

    def examples(self, per_kind: int) -> dict[str, list[EntityOutcome]]:
        """The first `per_kind` outcomes of every error kind, in corpus order."""
        return {kind: [o for o in self.outcomes if o.kind == kind][:per_kind] for kind in ERROR_KINDS}

    def to_dict(self) -> dict:
        """JSON-ready: `{"schemes": {scheme: counts and scores}, "outcomes": {type: {outcome: count}}}`."""
        return {"schemes": self.schemes, "outcomes": self.counts()}


def analyse_errors(
    tokens: Sequence[Sequence[str]],
    gold: Sequence[Sequence[str]],
    pred: Sequence[Sequence[str]],
    *,
    mode: str = "conlleval",
    scheme: str = "IOB2",
) -> ErrorAnalysis:
    """Entities of both taggings (as `evaluate_tags` finds them in `mode`), their outcomes and scheme scores.

    Needs nervaluate (`pip install 'ner_imbalance[errors]'`); `MissingExtraError` says so otherwise.
    """
    gold_entities = sentence_entities(gold, mode=mode, scheme=scheme)
    pred_entities = sentence_entities(pred, mode=mode, scheme=scheme)
    outcomes = [
        outcome
        for number, (gold_spans, pred_spans) in enumerate(zip(gold_entities, pred_entities))
        for outcome in match_entities(gold_spans, pred_spans, number)
    ]
    return ErrorAnalysis(
        tokens=[list(words) for words in tokens],
        gold_entities=gold_entities,
        pred_entities=pred_entities,
        outcomes=outcomes,
        schemes=semeval_scores(gold_entities, pred_entities),
    )


def semeval_scores(gold_entities: list[list[Span]], pred_entities: list[list[Span]]) -> dict[str, dict[str, float]]:
    """nervaluate's strict, exact, partial and type schemes (counts, precision, recall, F1) over all sentences."""
    nervaluate = import_extra("nervaluate", extra=ERRORS_EXTRA, feature="the SemEval-2013 schemes (--errors)")
    types = sorted({span.type for spans in gold_entities + pred_entities for span in spans})
    evaluator = nervaluate.Evaluator(_as_records(gold_entities), _as_records(pred_entities), tags=types, loader="dict")
    overall = evaluator.evaluate()["overall"]
    return {
        ours: {name: getattr(overall[theirs], name) for name in (*SCHEME_COUNTS, *SCHEME_SCORES)}
        for ours, theirs in SEMEVAL_SCHEMES.items()
    }


def _as_records(entities: list[list[Span]]) -> list[list[dict]]:
    """nervaluate's `dict` format: `label`, `start` and an inclusive `end` word index."""
    return [[{"label": span.type, "start": span.start, "end": span.end - 1} for span in spans] for spans in entities]


def format_error_report(analysis: ErrorAnalysis) -> str:
    """The four SemEval-2013 schemes, then the outcome counts of every type."""
    lines = [
        "SemEval-2013 schemes (nervaluate)",
        f"{'scheme':<10}" + "".join(f"{name:>11}" for name in SCHEME_COUNTS[:5]) + f"{'precision':>11}"
        f"{'recall':>9}{'F1':>8}",
    ]
    for name, scores in analysis.schemes.items():
        lines.append(
            f"{name:<10}"
            + "".join(f"{scores[count]:>11}" for count in SCHEME_COUNTS[:5])
            + f"{scores['precision']:>11.2%}{scores['recall']:>9.2%}{100 * scores['f1']:>8.2f}"
        )
    lines += ["", "Entity outcomes by type (gold type; spurious: predicted type)"]
    lines.append(f"{'type':<20}" + "".join(f"{kind:>16}" for kind in OUTCOMES))
    for entity_type, counts in analysis.counts().items():
        lines.append(f"{entity_type:<20}" + "".join(f"{counts[kind]:>16}" for kind in OUTCOMES))
    return "\n".join(lines)


def bracketed(words: Sequence[str], spans: Sequence[Span]) -> str:
    """The sentence with every entity written `[words]type`."""
    starts = {span.start: span for span in spans}
    ends = {span.end - 1: span for span in spans}
    pieces = []
    for position, word in enumerate(words):
        piece = f"[{word}" if position in starts else word
        pieces.append(f"{piece}]{ends[position].type}" if position in ends else piece)
    return " ".join(pieces)


def format_examples(analysis: ErrorAnalysis, per_kind: int) -> str:
    """Up to `per_kind` examples of every error kind: the entity, and the sentence with both taggings."""
    counts = analysis.counts()["total"]
    lines: list[str] = []
    for kind, outcomes in analysis.examples(per_kind).items():
        lines.append(f"== {kind.replace('_', ' ')}: {len(outcomes)} of {counts[kind]} shown")
        for outcome in outcomes:
            words = analysis.tokens[outcome.sentence]
            described = [
                f"{side} {span.type} {' '.join(words[span.start : span.end])!r} ({_word_range(span)})"
                for side, span in (("gold", outcome.gold), ("pred", outcome.pred))
                if span is not None
            ]
            lines += [
                f"sentence {outcome.sentence + 1}: " + ", ".join(described),
                f"  gold: {bracketed(words, analysis.gold_entities[outcome.sentence])}",
                f"  pred: {bracketed(words, analysis.pred_entities[outcome.sentence])}",
            ]
        lines.append("")
    return "\n".join(lines).rstrip("\n")


def _word_range(span: Span) -> str:
    return f"word {span.start + 1}" if span.end == span.start + 1 else f"words {span.start + 1}-{span.end}"


def plot_confusion(analysis: ErrorAnalysis, path: str | os.PathLike) -> None:
    """Write a heat map of gold type (rows) against predicted type (columns) to `path` (PNG).

    Colours are the share of each row; every cell shows its count. Needs matplotlib (the Agg
    canvas of `matplotlib.figure.Figure`, no display, no pyplot state).
    """
    import_extra("matplotlib", extra=ERRORS_EXTRA, feature="the confusion heat map (--confusion)")
    from matplotlib.figure import Figure

    rows, columns, matrix = analysis.confusion()
    shares = [[count / max(sum(row), 1) for count in row] for row in matrix]
    size = 1.0 + 0.6 * len(columns)
    figure = Figure(figsize=(size + 1.5, size), layout="constrained")
    axes = figure.subplots()
    image = axes.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    figure.colorbar(image, ax=axes, label="share of the row")
    axes.set_xticks(range(len(columns)), columns, rotation=45, ha="right")
    axes.set_yticks(range(len(rows)), rows)
    axes.set_xlabel("predicted type")
    axes.set_ylabel("gold type")
    axes.set_title("entities matched on exact or overlapping words", fontsize=9)
    for row_index, row in enumerate(matrix):
        for column_index, count in enumerate(row):
            colour = "white" if shares[row_index][column_index] > 0.5 else "black"
            axes.text(column_index, row_index, str(count), ha="center", va="center", color=colour, fontsize=8)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=150)
