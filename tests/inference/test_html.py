"""The HTML pages: `predict_ner.py --output x.html` and `evaluate_ner.py --html`, checked as text and in a
real headless Chromium (no console message, one highlighted span per entity, the filter works).

The browser tests skip where Chromium is not installed, with the reason, except under CI
(`CI=true`), where `.ci/run` installs it and a missing browser fails the test.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from tiny_models import predict_flags

from ner_imbalance.cli import evaluate, predict
from ner_imbalance.evaluation.error_analysis import OUTCOMES, analyse_errors
from ner_imbalance.evaluation.html_report import error_report_html
from ner_imbalance.inference import HTML_PAGE_END, Sentence, TaggedSentence, entities_of, html_page_start, write_html

LABELS = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
MARK = re.compile(r"<mark\b[^>]*>")


def _chromium() -> str:
    """The headless browser; a skip with the reason where there is none, a failure under CI."""
    browser = next((path for path in map(shutil.which, BROWSERS) if path), None)
    if browser is None:
        message = "no Chromium to load the pages in (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(message + ": .ci/run installs it under CI")
        pytest.skip(message)
    return browser


def _load(page: Path, fragment: str = "", screenshot: Path | None = None) -> tuple[str, list[str]]:
    """The DOM of `page` after its scripts ran, and the browser's console lines (messages, errors)."""
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0"]
    target = ["--dump-dom"] if screenshot is None else [f"--screenshot={screenshot}", "--window-size=1200,900"]
    result = subprocess.run(
        [_chromium(), *flags, *target, page.resolve().as_uri() + fragment],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout, [line for line in result.stderr.splitlines() if ":CONSOLE" in line]


def _tagged() -> list[TaggedSentence]:
    raw = Sentence(["Ann", "Lee", "flew", "to", "<Paris>", "&", "Rome"], text="Ann  Lee flew to <Paris> & Rome")
    raw.offsets = [(0, 3), (5, 8), (9, 13), (14, 16), (17, 24), (25, 26), (27, 31)]
    words = Sentence(["mary", "likes", "new", "york"])
    sentences = []
    for sentence, tags in [
        (raw, ["B-PER", "I-PER", "O", "O", "B-LOC", "O", "B-LOC"]),
        (words, ["B-PER", "O", "B-LOC", "I-LOC"]),
        (Sentence([]), []),
    ]:
        probabilities = [0.9] * len(tags)
        entities = entities_of(sentence, tags, probabilities)
        sentences.append(TaggedSentence(sentence.tokens, tags, probabilities, entities, sentence.text))
    return sentences


def _page(path: Path, sentences: list[TaggedSentence]) -> Path:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(html_page_start(["LOC", "PER"], "a <test> page"))
        write_html(sentences, handle)
        handle.write(HTML_PAGE_END)
    return path


def test_tagged_page_marks_each_entity_with_type_probability_and_the_original_text(tmp_path):
    sentences = _tagged()
    text = _page(tmp_path / "tagged.html", sentences).read_text(encoding="utf-8")
    marks = MARK.findall(text)
    assert len(marks) == sum(len(sentence.entities) for sentence in sentences) == 5
    assert 'title="PER, probability 0.900"' in marks[0] and 'data-label="PER"' in marks[0]
    assert "<mark" not in text.split("<body>")[0] and "http" not in text and "<script" not in text
    assert ">Ann  Lee</mark> flew to <mark" in text, "raw text keeps its own spacing"
    assert "&lt;Paris&gt;</mark> &amp; <mark" in text and "&lt;test&gt;" in text
    assert text.count('<p class="s">') == 3, "one paragraph per input sentence, empty ones included"


def test_tagged_page_in_chromium(tmp_path):
    sentences = _tagged()
    page = _page(tmp_path / "tagged.html", sentences)
    dom, console = _load(page)
    assert console == []
    assert len(MARK.findall(dom)) == sum(len(sentence.entities) for sentence in sentences)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    from tiny_models import save_tiny_tagger

    return save_tiny_tagger(tmp_path_factory.mktemp("html_model"), LABELS, seed=11)


def test_predict_ner_writes_the_page_from_the_extension(tmp_path, model_dir):
    source = tmp_path / "in.txt"
    source.write_text("john visited paris and london today\n\nmary likes the city\n" * 3, encoding="utf-8")
    flags = predict_flags(model_dir, source)
    assert predict.main([*flags, "--output", str(tmp_path / "tags.jsonl")]) == 0
    assert predict.main([*flags, "--output", str(tmp_path / "tags.html")]) == 0
    records = (tmp_path / "tags.jsonl").read_text(encoding="utf-8").splitlines()
    entities = sum(len(json.loads(record)["entities"]) for record in records)
    text = (tmp_path / "tags.html").read_text(encoding="utf-8")
    assert len(MARK.findall(text)) == entities and text.count('<p class="s">') == len(records) == 9
    dom, console = _load(tmp_path / "tags.html")
    assert console == [] and len(MARK.findall(dom)) == entities


GOLD = [
    ["B-PER", "I-PER", "O", "B-LOC", "O"],
    ["B-LOC", "O", "B-PER", "O"],
    ["O", "O", "O"],
    ["B-ORG", "I-ORG", "O", "B-PER"],
]
PRED = [
    ["B-PER", "I-PER", "O", "B-PER", "O"],  # correct, wrong type
    ["B-LOC", "I-LOC", "O", "O"],  # wrong boundary, missed
    ["O", "B-LOC", "O"],  # spurious
    ["B-PER", "O", "O", "B-PER"],  # both wrong, correct
]
WORDS = [
    ["Ann", "Lee", "in", "Paris", "."],
    ["Rome", "and", "Bo", "!"],
    ["x", "<y>", "z"],
    ["Acme", "Inc", "hired", "Al"],
]


def _report(path: Path) -> tuple[Path, object]:
    analysis = analyse_errors(WORDS, GOLD, PRED)
    path.write_text(error_report_html(analysis, "errors"), encoding="utf-8")
    return path, analysis


def _cells(table: str, page: str) -> list[list[str]]:
    body = re.search(rf'<table id="{table}">(.*?)</table>', page, re.S).group(1)
    return [re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row) for row in re.findall(r"<tr>(.*?)</tr>", body)]


