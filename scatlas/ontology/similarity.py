"""Cell-type similarity from the ontology, as scQuery scores retrieval (flexible relevance for MAFP)."""

from __future__ import annotations

import networkx as nx
import numpy as np

from scatlas.ontology.load import Ontology

MAX_DISTANCE = 4  # scQuery's distances.py: relevance reaches 0 at four edges apart


def term_distance(ontology: Ontology, a: str, b: str) -> int | None:
    """Shortest-path length between two terms in the undirected is_a / part_of graph; None if unconnected."""
    try:
        return nx.shortest_path_length(ontology.graph.to_undirected(as_view=True), a, b)
    except (nx.NetworkXNoPath, nx.NodeNotFound):
        return None


def term_similarity(ontology: Ontology, a: str, b: str) -> float | None:
    """Flexible relevance ``max(0, 1 - d/4)`` of scQuery's MAFP; 1 for the same term, None if unconnected."""
    distance = term_distance(ontology, a, b)
    return None if distance is None else max(0.0, 1.0 - distance / MAX_DISTANCE)


def similarity_matrix(ontology: Ontology, terms) -> np.ndarray:
    """Types × types :func:`term_similarity` of their term ids (``terms``, one per type); NaN where a type has
    no term, a term is not in the ontology, or two terms are unconnected; 1 on the diagonal."""
    graph = ontology.graph.to_undirected(as_view=True)
    terms = [str(t) for t in terms]
    out = np.full((len(terms), len(terms)), np.nan)
    for i, a in enumerate(terms):
        if a and a in graph:
            lengths = nx.single_source_shortest_path_length(graph, a)
            for j, b in enumerate(terms):
                if b in lengths:
                    out[i, j] = max(0.0, 1.0 - lengths[b] / MAX_DISTANCE)
        out[i, i] = 1.0
    return out
