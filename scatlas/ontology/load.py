"""The Cell Ontology as a DAG: OBO (parsed with obonet), OBO Graphs JSON, or cellxgene's JSON."""

from __future__ import annotations

import gzip
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import obonet

from scatlas.io import InputError

PART_OF = "part_of"
# part_of is written as a name or, in CL's base and slim releases, as the BFO CURIE / IRI
RELATIONS = {
    "is_a": "is_a",
    "subClassOf": "is_a",
    "part_of": PART_OF,
    "BFO:0000050": PART_OF,
    "BFO_0000050": PART_OF,
    "http://purl.obolibrary.org/obo/BFO_0000050": PART_OF,
}
SYNONYM = re.compile(r'^"(?P<text>(?:[^"\\]|\\.)*)"\s+(?P<scope>EXACT|RELATED|BROAD|NARROW)\b')
OBOGRAPH_SCOPES = {
    "hasExactSynonym": "EXACT",
    "hasRelatedSynonym": "RELATED",
    "hasBroadSynonym": "BROAD",
    "hasNarrowSynonym": "NARROW",
}
REPLACED_BY_IRI = "http://purl.obolibrary.org/obo/IAO_0100001"


@dataclass(frozen=True)
class Term:
    """One ontology term: its CURIE, name and synonyms as ``(text, scope)``, scope EXACT/RELATED/BROAD/NARROW."""

    id: str
    name: str
    synonyms: tuple[tuple[str, str], ...] = ()


class Ontology:
    """Terms and a DAG whose edges point from a term to its parents (is_a, part_of), toward the root.

    Obsolete terms are not in ``terms`` nor in the graph; ``replaced_by`` maps them to their
    replacement, which :meth:`resolve` follows.
    """

    def __init__(self, terms: dict[str, Term], graph: nx.DiGraph, replaced_by: dict[str, str], source: str):
        self.terms = terms
        self.graph = graph
        self.replaced_by = replaced_by
        self.source = source

    def __contains__(self, term_id: str) -> bool:
        return term_id in self.terms

    def name(self, term_id: str) -> str:
        return self.terms[term_id].name

    def parents(self, term_id: str, relation: str | None = None) -> set[str]:
        edges = self.graph.out_edges(term_id, data="relation") if term_id in self.graph else []
        return {parent for _, parent, rel in edges if relation is None or rel == relation}

    def ancestors(self, term_id: str) -> set[str]:
        """Every term reachable upward through is_a and part_of (the term itself excluded)."""
        return nx.descendants(self.graph, term_id) if term_id in self.graph else set()

    def descendants(self, term_id: str) -> set[str]:
        return nx.ancestors(self.graph, term_id) if term_id in self.graph else set()

    def resolve(self, term_id: str) -> str | None:
        """The current id of ``term_id``: itself, its replacement if obsolete, None if unknown or retired."""
        seen = set()
        while term_id not in self.terms:
            if term_id in seen or term_id not in self.replaced_by:
                return None
            seen.add(term_id)
            term_id = self.replaced_by[term_id]
        return term_id

    def most_specific(self, term_ids: set[str]) -> set[str]:
        """Drop every term of which another of ``term_ids`` is a descendant."""
        return {t for t in term_ids if not (self.descendants(t) & (term_ids - {t}))}


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise InputError(path, f"cannot read ontology ({err.strerror})") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise InputError(path, f"truncated or corrupt gzip ({err})") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(path, "not an OBO or JSON ontology (binary content)") from None


def load_ontology(path: str | os.PathLike, relations: tuple[str, ...] = ("is_a", PART_OF)) -> Ontology:
    """Read an ontology file (OBO, OBO Graphs JSON or cellxgene-ontology-guide JSON; plain or gzip).

    Parameters
    ----------
    path
        The file; its format is recognised from its content, not its name.
    relations
        Edge types kept in the DAG (``is_a`` and ``part_of``; ``BFO:0000050`` is read as part_of).

    Raises :class:`InputError` for an unreadable file, one that is neither OBO nor JSON, one without
    terms, or a cycle among the kept relations.
    """
    path = Path(path)
    text = _read_text(path)
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise InputError(path, f"invalid JSON ontology ({err})") from None
        if isinstance(data, dict) and "graphs" in data:
            terms, edges, replaced_by = _from_obograph(path, data)
        else:
            terms, edges, replaced_by = _from_cellxgene(path, data)
    elif stripped.startswith(("format-version:", "[Term]")) or "\n[Term]" in text:
        terms, edges, replaced_by = _from_obo(path, text)
    else:
        raise InputError(path, "not an OBO or JSON ontology (no format-version header or [Term] stanza)")
    if not terms:
        raise InputError(path, "the ontology has no (non-obsolete) terms")
    graph = nx.DiGraph()
    graph.add_nodes_from(terms)
    for child, relation, parent in edges:
        if relation in relations and child in terms:
            graph.add_edge(child, parent, relation=relation)
    try:
        cycle = nx.find_cycle(graph)
    except nx.NetworkXNoCycle:
        cycle = None
    if cycle:
        chain = " -> ".join([cycle[0][0], *(parent for _, parent in cycle)])
        raise InputError(path, f"term cycle: {chain}")
    return Ontology(terms, graph, replaced_by, str(path))


