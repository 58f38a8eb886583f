"""A prebuilt HISAT2 index (reference.hisat2_index): served as an archive, md5-checked, unpacked once."""

import hashlib
import subprocess
import tarfile

import pytest
import yaml
from conftest import BIN, REPO, tool_env

from scatlas.io import InputError
from scatlas.reference import build_hisat2_index, hisat2_index_files, install_hisat2_index
from scatlas.repositories.http import download


@pytest.fixture(scope="module")
def archive(quasr, tmp_path_factory):
    """A small index built here (QuasR's hg19 slice), packed as the HISAT2 project packs theirs."""
    scratch = tmp_path_factory.mktemp("index")
    build_hisat2_index(quasr / "hg19sub.fa", quasr / "hg19sub_annotation.gtf", scratch / "hg19sub", splice_aware=False)
    path = scratch / "hg19sub.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for file in hisat2_index_files(scratch / "hg19sub"):
            tar.add(file, arcname=f"hg19sub/{file.rsplit('/', 1)[-1]}")
        tar.add(quasr / "hg19sub_snp.txt", arcname="hg19sub/README")
    return path


def md5(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_archive_served_over_http_is_checked_unpacked_and_aligns(archive, quasr, httpserver, tmp_path):
    httpserver.expect_request("/hisat/hg19sub.tar.gz").respond_with_data(archive.read_bytes())
    local = download(httpserver.url_for("/hisat/hg19sub.tar.gz"), tmp_path / "download/hg19sub.tar.gz")
    install_hisat2_index(local, tmp_path / "hisat2/genome", md5=md5(archive))
    assert all((tmp_path / "hisat2").joinpath(f"genome.{i}.ht2").stat().st_size > 0 for i in range(1, 9))
    reads = tmp_path / "reads.fq"
    reads.write_bytes(subprocess.run(["bzcat", quasr / "rna_1_1.fq.bz2"], capture_output=True, check=True).stdout)
    done = subprocess.run(
        ["hisat2", "--phred64", "-x", tmp_path / "hisat2/genome", "-U", reads, "-S", tmp_path / "out.sam"],
        capture_output=True,
        text=True,
        env=tool_env(),
    )
    assert done.returncode == 0 and "overall alignment rate" in done.stderr
    assert float(done.stderr.split("% overall")[0].split()[-1]) > 90  # QuasR's reads come from this slice


def test_folder_is_linked(archive, tmp_path):
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path, filter="data")
    install_hisat2_index(tmp_path / "hg19sub", tmp_path / "hisat2/genome")
    assert (tmp_path / "hisat2/genome.1.ht2").resolve() == (tmp_path / "hg19sub/hg19sub.1.ht2").resolve()


def test_wrong_md5_or_corrupt_archive_is_refused_in_one_line(archive, tmp_path):
    prefix = tmp_path / "hisat2/genome"
    with pytest.raises(InputError, match=r"hg19sub.tar.gz: md5 \w+ is not the configured 0+") as err:
        install_hisat2_index(archive, prefix, md5="0" * 32)
    assert "\n" not in str(err.value)
    corrupt = tmp_path / "corrupt.tar.gz"
    corrupt.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])  # a cut-off download
    with pytest.raises(InputError, match=r"corrupt.tar.gz: corrupt HISAT2 index archive") as err:
        install_hisat2_index(corrupt, prefix, md5=md5(corrupt))
    assert "\n" not in str(err.value)
    assert not list((tmp_path / "hisat2").glob("genome.*"))  # nothing half-written in place
    with pytest.raises(InputError, match="expected one HISAT2 index, found no complete"):
        install_hisat2_index(tmp_path, prefix)


def test_workflow_installs_a_configured_index_instead_of_building(tmp_path):
    config = {
        "reference": {"genome_fasta": "/nonexistent/genome.fa", "gtf": str(tmp_path / "genes.gtf")},
        "runs": str(tmp_path / "runs.tsv"),
    }
    (tmp_path / "genes.gtf").write_text("")
    for index, expected in (
        ({"hisat2_index": "https://example.org/grcm38_tran.tar.gz"}, "set reference.hisat2_index_md5"),
        (
            {"hisat2_index": "https://example.org/grcm38_tran.tar.gz", "hisat2_index_md5": "a" * 32},
            "rule hisat2_index_install",
        ),
    ):
        config["reference"].update(index)
        (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
        cmd = [
            BIN / "snakemake",
            "-n",
            "-s",
            REPO / "Snakefile",
            "-d",
            tmp_path,
            "--configfile",
            tmp_path / "config.yaml",
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, env=tool_env())
        assert expected in done.stdout + done.stderr
    assert "reference/download/grcm38_tran.tar.gz" in done.stdout and "hisat2_build" not in done.stdout
