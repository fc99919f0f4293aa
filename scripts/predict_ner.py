"""Tag a file of new text with a model trained by train_ner.py: one tag per word, and the entities.

    python scripts/predict_ner.py --model runs/wnut17_focal --input tweets.txt --output tagged.jsonl
    python scripts/predict_ner.py --model runs/wnut17_focal --input dev.conll --output -   # CoNLL to stdout
    python scripts/predict_ner.py --model runs/wnut17_focal --input tweets.txt --output tagged.html
    python scripts/predict_ner.py --model runs/wnut17_focal --input big.conll --output big.tags.conll \\
        --backend onnx     # int8; after: python scripts/export_onnx.py --model runs/wnut17_focal --int8

Inputs: raw text (.txt: one sentence or document per line, split by the model tokenizer's own
pre-tokenizer), CoNLL (.conll/.tsv/.bio/.iob: token first, tag columns ignored), JSON/JSONL
(.json/.jsonl: records with "tokens"; their other fields, an "id" say, are written back beside the
tags); --input_format overrides the extension. Outputs: CoNLL (token<TAB>tag, a blank line between
sentences), JSONL (tokens, tags, entities with type, start/end word indices, character offsets for
raw text, text and mean probability) or an HTML page (entities highlighted by type, type and
probability on hover), chosen by the output's extension (.jsonl/.json, .html/.htm, else CoNLL) or
--output_format; "-" writes to stdout. A blank line of raw text or JSONL gives an empty record, so
records line up with input lines.

The input is streamed: --chunk_size sentences (default 2048) are read, tagged and written before
the next are read, so memory does not grow with the file. The output is written under a temporary
name beside it and renamed when every sentence is tagged: an interrupted run (Ctrl-C: exit 130,
SIGTERM: exit 143) stops after the chunk it is tagging, leaves no partial file and says how far it
got. A bad flag, model folder or input is one line on stderr and exit 2. Output to stdout cut short
by its reader (`| head`) ends quietly (exit 141).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import datasets
import transformers
from tqdm.auto import tqdm

from ner_imbalance.constants import DECODING_METHODS, MAX_SEQ_LENGTH, OUTSIDE, STRIDE
from ner_imbalance.data.conll import DataFormatError
from ner_imbalance.errors import OneLineArgumentParser
from ner_imbalance.inference import (
    CHUNK_SENTENCES,
    DTYPES,
    HTML_PAGE_END,
    INPUT_FORMATS,
    ONNX_VARIANTS,
    OUTPUT_FORMATS,
    WRITERS,
    Tagger,
    check_writable_tokens,
    html_page_start,
    iter_sentences,
    load_tokenizer,
    onnx_tagger,
    output_format_of,
    tag_chunks,
)
from ner_imbalance.inference.onnx_backend import onnx_path
from ner_imbalance.utils.command_line import exit_with
from ner_imbalance.utils.extras import MissingExtraError

STDOUT = "-"
BACKENDS = ("torch", "onnx")
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
TOKENIZER_FILES = (
    "tokenizer.json",
    "vocab.txt",
    "vocab.json",
    "spiece.model",
    "sentencepiece.bpe.model",
    "tokenizer.model",
)
# Models whose position ids start after the padding index (RoBERTa's scheme), as in training's check.
PADDING_OFFSET_MODELS = frozenset({"roberta", "xlm-roberta", "camembert", "longformer", "mpnet", "xmod"})
EXIT_USAGE, EXIT_SIGINT, EXIT_SIGTERM = 2, 130, 143


class Terminated(BaseException):
    """SIGTERM arrived: stop tagging, remove the temporary output, say how far the run got (a
    `BaseException`, as `KeyboardInterrupt`, so that no library's `except Exception` swallows it)."""


@contextmanager
def stop_between_chunks() -> Iterator[Callable[[], None]]:
    """Inside the block SIGTERM and Ctrl-C only record themselves; the yielded check raises
    `Terminated` or `KeyboardInterrupt` for them. Called between chunks, it stops the run where no
    library code is running (an exception raised from a handler in the middle of a library call can
    be swallowed there, and the run would go on to exit 0). A second Ctrl-C stops at once."""
    received: list[int] = []

    def record(signum: int, frame: object) -> None:
        if received and signum == signal.SIGINT:
            raise KeyboardInterrupt
        received.append(signum)

    def check() -> None:
        if received:
            raise KeyboardInterrupt if received[0] == signal.SIGINT else Terminated

    previous = {number: signal.signal(number, record) for number in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield check
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = OneLineArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    parser.add_argument("--model", required=True, help="A model folder written by train_ner.py (its --output_dir).")
    parser.add_argument("--input", required=True, help="The file to tag.")
    parser.add_argument("--output", required=True, help="Where to write the tags; '-' for stdout.")
    parser.add_argument("--input_format", choices=INPUT_FORMATS, help="Default: from the input's extension.")
    parser.add_argument(
        "--output_format",
        choices=OUTPUT_FORMATS,
        help="Default: jsonl for .jsonl/.json outputs, html for .html/.htm, else conll.",
    )
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default="torch",
        help="torch: the model's weights; onnx: its ONNX graph on ONNX Runtime (CPU; scripts/export_onnx.py first).",
    )
    parser.add_argument(
        "--onnx_variant",
        choices=ONNX_VARIANTS,
        default="int8",
        help="With --backend onnx: the int8 graph (fastest; WNUT-17 dev F1 within 0.5 of fp32) or the fp32 one.",
    )
    parser.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda when available; onnx: cpu).")
    parser.add_argument("--batch_size", type=int, default=32, help="Windows per forward pass.")
    parser.add_argument(
        "--dtype", choices=["auto", *DTYPES], default="auto", help="auto: bf16 on CUDA, float32 on CPU."
    )
    parser.add_argument("--max_seq_length", type=int, default=MAX_SEQ_LENGTH, help="Sub-tokens per window.")
    parser.add_argument("--stride", type=int, default=STRIDE, help="Sub-tokens shared by consecutive windows.")
    parser.add_argument(
        "--decoding",
        choices=DECODING_METHODS,
        help="argmax or viterbi (valid tag sequences only). Default: what the model was evaluated with.",
    )
    parser.add_argument(
        "--chunk_size", type=int, default=CHUNK_SENTENCES, help="Sentences read, tagged and written at a time."
    )
    parser.add_argument("--no_progress", action="store_true", help="No progress bar.")
    args = parser.parse_args(argv)
    for flag in ("batch_size", "chunk_size", "max_seq_length"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag} must be at least 1, got {getattr(args, flag)}")
    return args


