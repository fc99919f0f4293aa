"""Label lists, the preparation of a corpus's tags, unknown dev/test tags (tag strings: `test_tags.py`)."""

from __future__ import annotations

import logging

import datasets
import pytest

from ner_imbalance.data.labels import build_label_list, check_known_tags, prepare_tags
from ner_imbalance.data.readers import load_corpus
from ner_imbalance.tags import detect_scheme


def _corpus(**splits: list[list[str]]) -> datasets.DatasetDict:
    return datasets.DatasetDict(
        {
            split: datasets.Dataset.from_dict({"tokens": [["w"] * len(tags) for tags in tag_lists], "tags": tag_lists})
            for split, tag_lists in splits.items()
        }
    )


def test_label_list_is_outside_then_types_alphabetically_b_before_i():
    tags = [["I-person", "O", "B-location"], ["B-person", "I-person", "B-creative-work"]]
    expected = ["O", "B-creative-work", "I-creative-work", "B-location", "I-location", "B-person", "I-person"]
    assert build_label_list(tags) == expected
    assert build_label_list(list(reversed(tags))) == expected


def test_bioes_label_list_orders_b_i_e_s():
    assert build_label_list([["S-LOC", "B-PER", "E-PER"]]) == [
        "O",
        "B-LOC",
        "I-LOC",
        "E-LOC",
        "S-LOC",
        "B-PER",
        "I-PER",
        "E-PER",
        "S-PER",
    ]
    assert detect_scheme(["O", "B-LOC", "S-LOC"]) == "IOBES"
    assert detect_scheme(["O", "B-LOC", "I-LOC"]) == "IOB2"


def test_unknown_dev_tags_are_listed_with_their_files(fixtures_dir, tmp_path):
    dev = tmp_path / "dev.conll"
    dev.write_text("Anna\tB-person\nsings\tB-song\nnow\tB-song\n\nhi\tI-time\n", encoding="utf-8")
    corpus, sources = load_corpus(train_file=str(fixtures_dir / "ner_train.conll"), validation_file=str(dev))
    label_list = build_label_list(corpus["train"]["tags"])
    with pytest.raises(ValueError, match=r"validation \(.*dev\.conll\): B-song \(2x\), I-time \(1x\)"):
        check_known_tags(corpus, label_list, sources)
    check_known_tags(datasets.DatasetDict({"train": corpus["train"]}), label_list)


def test_prepare_tags_counts_invalid_per_split_and_warns(caplog):
    corpus = _corpus(train=[["B-A", "I-A"], ["O", "I-A", "I-A"]], validation=[["I-B", "O", "I-A"]])
    with caplog.at_level(logging.WARNING, logger="ner_imbalance.data.labels"):
        prepared, report = prepare_tags(corpus, sources={"train": "t.conll", "validation": "v.conll"})
    assert report["invalid"]["train"] == {"source": "t.conll", "transitions": 1, "sentences": 1, "first_rows": [1]}
    assert report["invalid"]["validation"]["transitions"] == 2
    assert "v.conll" in caplog.text and "repair_tags=True" in caplog.text
    assert prepared["train"]["tags"] == corpus["train"]["tags"]


def test_prepare_tags_repairs_on_request():
    corpus = _corpus(train=[["O", "I-A", "I-A", "I-B"]])
    prepared, report = prepare_tags(corpus, repair_tags=True)
    assert prepared["train"]["tags"] == [["O", "B-A", "I-A", "B-B"]]
    assert report["repaired"] and report["invalid"]["train"]["transitions"] == 2


def test_prepare_tags_converts_iob1():
    corpus = _corpus(train=[["I-A", "I-A", "B-A", "O"]], test=[["I-B"]])
    prepared, report = prepare_tags(corpus, tag_scheme="iob1")
    assert prepared["train"]["tags"] == [["B-A", "I-A", "B-A", "O"]]
    assert prepared["test"]["tags"] == [["B-B"]]
    assert report["invalid"]["train"]["transitions"] == 0


def test_bioes_input_needs_its_scheme_named():
    corpus = _corpus(train=[["B-A", "E-A", "S-B"]])
    with pytest.raises(ValueError, match="tag_scheme='bioes'"):
        prepare_tags(corpus)
    prepared, report = prepare_tags(corpus, tag_scheme="bioes")
    assert report["scheme"] == "IOBES" and prepared["train"]["tags"] == [["B-A", "E-A", "S-B"]]
