"""Tag a whole input file (or standard input) into an output file (or stdout), chunk by chunk.

`tag_file` checks everything it can before any work (the output path, each model folder and its
tokenizer, the first chunk of input), then reads, tags and writes `chunk_size` sentences at a time,
so memory does not grow with the input. The output is written through `utils.atomic.atomic_open`
and renamed onto its name only when every sentence is tagged; an HTML output is framed by its page's
start and end around the chunks. `TaggingProgress` counts what was tagged, so that a run stopped
early can say how far it got.
"""

from __future__ import annotations

import dataclasses
import itertools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import datasets
from tqdm.auto import tqdm

from ner_imbalance.constants import MAX_SEQ_LENGTH, STRIDE
from ner_imbalance.data.conll import STANDARD_STREAM
from ner_imbalance.errors import UsageError
from ner_imbalance.inference.files import (
    CHUNK_SENTENCES,
    WRITERS,
    check_writable_tokens,
    iter_sentences,
    output_format_of,
    tag_chunks,
)
from ner_imbalance.inference.html import HTML_PAGE_END, html_page_start
from ner_imbalance.inference.model_folder import (
    ONNX_BACKEND,
    TORCH_BACKEND,
    check_model_folder,
    check_tokenizer_files,
)
from ner_imbalance.inference.onnx_backend import DEFAULT_INT8, onnx_tagger
from ner_imbalance.inference.tagger import Tagger, load_tokenizer
from ner_imbalance.tags import entity_types
from ner_imbalance.utils.atomic import atomic_open
from ner_imbalance.utils.logging_state import logging_restored, progress_bars_off


@dataclasses.dataclass(frozen=True)
class FileTagging:
    """What `tag_file` does: the model folders (several: a seed ensemble, `Tagger.from_folders`), the input and
    output (`-`: standard input, stdout), their formats (None: from the extension), the backend and the
    `Tagger`'s settings, the chunk size."""

    models: tuple[str, ...]
    input: str
    output: str
    input_format: str | None = None
    output_format: str | None = None
    backend: str = TORCH_BACKEND
    onnx_variant: str = DEFAULT_INT8
    device: str | None = None
    batch_size: int = 32
    dtype: str = "auto"
    max_seq_length: int = MAX_SEQ_LENGTH
    stride: int = STRIDE
    decoding: str | None = None
    chunk_size: int = CHUNK_SENTENCES
    no_progress: bool = False

    def __post_init__(self) -> None:
        if self.backend == ONNX_BACKEND and len(self.models) > 1:
            raise UsageError(
                f"--backend onnx takes one --model folder, got {len(self.models)}: the ONNX backend has no "
                "ensemble; tag a seed ensemble with --backend torch"
            )


@dataclasses.dataclass
class TaggingProgress:
    """The sentences and words tagged (and written) so far."""

    sentences: int = 0
    words: int = 0

    def how_far(self, job: FileTagging, *, always: bool = False) -> str:
        """What an unfinished run had done (nothing to say before its first chunk, unless `always`): the
        sentences tagged, and that the output was not written."""
        if not self.sentences and not always:
            return ""
        where = "written to stdout" if job.output == STANDARD_STREAM else f"not written ({job.output} left as it was)"
        return (
            f" after {self.sentences:,} sentences ({self.words:,} words) of {job.input} were tagged; "
            f"the output is {where}"
        )


def check_output_path(output: str, source: str) -> None:
    """Refuse an output that is a folder or the input itself (also through a link), before any work."""
    if output == STANDARD_STREAM:
        return
    output_path, source_path = Path(output), Path(source)
    if output_path.is_dir():
        raise ValueError(f"--output {output} is a folder: give a file name")
    same = output_path.exists() and source_path.exists() and output_path.samefile(source_path)
    if source != STANDARD_STREAM and (same or output_path.resolve() == source_path.resolve()):
        raise ValueError(f"--output {output} is the input file {source}: give another output file")


@contextmanager
def output_stream(output: str) -> Iterator[IO[str]]:
    """stdout, or `atomic_open(output)`: a temporary file renamed onto `output` when the block ends without
    an error, removed otherwise."""
    if output == STANDARD_STREAM:
        yield sys.stdout
        return
    with atomic_open(output) as handle:
        yield handle


def build_tagger(job: FileTagging) -> Tagger:
    """The `Tagger` of `job`'s folder on its backend, or of its folders' ensemble, with its settings."""
    settings = dict(
        device=job.device,
        dtype=job.dtype,
        batch_size=job.batch_size,
        max_seq_length=job.max_seq_length,
        stride=job.stride,
        decoding=job.decoding,
    )
    if job.backend == ONNX_BACKEND:
        return onnx_tagger(job.models[0], variant=job.onnx_variant, **settings)
    if len(job.models) > 1:
        return Tagger.from_folders(job.models, **settings)
    return Tagger.from_folder(job.models[0], **settings)


def tag_file(job: FileTagging, progress: TaggingProgress, stop_if_signalled: Callable[[], None]) -> None:
    """Check, load, then tag and write chunk by chunk, counting into `progress` and calling
    `stop_if_signalled` between chunks (it raises to stop the run; the output is then left as it was).

    Bad input raises `FileNotFoundError`, `ValueError` (`DataFormatError` among them) or `MissingExtraError`
    naming the flag or file: before any work for the paths, each model folder and the first chunk's lines.
    """
    output_format = output_format_of(job.output, job.output_format)
    check_output_path(job.output, job.input)
    tokenizers = []
    for model in job.models:
        check_model_folder(model, backend=job.backend, onnx_variant=job.onnx_variant, max_seq_length=job.max_seq_length)
        tokenizers.append(load_tokenizer(model))
        check_tokenizer_files(model)
    sentences = iter_sentences(job.input, job.input_format, tokenizers[0])
    first_chunk = list(itertools.islice(sentences, job.chunk_size))  # errors of the first lines: before any work
    tagger = build_tagger(job)
    stop_if_signalled()
    with (
        logging_restored(),
        progress_bars_off(),
        output_stream(job.output) as handle,
        tqdm(unit=" sentences", disable=job.no_progress) as bar,
    ):
        datasets.logging.set_verbosity_error()  # the fingerprint notice of every chunk's tokenization
        if output_format == "html":
            handle.write(html_page_start(entity_types(tagger.labels.tolist()), f"{Path(job.input).name}: entities"))
        for tagged in tag_chunks(tagger, itertools.chain(first_chunk, sentences), job.chunk_size):
            if output_format == "conll":
                check_writable_tokens(tagged)
            WRITERS[output_format](tagged, handle)
            progress.sentences += len(tagged)
            progress.words += sum(len(sentence.tokens) for sentence in tagged)
            bar.update(len(tagged))
            stop_if_signalled()
        if output_format == "html":
            handle.write(HTML_PAGE_END)
