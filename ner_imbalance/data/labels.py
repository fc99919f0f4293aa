"""Label lists and the preparation and checks of a corpus's tags (tag strings themselves: `ner_imbalance.tags`).

IOB2 is the internal form. IOB1 input is converted on request; BIOES input (`B-`, `I-`, `E-`,
`S-`) is kept and evaluated in its own scheme.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

import datasets

from ner_imbalance.constants import IOBES, OUTSIDE, TAG_SCHEMES
from ner_imbalance.data.readers import TAG_COLUMN
from ner_imbalance.tags import (
    SCHEME_PREFIXES,
    detect_scheme,
    entity_types,
    find_invalid_transitions,
    iob1_to_iob2,
    join_tag,
    repair,
)

logger = logging.getLogger(__name__)

INVALID_EXAMPLES = 5


def build_label_list(tag_sequences: Iterable[Sequence[str]]) -> list[str]:
    """The label list of a training split: `O`, then for each type (alphabetically) its tags.

    Every type seen gets all prefixes of the scheme, in the order B, I (IOB2) or B, I, E, S
    (BIOES), so that a type seen only as single words can still be predicted as `I-X`. The
    result does not depend on the order of the data.
    """
    tags = {tag for sequence in tag_sequences for tag in sequence}
    prefixes = SCHEME_PREFIXES[detect_scheme(tags)]
    return [OUTSIDE] + [join_tag(prefix, entity_type) for entity_type in entity_types(tags) for prefix in prefixes]


def check_known_tags(
    dataset_dict: datasets.DatasetDict, label_list: Sequence[str], sources: Mapping[str, str] | None = None
) -> None:
    """Raise a `ValueError` listing, per split and its source (`sources`: split -> file or dataset
    name, as `readers.load_corpus` returns them), every tag outside `label_list`."""
    sources = sources or {}
    known = set(label_list)
    problems = []
    for split, dataset in dataset_dict.items():
        if TAG_COLUMN not in dataset.column_names:
            continue
        unknown = Counter(tag for sequence in dataset[TAG_COLUMN] for tag in sequence if tag not in known)
        if unknown:
            listed = ", ".join(f"{tag} ({count}x)" for tag, count in sorted(unknown.items()))
            problems.append(f"{split} ({sources.get(split, '<unknown>')}): {listed}")
    if problems:
        raise ValueError(
            "tags that the training split never uses (the model cannot predict them): " + "; ".join(problems)
        )


def prepare_tags(
    dataset_dict: datasets.DatasetDict,
    *,
    tag_scheme: str = "iob2",
    repair_tags: bool = False,
    sources: Mapping[str, str] | None = None,
) -> tuple[datasets.DatasetDict, dict]:
    """Bring the tags into their internal form and report invalid sequences per split.

    `tag_scheme`: `"iob2"` (tags kept), `"iob1"` (converted to IOB2), `"bioes"`/`"iobes"`
    (kept; required for tags with `E-`/`S-` prefixes). Invalid transitions (see
    `tags.find_invalid_transitions`) are counted per split and logged as a warning naming the
    source (`sources`: split -> file or dataset name, as `readers.load_corpus` returns them);
    `repair_tags=True` repairs them (see `tags.repair`).

    Returns the prepared corpus and a report `{"scheme": "IOB2"|"IOBES", "repaired": bool,
    "invalid": {split: {"source", "transitions", "sentences", "first_rows"}}}` where the
    counts are those found before any repair.
    """
    if tag_scheme not in TAG_SCHEMES:
        raise ValueError(f"tag_scheme must be one of {', '.join(TAG_SCHEMES)}, got {tag_scheme!r}")
    sources = sources or {}
    tagged = {split: dataset for split, dataset in dataset_dict.items() if TAG_COLUMN in dataset.column_names}
    found_scheme = detect_scheme(
        {tag for dataset in tagged.values() for sequence in dataset[TAG_COLUMN] for tag in sequence}
    )
    if found_scheme == IOBES and tag_scheme in ("iob2", "iob1"):
        raise ValueError(
            f"E-/S- tags found in {', '.join(sources.get(split, split) for split in tagged)} "
            f"but tag_scheme={tag_scheme!r}: pass --tag_scheme bioes (tag_scheme='bioes') for BIOES input"
        )
    prepared = dict(dataset_dict)
    if tag_scheme == "iob1":
        prepared.update({split: _map_tags(dataset, iob1_to_iob2) for split, dataset in tagged.items()})
        tagged = {split: prepared[split] for split in tagged}
    invalid = {split: _invalid_summary(dataset, sources.get(split, "<unknown>")) for split, dataset in tagged.items()}
    for split, summary in invalid.items():
        if summary["transitions"]:
            logger.warning(
                "%s (%s): %d invalid tag transitions (an inside tag after O or after another type) in %d sentences, "
                "first in rows %s; %s",
                split,
                summary["source"],
                summary["transitions"],
                summary["sentences"],
                summary["first_rows"],
                "repaired (I-X -> B-X)"
                if repair_tags
                else "if the file is IOB1 pass --tag_scheme iob1 (tag_scheme='iob1'); to turn them into B-X "
                "pass --repair_tags (repair_tags=True)",
            )
    if repair_tags:
        prepared.update(
            {split: _map_tags(prepared[split], repair) for split, summary in invalid.items() if summary["transitions"]}
        )
    report = {"scheme": found_scheme, "repaired": repair_tags, "invalid": invalid}
    return datasets.DatasetDict(prepared), report


def _map_tags(dataset: datasets.Dataset, convert) -> datasets.Dataset:
    return dataset.map(
        lambda batch: {TAG_COLUMN: [convert(tags) for tags in batch[TAG_COLUMN]]},
        batched=True,
        desc="converting tags",
    )


def _invalid_summary(dataset: datasets.Dataset, source: str) -> dict:
    per_sentence = [len(find_invalid_transitions(tags)) for tags in dataset[TAG_COLUMN]]
    sentences = [index for index, count in enumerate(per_sentence) if count]
    return {
        "source": source,
        "transitions": sum(per_sentence),
        "sentences": len(sentences),
        "first_rows": sentences[:INVALID_EXAMPLES],
    }
