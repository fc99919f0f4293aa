"""A trained model folder -> tags for new text: the `Tagger`, its input readers and output writers.

`tagger` (`Tagger`: windows, the word choice of evaluation, batched forward passes), `files`
(raw text, CoNLL and JSON inputs read lazily; `tag_chunks` for streaming; CoNLL, JSON Lines and
HTML outputs), `sentences` (what tagging takes and gives), `html` (the pages of tagged text and
of an evaluation's errors), `onnx_backend` (export to ONNX, fp32 or int8, and a `Tagger` that
runs the graph on ONNX Runtime) and `pipeline` (`ner_pipeline`: the `Tagger`'s entities from a
`transformers.pipeline`; importing this package registers its task "ner-imbalance"). Nothing here
knows the Trainer, a loss or the argument classes.
"""

from ner_imbalance.inference.files import (
    CHUNK_SENTENCES,
    INPUT_FORMATS,
    OUTPUT_FORMATS,
    WRITERS,
    check_writable_tokens,
    input_format_of,
    iter_sentences,
    output_format_of,
    read_sentences,
    split_words,
    tag_chunks,
    write_conll,
    write_jsonl,
)
from ner_imbalance.inference.html import HTML_PAGE_END, html_page_start, write_html
from ner_imbalance.inference.onnx_backend import ONNX_VARIANTS, export_onnx, onnx_tagger
from ner_imbalance.inference.pipeline import NerPipeline, ner_pipeline
from ner_imbalance.inference.sentences import Entity, Sentence, TaggedSentence, entities_of
from ner_imbalance.inference.tagger import (
    DTYPES,
    Tagger,
    TaggingWindows,
    WordDecoder,
    load_model_folder,
    load_tokenizer,
    tagging_windows,
)

__all__ = [
    "CHUNK_SENTENCES",
    "DTYPES",
    "HTML_PAGE_END",
    "INPUT_FORMATS",
    "ONNX_VARIANTS",
    "OUTPUT_FORMATS",
    "WRITERS",
    "Entity",
    "NerPipeline",
    "Sentence",
    "TaggedSentence",
    "Tagger",
    "TaggingWindows",
    "WordDecoder",
    "check_writable_tokens",
    "entities_of",
    "export_onnx",
    "html_page_start",
    "input_format_of",
    "iter_sentences",
    "load_model_folder",
    "load_tokenizer",
    "ner_pipeline",
    "onnx_tagger",
    "output_format_of",
    "read_sentences",
    "split_words",
    "tag_chunks",
    "tagging_windows",
    "write_conll",
    "write_html",
    "write_jsonl",
]
