"""`evaluation.scores`: entity-level scores against counts worked out by hand and against seqeval's own functions.

fixtures/predictions.conll (token gold pred), entity by entity:
  sentence 1  Mary Smith   gold person        pred person          correct in both modes
              Tom          gold B-person      pred I-person        conlleval: I- after O starts a
                                                                   person, correct; strict: no entity
              Rome City    gold location      pred B-location I-group: location(Rome) + group(City)
                                                                   (conlleval) / location(Rome) (strict)
  sentence 2  Nice         gold O             pred B-product       false positive
              Real Town    gold group         pred group           correct, entity at sentence end
  sentence 3  Herons       gold I-group       pred B-group         conlleval: gold entity, correct;
                                                                   strict: no gold entity, false positive
conlleval: gold 5 (person 2, location 1, group 2), found 7 (person 2, location 1, group 3,
product 1), correct 4 (person 2, group 2). strict: gold 4 (person 2, location 1, group 1), found 5
(person 1, location 1, group 2, product 1), correct 2 (person 1, group 1).
Tokens 14, wrong tags 4 (Tom, City, Nice, Herons).
"""

from __future__ import annotations

import pytest
from seqeval.metrics import classification_report, f1_score, precision_score, recall_score
from seqeval.scheme import IOB2

from ner_imbalance.evaluation import evaluate_tags, flatten_metrics, format_report, read_predictions


@pytest.fixture
def fixture_predictions(fixtures_dir):
    return read_predictions(fixtures_dir / "predictions.conll")


def test_conlleval_counts_by_hand(fixture_predictions):
    _, gold, pred = fixture_predictions
    metrics = evaluate_tags(gold, pred)
    assert (metrics["gold_entities"], metrics["pred_entities"], metrics["correct_entities"]) == (5, 7, 4)
    assert metrics["precision"] == pytest.approx(4 / 7)
    assert metrics["recall"] == pytest.approx(4 / 5)
    assert metrics["f1"] == pytest.approx(2 / 3)
    assert metrics["accuracy"] == pytest.approx(10 / 14)
    per_type = metrics["per_type"]
    assert list(per_type) == ["group", "location", "person", "product"]
    assert per_type["person"] == {
        "precision": 1.0,
        "recall": 1.0,
        "f1": 1.0,
        "support": 2,
        "predicted": 2,
        "correct": 2,
    }
    assert per_type["group"]["precision"] == pytest.approx(2 / 3) and per_type["group"]["f1"] == pytest.approx(0.8)
    assert (per_type["location"]["f1"], per_type["location"]["support"]) == (0.0, 1)
    assert (per_type["product"]["f1"], per_type["product"]["support"], per_type["product"]["predicted"]) == (0.0, 0, 1)
    assert metrics["macro_f1"] == pytest.approx((1.0 + 0.8 + 0.0 + 0.0) / 4)


def test_strict_counts_by_hand(fixture_predictions):
    _, gold, pred = fixture_predictions
    metrics = evaluate_tags(gold, pred, mode="strict")
    assert (metrics["gold_entities"], metrics["pred_entities"], metrics["correct_entities"]) == (4, 5, 2)
    assert metrics["f1"] == pytest.approx(4 / 9)
    assert metrics["per_type"]["person"]["recall"] == pytest.approx(1 / 2)
    assert metrics["macro_f1"] == pytest.approx((2 / 3 + 0.0 + 2 / 3 + 0.0) / 4)


@pytest.mark.parametrize(
    ("gold", "pred", "conlleval", "strict"),
    [
        ([["B-PER", "I-PER", "O"]], [["I-PER", "I-PER", "O"]], (1, 1, 1), (1, 0, 0)),
        ([["B-PER", "I-PER"]], [["B-PER", "I-LOC"]], (1, 2, 0), (1, 1, 0)),
        ([["O", "B-LOC"], ["I-LOC", "O"]], [["O", "B-LOC"], ["B-LOC", "O"]], (2, 2, 2), (1, 2, 1)),
        ([["O", "O", "B-LOC"]], [["O", "O", "B-LOC"]], (1, 1, 1), (1, 1, 1)),
    ],
    ids=["i-after-o", "type-change", "entity-at-sentence-end-does-not-run-on", "entity-at-sentence-end"],
)
def test_iob2_edge_cases(gold, pred, conlleval, strict):
    for mode, expected in (("conlleval", conlleval), ("strict", strict)):
        metrics = evaluate_tags(gold, pred, mode=mode)
        assert (metrics["gold_entities"], metrics["pred_entities"], metrics["correct_entities"]) == expected, mode


def test_matches_seqeval_functions(fixture_predictions):
    _, gold, pred = fixture_predictions
    for mode, seqeval_kwargs in (("conlleval", {}), ("strict", {"mode": "strict", "scheme": IOB2})):
        metrics = evaluate_tags(gold, pred, mode=mode)
        assert metrics["precision"] == pytest.approx(precision_score(gold, pred, **seqeval_kwargs))
        assert metrics["recall"] == pytest.approx(recall_score(gold, pred, **seqeval_kwargs))
        assert metrics["f1"] == pytest.approx(f1_score(gold, pred, **seqeval_kwargs))
        report = classification_report(gold, pred, output_dict=True, zero_division=0, **seqeval_kwargs)
        assert metrics["macro_f1"] == pytest.approx(report["macro avg"]["f1-score"])
        for entity_type, scores in metrics["per_type"].items():
            assert scores["f1"] == pytest.approx(report[entity_type]["f1-score"])
            assert scores["support"] == report[entity_type]["support"]


def test_bioes_strict_mode():
    gold = [["B-PER", "E-PER", "O", "S-LOC"]]
    pred = [["B-PER", "E-PER", "O", "B-LOC"]]
    assert evaluate_tags(gold, pred, mode="strict", scheme="IOBES")["correct_entities"] == 1
    assert evaluate_tags(gold, pred)["correct_entities"] == 2


def test_no_entities_gives_zero_scores_and_full_accuracy():
    metrics = evaluate_tags([["O", "O"]], [["O", "O"]])
    assert (metrics["precision"], metrics["recall"], metrics["f1"], metrics["macro_f1"]) == (0.0, 0.0, 0.0, 0.0)
    assert metrics["accuracy"] == 1.0 and metrics["per_type"] == {}


def test_length_mismatch_and_bad_mode_are_errors():
    with pytest.raises(ValueError, match="sentence 2: 2 gold tags but 1 predicted"):
        evaluate_tags([["O"], ["O", "O"]], [["O"], ["O"]])
    with pytest.raises(ValueError, match="mode"):
        evaluate_tags([["O"]], [["O"]], mode="lenient")


def test_flatten_and_report(fixture_predictions):
    _, gold, pred = fixture_predictions
    metrics = evaluate_tags(gold, pred)
    flat = flatten_metrics(metrics)
    assert flat["f1"] == pytest.approx(2 / 3) and flat["group_support"] == 2.0 and flat["product_precision"] == 0.0
    assert all(isinstance(value, float) for value in flat.values())
    report = format_report(metrics)
    assert report.splitlines()[0] == "processed 14 tokens with 5 phrases; found: 7 phrases; correct: 4."
    assert "FB1:  66.67" in report.splitlines()[1]
    assert any(line.startswith("group") and "80.00" in line for line in report.splitlines())
