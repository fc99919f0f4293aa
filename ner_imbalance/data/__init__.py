"""NER data pipeline: read corpora, check and prepare tags, tokenize with aligned labels, statistics.

Nothing here knows about losses. Modules: `conll` (text files, the column format and
`DataFormatError`), `readers` (files, Hugging Face datasets, the demo corpus -> `DatasetDict`
with `tokens` and string `tags`), `labels` (label lists, schemes, tag checks), `alignment`
(sub-token windows, and per-sub-token values back to one value per word), `stats` (corpus
statistics, class weights, entity down-sampling), `corpus` (the two steps of a run's corpus:
words, then windows).
"""

from ner_imbalance.constants import OUTSIDE
from ner_imbalance.data.alignment import gather_word_values, tokenize_and_align
from ner_imbalance.data.conll import DataFormatError, read_column_sentences
from ner_imbalance.data.corpus import WordCorpus, load_word_corpus, select_samples, tokenize_corpus
from ner_imbalance.data.labels import (
    build_label_list,
    check_known_tags,
    prepare_tags,
)
from ner_imbalance.data.readers import (
    load_corpus,
    load_demo_corpus,
    load_hf_dataset,
    read_conll,
    read_file,
    read_json,
)
from ner_imbalance.data.stats import compute_class_weights, corpus_stats, downsample_entities, format_stats

__all__ = [
    "OUTSIDE",
    "DataFormatError",
    "WordCorpus",
    "build_label_list",
    "check_known_tags",
    "compute_class_weights",
    "corpus_stats",
    "downsample_entities",
    "format_stats",
    "gather_word_values",
    "load_corpus",
    "load_demo_corpus",
    "load_hf_dataset",
    "load_word_corpus",
    "prepare_tags",
    "read_column_sentences",
    "read_conll",
    "read_file",
    "read_json",
    "select_samples",
    "tokenize_and_align",
    "tokenize_corpus",
]
