"""Entity-level scores of predicted tags in CoNLL column files, with the numbers of `conlleval`.

python scripts/evaluate_ner.py --pred predictions.conll             # token gold pred per line
python scripts/evaluate_ner.py --gold dev.conll --pred pred.conll   # token tag, aligned by line
python scripts/evaluate_ner.py --pred predictions.conll --strict --json
python scripts/evaluate_ner.py --pred predictions.conll --errors --examples 3 --confusion confusion.png
python scripts/evaluate_ner.py --pred predictions.conll --bootstrap 1000 --seed 0
python scripts/evaluate_ner.py --pred predictions.conll --html report.html   # errors per sentence, to look at

--errors, --examples, --confusion and --html need `pip install 'ner_imbalance[errors]'` (nervaluate, matplotlib).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from ner_imbalance.data.conll import DataFormatError
from ner_imbalance.data.labels import detect_scheme
from ner_imbalance.evaluation import evaluate_tags, format_report, read_gold_and_pred
from ner_imbalance.evaluation.bootstrap import bootstrap_f1
from ner_imbalance.evaluation.error_analysis import analyse_errors, format_error_report, format_examples, plot_confusion
from ner_imbalance.utils.extras import MissingExtraError


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
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
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(format="evaluate_ner.py: warning: %(message)s", level=logging.WARNING)
    mode = "strict" if args.strict else "conlleval"
    analysis = None
    try:
        tokens, gold, pred = read_gold_and_pred(
            args.gold or args.pred, args.pred if args.gold else None, allow_token_mismatch=args.allow_token_mismatch
        )
        scheme = detect_scheme({tag for tags in gold + pred for tag in tags})
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
        print(f"evaluate_ner.py: error: {error}", file=sys.stderr)
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
    sys.exit(main())
