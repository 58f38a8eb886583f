import bz2
import gzip

import pytest

from scatlas.align import align_run, inspect_fastq, inspect_run, parse_hisat2_summary
from scatlas.align.fastq import detect_phred_offset
from scatlas.io import InputError

RECORD = "@r{i}\nACGTACGTAC\n+\n{q}\n"


def fastq(path, qualities=("IIIIIIIIII",) * 3, opener=open):
    with opener(path, "wt") as handle:
        for i, q in enumerate(qualities):
            handle.write(RECORD.format(i=i, q=q))
    return path


def test_quasr_reads_are_phred64(quasr):
    # QuasR's test reads use 'f'..'h' qualities (Illumina 1.3+), decompressed from the real .bz2
    info = inspect_fastq(quasr / "rna_1_1.fq.bz2")
    assert info.phred_offset == 64 and info.n_reads == 3002


@pytest.mark.parametrize(
    ("qualities", "offset"),
    [(b"#,:FFFF", 33), (b"FFFFFF", 33), (b"@@JJJ", 33), (b"BBhhhh", 64), (b"efgh", 64)],
)
def test_phred_detection(qualities, offset):
    assert detect_phred_offset(qualities) == offset


def test_gzip_and_bz2_fastq_are_read(tmp_path):
    assert inspect_fastq(fastq(tmp_path / "a.fq.gz", opener=gzip.open)).n_reads == 3
    assert inspect_fastq(fastq(tmp_path / "a.fq.bz2", opener=bz2.open)).n_reads == 3


def test_empty_fastq(tmp_path):
    with pytest.raises(InputError, match=r"e\.fq\.gz: empty FASTQ"):
        inspect_fastq(fastq(tmp_path / "e.fq.gz", qualities=(), opener=gzip.open))


def test_truncated_gzip(tmp_path):
    whole = fastq(tmp_path / "w.fq.gz", qualities=["IIIIIIIIII"] * 5000, opener=gzip.open).read_bytes()
    cut = tmp_path / "cut.fq.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(InputError, match=r"cut\.fq\.gz: truncated or corrupt"):
        inspect_fastq(cut)


def test_incomplete_last_record(tmp_path):
    path = fastq(tmp_path / "i.fq")
    path.write_text(path.read_text() + "@r9\nACGT\n")
    with pytest.raises(InputError, match="truncated FASTQ"):
        inspect_fastq(path)


def test_mates_with_different_read_counts(tmp_path):
    one, two = fastq(tmp_path / "r_1.fq"), fastq(tmp_path / "r_2.fq", qualities=["IIIIIIIIII"] * 2)
    with pytest.raises(InputError, match="different numbers of reads"):
        inspect_run([one, two])


def test_hisat2_summary_parsing(tmp_path):
    summary = tmp_path / "s.txt"
    summary.write_text(
        "1000 reads; of these:\n  1000 (100.00%) were unpaired; of these:\n    120 (12.00%) aligned 0 times\n"
        "    850 (85.00%) aligned exactly 1 time\n    30 (3.00%) aligned >1 times\n88.00% overall alignment rate\n"
    )
    assert parse_hisat2_summary(summary) == (1000, 0.88)


def test_failed_alignment_keeps_earlier_outputs(tmp_path):
    bam, summary = tmp_path / "run.bam", tmp_path / "run.summary.txt"
    bam.write_text("earlier result")
    with pytest.raises(InputError, match="empty FASTQ"):
        align_run([fastq(tmp_path / "empty.fq", qualities=())], tmp_path / "no_index", bam, summary)
    assert bam.read_text() == "earlier result" and not summary.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.fq", "run.bam"]
