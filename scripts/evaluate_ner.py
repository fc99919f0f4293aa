"""Entity-level scores of predicted tags in CoNLL column files, with the numbers of `conlleval`.

python scripts/evaluate_ner.py --pred predictions.conll             # token gold pred per line
python scripts/evaluate_ner.py --gold dev.conll --pred pred.conll   # token tag, aligned by line
python scripts/evaluate_ner.py --pred predictions.conll --strict --json
"""

from __future__ import annotations

import argparse
import json
import sys

from ner_imbalance.data.conll import DataFormatError
from ner_imbalance.data.labels import detect_scheme
from ner_imbalance.evaluation import evaluate_tags, format_report, read_gold_and_pred


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gold", help="gold file (token ... tag); without it PRED holds token, gold and pred columns")
    parser.add_argument("--pred", required=True, help="predictions: token ... tag (with --gold) or token ... gold pred")
    parser.add_argument("--strict", action="store_true", help="seqeval's strict mode instead of conlleval's chunking")
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON")
    args = parser.parse_args(argv)
    try:
        if args.gold:
            _, gold, pred = read_gold_and_pred(args.gold, args.pred)
        else:
            _, gold, pred = read_gold_and_pred(args.pred)
        scheme = detect_scheme({tag for tags in gold + pred for tag in tags})
        metrics = evaluate_tags(gold, pred, mode="strict" if args.strict else "conlleval", scheme=scheme)
    except (DataFormatError, FileNotFoundError, ValueError) as error:
        print(f"evaluate_ner.py: error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(metrics, indent=2) if args.json else format_report(metrics))
    return 0


if __name__ == "__main__":
    sys.exit(main())
