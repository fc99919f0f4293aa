"""Tagging new text: inputs, windows (every word exactly one tag), outputs and errors, on a tiny random BERT.

The consistency with a run's own predictions and the transformers pipeline check live in
tests/training/test_run.py, next to the trained tiny model.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_models import predict_flags

from ner_imbalance.cli import predict
from ner_imbalance.data.alignment import tokenize_and_align
from ner_imbalance.data.conll import DataFormatError
from ner_imbalance.inference import Sentence, Tagger, input_format_of, read_sentences, split_words, write_conll

LABELS = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
WORDS = ["john", "visited", "paris", "and", "london", "today", "with", "mary", "xyz", "abcd", "the", "city"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A random BertForTokenClassification with NER labels and its tokenizer, saved like train_ner.py saves."""
    from tiny_models import save_tiny_tagger

    return save_tiny_tagger(tmp_path_factory.mktemp("tagger"), LABELS, seed=3)


@pytest.fixture(scope="module")
def tagger(model_dir) -> Tagger:
    return Tagger.from_folder(model_dir, device="cpu", batch_size=3, max_seq_length=8, stride=2)


def _reference_tags(tagger: Tagger, sentences: list[list[str]]) -> list[list[str]]:
    """Each sentence through the model one window at a time, each word's argmax taken from the window the
    evaluation picks (`gather_word_values`)."""
    import datasets

    from ner_imbalance.data.alignment import gather_word_values

    windows = tokenize_and_align(
        datasets.Dataset.from_dict({"tokens": sentences}),
        tagger.tokenizer,
        tagger.model.config.label2id,
        max_seq_length=tagger.max_seq_length,
        stride=tagger.stride,
    )
    with torch.no_grad():
        logits = [tagger.model(input_ids=torch.tensor([row["input_ids"]])).logits[0].numpy() for row in windows]
    num_words = [len(words) for words in sentences]
    tags = [LABELS[int(index)] for index in gather_word_values(logits, windows, num_words).argmax(-1)]
    starts = np.cumsum([0, *num_words])
    return [tags[start:end] for start, end in zip(starts[:-1], starts[1:])]


def test_long_inputs_give_every_word_exactly_the_evaluation_tag(tagger):
    rng = np.random.default_rng(0)
    sentences = [list(rng.choice(WORDS, size=size)) for size in (1, 3, 9, 17, 40, 2, 0, 25)]
    tagged = tagger.tag(sentences)
    assert [sentence.tokens for sentence in tagged] == sentences
    assert [len(sentence.tags) for sentence in tagged] == [len(words) for words in sentences]
    assert [sentence.tags for sentence in tagged] == _reference_tags(tagger, sentences)
    for sentence in tagged:
        assert all(0.0 < probability <= 1.0 for probability in sentence.probabilities)
    assert tagger.tag(sentences[::-1]) == tagged[::-1], "batching and order do not change a sentence's tags"


def test_word_probabilities_are_a_distribution_per_word(tagger):
    probabilities = tagger.word_probabilities([["john", "visited", "paris"], ["mary"]])
    assert probabilities.shape == (4, len(LABELS))
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, rtol=1e-5)


def test_raw_text_is_split_by_the_tokenizers_pre_tokenizer_with_offsets(tagger):
    text = "John  visited New-York, today!"
    words, offsets = split_words(text, tagger.tokenizer)
    assert words == ["John", "visited", "New", "-", "York", ",", "today", "!"]
    assert [text[start:end] for start, end in offsets] == words
    (sentence,) = tagger.tag_text([text])
    assert sentence.text == text and sentence.tokens == words
    for entity in sentence.entities:
        assert entity.text == text[entity.char_start : entity.char_end]
        assert entity.char_start == offsets[entity.start][0] and entity.char_end == offsets[entity.end - 1][1]


def test_entities_carry_type_word_span_text_and_mean_probability(tagger):
    from ner_imbalance.inference import entities_of

    sentence = Sentence(["Ann", "Lee", "in", "Paris"])
    entities = entities_of(sentence, ["B-PER", "I-PER", "O", "B-LOC"], [0.9, 0.7, 0.99, 0.6])
    assert [entity.as_dict() for entity in entities] == [
        {"type": "PER", "start": 0, "end": 2, "text": "Ann Lee", "probability": pytest.approx(0.8)},
        {"type": "LOC", "start": 3, "end": 4, "text": "Paris", "probability": pytest.approx(0.6)},
    ]
    text = "Ann  Lee in Paris!"
    raw = Sentence(["Ann", "Lee", "in", "Paris", "!"], text=text, offsets=[(0, 3), (5, 8), (9, 11), (12, 17), (17, 18)])
    (person,) = entities_of(raw, ["B-PER", "I-PER", "O", "O", "O"], [0.5, 0.5, 1.0, 1.0, 1.0])
    assert (person.text, person.char_start, person.char_end) == ("Ann  Lee", 0, 8)
    assert person.as_dict()["char_end"] == 8


