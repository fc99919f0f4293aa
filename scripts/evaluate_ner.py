"""Entity-level scores of predicted tags in CoNLL column files, with the numbers of `conlleval`.

python scripts/evaluate_ner.py --pred predictions.conll             # token gold pred per line
python scripts/evaluate_ner.py --gold dev.conll --pred pred.conll   # token tag, aligned by line
python scripts/evaluate_ner.py --pred predictions.conll --strict --json
python scripts/evaluate_ner.py --pred predictions.conll --errors --examples 3 --confusion confusion.png
python scripts/evaluate_ner.py --pred predictions.conll --bootstrap 1000 --seed 0
python scripts/evaluate_ner.py --pred predictions.conll --html report.html   # errors per sentence, to look at

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
from collections import Counter
from pathlib import Path

from ner_imbalance.constants import OUTSIDE
from ner_imbalance.data.conll import DataFormatError
from ner_imbalance.data.labels import detect_scheme, split_tag
from ner_imbalance.errors import OneLineArgumentParser
from ner_imbalance.evaluation import evaluate_tags, format_report, read_gold_and_pred
from ner_imbalance.evaluation.bootstrap import bootstrap_f1
from ner_imbalance.evaluation.error_analysis import analyse_errors, format_error_report, format_examples, plot_confusion
from ner_imbalance.utils.command_line import exit_with
from ner_imbalance.utils.extras import MissingExtraError

PROGRAM = "evaluate_ner.py"
logger = logging.getLogger(PROGRAM)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = OneLineArgumentParser(prog=PROGRAM, description=__doc__.splitlines()[0])
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


def check_schemes(gold: list[list[str]], pred: list[list[str]], gold_name: str, pred_name: str) -> str:
    """The one tag scheme of gold and predictions; a `ValueError` naming both if one uses E-/S- tags
    (IOBES) and the other, with entity tags, none (IOB2)."""
    gold_tags = {tag for tags in gold for tag in tags}
    pred_tags = {tag for tags in pred for tag in tags}
    schemes = {name: detect_scheme(tags) for name, tags in ((gold_name, gold_tags), (pred_name, pred_tags))}
    has_entities = [any(tag != OUTSIDE for tag in tags) for tags in (gold_tags, pred_tags)]
    if len(set(schemes.values())) > 1 and all(has_entities):
        found = ", ".join(f"{name} in {scheme}" for name, scheme in schemes.items())
        raise ValueError(f"gold and predictions use different tag schemes ({found}): convert one to the other's")
    return detect_scheme(gold_tags | pred_tags)


def warn_unseen_types(gold: list[list[str]], pred: list[list[str]]) -> None:
    """One warning naming the predicted entity types that gold never uses (each is scored as false positives)."""
    gold_types = {split_tag(tag)[1] for tags in gold for tag in tags if tag != OUTSIDE}
    unseen = Counter(split_tag(tag)[1] for tags in pred for tag in tags if tag != OUTSIDE)
    unseen = {entity_type: count for entity_type, count in unseen.items() if entity_type not in gold_types}
    if unseen:
        listed = ", ".join(f"{entity_type} ({count}x)" for entity_type, count in sorted(unseen.items()))
        logger.warning("predicted types that gold never uses: %s; scored as false positives", listed)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(format=f"{PROGRAM}: warning: %(message)s", level=logging.WARNING)
    mode = "strict" if args.strict else "conlleval"
    analysis = None
    try:
        tokens, gold, pred = read_gold_and_pred(
            args.gold or args.pred, args.pred if args.gold else None, allow_token_mismatch=args.allow_token_mismatch
        )
        if args.gold:
            scheme = check_schemes(gold, pred, f"gold {args.gold}", f"predictions {args.pred}")
        else:
            scheme = check_schemes(gold, pred, f"the gold column of {args.pred}", "its predicted column")
        warn_unseen_types(gold, pred)
        metrics = evaluate_tags(gold, pred, mode=mode, scheme=scheme)
        if args.errors or args.examples or args.confusion or args.html:
            analysis = analyse_errors(tokens, gold, pred, mode=mode, scheme=scheme)
            if args.confusion:
                plot_confusion(analysis, args.confusion)
            if args.html:
                from ner_imbalance.inference.html import error_report_html  # imports torch: only when asked

                Path(args.html).write_text(error_report_html(analysis, f"Errors of {args.pred}"), encoding="utf-8")
        if args.errors:
            metrics["errors"] = analysis.to_dict()
        if args.bootstrap:
            metrics["bootstrap"] = bootstrap_f1(
                gold, pred, resamples=args.bootstrap, seed=args.seed, mode=mode, scheme=scheme
            )
    except (DataFormatError, FileNotFoundError, ValueError, MissingExtraError) as error:
        print(f"{PROGRAM}: error: {error}", file=sys.stderr)
        return 2
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


if __name__ == "__main__":
    exit_with(main)