def test_error_report_numbers_are_those_of_errors(tmp_path):
    page, analysis = _report(tmp_path / "report.html")
    text = page.read_text(encoding="utf-8")
    counts = analysis.counts()
    rows = _cells("outcomes", text)
    assert rows[0] == ["type", *OUTCOMES]
    assert {row[0]: [int(cell) for cell in row[1:]] for row in rows[1:]} == {
        name: [by_kind[kind] for kind in OUTCOMES] for name, by_kind in counts.items()
    }
    assert counts["total"] == {
        "correct": 2, "wrong_type": 1, "wrong_boundary": 1, "both_wrong": 1, "missed": 1, "spurious": 1,
    }  # fmt: skip
    schemes = {row[0]: row[1:] for row in _cells("schemes", text)[1:]}
    assert schemes["strict"][-1] == f"{100 * analysis.schemes['strict']['f1']:.2f}"
    marks = MARK.findall(text)
    gold_entities = sum(len(spans) for spans in analysis.gold_entities)
    pred_entities = sum(len(spans) for spans in analysis.pred_entities)
    assert len(marks) == gold_entities + pred_entities
    for kind in OUTCOMES:
        sides = sum((o.gold is not None) + (o.pred is not None) for o in analysis.outcomes if o.kind == kind)
        assert sum(f'class="k-{kind}"' in mark for mark in marks) == sides
    assert "&lt;y&gt;" in text and html.escape("<y>") in text


def _rows(dom: str) -> list[tuple[str, bool]]:
    """(data-outcomes, shown) of every sentence row of a report's DOM."""
    rows = re.findall(r'<tr class="sentence" data-outcomes="([^"]*)"( hidden="")?>', dom)
    return [(outcomes, not hidden) for outcomes, hidden in rows]


def test_error_report_in_chromium_loads_cleanly_and_filters(tmp_path):
    page, analysis = _report(tmp_path / "report.html")
    dom, console = _load(page)
    assert console == [] and 'data-ready="true"' in dom
    assert len(MARK.findall(dom)) == sum(len(spans) for spans in analysis.gold_entities + analysis.pred_entities)
    assert len(_rows(dom)) == 4 and all(shown for _, shown in _rows(dom))
    dom, console = _load(page, "#kind=missed&type=PER")
    assert console == []
    assert [outcomes for outcomes, shown in _rows(dom) if shown] == ["wrong_boundary:LOC missed:PER"]
    assert '<span id="shown">1</span>' in dom


def test_evaluate_ner_writes_the_report(tmp_path, capsys):
    predictions = tmp_path / "pred.conll"
    predictions.write_text(
        "\n\n".join(
            "\n".join(f"{word} {gold} {pred}" for word, gold, pred in zip(words, gold_tags, pred_tags))
            for words, gold_tags, pred_tags in zip(WORDS, GOLD, PRED)
        )
        + "\n",
        encoding="utf-8",
    )
    assert evaluate.main(["--pred", str(predictions), "--errors", "--html", str(tmp_path / "report.html")]) == 0
    printed = capsys.readouterr().out
    text = (tmp_path / "report.html").read_text(encoding="utf-8")
    for row in _cells("outcomes", text)[1:]:
        assert re.search(r"^" + re.escape(row[0]) + r"\s+" + r"\s+".join(row[1:]) + r"\s*$", printed, re.M), row
