"""A run's stored dev predictions as per-sentence entity counts, for the paired bootstraps of the report.

The counts and the bootstraps themselves are the library's (`ner_imbalance.evaluation.bootstrap`:
`sentence_counts`, `micro_f1`, `paired_bootstrap`); this module only reads them off a run's
`DevOutputs`.
"""

from __future__ import annotations

import numpy as np

from ner_imbalance.evaluation.bootstrap import sentence_counts
from ner_imbalance.study.records import DevOutputs


def run_counts(outputs: DevOutputs) -> np.ndarray:
    """`sentence_counts` of a run's stored dev predictions."""
    return sentence_counts(outputs.tags(outputs.gold), outputs.tags(outputs.predicted))