def test_input_formats_by_extension_and_tag_columns_are_ignored(tmp_path, tagger):
    conll = tmp_path / "in.conll"
    conll.write_text("John\tB-PER\tB-X\nran\nfast\tnonsense\n\n-DOCSTART-\n\nParis\n", encoding="utf-8")
    assert [s.tokens for s in read_sentences(conll)] == [["John", "ran", "fast"], ["Paris"]]
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text('{"tokens": ["a", "b"], "ner_tags": [3, 4]}\n{"tokens": ["c"]}\n', encoding="utf-8")
    assert [s.tokens for s in read_sentences(jsonl)] == [["a", "b"], ["c"]]
    as_json = tmp_path / "in.json"
    as_json.write_text('[{"tokens": ["x"]}]', encoding="utf-8")
    assert [s.tokens for s in read_sentences(as_json)] == [["x"]]
    text = tmp_path / "in.txt"
    text.write_text("John ran.\n\n  \nParis\n", encoding="utf-8")
    assert [s.tokens for s in read_sentences(text, tokenizer=tagger.tokenizer)] == [["John", "ran", "."], ["Paris"]]
    assert input_format_of(tmp_path / "x.data", "conll") == "conll"
    with pytest.raises(ValueError, match="--input_format"):
        input_format_of(tmp_path / "x.data")


def test_conll_output_has_one_line_per_word():
    from ner_imbalance.inference import TaggedSentence

    handle = io.StringIO()
    write_conll([TaggedSentence(["a", "b"], ["O", "B-PER"], [1.0, 1.0]), TaggedSentence([], [], [])], handle)
    assert handle.getvalue() == "a\tO\nb\tB-PER\n\n"


def test_script_writes_conll_and_jsonl_and_stdout(tmp_path, model_dir, capsys):
    source = tmp_path / "input.txt"
    source.write_text("John visited Paris .\nMary likes London today\n", encoding="utf-8")
    flags = predict_flags(model_dir, source)
    assert predict.main([*flags, "--output", str(tmp_path / "out.jsonl")]) == 0
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [record["tokens"] for record in records] == [
        ["John", "visited", "Paris", "."],
        ["Mary", "likes", "London", "today"],
    ]
    assert records[0]["text"] == "John visited Paris ."
    assert all(len(record["tags"]) == len(record["tokens"]) for record in records)
    assert predict.main([*flags, "--output", str(tmp_path / "out.conll")]) == 0
    blocks = (tmp_path / "out.conll").read_text(encoding="utf-8").split("\n\n")
    assert [[line.split("\t") for line in block.splitlines()] for block in blocks[:2]] == [
        [[token, tag] for token, tag in zip(record["tokens"], record["tags"])] for record in records
    ]
    capsys.readouterr()
    assert predict.main([*flags, "--output", "-"]) == 0
    assert capsys.readouterr().out == (tmp_path / "out.conll").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("problem", "message"),
    [
        ("missing_input", "missing.txt: no such file"),
        ("empty_input", "empty.txt: the file is empty"),
        ("no_words", "blank.conll: no sentences"),
        ("missing_model", "nowhere: no such model folder"),
        ("no_id2label", "config.json: no id2label"),
    ],
)
def test_script_errors_are_one_line(tmp_path, model_dir, capsys, problem, message):
    model, source = str(model_dir), tmp_path / "input.txt"
    source.write_text("John ran\n", encoding="utf-8")
    if problem == "missing_input":
        source = tmp_path / "missing.txt"
    elif problem == "empty_input":
        source = tmp_path / "empty.txt"
        source.write_text("\n \n", encoding="utf-8")
    elif problem == "no_words":
        source = tmp_path / "blank.conll"
        source.write_text("-DOCSTART-\n\n", encoding="utf-8")
    elif problem == "missing_model":
        model = str(tmp_path / "nowhere")
    elif problem == "no_id2label":
        from tiny_models import make_tiny_bert

        make_tiny_bert(2, 200).save_pretrained(tmp_path / "plain")
        model = str(tmp_path / "plain")
    capsys.readouterr()
    exit_code = predict.main(["--model", model, "--input", str(source), "--output", str(tmp_path / "out.conll")])
    error = capsys.readouterr().err.strip()
    assert exit_code == 2
    assert message in error and len(error.splitlines()) == 1
    assert not (tmp_path / "out.conll").exists()


def test_json_without_any_word_is_an_error(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text('{"tokens": []}\n', encoding="utf-8")
    with pytest.raises(DataFormatError, match="no words to tag"):
        read_sentences(empty)
