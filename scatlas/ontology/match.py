"""Cell Ontology terms found in free-text sample metadata by dictionary matching of names and synonyms.

Text and term labels are tokenised the same way (case folded, split at every non-alphanumeric
character, so "B-cells", "B cells" and "b_cell" agree; plurals folded), then every term label is
looked up as a token phrase with word boundaries. Short abbreviations ("HSC", "NK") only match in
their own case. Inside one text a match lying within a longer match is dropped ("T cell" inside
"natural killer T cell"), and across the sample's texts only the most specific terms are kept.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from scatlas.config import default
from scatlas.ontology.load import Ontology

WORD = re.compile(r"[^\W_]+")
# Terms that name no cell type a curator would assign (the config's label.exclude_terms): the root and
# organism-level groupings ("library failed: no cells captured" must not become "cell").
UNINFORMATIVE_TERMS = tuple(default("label.exclude_terms"))
DEFAULT_SCOPES = tuple(default("label.synonym_scopes"))
ABBREVIATION_MAX_LENGTH = 5


def singular(word: str) -> str:
    """A crude English singular that folds the plurals of cell-type words (cells, neurons, bodies)."""
    if len(word) <= 3 or word.isdigit():
        return word
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith(("sses", "ches", "shes", "xes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def tokens(text: str) -> list[str]:
    return WORD.findall(text)


def fold(words: Iterable[str]) -> tuple[str, ...]:
    return tuple(singular(word.lower()) for word in words)


@dataclass(frozen=True)
class Match:
    """One term found in one text field: which words matched, and where."""

    term_id: str
    term_name: str
    field: str
    synonym: str
    scope: str  # NAME for the term's name, else the synonym's scope
    text: str  # the matched words as written
    start: int  # token span in the field's text
    end: int


class Matcher:
    """Dictionary matcher over an ontology's term names and synonyms.

    Parameters
    ----------
    ontology
        The loaded ontology.
    scopes
        Synonym scopes used besides the names (EXACT by default; RELATED, BROAD, NARROW optional).
    prefixes
        Only terms whose id starts with one of these are labels (the Cell Ontology: ``CL:``).
    exclude
        Term ids never assigned (too general to be a cell type); descendants are still assigned.
    """

    def __init__(
        self,
        ontology: Ontology,
        scopes: Iterable[str] = DEFAULT_SCOPES,
        prefixes: Iterable[str] = ("CL:",),
        exclude: Iterable[str] = UNINFORMATIVE_TERMS,
    ):
        self.ontology = ontology
        scopes, prefixes = {s.upper() for s in scopes}, tuple(prefixes)
        excluded = {ontology.resolve(t) or t for t in exclude}
        self.folded: dict[tuple[str, ...], list[tuple[str, str, str]]] = {}
        self.exact_case: dict[tuple[str, ...], list[tuple[str, str, str]]] = {}
        for term in ontology.terms.values():
            if not term.id.startswith(prefixes) or term.id in excluded:
                continue
            labels = [(term.name, "NAME")] + [(text, scope) for text, scope in term.synonyms if scope in scopes]
            for text, scope in labels:
                words = tokens(text)
                if not words:
                    continue
                if len(words) == 1 and len(text) <= ABBREVIATION_MAX_LENGTH and text != text.lower():
                    self.exact_case.setdefault(tuple(words), []).append((term.id, text, scope))
                else:
                    self.folded.setdefault(fold(words), []).append((term.id, text, scope))
        self.longest = max(map(len, [*self.folded, *self.exact_case]), default=0)

    def find(self, text: str, field: str = "text") -> list[Match]:
        """Every term whose label occurs in ``text``, without matches nested in a longer one."""
        spans = [m.span() for m in WORD.finditer(text)]
        words = [text[a:b] for a, b in spans]
        folded = fold(words)
        found = []
        for start in range(len(words)):
            for end in range(start + 1, min(len(words), start + self.longest) + 1):
                hits = self.folded.get(folded[start:end], []) + self.exact_case.get(tuple(words[start:end]), [])
                written = text[spans[start][0] : spans[end - 1][1]]
                found += [Match(t, self.ontology.name(t), field, s, sc, written, start, end) for t, s, sc in hits]
        matched = {(m.start, m.end) for m in found}
        return [
            m for m in found if not any(s <= m.start and m.end <= e and (s, e) != (m.start, m.end) for s, e in matched)
        ]

    def match(self, fields: Mapping[str, str]) -> list[Match]:
        """The most specific terms found in a sample's texts (``{field: text}``), one Match per term.

        A term is dropped when one of its descendants (is_a / part_of) was also found. When several
        fields name the same term, the first field given is recorded.
        """
        found = [m for field, text in fields.items() if text for m in self.find(text, field)]
        keep = self.ontology.most_specific({m.term_id for m in found})
        first = {}
        for m in found:
            if m.term_id in keep:
                first.setdefault(m.term_id, m)
        return list(first.values())


def sample_fields(record: Mapping[str, str], fields: Iterable[str]) -> dict[str, str]:
    """A samples-table row as ``{field: text}``; characteristics split into ``characteristics[key]`` values.

    Only a characteristic's value is matched: its key ("cell type", "tissue") names no cell type.
    """
    texts = {}
    for field in fields:
        value = str(record.get(field) or "").strip()
        if field == "characteristics":
            for pair in filter(None, (p.strip() for p in value.split("|"))):
                key, sep, text = pair.partition(":")
                texts[f"characteristics[{key.strip()}]" if sep else "characteristics"] = text if sep else key
        elif value:
            texts[field] = value
    return texts
