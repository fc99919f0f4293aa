"""Which tag may follow which: transition constraints derived from a label list and its tag scheme.

For labels `0..C-1` the constraints are three boolean arrays:

- `allowed_transitions[i, j]`: label `j` may directly follow label `i` in a sentence (`[C, C]`);
- `allowed_start[j]`: a sentence may begin with label `j` (`[C]`);
- `allowed_end[i]`: a sentence may end with label `i` (`[C]`).

IOB2: `I-X` follows only `B-X` or `I-X`, so no sentence starts with `I-X`; any tag may end a sentence.
IOBES: `B-X` and `I-X` are followed by `I-X` or `E-X` only; `E-X`, `S-X` and `O` are followed by `O`, any `B-`
or any `S-`; a sentence starts with `O`, `B-` or `S-` and ends with `O`, `E-` or `S-`. A tag sequence is valid when
its first label may start, every consecutive pair is allowed and its last label may end.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from ner_imbalance.constants import IOB2, OUTSIDE
from ner_imbalance.tags import SCHEME_PREFIXES, canonical_scheme, is_tag, join_tag, split_tag


class TagConstraints(NamedTuple):
    """The constraints of one label list, in label-id order; unpack into `viterbi_decode(scores, lengths, *c)`."""

    allowed_transitions: np.ndarray
    """`[C, C]` bool: label `j` may follow label `i`."""
    allowed_start: np.ndarray
    """`[C]` bool: a sentence may begin with the label."""
    allowed_end: np.ndarray
    """`[C]` bool: a sentence may end with the label."""


def tag_constraints(label_list: Sequence[str], scheme: str) -> TagConstraints:
    """The transition, start and end constraints of `label_list` (`O`, `B-X`, `I-X`, ...) under `scheme`
    (a name `tags.canonical_scheme` knows).

    Raises one `ValueError` whose one-line message names every label that does not fit the scheme: a malformed
    tag (`X`, `B-`), a prefix the scheme does not know (`E-X` under IOB2), a duplicate, a missing `O`, an `I-X`
    without its `B-X` (IOB2), or a type without both `B-X` and `E-X` (IOBES; without them its tags can never form
    an entity).
    """
    scheme = canonical_scheme(scheme)
    prefixes, types = _parse([str(tag) for tag in label_list], scheme)
    same_type = types[:, None] == types[None, :]
    is_outside = prefixes == OUTSIDE
    opens_entity = np.isin(prefixes, ("B", "I"))
    if scheme == IOB2:
        starts = prefixes != "I"
        allowed_transitions = starts[None, :] | (opens_entity[:, None] & (prefixes == "I")[None, :] & same_type)
        allowed_end = np.ones(len(prefixes), dtype=bool)
    else:
        starts = is_outside | np.isin(prefixes, ("B", "S"))
        continues = np.isin(prefixes, ("I", "E"))
        allowed_transitions = np.where(opens_entity[:, None], continues[None, :] & same_type, starts[None, :])
        allowed_end = ~opens_entity
    return TagConstraints(allowed_transitions, starts, allowed_end)


def _parse(label_list: list[str], scheme: str) -> tuple[np.ndarray, np.ndarray]:
    """(prefixes, types) of the labels, as arrays of strings (`"O"`, `""` for the outside tag)."""
    known_prefixes = SCHEME_PREFIXES[scheme]
    parsed: list[tuple[str, str]] = []
    malformed, unknown_prefix = [], []
    for tag in label_list:
        if not is_tag(tag):
            malformed.append(tag)
        elif (parts := split_tag(tag))[0] in (OUTSIDE, *known_prefixes):
            parsed.append(parts)
        else:
            unknown_prefix.append(tag)
    problems = []
    if malformed:
        problems.append(f"malformed tags {_listed(malformed)} (a tag is {OUTSIDE!r} or B-/I-/E-/S-<type>)")
    if unknown_prefix:
        hint = " (E-/S- tags need scheme IOBES)" if scheme == IOB2 else ""
        problems.append(f"tags with a prefix outside {', '.join(known_prefixes)}: {_listed(unknown_prefix)}{hint}")
    duplicates = [tag for tag, count in Counter(label_list).items() if count > 1]
    if duplicates:
        problems.append(f"duplicate tags {_listed(duplicates)}")
    if OUTSIDE not in label_list:
        problems.append(f"no {OUTSIDE!r} tag")
    present = set(parsed)
    if scheme == IOB2:
        orphans = [join_tag("I", name) for prefix, name in parsed if prefix == "I" and ("B", name) not in present]
        if orphans:
            problems.append(f"inside tags without their B- tag: {_listed(orphans)}")
    else:
        incomplete = [
            join_tag(prefix, name)
            for prefix, name in parsed
            if prefix in ("B", "I", "E") and not {("B", name), ("E", name)} <= present
        ]
        if incomplete:
            problems.append(f"B-/I-/E- tags of a type without both its B- and E- tag: {_listed(incomplete)}")
    if problems:
        raise ValueError(f"label list does not fit the {scheme} scheme: {'; '.join(problems)}")
    prefixes, types = zip(*parsed)
    return np.array(prefixes), np.array(types)


def _listed(tags: Sequence[str]) -> str:
    return ", ".join(repr(tag) for tag in tags)
