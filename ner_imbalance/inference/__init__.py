"""A trained model folder -> tags for new text: the `Tagger`, its input readers and output writers.

`tagger` (`Tagger`: windows, the word choice of evaluation, batched forward passes), `files`
(raw text, CoNLL and JSON inputs; CoNLL and JSON Lines outputs) and `sentences` (what tagging
takes and gives). Nothing here knows the Trainer, a loss or the argument classes.
"""

from ner_imbalance.inference.files import (
    INPUT_FORMATS,
    OUTPUT_FORMATS,
    WRITERS,
    check_writable_tokens,
    input_format_of,
    read_sentences,
    split_words,
    write_conll,
    write_jsonl,
)
from ner_imbalance.inference.sentences import Entity, Sentence, TaggedSentence, entities_of
from ner_imbalance.inference.tagger import DTYPES, Tagger, load_model_folder, load_tokenizer

__all__ = [
    "DTYPES",
    "INPUT_FORMATS",
    "OUTPUT_FORMATS",
    "WRITERS",
    "Entity",
    "Sentence",
    "TaggedSentence",
    "Tagger",
    "check_writable_tokens",
    "entities_of",
    "input_format_of",
    "load_model_folder",
    "load_tokenizer",
    "read_sentences",
    "split_words",
    "write_conll",
    "write_jsonl",
]
