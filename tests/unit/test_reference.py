import pandas as pd
import pytest

from scatlas.io import InputError
from scatlas.reference import gene_table, read_exons, write_gene_gtf

NON_CODING = {"AC108488.1", "SNORA73.6", "snoU13.174", "snoU13.31"}  # lincRNA / snoRNA in the source column


def write_gtf(path, rows):
    path.write_text("".join("\t".join(map(str, row)) + "\n" for row in rows))
    return path


def test_gene_length_is_the_union_of_exons(tmp_path):
    attrs = 'gene_id "G1"; transcript_id "T{}";'
    gtf = write_gtf(
        tmp_path / "g.gtf",
        [
            ("chr1", "src", "exon", 100, 199, ".", "+", ".", attrs.format(1)),  # 100 bp
            ("chr1", "src", "exon", 150, 249, ".", "+", ".", attrs.format(2)),  # overlaps: +50 bp
            ("chr1", "src", "exon", 400, 409, ".", "+", ".", attrs.format(1)),  # +10 bp
            ("chr1", "src", "exon", 120, 130, ".", "+", ".", attrs.format(3)),  # inside: +0
            ("chr1", "src", "CDS", 100, 130, ".", "+", "0", attrs.format(1)),  # not an exon
        ],
    )
    genes = gene_table(read_exons(gtf), biotypes=())
    assert genes.loc["G1", "length"] == 160
    assert (genes.loc["G1", "start"], genes.loc["G1", "end"]) == (100, 409)


def test_real_gtf_coding_filter_and_lengths(quasr):
    exons = read_exons(quasr / "hg19sub_annotation.gtf")
    everything = gene_table(exons, biotypes=())
    coding = gene_table(exons)
    assert len(everything) == 12
    assert set(everything["gene_name"]) - set(coding["gene_name"]) == NON_CODING
    assert {"RPS7", "VHL", "SDF4", "TNFRSF18"} <= set(coding["gene_name"])
    # featureCounts reports these lengths (merged exons) for the same GTF
    lengths = everything.set_index("gene_name")["length"]
    assert lengths["TNFRSF18"] == 1370 and lengths["RPS7"] == 5583 and lengths["VHL"] == 4213


def test_gene_gtf_keeps_only_the_chosen_genes(quasr, tmp_path):
    exons = read_exons(quasr / "hg19sub_annotation.gtf")
    coding = gene_table(exons)
    write_gene_gtf(exons, coding.index, tmp_path / "genes.gtf")
    again = read_exons(tmp_path / "genes.gtf")
    assert set(again["gene_id"]) == set(coding.index)
    pd.testing.assert_series_equal(gene_table(again, ())["length"], coding["length"], check_names=False)


def test_gtf_without_gene_id_is_refused(tmp_path):
    gtf = write_gtf(tmp_path / "bad.gtf", [("chr1", "src", "exon", 1, 50, ".", "+", ".", 'transcript_id "T1";')])
    with pytest.raises(InputError, match=r"bad\.gtf: .*no gene_id attribute"):
        read_exons(gtf)


def test_file_that_is_not_a_gtf_is_refused(tmp_path):
    path = tmp_path / "notes.gtf"
    path.write_text("this is\nnot a GTF\n")
    with pytest.raises(InputError, match=r"notes\.gtf: "):
        read_exons(path)
