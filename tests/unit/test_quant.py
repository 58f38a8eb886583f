import subprocess

import numpy as np
import pytest
from conftest import BIN, tool_env

from scatlas.io import InputError
from scatlas.quant import rpkm
from scatlas.sheets import load_run, load_runs

HEADER = "study\trun\tlayout\tfastq_1\tfastq_2\n"


def test_rpkm_by_hand():
    # 10 reads on a 2 kb gene in a library of 1 million mapped reads: 10 / 2 kb / 1 M = 5 RPKM
    assert rpkm(np.array([10, 0, 3]), np.array([2000, 500, 1000]), 1_000_000) == pytest.approx([5.0, 0.0, 3.0])
    assert rpkm(np.array([4]), np.array([1000]), 0)[0] == 0.0  # an empty library has no RPKM, not inf


def sheet(tmp_path, body, header=HEADER):
    path = tmp_path / "runs.tsv"
    path.write_text(header + body)
    return path


def test_runs_sheet_resolves_paths_relative_to_itself(tmp_path):
    runs = load_runs(sheet(tmp_path, "GSE1\tSRR1\tpaired\ta_1.fq.gz\ta_2.fq.gz\nGSE1\tSRR2\tSINGLE\tb.fq.gz\t\n"))
    assert list(runs.index) == ["SRR1", "SRR2"]
    assert runs.loc["SRR1", "layout"] == "PAIRED"
    assert runs.loc["SRR1", "fastq_2"] == str(tmp_path / "a_2.fq.gz")


def test_one_run_is_read_as_the_whole_sheet_reads_it(tmp_path):
    path = sheet(tmp_path, "".join(f"GSE1\tSRR{i}\tpaired\ta{i}_1.fq.gz\ta{i}_2.fq.gz\n" for i in range(1, 200)))
    assert load_run(path, "SRR150") == load_runs(path).loc["SRR150"].to_dict()
    with pytest.raises(InputError, match=r"runs\.tsv: run SRR999 is not in the runs sheet"):
        load_run(path, "SRR999")
    bad = sheet(tmp_path, "GSE1\tSRR1\tSINGLE\ta.fq\t\nGSE1\tSRR2\tTRIPLE\tb.fq\t\n")
    with pytest.raises(InputError, match=r"layout: 'TRIPLE' is not one of"):
        load_run(bad, "SRR2")


@pytest.mark.parametrize(
    ("header", "body", "problem"),
    [
        ("study\trun\tfastq_1\n", "GSE1\tSRR1\ta.fq\n", "missing required column.*layout"),
        (HEADER, "GSE1\tSRR1\tSINGLE\ta.fq\t\nGSE1\tSRR1\tSINGLE\tb.fq\t\n", "duplicated run accession.*SRR1"),
        (HEADER, "GSE1\tSRR1\tPAIRED\ta.fq\t\n", "line 2 .*fastq_2"),
        (HEADER, "GSE1\t../../etc\tSINGLE\ta.fq\t\n", "line 2 .*run: .*does not match"),
        (HEADER, "GSE1\tSRR1\tTRIPLE\ta.fq\t\n", "line 2 .*layout: 'TRIPLE' is not one of"),
    ],
)
def test_bad_runs_sheet(tmp_path, header, body, problem):
    with pytest.raises(InputError, match=rf"runs\.tsv: .*{problem}"):
        load_runs(sheet(tmp_path, body, header))


def test_header_only_runs_sheet_is_an_empty_atlas(tmp_path):
    runs = load_runs(sheet(tmp_path, ""))
    assert runs.empty and {"study", "run", "layout", "fastq_1", "fastq_url_1"} <= set(runs.columns)


def test_cli_error_is_one_line(tmp_path):
    done = subprocess.run(
        [
            BIN / "scatlas",
            "quantify",
            "--bam",
            tmp_path / "x.bam",
            "--gtf",
            tmp_path / "missing.gtf",
            "--output",
            tmp_path / "out.tsv",
        ],
        capture_output=True,
        text=True,
        env=tool_env(),
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "missing.gtf: GTF file not found" in done.stderr
    assert not (tmp_path / "out.tsv").exists()