def check_paths(args: argparse.Namespace) -> None:
    """Refuse an output that is a folder or the input itself (also through a link), before any work."""
    if args.output == STDOUT:
        return
    output, source = Path(args.output), Path(args.input)
    if output.is_dir():
        raise ValueError(f"--output {output} is a folder: give a file name")
    if output.resolve() == source.resolve() or (output.exists() and source.exists() and output.samefile(source)):
        raise ValueError(f"--output {output} is the input file {source}: give another output file")


def check_model_folder(args: argparse.Namespace) -> None:
    """Refuse a model folder without weights (or the ONNX graph asked for) or without tokenizer files,
    and windows longer than the model's positions, before anything loads."""
    folder = Path(args.model)
    config_path = folder / "config.json"
    if not config_path.is_file():
        return  # load_tokenizer names the missing folder or config.json
    if args.backend == "onnx":
        graph = onnx_path(folder, args.onnx_variant)
        if not graph.is_file():
            flag = " --int8" if args.onnx_variant == "int8" else ""
            raise FileNotFoundError(
                f"{graph}: no such file; export it first: python scripts/export_onnx.py --model {folder}{flag}"
            )
    elif not any((folder / name).is_file() for name in WEIGHT_FILES):
        raise FileNotFoundError(f"{folder}: no model weights ({' or '.join(WEIGHT_FILES[::2])}); is the run complete?")
    config = json.loads(config_path.read_text(encoding="utf-8"))
    positions = config.get("max_position_embeddings")
    if positions is None or not config.get("position_biased_input", True):
        return
    if config.get("model_type") in PADDING_OFFSET_MODELS:
        positions -= (config.get("pad_token_id") or 0) + 1
    if args.max_seq_length > positions:
        raise ValueError(
            f"--max_seq_length {args.max_seq_length} exceeds the {positions} positions of {folder} "
            f"(max_position_embeddings in its config.json): give --max_seq_length {positions} or less"
        )


