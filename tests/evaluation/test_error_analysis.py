"""Error analysis and the bootstrap interval against cases worked out by hand.

The hand-made sentence (15 words) holds one entity of every outcome:
  words 0-1  gold PER       pred PER         correct
  word  3    gold LOC       pred ORG         wrong type (same boundaries)
  words 5-6  gold ORG       pred ORG (5)     wrong boundary
  word  8    gold PER       pred LOC (8-9)   both wrong
  word  10   gold LOC       -                missed
  word  14   -              pred PER         spurious
SemEval-2013 (Segura-Bedmar et al.; Batista's table that nervaluate implements), with 5 gold
(possible) and 5 predicted (actual) entities:
  strict:  correct 1, incorrect 3 (type, boundary, both)  -> P = R = 1/5
  exact:   correct 2 (+ wrong type), incorrect 2          -> P = R = 2/5
  partial: correct 2, partial 2                           -> P = R = (2 + 0.5 * 2) / 5 = 3/5
  type:    correct 2 (+ wrong boundary), incorrect 2      -> P = R = 2/5
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from ner_imbalance.evaluation import Span, evaluate_tags, read_predictions
from ner_imbalance.evaluation.bootstrap import bootstrap_f1
from ner_imbalance.evaluation.error_analysis import (
    OUTCOMES,
    analyse_errors,
    bracketed,
    format_error_report,
    format_examples,
    match_entities,
    plot_confusion,
)
from ner_imbalance.utils.extras import MissingExtraError

GOLD = ["B-PER", "I-PER", "O", "B-LOC", "O", "B-ORG", "I-ORG", "O", "B-PER", "O", "B-LOC", "O", "O", "O", "O"]
PRED = ["B-PER", "I-PER", "O", "B-ORG", "O", "B-ORG", "O", "O", "B-LOC", "I-LOC", "O", "O", "O", "O", "B-PER"]
TOKENS = [f"w{index}" for index in range(len(GOLD))]


@pytest.fixture
def hand_made():
    # A second sentence without entities: nothing may change.
    return analyse_errors([TOKENS, ["a", "b"]], [GOLD, ["O", "O"]], [PRED, ["O", "O"]])


def test_outcomes_by_hand(hand_made):
    assert [outcome.kind for outcome in hand_made.outcomes] == [
        "correct",
        "wrong_type",
        "wrong_boundary",
        "both_wrong",
        "missed",
        "spurious",
    ]
    counts = hand_made.counts()
    assert counts["total"] == dict.fromkeys(OUTCOMES, 1)
    assert counts["PER"] == {**dict.fromkeys(OUTCOMES, 0), "correct": 1, "both_wrong": 1, "spurious": 1}
    assert counts["LOC"] == {**dict.fromkeys(OUTCOMES, 0), "wrong_type": 1, "missed": 1}
    assert counts["ORG"] == {**dict.fromkeys(OUTCOMES, 0), "wrong_boundary": 1}


def test_nervaluate_schemes_by_hand(hand_made):
    schemes = hand_made.schemes
    expected = {
        "strict": (1, 3, 0, 1 / 5),
        "exact": (2, 2, 0, 2 / 5),
        "partial": (2, 0, 2, 3 / 5),
        "type": (2, 2, 0, 2 / 5),
    }
    for name, (correct, incorrect, partial, score) in expected.items():
        scores = schemes[name]
        assert (scores["correct"], scores["incorrect"], scores["partial"]) == (correct, incorrect, partial), name
        assert (scores["missed"], scores["spurious"], scores["possible"], scores["actual"]) == (1, 1, 5, 5), name
        assert scores["precision"] == pytest.approx(score) and scores["recall"] == pytest.approx(score), name
        assert scores["f1"] == pytest.approx(score), name


def test_strict_scheme_is_conlleval(fixtures_dir):
    tokens, gold, pred = read_predictions(fixtures_dir / "predictions.conll")
    for mode in ("conlleval", "strict"):
        metrics = evaluate_tags(gold, pred, mode=mode)
        analysis = analyse_errors(tokens, gold, pred, mode=mode)
        strict = analysis.schemes["strict"]
        assert strict["correct"] == analysis.counts()["total"]["correct"] == metrics["correct_entities"], mode
        assert (strict["possible"], strict["actual"]) == (metrics["gold_entities"], metrics["pred_entities"]), mode
        assert strict["f1"] == pytest.approx(metrics["f1"]), mode


def test_fixture_outcomes_by_hand(fixtures_dir):
    # conlleval: Rome City (location) is predicted as Rome (location) + City (group); Nice (product)
    # is spurious. strict: also Tom (I-person after O) is no predicted entity -> missed, and gold
    # Herons (I-group after a blank line) is no gold entity -> predicted B-group Herons is spurious.
    tokens, gold, pred = read_predictions(fixtures_dir / "predictions.conll")
    total = analyse_errors(tokens, gold, pred).counts()["total"]
    assert total == {**dict.fromkeys(OUTCOMES, 0), "correct": 4, "wrong_boundary": 1, "spurious": 2}
    total = analyse_errors(tokens, gold, pred, mode="strict").counts()["total"]
    assert total == {**dict.fromkeys(OUTCOMES, 0), "correct": 2, "wrong_boundary": 1, "missed": 1, "spurious": 2}


def test_overlap_matching_is_one_to_one_by_largest_overlap():
    gold = [Span("A", 0, 1), Span("A", 2, 5)]
    pred = [Span("A", 0, 4), Span("B", 4, 5)]
    outcomes = match_entities(gold, pred)
    # The first prediction overlaps gold 2 on two words and gold 1 on one; the second overlaps gold
    # 2, already taken.
    assert [(o.kind, o.gold, o.pred) for o in outcomes] == [
        ("wrong_boundary", Span("A", 2, 5), Span("A", 0, 4)),
        ("missed", Span("A", 0, 1), None),
        ("spurious", None, Span("B", 4, 5)),
    ]
    # Equal overlap: the same-type pair wins.
    outcomes = match_entities([Span("A", 1, 3)], [Span("B", 0, 2), Span("A", 2, 4)])
    assert [(o.kind, o.pred) for o in outcomes] == [("spurious", Span("B", 0, 2)), ("wrong_boundary", Span("A", 2, 4))]


def test_confusion_matrix_by_hand(hand_made):
    rows, columns, matrix = hand_made.confusion()
    assert rows == ["LOC", "ORG", "PER", "spurious"] and columns == ["LOC", "ORG", "PER", "missed"]
    assert matrix == [
        [0, 1, 0, 1],  # gold LOC: predicted ORG (wrong type), one missed
        [0, 1, 0, 0],  # gold ORG: ORG (wrong boundary)
        [1, 0, 1, 0],  # gold PER: LOC (both wrong), PER (correct)
        [0, 0, 1, 0],  # spurious PER
    ]


def test_reports_and_examples(hand_made):
    report = format_error_report(hand_made)
    assert any(line.split()[:6] == ["strict", "1", "3", "0", "1", "1"] for line in report.splitlines())
    assert any(line.split() == ["total", "1", "1", "1", "1", "1", "1"] for line in report.splitlines())
    examples = format_examples(hand_made, 5)
    assert "== wrong type: 1 of 1 shown" in examples
    assert "sentence 1: gold LOC 'w3' (word 4), pred ORG 'w3' (word 4)" in examples
    assert "  pred: [w0 w1]PER w2 [w3]ORG w4 [w5]ORG w6 w7 [w8 w9]LOC" in examples
    assert bracketed(["a", "b", "c"], [Span("X", 0, 3)]) == "[a b c]X"


def test_confusion_png(hand_made, tmp_path):
    path = tmp_path / "plots" / "confusion.png"
    plot_confusion(hand_made, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_nervaluate_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "nervaluate", None)
    with pytest.raises(MissingExtraError, match=r"needs nervaluate.*pip install 'ner_imbalance\[errors\]'"):
        analyse_errors([TOKENS], [GOLD], [PRED])


def test_bootstrap_resample_is_scored_as_evaluate_tags(fixtures_dir):
    _, gold, pred = read_predictions(fixtures_dir / "predictions.conll")
    result = bootstrap_f1(gold, pred, resamples=1, seed=3)
    drawn = np.random.default_rng(3).integers(0, len(gold), size=(1, len(gold)))[0]
    resampled = evaluate_tags([gold[i] for i in drawn], [pred[i] for i in drawn])
    assert result["low"] == pytest.approx(resampled["f1"]) and result["high"] == pytest.approx(resampled["f1"])
    assert result["f1"] == pytest.approx(evaluate_tags(gold, pred)["f1"])


def test_bootstrap_interval_is_seeded_and_holds_f1(fixtures_dir):
    _, gold, pred = read_predictions(fixtures_dir / "predictions.conll")
    first = bootstrap_f1(gold, pred, resamples=2000, seed=7)
    assert first == bootstrap_f1(gold, pred, resamples=2000, seed=7)
    assert first["low"] <= first["f1"] <= first["high"] and first["low"] < first["high"]
    assert bootstrap_f1(gold, gold, resamples=50)["low"] == 1.0
    with pytest.raises(ValueError, match="resamples"):
        bootstrap_f1(gold, pred, resamples=0)
