"""Entity-level scores of predicted tags in CoNLL column files, with the numbers of `conlleval`.

ner-evaluate --pred predictions.conll             # token gold pred per line
ner-evaluate --gold dev.conll --pred pred.conll   # token tag, aligned by line
ner-evaluate --pred predictions.conll --strict --json
ner-evaluate --pred predictions.conll --errors --examples 3 --confusion confusion.png
ner-evaluate --pred predictions.conll --bootstrap 1000 --seed 0
ner-evaluate --pred predictions.conll --html report.html   # errors per sentence, to look at

--errors, --examples, --confusion and --html need `pip install 'ner_imbalance[errors]'` (nervaluate, matplotlib).

Bad input is one line on stderr and exit status 2, before any scoring: among them gold and
predictions in different tag schemes (IOB2 against IOBES: each is detected from its own tags), and
an output file (--confusion, --html) that is one of the inputs or a folder. A predicted entity type
that gold never uses is scored (as false positives, as conlleval does) with one warning naming it.
Output cut short by its reader (`| head`) ends quietly.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import NoReturn

from ner_imbalance.cli.common import command_parser, refuse
from ner_imbalance.errors import UsageError
from ner_imbalance.evaluation import format_report
from ner_imbalance.evaluation.error_analysis import format_error_report, format_examples, plot_confusion
from ner_imbalance.evaluation.file_evaluation import evaluate_files
from ner_imbalance.evaluation.html_report import error_report_html
from ner_imbalance.utils.atomic import write_text_atomic
from ner_imbalance.utils.command_line import exit_with
from ner_imbalance.utils.extras import MissingExtraError

PROGRAM = "ner-evaluate"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The flags; a one-line `UsageError` for a bad one, an output that is a folder or one of the inputs."""
    parser = command_parser(PROGRAM, __doc__)
    parser.add_argument("--gold", help="gold file (token ... tag); without it PRED holds token, gold and pred columns")
    parser.add_argument("--pred", required=True, help="predictions: token ... tag (with --gold) or token ... gold pred")
    parser.add_argument("--strict", action="store_true", help="seqeval's strict mode instead of conlleval's chunking")
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON")
    parser.add_argument(
        "--errors",
        action="store_true",
        help="also the SemEval-2013 schemes and per type the counts of correct, wrong type, wrong boundary, "
        "both wrong, missed and spurious entities",
    )
    parser.add_argument("--examples", type=int, default=0, metavar="N", help="print N examples of each error kind")
    parser.add_argument(
        "--confusion", metavar="PNG", help="write a heat map of gold against predicted type (with missed, spurious)"
    )
    parser.add_argument(
        "--html",
        metavar="HTML",
        help="write a page: the --errors counts, then per sentence gold and predicted entities coloured by outcome",
    )
    parser.add_argument(
        "--bootstrap", type=int, default=0, metavar="N", help="95%% interval of micro F1 from N sentence resamples"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of --bootstrap")
    parser.add_argument(
        "--allow_token_mismatch",
        action="store_true",
        help="with --gold: score by position when tokens differ (one warning), as conlleval does",
    )
    args = parser.parse_args(argv)
    for flag in ("examples", "bootstrap"):
        if getattr(args, flag) < 0:
            parser.error(f"--{flag} must be >= 0, got {getattr(args, flag)}")
    if args.allow_token_mismatch and not args.gold:
        parser.error("--allow_token_mismatch needs --gold (a one-file PRED has one token column)")
    if args.confusion and not args.confusion.lower().endswith(".png"):
        parser.error(f"--confusion must name a .png file, got {args.confusion}")
    inputs = [path for path in (args.gold, args.pred) if path]
    for flag in ("confusion", "html"):
        output = getattr(args, flag)
        if output and os.path.isdir(output):
            parser.error(f"--{flag} {output} is a folder: give a file name")
        if output and any(_same_file(output, path) for path in inputs):
            parser.error(f"--{flag} {output} is one of the input files: writing it would destroy it")
    return args


def _same_file(first: str, second: str) -> bool:
    if os.path.exists(first) and os.path.exists(second):
        return os.path.samefile(first, second)
    return os.path.realpath(first) == os.path.realpath(second)


def main(argv: list[str] | None = None) -> int:
    """Score, write the asked-for files, print the report; the exit status (2: bad input)."""
    try:
        args = parse_args(argv)
    except UsageError as error:
        return refuse(PROGRAM, str(error))
    logging.basicConfig(format=f"{PROGRAM}: warning: %(message)s", level=logging.WARNING)
    try:
        evaluation = evaluate_files(
            args.pred,
            args.gold,
            strict=args.strict,
            allow_token_mismatch=args.allow_token_mismatch,
            analyse=bool(args.examples or args.confusion or args.html),
            errors=args.errors,
            bootstrap=args.bootstrap,
            seed=args.seed,
        )
        if args.confusion:
            plot_confusion(evaluation.analysis, args.confusion)
        if args.html:
            write_text_atomic(args.html, error_report_html(evaluation.analysis, f"Errors of {args.pred}"))
    except (FileNotFoundError, ValueError, MissingExtraError) as error:
        return refuse(PROGRAM, str(error))
    metrics, analysis = evaluation.metrics, evaluation.analysis
    if args.json:
        print(json.dumps(metrics, indent=2))
    else:
        print(format_report(metrics))
        if args.bootstrap:
            interval = metrics["bootstrap"]
            print(
                f"micro F1 {100 * interval['f1']:.2f}, {interval['confidence']:.0%} interval "
                f"[{100 * interval['low']:.2f}, {100 * interval['high']:.2f}] "
                f"({interval['resamples']} sentence resamples, seed {interval['seed']})"
            )
        if args.errors:
            print("\n" + format_error_report(analysis))
    if args.examples:
        print("\n" + format_examples(analysis, args.examples), file=sys.stderr if args.json else sys.stdout)
    if args.confusion:
        print(f"confusion heat map written to {args.confusion}", file=sys.stderr)
    if args.html:
        print(f"HTML report written to {args.html}", file=sys.stderr)
    return 0


def run() -> NoReturn:
    """The `ner-evaluate` command."""
    exit_with(main)


if __name__ == "__main__":
    run()
