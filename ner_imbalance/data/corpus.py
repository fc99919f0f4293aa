"""A corpus in two steps: words (read, check tags, label list, sample selection), then windows.

`load_word_corpus` needs no tokenizer: it gives the word-level splits, where each came from, the
label list of the training split and its scheme (the study's corpus statistics stop here).
`tokenize_corpus` turns those words into the sub-token windows a model trains and predicts on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import datasets
import numpy as np
from transformers import PreTrainedTokenizerBase

from ner_imbalance.data.alignment import tokenize_and_align
from ner_imbalance.data.labels import build_label_list, check_known_tags, prepare_tags
from ner_imbalance.data.readers import load_corpus
from ner_imbalance.data.stats import downsample_entities
from ner_imbalance.tags import detect_scheme

TRAIN_SPLIT = "train"
EVALUATION_SPLITS = ("validation", "test")


class CorpusOptions(Protocol):
    """What `load_word_corpus` reads from its options; `arguments.DataArguments` has all of it."""

    train_file: str | None
    validation_file: str | None
    test_file: str | None
    dataset_name: str | None
    dataset_config_name: str | None
    text_column: str
    label_column: str
    demo_seed: int
    tag_scheme: str
    repair_tags: bool
    entity_keep_ratio: float
    max_train_samples: int | None
    max_eval_samples: int | None


@dataclass
class WordCorpus:
    """Word-level splits (columns `tokens` and string `tags`) and what was learnt reading them.

    `sources`: split -> the file or dataset it was read from, for messages. `label_list`: the
    training split's labels (`O` first, see `labels.build_label_list`); `scheme`: "IOB2" or "IOBES".
    """

    splits: datasets.DatasetDict
    sources: dict[str, str]
    label_list: list[str]
    scheme: str

    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.label_list))

    @property
    def label2id(self) -> dict[str, int]:
        return {label: index for index, label in enumerate(self.label_list)}


def load_word_corpus(options: CorpusOptions, seed: int) -> WordCorpus:
    """Read the corpus the options name (the demo corpus by default), bring its tags into their
    internal form, check every split against the training split's labels, then select samples
    (entity down-sampling with `seed`, `max_*_samples`)."""
    splits, sources = load_corpus(
        train_file=options.train_file,
        validation_file=options.validation_file,
        test_file=options.test_file,
        dataset_name=options.dataset_name,
        dataset_config_name=options.dataset_config_name,
        token_column=options.text_column,
        tag_column=options.label_column,
        demo_seed=options.demo_seed,
    )
    if TRAIN_SPLIT not in splits:
        raise ValueError(f"no training split in {sources}: give --train_file or a dataset with a train split")
    splits, _invalid_report = prepare_tags(
        splits, tag_scheme=options.tag_scheme, repair_tags=options.repair_tags, sources=sources
    )
    label_list = build_label_list(splits[TRAIN_SPLIT]["tags"])
    check_known_tags(splits, label_list, sources)
    splits = select_samples(
        splits,
        entity_keep_ratio=options.entity_keep_ratio,
        max_train_samples=options.max_train_samples,
        max_eval_samples=options.max_eval_samples,
        seed=seed,
    )
    return WordCorpus(splits=splits, sources=sources, label_list=label_list, scheme=detect_scheme(label_list))


def select_samples(
    splits: datasets.DatasetDict,
    *,
    entity_keep_ratio: float = 1.0,
    max_train_samples: int | None = None,
    max_eval_samples: int | None = None,
    seed: int = 0,
) -> datasets.DatasetDict:
    """Keep `entity_keep_ratio` of the training sentences with entities (`stats.downsample_entities`),
    then the first `max_train_samples` training and `max_eval_samples` validation and test sentences."""
    selected = dict(splits)
    if entity_keep_ratio < 1.0:
        selected[TRAIN_SPLIT] = downsample_entities(selected[TRAIN_SPLIT], entity_keep_ratio, seed)
    limits = {TRAIN_SPLIT: max_train_samples, **dict.fromkeys(EVALUATION_SPLITS, max_eval_samples)}
    for split, limit in limits.items():
        if limit is not None and split in selected:
            selected[split] = selected[split].select(range(min(limit, len(selected[split]))))
    return datasets.DatasetDict(selected)


def tokenize_corpus(
    splits: Mapping[str, datasets.Dataset],
    tokenizer: PreTrainedTokenizerBase,
    label2id: Mapping[str, int],
    *,
    max_seq_length: int,
    stride: int,
    label_all_tokens: bool = False,
) -> dict[str, datasets.Dataset]:
    """The windows of every split (`alignment.tokenize_and_align`).

    The training split keeps dataset order (the Trainer's sampler groups it by length); the
    others are sorted by length, so that evaluation batches carry little padding. Predictions
    find their words through each window's `example_index`, whatever the order.
    """
    windows = {}
    for split, dataset in splits.items():
        tokenized = tokenize_and_align(
            dataset,
            tokenizer,
            label2id,
            max_seq_length=max_seq_length,
            stride=stride,
            label_all_tokens=label_all_tokens,
        )
        if split != TRAIN_SPLIT:  # a stable sort, as Dataset.sort, whose pyarrow options warn (FutureWarning)
            tokenized = tokenized.select(np.argsort(np.asarray(tokenized["length"]), kind="stable"))
        windows[split] = tokenized
    return windows
