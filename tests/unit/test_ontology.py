"""Cell Ontology loading, matching and similarity on the real CL releases in ../shared/data/ontology."""

import subprocess
from pathlib import Path

import pandas as pd
import pytest
from conftest import BIN, SHARED

from scatlas.io import InputError
from scatlas.ontology import Matcher, load_ontology, term_distance, term_similarity

ONTOLOGY = SHARED / "data" / "ontology"
CL_BASIC_OBO = ONTOLOGY / "cl-basic_2022-12-15.obo"
CL_BASIC_JSON = ONTOLOGY / "cl-basic_2022-12-15.json.gz"
CL_BASE_OBO = ONTOLOGY / "cl-base_2022-09-15.obo"
CL_SLIM_OBO = ONTOLOGY / "general_cell_types_upper_slim_2026-06-08.obo"
CL_CELLXGENE = ONTOLOGY / "CL-ontology-v2026-03-26.cellxgene.json.gz"
EVALUATION = Path(__file__).parents[1] / "data" / "cell_ontology_eval.tsv"


@pytest.fixture(scope="module")
def cl():
    return load_ontology(CL_BASIC_OBO)


@pytest.fixture(scope="module")
def matcher(cl):
    return Matcher(cl)


def found(matcher, **fields):
    return {m.term_id for m in matcher.match(fields)}


def evaluate(ontology, matcher):
    """Per predicted term: exact (the curated term), general (an ancestor of it: true, less specific), or wrong."""
    table = pd.read_csv(EVALUATION, sep="\t", comment="#", keep_default_na=False)
    exact = general = wrong = curated = recalled = 0
    for text, ids in zip(table["text"], table["cl_id"], strict=True):
        truth = set(filter(None, ids.split("|")))
        predicted = found(matcher, text=text)
        exact += len(predicted & truth)
        general += sum(1 for p in predicted - truth if any(p in ontology.ancestors(t) for t in truth))
        wrong += sum(1 for p in predicted - truth if not any(p in ontology.ancestors(t) for t in truth))
        curated += len(truth)
        recalled += len(predicted & truth)
    return len(table), exact, general, wrong, curated, recalled


@pytest.mark.parametrize("path", [CL_BASIC_OBO, CL_CELLXGENE], ids=["cl-basic-2022-obo", "cl-2026-cellxgene-json"])
def test_matcher_precision_on_curated_metadata(path):
    ontology = load_ontology(path)
    n_texts, exact, general, wrong, curated, recalled = evaluate(ontology, Matcher(ontology))
    predicted = exact + general + wrong
    print(
        f"\n{path.name}: {n_texts} texts, {curated} curated terms, {predicted} predicted: {exact} exact, "
        f"{general} an ancestor of the curated term, {wrong} wrong; precision {(exact + general) / predicted:.3f} "
        f"(exact only {exact / predicted:.3f}), recall {recalled / curated:.3f}"
    )
    assert n_texts >= 100
    # a label is right when it is the curated term or a more general true one ("neuron" for a GABAergic neuron)
    assert (exact + general) / predicted >= 0.9
    assert wrong <= 0.05 * predicted


def test_synonyms_plurals_and_hyphens(matcher):
    assert found(matcher, text="pancreatic beta cell") == {"CL:0000169"}  # EXACT synonym of type B pancreatic cell
    (match,) = matcher.match({"title": "Sorted B-lymphocytes, replicate 2"})
    assert (match.term_id, match.scope, match.text) == ("CL:0000236", "EXACT", "B-lymphocytes")
    assert match.synonym in {"B lymphocyte", "B-lymphocyte"}  # the two synonyms are one token phrase
    assert found(matcher, text="microglia") == {"CL:0000129"}
    assert found(matcher, text="Hepatocytes") == {"CL:0000182"}
    assert found(matcher, text="T-cells") == found(matcher, text="T cells") == {"CL:0000084"}
    # word boundaries: "Bcellular" and "astrocytoma" name no cell type
    assert found(matcher, text="astrocytoma line, Bcellular") == set()


def test_broad_and_related_synonyms_only_when_asked(cl):
    # "beta cell" is a BROAD synonym of the pancreatic beta cell; "immune cell" a RELATED one of leukocyte
    assert found(Matcher(cl), text="beta cell", other="immune cell") == set()
    assert found(Matcher(cl, scopes=["EXACT", "BROAD"]), text="beta cell") == {"CL:0000169"}
    # and why they are off by default: "beta cell" is also a RELATED synonym of a pituitary cell
    assert found(Matcher(cl, scopes=["EXACT", "RELATED"]), text="beta cell") == {"CL:0000639"}
    assert found(Matcher(cl, scopes=["EXACT", "RELATED"]), text="immune cells") == {"CL:0000738"}


def test_only_the_most_specific_terms_are_kept(matcher, cl):
    # T cell and memory T cell both named: memory T cell is_a T cell
    assert found(matcher, title="T cells", characteristics="memory T cell") == {"CL:0000813"}
    assert "CL:0000084" in cl.ancestors("CL:0000813")
    # within one text the longer name wins over the name nested in it
    assert found(matcher, text="embryonic stem cells") == {"CL:0002322"}
    # unrelated types both stay
    assert found(matcher, text="B cells and hepatocytes") == {"CL:0000236", "CL:0000182"}


