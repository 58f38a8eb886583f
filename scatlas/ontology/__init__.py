"""Stage 7, label: the Cell Ontology as a DAG, term matching in sample metadata, term similarity."""

from scatlas.ontology.load import Ontology, Term, load_ontology
from scatlas.ontology.match import UNINFORMATIVE_TERMS, Match, Matcher, sample_fields
from scatlas.ontology.similarity import term_distance, term_similarity

__all__ = [
    "UNINFORMATIVE_TERMS",
    "Match",
    "Matcher",
    "Ontology",
    "Term",
    "load_ontology",
    "sample_fields",
    "term_distance",
    "term_similarity",
]
