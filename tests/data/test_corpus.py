"""The word-level corpus step (no tokenizer) and the tokenization step that follows it."""

from __future__ import annotations

import pytest
from tiny_models import TINY_CORPUS as CORPUS

from ner_imbalance.config.arguments import DataArguments
from ner_imbalance.data.corpus import load_word_corpus, select_samples, tokenize_corpus


def test_word_corpus_needs_no_tokenizer_and_names_each_split_source():
    data_args = DataArguments(train_file=str(CORPUS / "train.conll"), validation_file=str(CORPUS / "dev.conll"))
    corpus = load_word_corpus(data_args, seed=0)
    assert corpus.sources == {"train": str(CORPUS / "train.conll"), "validation": str(CORPUS / "dev.conll")}
    assert corpus.label_list == ["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
    assert corpus.scheme == "IOB2"
    assert corpus.label2id["B-LOC"] == 1 and corpus.id2label[1] == "B-LOC"
    assert corpus.splits["train"].column_names == ["tokens", "tags"]


def test_unknown_dev_tag_names_the_dev_file(tmp_path):
    dev = tmp_path / "dev.conll"
    dev.write_text("Anna\tB-SONG\n", encoding="utf-8")
    data_args = DataArguments(train_file=str(CORPUS / "train.conll"), validation_file=str(dev))
    with pytest.raises(ValueError, match=rf"validation \({dev}\): B-SONG"):
        load_word_corpus(data_args, seed=0)


def test_select_samples_downsamples_training_entities_and_caps_each_split():
    data_args = DataArguments(train_file=str(CORPUS / "train.conll"), validation_file=str(CORPUS / "dev.conll"))
    splits = load_word_corpus(data_args, seed=0).splits
    selected = select_samples(splits, max_train_samples=3, max_eval_samples=2)
    assert len(selected["train"]) == 3 and len(selected["validation"]) == 2
    assert selected["train"]["tokens"] == splits["train"]["tokens"][:3]
    downsampled = select_samples(splits, entity_keep_ratio=0.0, seed=1)
    assert all(set(tags) == {"O"} for tags in downsampled["train"]["tags"])
    assert len(downsampled["validation"]) == len(splits["validation"])


def test_tokenize_corpus_keeps_train_order_and_sorts_evaluation_splits_by_length(tiny_tokenizer):
    data_args = DataArguments(train_file=str(CORPUS / "train.conll"), validation_file=str(CORPUS / "dev.conll"))
    corpus = load_word_corpus(data_args, seed=0)
    windows = tokenize_corpus(corpus.splits, tiny_tokenizer, corpus.label2id, max_seq_length=16, stride=4)
    assert windows["train"]["example_index"] == sorted(windows["train"]["example_index"])
    assert windows["validation"]["length"] == sorted(windows["validation"]["length"])
    assert set(windows["validation"]["example_index"]) == set(range(len(corpus.splits["validation"])))
