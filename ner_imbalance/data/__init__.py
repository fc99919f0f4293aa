"""NER data pipeline: read corpora, check and prepare tags, tokenize with aligned labels, statistics.

Nothing here knows about losses. Modules: `readers` (files, Hugging Face datasets, the demo
corpus -> `DatasetDict` with `tokens` and string `tags`), `labels` (label lists, schemes, tag
checks), `alignment` (sub-token windows and merging predictions back to words), `stats`
(corpus statistics, class weights, entity down-sampling).
"""

from ner_imbalance.constants import OUTSIDE
from ner_imbalance.data.alignment import merge_window_predictions, tokenize_and_align
from ner_imbalance.data.labels import (
    build_label_list,
    check_known_tags,
    detect_scheme,
    find_invalid_transitions,
    iob1_to_iob2,
    prepare_tags,
)
from ner_imbalance.data.readers import (
    DataFormatError,
    load_corpus,
    load_demo_corpus,
    load_hf_dataset,
    read_conll,
    read_file,
    read_json,
    split_sources,
)
from ner_imbalance.data.stats import compute_class_weights, corpus_stats, downsample_entities, format_stats

__all__ = [
    "OUTSIDE",
    "DataFormatError",
    "build_label_list",
    "check_known_tags",
    "compute_class_weights",
    "corpus_stats",
    "detect_scheme",
    "downsample_entities",
    "find_invalid_transitions",
    "format_stats",
    "iob1_to_iob2",
    "load_corpus",
    "load_demo_corpus",
    "load_hf_dataset",
    "merge_window_predictions",
    "prepare_tags",
    "read_conll",
    "read_file",
    "read_json",
    "split_sources",
    "tokenize_and_align",
]
