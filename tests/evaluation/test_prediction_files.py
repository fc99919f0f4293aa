"""`evaluation.prediction_files`: prediction files written and read back, and gold and prediction files read
side by side with every token mismatch named."""

from __future__ import annotations

import pytest

from ner_imbalance.data.conll import DataFormatError
from ner_imbalance.evaluation import evaluate_tags, read_gold_and_pred, read_predictions, write_predictions


def test_write_and_read_back_gives_the_same_scores(fixtures_dir, tmp_path):
    tokens, gold, pred = read_predictions(fixtures_dir / "predictions.conll")
    path = tmp_path / "out" / "predictions.conll"
    write_predictions(path, tokens, gold, pred)
    assert read_predictions(path) == (tokens, gold, pred)
    assert evaluate_tags(*read_predictions(path)[1:]) == evaluate_tags(gold, pred)
    assert path.read_text(encoding="utf-8").split("\n\n")[1].splitlines()[0] == "Nice\tO\tB-product"


def test_writer_refuses_misaligned_sentences(tmp_path):
    with pytest.raises(ValueError, match="sentence 1: 2 tokens, 2 gold and 1 predicted"):
        write_predictions(tmp_path / "p.conll", [["a", "b"]], [["O", "O"]], [["O"]])


def test_gold_and_two_column_predictions(tmp_path):
    gold_path, pred_path = tmp_path / "gold.conll", tmp_path / "pred.conll"
    gold_path.write_text("Anna\tB-person\nsang\tO\n\nhi\tO\n", encoding="utf-8")
    pred_path.write_text("Anna B-person\nsang B-person\n\r\nhi O\n", encoding="utf-8")
    assert read_gold_and_pred(gold_path, pred_path) == (
        [["Anna", "sang"], ["hi"]],
        [["B-person", "O"], ["O"]],
        [["B-person", "B-person"], ["O"]],
    )


@pytest.mark.parametrize(
    ("pred_text", "message"),
    [
        (
            "Anna\tB-person\n\nhi\tO\n",
            r"sentence 1: .*gold.conll has 2 tokens, .*pred.conll has 1; token 2 is gold 'sang'",
        ),
        (
            "Anna\tB-person\nsung\tO\n\nhi\tO\n",
            r"sentence 1: token 2 is gold 'sang' \(.*gold.conll, line 2\) but pred 'sung'",
        ),
        ("Anna\tB-person\nsang\tO\n", r"gold.conll has 2 sentences, .*pred.conll has 1"),
    ],
)
def test_token_mismatch_names_sentence_and_tokens(tmp_path, pred_text, message):
    gold_path, pred_path = tmp_path / "gold.conll", tmp_path / "pred.conll"
    gold_path.write_text("Anna\tB-person\nsang\tO\n\nhi\tO\n", encoding="utf-8")
    pred_path.write_text(pred_text, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        read_gold_and_pred(gold_path, pred_path)


def test_three_column_file_needs_three_columns(tmp_path):
    path = tmp_path / "two.conll"
    path.write_text("Anna\tB-person\tB-person\nsang\tO\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"two.conll, line 2: 2 column\(s\)"):
        read_gold_and_pred(path)


def test_allow_token_mismatch_warns_once_and_scores_by_position(tmp_path, caplog):
    gold_path, pred_path = tmp_path / "gold.conll", tmp_path / "pred.conll"
    gold_path.write_text("I\tO\ngt\tO\nDefence\tB-org\n\nhi\tO\n", encoding="utf-8")
    pred_path.write_text("I\tO\nget\tO\nDefense\tB-org\n\nhi\tO\n", encoding="utf-8")
    with caplog.at_level("WARNING", logger="ner_imbalance.evaluation.prediction_files"):
        tokens, gold, pred = read_gold_and_pred(gold_path, pred_path, allow_token_mismatch=True)
    assert tokens == [["I", "gt", "Defence"], ["hi"]] and pred == [["O", "O", "B-org"], ["O"]]
    assert len(caplog.records) == 1
    message = caplog.records[0].getMessage()
    assert message.startswith("2 token(s) differ between")
    assert "First: sentence 1: token 2 is gold 'gt' (" in message and "line 2) but pred 'get'" in message
    with pytest.raises(ValueError, match="sentence 1: token 2 is gold 'gt'"):
        read_gold_and_pred(gold_path, pred_path)


@pytest.mark.parametrize(
    ("pred_text", "message"),
    [
        ("I\tO\ngets\tO\n\nhi\tO\n", r"sentence 1: .*gold.conll has 3 tokens, .*pred.conll has 2"),
        ("I\tO\ngt\tO\nDefence\tB-org\n", r"gold.conll has 2 sentences, .*pred.conll has 1"),
    ],
)
def test_allow_token_mismatch_keeps_line_and_sentence_counts_errors(tmp_path, pred_text, message):
    gold_path, pred_path = tmp_path / "gold.conll", tmp_path / "pred.conll"
    gold_path.write_text("I\tO\ngt\tO\nDefence\tB-org\n\nhi\tO\n", encoding="utf-8")
    pred_path.write_text(pred_text, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        read_gold_and_pred(gold_path, pred_path, allow_token_mismatch=True)
