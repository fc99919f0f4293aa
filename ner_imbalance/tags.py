"""Tag strings: a tag's prefix and entity type, the tag schemes, and the one conversion between them.

A tag is `O` (outside every entity) or `PREFIX-TYPE`: a one-letter prefix from `B`, `I`, `E`, `S` and a
non-empty entity type, which may itself contain `-` (`B-creative-work` is prefix `B`, type `creative-work`).
The schemes the package knows (as seqeval's `scheme.py` does, by the prefixes each allows):

- IOB2 (`B`, `I`): `B-X` begins an entity of type X, `I-X` continues it; the internal form of IOB input.
- IOBES, also spelled BIOES (`B`, `I`, `E`, `S`): `E-X` ends a multi-word entity, `S-X` is a one-word entity.
- IOB1 (`B`, `I`): an input form only, where `I-X` begins an entity and `B-X` only separates two adjacent
  entities of one type; `iob1_to_iob2` converts it, and nothing downstream sees it.

`conlleval_split` is the lenient reading of seqeval's `get_entities` (conlleval's chunking), which accepts any
string; everything else here accepts well-formed tags only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ner_imbalance.constants import IOB2, IOBES, OUTSIDE

__all__ = [
    "ENTITY_PREFIXES",
    "SCHEME_NAMES",
    "SCHEME_PREFIXES",
    "canonical_scheme",
    "conlleval_split",
    "continuation_tag",
    "detect_scheme",
    "entity_types",
    "find_invalid_transitions",
    "iob1_to_iob2",
    "is_tag",
    "join_tag",
    "repair",
    "split_tag",
]

SEPARATOR = "-"
"""Between a tag's prefix and its type."""
ENTITY_PREFIXES = ("B", "I", "E", "S")
"""Every prefix a tag may have (the IOBES ones; IOB1 and IOB2 use the first two)."""
SCHEME_PREFIXES = {IOB2: ("B", "I"), IOBES: ENTITY_PREFIXES}
"""The prefixes of each scheme, in label-list order, besides the outside tag `O`."""
SCHEME_NAMES = {"iob2": IOB2, "iobes": IOBES, "bioes": IOBES}
"""Accepted spellings of a scheme (compared lower-cased) -> its canonical name."""
CONLLEVAL_EMPTY_TYPE = "_"
"""The type conlleval's chunking gives a label without one (seqeval's `get_entities`), `O` included."""


def is_tag(tag: str) -> bool:
    """Whether `tag` is `O` or `PREFIX-TYPE` with a prefix from `ENTITY_PREFIXES` and a non-empty type.

    >>> [is_tag(tag) for tag in ("O", "B-PER", "S-creative-work", "B-", "X-PER", "PER", "BB-PER")]
    [True, True, True, False, False, False, False]
    """
    return tag == OUTSIDE or (len(tag) > 2 and tag[0] in ENTITY_PREFIXES and tag[1] == SEPARATOR)


def split_tag(tag: str) -> tuple[str, str]:
    """`(prefix, type)` of a tag, `("O", "")` for `O`; a `ValueError` for a string that is not a tag (`is_tag`).

    >>> split_tag("B-PER"), split_tag("I-creative-work"), split_tag("O")
    (('B', 'PER'), ('I', 'creative-work'), ('O', ''))
    """
    if not is_tag(tag):
        raise ValueError(f"{tag!r} is not a tag: a tag is {OUTSIDE!r} or B-/I-/E-/S-<type>")
    if tag == OUTSIDE:
        return OUTSIDE, ""
    return tag[0], tag[2:]


def join_tag(prefix: str, entity_type: str) -> str:
    """The tag of a prefix and an entity type: the inverse of `split_tag` (`O` for prefix `O`).

    >>> join_tag("B", "PER"), join_tag("O", "")
    ('B-PER', 'O')
    """
    tag = OUTSIDE if prefix == OUTSIDE else f"{prefix}{SEPARATOR}{entity_type}"
    split_tag(tag)
    return tag


def entity_types(tags: Iterable[str]) -> list[str]:
    """The entity types of `tags`, sorted, each once (`O` has none).

    >>> entity_types(["O", "I-PER", "B-LOC", "B-PER"])
    ['LOC', 'PER']
    """
    return sorted({split_tag(tag)[1] for tag in tags} - {""})