def test_generic_terms_are_not_labels(matcher):
    assert found(matcher, description="library failed: no cells captured") == set()
    assert found(matcher, title="single cell 12", source_name="whole animal") == set()


def test_part_of_relations_are_read_from_bfo_curies(cl):
    base = load_ontology(CL_BASE_OBO)
    # epithelial cell of lung part_of lung epithelium
    assert base.parents("CL:0000082", "part_of") == {"UBERON:0000115"}
    assert sum(1 for *_, r in base.graph.edges(data="relation") if r == "part_of") == 319
    slim = load_ontology(CL_SLIM_OBO)
    assert slim.parents("GO:0042470", "part_of") == {"CL:0000148"}  # melanosome part_of melanocyte
    # the slim's {all_only="true"} BFO self-references are universal restrictions, not part_of edges
    assert slim.parents("BFO:0000002") == set()
    assert "CL:0000000" in slim.ancestors("GO:0042470")
    assert cl.parents("CL:0000236", "part_of") == set()  # cl-basic has none


def test_obsolete_terms_are_skipped_or_replaced(cl):
    assert "CL:0000002" not in cl  # obsolete immortal cell line cell
    assert cl.resolve("CL:0000002") == "CLO:0000019" or cl.resolve("CL:0000002") is None
    current = load_ontology(CL_CELLXGENE)
    assert "CL:0000003" not in current  # native cell, obsoleted after 2022
    assert current.resolve("CL:0000003") == "CL:0000000"
    assert current.resolve("CL:0000236") == "CL:0000236"
    assert found(Matcher(current), text="obsolete native cell") == set()


def test_obo_and_obograph_json_of_one_release_agree(cl):
    json_cl = load_ontology(CL_BASIC_JSON)
    assert set(json_cl.terms) == set(cl.terms)
    assert set(json_cl.graph.edges) == set(cl.graph.edges)
    assert json_cl.terms["CL:0000127"].synonyms == (("astrocytic glia", "EXACT"),)


def test_term_similarity_is_scquerys_flexible_relevance(cl):
    # B cell -> lymphocyte of B lineage -> lymphocyte <- T cell
    assert term_distance(cl, "CL:0000236", "CL:0000084") == 3
    assert term_similarity(cl, "CL:0000236", "CL:0000084") == pytest.approx(0.25)
    assert term_similarity(cl, "CL:0000236", "CL:0000236") == 1.0
    assert term_similarity(cl, "CL:0000236", "CL:0000945") == pytest.approx(0.75)
    assert term_similarity(cl, "CL:0000236", "CL:0000127") == 0.0  # B cell vs astrocyte
    assert term_similarity(cl, "CL:0000236", "CL:9999999") is None


def test_bad_ontology_files_are_refused(tmp_path):
    not_obo = tmp_path / "notes.txt"
    not_obo.write_text("cell types: B cell, T cell\n")
    with pytest.raises(InputError, match=r"notes\.txt: not an OBO or JSON ontology"):
        load_ontology(not_obo)
    cycle = tmp_path / "cycle.obo"
    cycle.write_text(
        "format-version: 1.2\n\n[Term]\nid: CL:1\nname: a\nis_a: CL:2\n\n"
        "[Term]\nid: CL:2\nname: b\nrelationship: part_of CL:1\n"
    )
    with pytest.raises(InputError, match=r"cycle.obo: term cycle: CL:\d -> CL:\d -> CL:\d"):
        load_ontology(cycle)
    other_json = tmp_path / "other.json"
    other_json.write_text('{"cells": [1, 2]}')
    with pytest.raises(InputError, match="neither OBO Graphs"):
        load_ontology(other_json)
    truncated = tmp_path / "cl.obo.gz"
    truncated.write_bytes(CL_CELLXGENE.read_bytes()[:5000])
    with pytest.raises(InputError, match="truncated or corrupt gzip"):
        load_ontology(truncated)


def test_ontology_match_command(tmp_path):
    done = subprocess.run(
        [
            BIN / "scatlas",
            "ontology",
            "match",
            "--ontology",
            CL_BASIC_OBO,
            "pancreatic beta cells",
            "library failed: no cells captured",
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "text\tterm_id\tterm_name",
        "pancreatic beta cells\tCL:0000169\ttype B pancreatic cell",
        "library failed: no cells captured\t\t",
    ]
    bad = tmp_path / "bad.obo"
    bad.write_text("hello")
    done = subprocess.run(
        [BIN / "scatlas", "ontology", "match", "--ontology", bad, "B cell"], capture_output=True, text=True
    )
    assert done.returncode == 2
    assert (
        done.stderr.strip() == f"scatlas ontology: error: {bad}: not an OBO or JSON ontology "
        "(no format-version header or [Term] stanza)"
    )
