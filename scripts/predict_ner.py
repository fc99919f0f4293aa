"""Tag a file of new text with a model trained by train_ner.py: one tag per word, and the entities.

    python scripts/predict_ner.py --model runs/wnut17_focal --input tweets.txt --output tagged.jsonl
    python scripts/predict_ner.py --model runs/wnut17_focal --input dev.conll --output -   # CoNLL to stdout

Inputs: raw text (.txt: one sentence or document per line, split by the model tokenizer's own
pre-tokenizer), CoNLL (.conll/.tsv/.bio/.iob: token first, tag columns ignored), JSON/JSONL
(.json/.jsonl: records with "tokens"); --input_format overrides the extension. Outputs: CoNLL
(token<TAB>tag, a blank line between sentences) or JSONL (tokens, tags, entities with type,
start/end word indices, character offsets for raw text, text and mean probability), chosen by the
output's extension (.jsonl/.json) or --output_format; "-" writes to stdout.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ner_imbalance.constants import DECODING_METHODS, MAX_SEQ_LENGTH, STRIDE
from ner_imbalance.data.conll import DataFormatError
from ner_imbalance.inference import (
    DTYPES,
    INPUT_FORMATS,
    OUTPUT_FORMATS,
    WRITERS,
    Tagger,
    check_writable_tokens,
    load_tokenizer,
    read_sentences,
)

STDOUT = "-"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    parser.add_argument("--model", required=True, help="A model folder written by train_ner.py (its --output_dir).")
    parser.add_argument("--input", required=True, help="The file to tag.")
    parser.add_argument("--output", required=True, help="Where to write the tags; '-' for stdout.")
    parser.add_argument("--input_format", choices=INPUT_FORMATS, help="Default: from the input's extension.")
    parser.add_argument(
        "--output_format", choices=OUTPUT_FORMATS, help="Default: jsonl for .jsonl/.json outputs, else conll."
    )
    parser.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda when available).")
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
    parser.add_argument("--no_progress", action="store_true", help="No progress bar.")
    args = parser.parse_args(argv)
    output_format = args.output_format or (
        "jsonl" if args.output != STDOUT and Path(args.output).suffix.lower() in (".jsonl", ".json") else "conll"
    )
    try:
        sentences = read_sentences(args.input, args.input_format, load_tokenizer(args.model))
        if output_format == "conll":
            check_writable_tokens(sentences)
        tagger = Tagger.from_folder(
            args.model,
            device=args.device,
            dtype=args.dtype,
            batch_size=args.batch_size,
            max_seq_length=args.max_seq_length,
            stride=args.stride,
            decoding=args.decoding,
        )
        if args.output != STDOUT:
            Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        tagged = tagger.tag(sentences, progress=not args.no_progress)
    except (DataFormatError, FileNotFoundError, ValueError) as error:
        print(f"predict_ner.py: error: {error}", file=sys.stderr)
        return 2
    if args.output == STDOUT:
        WRITERS[output_format](tagged, sys.stdout)
    else:
        with open(args.output, "w", encoding="utf-8", newline="\n") as handle:
            WRITERS[output_format](tagged, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main())