def _from_obo(path: Path, text: str):
    try:
        _, stanzas, _, _ = obonet.read.get_sections(iter(text.splitlines()), include_clauses=True)
    except ValueError as err:
        raise InputError(path, f"not a valid OBO file ({str(err).splitlines()[0]})") from None
    terms, edges, replaced_by = {}, [], {}
    for stanza in stanzas:
        term_id = stanza.get("id")
        if not term_id:
            continue
        if stanza.get("is_obsolete") == "true":
            if stanza.get("replaced_by"):
                replaced_by[term_id] = stanza["replaced_by"][0]
            continue
        synonyms = tuple(
            (match["text"].replace('\\"', '"'), match["scope"])
            for match in map(SYNONYM.match, stanza.get("synonym", []))
            if match
        )
        terms[term_id] = Term(term_id, stanza.get("name", term_id), synonyms)
        edges += [(term_id, "is_a", parent) for parent in stanza.get("is_a", [])]
        for clause in stanza["_clauses"].get("relationship", []):
            # {all_only="true"} is a universal restriction, not an asserted part_of (the slim's BFO self-loops)
            if "all_only" in (clause["trailing_modifier"] or ""):
                continue
            relation, _, parent = clause["value"].partition(" ")
            edges.append((term_id, RELATIONS.get(relation, relation), parent.strip()))
    return terms, edges, replaced_by


def _curie(iri: str) -> str:
    prefix = "http://purl.obolibrary.org/obo/"
    return iri.removeprefix(prefix).replace("_", ":", 1) if iri.startswith(prefix) else iri


def _from_obograph(path: Path, data: dict):
    terms, edges, replaced_by = {}, [], {}
    for graph in data.get("graphs", []):
        for node in graph.get("nodes", []):
            if node.get("type", "CLASS") != "CLASS":
                continue
            term_id, meta = _curie(node["id"]), node.get("meta", {})
            if meta.get("deprecated"):
                for prop in meta.get("basicPropertyValues", []):
                    if prop.get("pred") == REPLACED_BY_IRI:
                        replaced_by[term_id] = _curie(prop["val"])
                continue
            synonyms = tuple(
                (syn["val"], OBOGRAPH_SCOPES[syn["pred"]])
                for syn in meta.get("synonyms", [])
                if syn.get("pred") in OBOGRAPH_SCOPES
            )
            terms[term_id] = Term(term_id, node.get("lbl", term_id), synonyms)
        for edge in graph.get("edges", []):
            relation = RELATIONS.get(edge["pred"], edge["pred"])
            edges.append((_curie(edge["sub"]), relation, _curie(edge["obj"])))
    return terms, edges, replaced_by


def _from_cellxgene(path: Path, data: dict):
    """cellxgene-ontology-guide: ``{id: {label, synonyms, ancestors: {id: distance}, deprecated, replaced_by}}``.

    Its ancestors are the closure over is_a and part_of without the relation; the direct parents
    (distance 1) are taken as is_a edges.
    """
    if not isinstance(data, dict) or not all(isinstance(v, dict) and "label" in v for v in data.values()):
        raise InputError(path, "JSON is neither OBO Graphs ('graphs') nor cellxgene ontology ({id: {label, ...}})")
    terms, edges, replaced_by = {}, [], {}
    for term_id, entry in data.items():
        if entry.get("deprecated"):
            if entry.get("replaced_by"):
                replaced_by[term_id] = entry["replaced_by"]
            continue
        terms[term_id] = Term(term_id, entry["label"], tuple((s, "EXACT") for s in entry.get("synonyms", [])))
        edges += [(term_id, "is_a", parent) for parent, distance in entry.get("ancestors", {}).items() if distance == 1]
    return terms, edges, replaced_by
