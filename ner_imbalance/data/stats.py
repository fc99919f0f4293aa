"""Corpus statistics, class weights and label priors from tag frequencies, and controlled entity down-sampling."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import datasets
import numpy as np
from seqeval.metrics.sequence_labeling import get_entities

from ner_imbalance.constants import CLASS_WEIGHT_METHODS, EFFECTIVE_NUMBER_BETA, OUTSIDE
from ner_imbalance.data.readers import TAG_COLUMN


def corpus_stats(dataset: datasets.Dataset) -> dict:
    """Size and tag balance of a tagged dataset.

    Keys: `sentences`, `tokens`, `tokens_per_tag` (most frequent first), `outside_share` (share
    of `O` tokens), `entities` and `entities_per_type` (chunks as conlleval counts them, most
    frequent first), `outside_to_entity_ratio` (`O` tokens per entity token; `inf` without
    entity tokens).
    """
    tag_lists = [list(tags) for tags in dataset[TAG_COLUMN]]
    tag_counts = Counter(tag for tags in tag_lists for tag in tags)
    tokens = sum(tag_counts.values())
    outside = tag_counts.get(OUTSIDE, 0)
    entity_tokens = tokens - outside
    entities = Counter(entity_type for entity_type, _, _ in get_entities(tag_lists))
    return {
        "sentences": len(tag_lists),
        "tokens": tokens,
        "tokens_per_tag": dict(tag_counts.most_common()),
        "outside_share": outside / tokens if tokens else 0.0,
        "entities": sum(entities.values()),
        "entities_per_type": dict(entities.most_common()),
        "outside_to_entity_ratio": outside / entity_tokens if entity_tokens else math.inf,
    }


def format_stats(stats: dict, name: str) -> str:
    """A plain-text table of `corpus_stats` output, headed by `name`."""
    lines = [
        f"== {name}",
        f"sentences {stats['sentences']:,}   tokens {stats['tokens']:,}   entities {stats['entities']:,}   "
        f"O share {stats['outside_share']:.2%}   O:entity tokens {stats['outside_to_entity_ratio']:.2f}:1",
        f"{'tag':<24}{'tokens':>10}{'share':>9}",
    ]
    lines += [f"{tag:<24}{count:>10,}{count / stats['tokens']:>9.2%}" for tag, count in stats["tokens_per_tag"].items()]
    lines.append(f"{'entity type':<24}{'entities':>10}")
    lines += [f"{entity_type:<24}{count:>10,}" for entity_type, count in stats["entities_per_type"].items()]
    return "\n".join(lines)


def label_counts(dataset: datasets.Dataset, label_list: Sequence[str]) -> np.ndarray:
    """The number of tokens of each label of `label_list` in `dataset` (float64); `ValueError` when
    a tag is not in the list or there is no tag at all."""
    counts_by_tag = Counter(tag for tags in dataset[TAG_COLUMN] for tag in tags)
    unknown = sorted(set(counts_by_tag) - set(label_list))
    if unknown:
        raise ValueError(f"tags {unknown} are not in the label list")
    counts = np.array([counts_by_tag.get(label, 0) for label in label_list], dtype=np.float64)
    if not (counts > 0).any():
        raise ValueError("the dataset has no tags to count")
    return counts


def compute_class_weights(
    dataset: datasets.Dataset, label_list: Sequence[str], method: str, beta: float = EFFECTIVE_NUMBER_BETA
) -> list[float]:
    """One weight per label of `label_list` from the tag counts `n_c` of `dataset`.

    `inverse_frequency`: proportional to `1 / n_c`; `sqrt_inverse_frequency`: to `1 / sqrt(n_c)`;
    `effective_number` (Cui et al., "Class-Balanced Loss Based on Effective Number of Samples",
    CVPR 2019): to `(1 - beta) / (1 - beta^n_c)`, the inverse of the effective number of
    samples, with `beta` in [0, 1) (0: every weight 1; towards 1: inverse frequency). Weights
    are scaled so that their mean over the tokens of `dataset` is 1. A label with no token in
    `dataset` (for instance an `I-X` whose type only appears as single words) gets the largest
    weight of the others: it is at least as rare as the rarest seen label.
    """
    if method not in CLASS_WEIGHT_METHODS:
        raise ValueError(f"method must be one of {', '.join(CLASS_WEIGHT_METHODS)}, got {method!r}")
    if not 0 <= beta < 1:
        raise ValueError(f"beta must be in [0, 1), got {beta!r}")
    counts = label_counts(dataset, label_list)
    seen = counts > 0
    if method == "inverse_frequency":
        raw = 1.0 / counts[seen]
    elif method == "sqrt_inverse_frequency":
        raw = 1.0 / np.sqrt(counts[seen])
    else:
        raw = (1.0 - beta) / (1.0 - np.power(beta, counts[seen]))
    weights = np.empty_like(counts)
    weights[seen] = raw * counts.sum() / (counts[seen] * raw).sum()
    weights[~seen] = weights[seen].max()
    return weights.tolist()


def label_prior(dataset: datasets.Dataset, label_list: Sequence[str]) -> list[float]:
    """The share of the tokens of `dataset` tagged with each label of `label_list` (sums to 1).

    The `class_prior` of the logit-adjusted loss. A label with no token in `dataset` gets the
    count of the rarest seen label (it is at least as rare), so every prior is positive and its
    logarithm finite.
    """
    counts = label_counts(dataset, label_list)
    counts[counts == 0] = counts[counts > 0].min()
    return (counts / counts.sum()).tolist()


def downsample_entities(dataset: datasets.Dataset, keep_ratio: float, seed: int) -> datasets.Dataset:
    """Keep a random `keep_ratio` share of the sentences that hold an entity tag, and every other
    sentence, in their original order; the seed fixes the choice."""
    if not 0.0 <= keep_ratio <= 1.0:
        raise ValueError(f"keep_ratio must be in [0, 1], got {keep_ratio}")
    has_entity = np.array([any(tag != OUTSIDE for tag in tags) for tags in dataset[TAG_COLUMN]], dtype=bool)
    with_entities = np.flatnonzero(has_entity)
    kept = np.random.default_rng(seed).choice(with_entities, size=round(keep_ratio * len(with_entities)), replace=False)
    return dataset.select(np.sort(np.concatenate([np.flatnonzero(~has_entity), kept])))