def continuation_tag(tag: str) -> str:
    """The tag that continues the entity `tag` is part of: `I-X` for `B-X` and `I-X`, the tag itself otherwise.

    A word's later sub-tokens get it when every sub-token is labelled.

    >>> [continuation_tag(tag) for tag in ("B-PER", "I-PER", "S-PER", "O")]
    ['I-PER', 'I-PER', 'S-PER', 'O']
    """
    prefix, entity_type = split_tag(tag)
    return join_tag("I", entity_type) if prefix == "B" else tag


def canonical_scheme(scheme: str) -> str:
    """`IOB2` or `IOBES` for a scheme name in any case (`bioes` is IOBES); a `ValueError` for other names.

    >>> canonical_scheme("bioes"), canonical_scheme("IOB2")
    ('IOBES', 'IOB2')
    """
    try:
        return SCHEME_NAMES[scheme.lower()]
    except KeyError:
        raise ValueError(f"unknown tag scheme {scheme!r}: expected one of {', '.join(SCHEME_NAMES)}") from None


def detect_scheme(tags: Iterable[str]) -> str:
    """`IOBES` when any tag has a prefix IOB2 lacks (`E`, `S`), else `IOB2` (IOB1 and IOB2 read alike).

    Strings that are not tags (`is_tag`) belong to no scheme and are passed over.

    >>> detect_scheme(["O", "B-LOC", "S-LOC"]), detect_scheme(["O", "B-LOC", "I-LOC"]), detect_scheme(["LABEL_0"])
    ('IOBES', 'IOB2', 'IOB2')
    """
    iobes_only = set(SCHEME_PREFIXES[IOBES]) - set(SCHEME_PREFIXES[IOB2])
    return IOBES if any(is_tag(tag) and tag[0] in iobes_only for tag in tags) else IOB2


def find_invalid_transitions(tags: Sequence[str]) -> list[int]:
    """Positions of inside tags that continue nothing: `I-X` (or IOBES `E-X`) first in the sentence,
    after `O`, after another type, or (IOBES) after an entity's end `E-`/`S-`.

    >>> find_invalid_transitions(["I-PER", "B-LOC", "I-LOC", "O", "E-LOC", "B-PER", "I-LOC"])
    [0, 4, 6]
    """
    invalid = []
    previous_prefix, previous_type = OUTSIDE, ""
    for position, tag in enumerate(tags):
        prefix, entity_type = split_tag(tag)
        if prefix in ("I", "E") and (previous_prefix not in ("B", "I") or previous_type != entity_type):
            invalid.append(position)
        previous_prefix, previous_type = prefix, entity_type
    return invalid


def repair(tags: Sequence[str]) -> list[str]:
    """Every inside tag that continues nothing starts an entity instead (`I-X` -> `B-X`, `E-X` -> `S-X`).

    >>> repair(["O", "I-PER", "I-PER", "E-LOC"])
    ['O', 'B-PER', 'I-PER', 'S-LOC']
    """
    invalid = set(find_invalid_transitions(tags))
    return [_beginning_tag(tag) if position in invalid else tag for position, tag in enumerate(tags)]


def iob1_to_iob2(tags: Sequence[str]) -> list[str]:
    """IOB1 -> IOB2: an `I-X` that starts an entity (first, after `O` or after another type) becomes `B-X`.

    >>> iob1_to_iob2(["I-PER", "I-PER", "B-PER", "O", "I-LOC", "I-ORG"])
    ['B-PER', 'I-PER', 'B-PER', 'O', 'B-LOC', 'B-ORG']
    """
    return repair(tags)


def conlleval_split(label: str) -> tuple[str, str]:
    """`(prefix, type)` as conlleval's chunking (seqeval's `get_entities`, prefix form) reads any string.

    The prefix is the first character; the type is what follows the first `-` after it (all of the rest when
    there is none), or `_` when that is empty, so `O` reads as `("O", "_")`. Never raises: malformed labels
    are read as seqeval reads them, which is what makes counts on label ids equal seqeval's.

    >>> [conlleval_split(label) for label in ("B-PER", "O", "I-creative-work", "B-", "BPER", "E--X")]
    [('B', 'PER'), ('O', '_'), ('I', 'creative-work'), ('B', '_'), ('B', 'PER'), ('E', '-X')]
    """
    return label[0], label[1:].split(SEPARATOR, maxsplit=1)[-1] or CONLLEVAL_EMPTY_TYPE


def _beginning_tag(tag: str) -> str:
    prefix, entity_type = split_tag(tag)
    return join_tag("S" if prefix == "E" else "B", entity_type)
