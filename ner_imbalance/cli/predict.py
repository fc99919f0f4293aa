"""Tag a file of new text with a model trained by ner-train: one tag per word, and the entities.

    ner-predict --model runs/wnut17_focal --input tweets.txt --output tagged.jsonl
    ner-predict --model runs/wnut17_focal --input dev.conll --output -      # CoNLL to stdout
    echo "Taylor Swift played in New York" | ner-predict --model runs/wnut17_focal --input - --output -
    ner-predict --model runs/wnut17_focal --input tweets.txt --output tagged.html
    ner-predict --model runs/wnut17_focal --input big.conll --output big.tags.conll \\
        --backend onnx     # int8; after: ner-export-onnx --model runs/wnut17_focal --int8
    ner-predict --model runs/seed1 runs/seed2 runs/seed3 --input tweets.txt --output tagged.jsonl  # an ensemble

Inputs: raw text (.txt: one sentence or document per line, split by the model tokenizer's own
pre-tokenizer), CoNLL (.conll/.tsv/.bio/.iob: token first, tag columns ignored), JSON/JSONL
(.json/.jsonl: records with "tokens"; their other fields, an "id" say, are written back beside the
tags); --input_format overrides the extension; "-" reads standard input (raw text unless
--input_format says otherwise). Outputs: CoNLL (token<TAB>tag, a blank line between sentences),
JSONL (tokens, tags, entities with type, start/end word indices, character offsets for raw text,
text and mean probability) or an HTML page (entities highlighted by type, type and probability on
hover), chosen by the output's extension (.jsonl/.json, .html/.htm, else CoNLL) or
--output_format; "-" writes to stdout. A blank line of raw text or JSONL gives an empty record, so
records line up with input lines.

The input is streamed: --chunk_size sentences (default 2048) are read, tagged and written before
the next are read, so memory does not grow with the file. The output is written under a temporary
name beside it and renamed when every sentence is tagged: an interrupted run (Ctrl-C: exit 130,
SIGTERM: exit 143) stops after the chunk it is tagging, leaves no partial file and says how far it
got. A bad flag, model folder or input is one line on stderr and exit 2. Output to stdout cut short
by its reader (`| head`) ends quietly (exit 141).

Several --model folders are a seed ensemble (`Tagger.from_folders`): their word log-probabilities are
averaged before decoding, with the first folder's tokenizer, windows and decoding (each folder keeps its
own calibration bias, so the ensemble applies their mean); each folder gets the checks of one. The ONNX
backend takes one folder: --backend onnx with several is refused before any work.
"""

from __future__ import annotations

import sys
from typing import NoReturn

import transformers

from ner_imbalance.cli.common import EXIT_SIGINT, EXIT_SIGTERM, command_parser, refuse
from ner_imbalance.constants import DECODING_METHODS, MAX_SEQ_LENGTH, STRIDE
from ner_imbalance.errors import UsageError
from ner_imbalance.inference import CHUNK_SENTENCES, DTYPES, INPUT_FORMATS, ONNX_VARIANTS, OUTPUT_FORMATS
from ner_imbalance.inference.file_tagging import FileTagging, TaggingProgress, tag_file
from ner_imbalance.inference.model_folder import BACKENDS, TORCH_BACKEND
from ner_imbalance.inference.onnx_backend import DEFAULT_INT8
from ner_imbalance.inference.signals import Terminated, stop_between_chunks
from ner_imbalance.utils.command_line import exit_with
from ner_imbalance.utils.extras import MissingExtraError
from ner_imbalance.utils.logging_state import logging_restored, progress_bars_off

PROGRAM = "ner-predict"


def parse_args(argv: list[str] | None) -> FileTagging:
    """The run the flags ask for; a one-line `UsageError` for a bad flag."""
    parser = command_parser(PROGRAM, __doc__, epilog=True)
    parser.add_argument(
        "--model",
        dest="models",
        nargs="+",
        metavar="FOLDER",
        required=True,
        help="A model folder written by ner-train (its --output_dir); several: a seed ensemble (torch backend).",
    )
    parser.add_argument("--input", required=True, help="The file to tag; '-' for standard input.")
    parser.add_argument("--output", required=True, help="Where to write the tags; '-' for stdout.")
    parser.add_argument(
        "--input_format", choices=INPUT_FORMATS, help="Default: from the input's extension (text for '-')."
    )
    parser.add_argument(
        "--output_format",
        choices=OUTPUT_FORMATS,
        help="Default: jsonl for .jsonl/.json outputs, html for .html/.htm, else conll.",
    )
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default=TORCH_BACKEND,
        help="torch: the model's weights; onnx: its ONNX graph on ONNX Runtime (CPU; ner-export-onnx first).",
    )
    parser.add_argument(
        "--onnx_variant",
        choices=ONNX_VARIANTS,
        default=DEFAULT_INT8,
        help=f"With --backend onnx: {DEFAULT_INT8} (default; WNUT-17 dev F1 +0.17 from fp32 at 1.65x its words/s, "
        "docs/performance.md), fp32 (the torch tags exactly), or another int8 variant of ner_imbalance's "
        "onnx_backend.quantize_int8.",
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
    return FileTagging(**{**vars(args), "models": tuple(args.models)})


def main(argv: list[str] | None = None) -> int:
    """Tag the input into the output; the exit status (2: bad input, 130/143: stopped by Ctrl-C/SIGTERM)."""
    try:
        job = parse_args(argv)
    except UsageError as error:
        return refuse(PROGRAM, str(error))
    progress = TaggingProgress()
    with logging_restored(), progress_bars_off(), stop_between_chunks() as stop_if_signalled:
        transformers.logging.set_verbosity_error()
        try:
            tag_file(job, progress, stop_if_signalled)
        except (FileNotFoundError, ValueError, MissingExtraError) as error:
            return refuse(PROGRAM, f"{error}{progress.how_far(job)}")
        except (KeyboardInterrupt, Terminated) as stop:
            what = "interrupted (Ctrl-C)" if isinstance(stop, KeyboardInterrupt) else "terminated (SIGTERM)"
            print(f"{PROGRAM}: {what}{progress.how_far(job, always=True)}", file=sys.stderr)
            return EXIT_SIGINT if isinstance(stop, KeyboardInterrupt) else EXIT_SIGTERM
    return 0


def run() -> NoReturn:
    """The `ner-predict` command."""
    exit_with(main)


if __name__ == "__main__":
    run()