def check_tokenizer_files(model_dir: str) -> None:
    """Refuse a folder without tokenizer files (transformers would build an empty tokenizer from the config)."""
    if not any((Path(model_dir) / name).is_file() for name in TOKENIZER_FILES):
        raise FileNotFoundError(f"{model_dir}: no tokenizer files ({', '.join(TOKENIZER_FILES[:3])}, ...)")


def build_tagger(args: argparse.Namespace) -> Tagger:
    settings = dict(
        device=args.device,
        dtype=args.dtype,
        batch_size=args.batch_size,
        max_seq_length=args.max_seq_length,
        stride=args.stride,
        decoding=args.decoding,
    )
    if args.backend == "onnx":
        return onnx_tagger(args.model, variant=args.onnx_variant, **settings)
    return Tagger.from_folder(args.model, **settings)


@contextmanager
def output_stream(output: str) -> Iterator[IO[str]]:
    """stdout, or a temporary file beside `output` (mode from the umask) renamed onto it when the block
    ends without an error; removed otherwise."""
    if output == STDOUT:
        yield sys.stdout
        return
    path = Path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "x", encoding="utf-8", newline="\n") as handle:
            yield handle
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    output_format = output_format_of(args.output, args.output_format)
    progress = {"sentences": 0, "words": 0}
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    with stop_between_chunks() as stop_if_signalled:
        return _tag_file(args, output_format, progress, stop_if_signalled)


def _tag_file(
    args: argparse.Namespace, output_format: str, progress: dict[str, int], stop_if_signalled: Callable[[], None]
) -> int:
    """Check, load, then tag and write chunk by chunk, stopping between chunks on a signal; the exit status."""
    try:
        check_paths(args)
        check_model_folder(args)
        tokenizer = load_tokenizer(args.model)
        check_tokenizer_files(args.model)
        sentences = iter_sentences(args.input, args.input_format, tokenizer)
        first_chunk = list(itertools.islice(sentences, args.chunk_size))  # errors of the first lines: before any work
        tagger = build_tagger(args)
        datasets.disable_progress_bars()
        datasets.logging.set_verbosity_error()  # the fingerprint notice of every chunk's tokenization
        stop_if_signalled()
        with output_stream(args.output) as handle, tqdm(unit=" sentences", disable=args.no_progress) as bar:
            if output_format == "html":
                types = sorted({label[2:] for label in tagger.labels.tolist() if label != OUTSIDE})
                handle.write(html_page_start(types, f"{Path(args.input).name}: entities"))
            for tagged in tag_chunks(tagger, itertools.chain(first_chunk, sentences), args.chunk_size):
                if output_format == "conll":
                    check_writable_tokens(tagged)
                WRITERS[output_format](tagged, handle)
                progress["sentences"] += len(tagged)
                progress["words"] += sum(len(sentence.tokens) for sentence in tagged)
                bar.update(len(tagged))
                stop_if_signalled()
            if output_format == "html":
                handle.write(HTML_PAGE_END)
    except (DataFormatError, FileNotFoundError, ValueError, MissingExtraError) as error:
        print(f"predict_ner.py: error: {error}{_how_far(args, progress)}", file=sys.stderr)
        return EXIT_USAGE
    except (KeyboardInterrupt, Terminated) as stop:
        what = "interrupted (Ctrl-C)" if isinstance(stop, KeyboardInterrupt) else "terminated (SIGTERM)"
        print(f"predict_ner.py: {what}{_how_far(args, progress, always=True)}", file=sys.stderr)
        return EXIT_SIGINT if isinstance(stop, KeyboardInterrupt) else EXIT_SIGTERM
    return 0


def _how_far(args: argparse.Namespace, progress: dict[str, int], *, always: bool = False) -> str:
    """What an unfinished run had done (nothing to say before its first chunk, unless `always`): the
    sentences tagged, and that the output was not written."""
    if not progress["sentences"] and not always:
        return ""
    where = "written to stdout" if args.output == STDOUT else f"not written ({args.output} left as it was)"
    return (
        f" after {progress['sentences']:,} sentences ({progress['words']:,} words) of {args.input} were tagged; "
        f"the output is {where}"
    )


if __name__ == "__main__":
    exit_with(main)
