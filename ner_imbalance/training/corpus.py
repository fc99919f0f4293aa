"""A run's corpus: its word-level splits and their tokenized windows (`PreparedCorpus`).

`PreparedCorpus.metrics` gives each split's word-level `compute_metrics`, built once.
`prepare_corpus` reads the corpus the data arguments name (`data.corpus.load_word_corpus`) and
tokenizes it into windows (`data.corpus.tokenize_corpus`); `windows_of` does the second step for
words already read (what `training.run.build_trainer` does after `training.run.prepare_run` has read them).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import datasets
from transformers import PreTrainedTokenizerBase

from ner_imbalance.config.arguments import DataArguments
from ner_imbalance.constants import ARGMAX
from ner_imbalance.data.corpus import WordCorpus, load_word_corpus, tokenize_corpus
from ner_imbalance.training.metrics import WordLevelMetrics


@dataclass
class PreparedCorpus:
    """A run's corpus: its word-level part (`data.corpus.WordCorpus`) and the tokenized windows of every split."""

    word_corpus: WordCorpus
    windows: dict[str, datasets.Dataset]
    _metrics: dict[tuple[str, str], WordLevelMetrics] = field(default_factory=dict, init=False, repr=False)

    def metrics(self, split: str, decoding: str = ARGMAX) -> WordLevelMetrics | None:
        """The `compute_metrics` of `split` under `decoding` (built once, then reused), or None
        if the corpus has no such split."""
        if split not in self.windows:
            return None
        key = (split, decoding)
        if key not in self._metrics:
            self._metrics[key] = WordLevelMetrics(
                self.windows[split], self.words[split]["tags"], self.id2label, scheme=self.scheme, decoding=decoding
            )
        return self._metrics[key]

    @property
    def words(self) -> datasets.DatasetDict:
        """The word-level splits (`tokens`, `tags`)."""
        return self.word_corpus.splits

    @property
    def label_list(self) -> list[str]:
        return self.word_corpus.label_list

    @property
    def scheme(self) -> str:
        return self.word_corpus.scheme

    @property
    def id2label(self) -> dict[int, str]:
        return self.word_corpus.id2label


def prepare_corpus(data_args: DataArguments, tokenizer: PreTrainedTokenizerBase, seed: int) -> PreparedCorpus:
    """The words the data arguments name (`load_word_corpus`), then their windows (`tokenize_corpus`)."""
    return windows_of(load_word_corpus(data_args, seed), tokenizer, data_args)


def windows_of(word_corpus: WordCorpus, tokenizer: PreTrainedTokenizerBase, data_args: DataArguments) -> PreparedCorpus:
    """`word_corpus` with the tokenized windows of every split (`tokenize_corpus`)."""
    windows = tokenize_corpus(
        word_corpus.splits,
        tokenizer,
        word_corpus.label2id,
        max_seq_length=data_args.max_seq_length,
        stride=data_args.stride,
        label_all_tokens=data_args.label_all_tokens,
    )
    return PreparedCorpus(word_corpus=word_corpus, windows=windows)
