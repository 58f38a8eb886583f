"""Stages 1-2: parsing real GEO/SRA/ENA responses, and the query run against a local replay site.

Expected values were read from the fixture files themselves (grep/zcat), not from the parsers.
"""

import gzip
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import replay_site
from conftest import BIN, SHARED, tool_env

from scatlas.demo.replay import ReplayServer
from scatlas.io import InputError
from scatlas.repositories import manifests
from scatlas.repositories.accessions import AccessionError, check, geo_series_of_mirror
from scatlas.repositories.fetch import fetch_mate
from scatlas.repositories.geo import _esummary, family_soft_path, parse_samples
from scatlas.repositories.http import MalformedResponse, Remote, RemoteError, Service
from scatlas.repositories.query import Criteria, Found, _resolve_samples, run_query
from scatlas.repositories.sra import parse_filereport, parse_runinfo
from scatlas.sheets import load_runs

FIXTURES = SHARED / "data" / "api_fixtures"


# --- parsers on the recorded real responses -------------------------------------------------------


def test_family_soft_samples_strategies_and_sra_links():
    samples = {s["accession"]: s for s in parse_samples(FIXTURES / "dcicwrangling/GSE93431_family.soft.gz")}
    assert len(samples) == 32
    strategies = pd.Series([s["library_strategy"] for s in samples.values()]).value_counts().to_dict()
    assert strategies == {"ChIP-Seq": 14, "Hi-C": 6, "RNA-Seq": 12}
    rna = samples["GSM2453291"]
    assert rna["title"] == "RNAseq_WT_Rep1" and rna["source_name"] == "WT" and rna["organism"] == "Mus musculus"
    assert rna["characteristics"].split(" | ")[0] == "strain: C57BL/6J"
    assert rna["characteristics"].endswith("tissue: liver") and rna["library_source"] == "transcriptomic"
    assert rna["sra"] == "SRX2485052"


def test_miniml_family_characteristics_by_tag():
    samples = parse_samples(FIXTURES / "pavlidis_rnaseq_pipeline/GSE100007_family.xml")
    assert len(samples) == 52 and {s["organism"] for s in samples} == {"Homo sapiens"}
    first = samples[0]
    assert first["accession"] == "GSM2667747" and first["title"] == "hesc_cyto_rep1"
    assert first["source_name"] == "Human embryonic stem cells (hESC)"
    assert [c.split(":")[0] for c in first["characteristics"].split(" | ")] == ["cell type", "fraction", "molecule"]


def test_sra_experiment_package_xml():
    samples = parse_samples(FIXTURES / "pavlidis_rnaseq_pipeline/GSE234419.xml")
    assert len(samples) == 5
    assert {s["library_source"] for s in samples} == {"TRANSCRIPTOMIC SINGLE CELL"}
    assert all("cell type: microglia" in s["characteristics"] for s in samples)
    runs = {r for s in samples for r in s["sra"].split(",") if r.startswith("SRR")}
    assert runs == {"SRR24867996", "SRR24867997", "SRR24867998", "SRR24867999", "SRR24868000"}
    worms = parse_samples(FIXTURES / "pysradb/sra_test.xml")
    assert len(worms) == 87 and {s["organism"] for s in worms} == {"Caenorhabditis elegans"}


def test_sra_error_body_and_non_metadata_files_are_clear_errors(tmp_path):
    with pytest.raises(InputError, match="SRX835000 is not public"):
        parse_samples(FIXTURES / "pavlidis_rnaseq_pipeline/SRX835000.xml")
    with pytest.raises(InputError, match=r"fastqs\.txt: not a GEO SOFT, MINiML or SRA XML"):
        parse_samples(FIXTURES / "ffq/fastqs.txt")
    cut = tmp_path / "GSE93431_family.soft.gz"
    cut.write_bytes((FIXTURES / "dcicwrangling/GSE93431_family.soft.gz").read_bytes()[:3000])
    with pytest.raises(InputError, match="not valid gzip"):
        parse_samples(cut)


def test_geo_samples_command_prints_one_row_per_sample():
    done = subprocess.run(
        [str(BIN / "scatlas"), "geo", "samples", str(FIXTURES / "geofetch/GSE146583_GSM.soft")],
        capture_output=True,
        text=True,
        env=tool_env(),
    )
    assert done.returncode == 0, done.stderr
    table = pd.read_csv(pd.io.common.StringIO(done.stdout), sep="\t", dtype=str, keep_default_na=False)
    assert len(table) == 50  # 50 ^SAMPLE blocks in the file
    assert table["organism"].value_counts().to_dict() == {"Homo sapiens": 38, "Mus musculus": 12}
    assert list(table.columns[:3]) == ["accession", "organism", "title"]


def test_ena_filereport_paired_and_empty():
    (run,) = parse_filereport((FIXTURES / "ffq/fastqs.txt").read_bytes())
    assert run["run"] == "SRR8426358" and run["layout"] == "PAIRED"
    assert run["fastq_url_2"] == "ftp.sra.ebi.ac.uk/vol1/fastq/SRR842/008/SRR8426358/SRR8426358_2.fastq.gz"
    assert run["fastq_md5_1"] == "be7e88cf6f6fd90f1b1170f1cb367123" and run["fastq_bytes_2"] == "7194107512"
    (empty,) = parse_filereport((FIXTURES / "ffq/fastqs_empty.txt").read_bytes())
    assert empty["run"] == "SRR6835844" and empty["fastq_url_1"] == ""  # listed, but no FASTQ: SRA fallback


def test_runinfo_with_and_without_header():
    runs = parse_runinfo((FIXTURES / "pavlidis_rnaseq_pipeline/SRX26261721.runinfo").read_bytes())
    assert [r["run"] for r in runs] == ["SRR30863712", "SRR30863713"]
    assert {r["layout"] for r in runs} == {"PAIRED"} and runs[0]["library_source"] == "TRANSCRIPTOMIC SINGLE CELL"
    assert runs[0]["organism"] == "Homo sapiens" and runs[0]["read_count"] == "182659799"
    (mouse,) = parse_runinfo((FIXTURES / "pavlidis_rnaseq_pipeline/SRX12752257.runinfo").read_bytes())
    assert (mouse["run"], mouse["experiment"], mouse["organism"]) == ("SRR16550084", "SRX12752257", "Mus musculus")


def test_esummary_page_of_the_wrong_length_is_malformed():
    body = (FIXTURES / "ffq/GSE93374_summary.txt").read_bytes()
    (document,) = _esummary(body, 1)
    assert document["accession"] == "GSE93374" and len(document["samples"]) == 11
    with pytest.raises(MalformedResponse, match="1 records, expected 2"):
        _esummary(body, 2)


def test_accessions_are_validated_before_use():
    assert check("run", "SRR5164436") == "SRR5164436"
    assert geo_series_of_mirror("E-GEOD-93374") == "GSE93374" and geo_series_of_mirror("E-MTAB-1") is None
    assert family_soft_path("GSE93374") == "series/GSE93nnn/GSE93374/soft/GSE93374_family.soft.gz"
    assert family_soft_path("GSE12") == "series/GSEnnn/GSE12/soft/GSE12_family.soft.gz"
    for hostile in ["../../etc/passwd", "SRR1; ls", "$(rm -rf ~)", "SRR1\nSRR2", "GSE1/../../x"]:
        with pytest.raises(AccessionError):
            check("run" if hostile.startswith("SRR") or "$" in hostile else "series", hostile)


def test_single_cell_criteria():
    criteria = Criteria()
    smart = {"organism": "Mus musculus", "library_strategy": "RNA-Seq", "title": "single cell 5"}
    assert criteria.exclusion(smart, "") is None
    assert "not the organism" in criteria.exclusion({**smart, "organism": "Homo sapiens"}, "")
    assert "not RNA-seq" in criteria.exclusion({**smart, "library_strategy": "ATAC-seq"}, "")
    assert "bulk" in criteria.exclusion({**smart, "title": "bulk liver"}, "")
    drop = {**smart, "title": "Drop-Seq analysis of Pooled Arc-ME single-cell suspension"}
    assert "many cells" in criteria.exclusion(drop, "")
    plain = {"organism": "Mus musculus", "library_strategy": "RNA-Seq", "title": "liver rep1"}
    assert "no single-cell evidence" in criteria.exclusion(plain, "bulk liver series")
    assert criteria.exclusion(plain, "Smart-seq2 of single cells") is None  # the series says so


# --- the query against a replay site --------------------------------------------------------------


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = replay_site.build(tmp_path_factory.mktemp("site"))
    with ReplayServer(root) as server:
        yield server


def _query(site, directory, window, cache=None, **repositories):
    config = replay_site.config(site.address, cache, **repositories)
    config["query"]["page_size"] = replay_site.PAGE
    start, end = window
    return run_query(config, directory, since=start, until=end, today="2026-11-20")


WINDOW_1, WINDOW_2 = list(replay_site.WINDOWS)


def test_query_resolves_studies_samples_runs_and_exclusions(site, tmp_path):
    counts = _query(site, tmp_path, WINDOW_1)
    studies = manifests.read(tmp_path, "studies").set_index("study")
    assert set(studies.index) == {"GSE990101", "GSE990102", "GSE93431", "E-MTAB-99901"}  # E-GEOD-990101 = GSE990101
    assert studies.loc["GSE93431", "status"] == "excluded" and studies.loc["GSE990101", "status"] == "included"
    excluded = manifests.read(tmp_path, "excluded")
    gse93431 = excluded[excluded["study"] == "GSE93431"]
    assert len(gse93431) == 32  # every sample of the Hi-C/ChIP/bulk series, each with its reason
    assert gse93431["reason"].str.startswith("not RNA-seq").sum() == 20
    assert gse93431["reason"].str.startswith("not single-cell").sum() == 12
    runs = load_runs(tmp_path / "runs.tsv")  # the sheet the alignment stages validate
    assert len(runs) == 2 * replay_site.CELLS_PER_SERIES + 2 and counts["runs"] == len(runs)
    assert runs.loc["SRR9901013", "layout"] == "PAIRED" and runs.loc["SRR9901013", "fastq_url_2"].endswith(
        "_2.fastq.gz"
    )
    assert runs.loc["ERR999011", "sample"] == "ERS999011" and runs.loc["ERR999011", "study"] == "E-MTAB-99901"
    samples = manifests.read(tmp_path, "samples").set_index("sample")
    assert samples.loc["ERS999012", "characteristics"] == "cell type: pancreatic A cell"
    assert samples.loc["GSM9901021", "title"] == replay_site.HOSTILE_TITLE  # kept as inert text


def test_incremental_windows_never_duplicate_or_drop(site, tmp_path):
    _query(site, tmp_path, WINDOW_1)
    first = {name: manifests.read(tmp_path, name) for name in ("studies", "samples", "runs", "excluded")}
    _query(site, tmp_path, WINDOW_2)
    studies = manifests.read(tmp_path, "studies")
    assert studies["study"].is_unique
    assert set(studies["study"]) == {
        "GSE990101",
        "GSE990102",
        "GSE93431",
        "GSE990103",
        "GSE93374",
        "GSE990104",
        "E-MTAB-99901",
    }
    excluded = manifests.read(tmp_path, "excluded")
    assert (excluded.loc[excluded["study"] == "GSE93374", "reason"].str.contains("drop-seq", case=False)).sum() == 11
    runs = manifests.read(tmp_path, "runs")
    assert runs["run"].is_unique and set(first["runs"]["run"]) <= set(runs["run"])
    assert len(runs) == 4 * replay_site.CELLS_PER_SERIES + 2
    after = {name: manifests.read(tmp_path, name) for name in ("studies", "samples", "runs", "excluded")}
    _query(site, tmp_path, WINDOW_2)  # the same window again adds nothing
    for name, table in after.items():
        again = manifests.read(tmp_path, name)
        columns = [c for c in table.columns if c != "last_checked"]
        pd.testing.assert_frame_equal(again[columns], table[columns])
    queries = manifests.read(tmp_path, "queries")
    assert list(queries["window_end"]) == [
        "2020-12-31",
        "2020-12-31",
        "2021-12-31",
        "2021-12-31",
        "2021-12-31",
        "2021-12-31",
    ]
    assert manifests.last_window_end(tmp_path, "geo") == "2021-12-31"


def test_next_query_starts_where_the_last_one_ended(site, tmp_path):
    _query(site, tmp_path, WINDOW_1)
    config = replay_site.config(site.address)
    config["query"].update(page_size=replay_site.PAGE, until="2021-12-31", sources=["geo"])
    site.requests.clear()
    run_query(config, tmp_path, today="2026-11-20")
    searches = [r for r in site.requests if "esearch" in r]
    assert len(searches) == 1 and "mindate=2020%2F12%2F31" in searches[0] and "maxdate=2021%2F12%2F31" in searches[0]


def test_fifty_injected_faults_lose_and_duplicate_nothing(site, tmp_path):
    _query(site, tmp_path / "clean", WINDOW_1)
    faults = ["status:429:0", "status:500", "status:503:0", "reset", "timeout:1.5", "truncate", "corrupt"]
    targets = [
        "/eutils/esearch",
        "/eutils/esummary",
        "/ena/filereport",
        "/biostudies/api/v1/arrayexpress/search",
        "/biostudies/api/v1/studies",
        "/biostudies/files",
    ]
    targets += [f"/geo/{family_soft_path(s)}" for s in ("GSE990101", "GSE990102", "GSE93431")]
    retries = 6  # at most this many faults per target, so no single request can exhaust its retries
    for i, target in enumerate(targets):
        site.inject(target, *[faults[(i + k) % len(faults)] for k in range(retries)])
    _query(site, tmp_path / "faulty", WINDOW_1, retries=retries, timeout=1)
    served = len(targets) * retries - site.pending_faults()
    site.faults.clear()
    assert served >= 50
    for name in ("studies", "samples", "runs", "excluded"):
        clean, faulty = manifests.read(tmp_path / "clean", name), manifests.read(tmp_path / "faulty", name)
        pd.testing.assert_frame_equal(faulty, clean)
    assert not list((tmp_path / "faulty").glob(".*"))  # no temporary file left behind


def test_permanent_fault_names_the_accession_and_keeps_manifests_valid(site, tmp_path):
    _query(site, tmp_path, WINDOW_1)
    before = manifests.read(tmp_path, "runs")
    site.inject(f"/geo/{family_soft_path('GSE990103')}", *["status:503:0"] * 10)
    with pytest.raises(RemoteError, match="GSE990103: geo failed after 3 attempts"):
        _query(site, tmp_path, WINDOW_2, retries=2)
    site.faults.clear()
    runs = load_runs(tmp_path / "runs.tsv")  # still a valid sheet, nothing lost
    assert set(before["run"]) <= set(runs.index)
    assert manifests.last_window_end(tmp_path, "geo") == "2020-12-31"  # the failed window is not marked done
    _query(site, tmp_path, WINDOW_2)
    assert "GSE990103" in set(manifests.read(tmp_path, "studies")["study"])


def test_cache_answers_repeated_requests(site, tmp_path):
    _query(site, tmp_path / "a", WINDOW_1, cache=tmp_path / "cache")
    site.requests.clear()
    _query(site, tmp_path / "b", WINDOW_1, cache=tmp_path / "cache")
    assert not [r for r in site.requests if r.startswith(("/geo/", "/ena/", "/biostudies/api/v1/studies"))]
    assert [r for r in site.requests if "esearch" in r]  # searches are never cached: the window's answer changes


def test_query_command_reports_failure_in_one_line(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(
        "repositories:\n  services:\n    eutils: {base_url: 'http://127.0.0.1:9/eutils', "
        "requests_per_second: 100}\n  retries: 0\n  timeout: 1\nquery:\n  sources: [geo]\n"
    )
    done = subprocess.run(
        [str(BIN / "scatlas"), "query", "--config", str(config), "--manifests", str(tmp_path / "m")],
        capture_output=True,
        text=True,
        env=tool_env(),
    )
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("scatlas query: error: GEO search") and "failed after 1 attempts" in line


def test_hostile_metadata_never_reaches_a_path_or_shell(site, tmp_path):
    home = Path.home()
    before = set(home.iterdir()) if home.is_dir() else set()
    _query(site, tmp_path, WINDOW_1)
    written = {p.name for p in tmp_path.rglob("*")}
    assert written == {f"{n}.tsv" for n in ("studies", "samples", "runs", "excluded", "queries")}
    assert (set(home.iterdir()) if home.is_dir() else set()) == before
    text = (tmp_path / "samples.tsv").read_text()
    assert "$(rm -rf ~)" in text  # recorded verbatim as metadata, never executed


def test_hostile_accession_in_a_soft_is_excluded_not_used(tmp_path):
    soft = tmp_path / "GSE1_family.soft"
    soft.write_text("^SAMPLE = ../../etc/passwd\n!Sample_title = x\n!Sample_geo_accession = ../../etc/passwd\n")
    (sample,) = parse_samples(soft)
    assert sample["accession"] == "../../etc/passwd"  # parsed as text; the query stage validates it
    found = Found()
    _resolve_samples(Remote(), "GSE1", [{**sample, "sra": "SRX1"}], "", "", Criteria(), found, "2026-11-20")
    (excluded,) = found.excluded
    assert excluded["reason"] == "no valid sample accession" and "/" not in excluded["accession"]
    assert not found.samples and not found.runs


def test_truncated_download_resumes_and_wrong_md5_is_refetched(site, tmp_path):
    remote = Remote(retries=4, backoff=0)
    url = f"{site.base_url}/fastq/SRR9901011_1.fastq.gz"
    good = (Path(site.root) / "fastq/SRR9901011_1.fastq.gz").read_bytes()
    md5 = __import__("hashlib").md5(good).hexdigest()
    site.inject("/fastq/SRR9901011_1", "truncate", "reset", "corrupt")
    out = remote.download(url, tmp_path / "r_1.fastq.gz", md5=md5, size=len(good), progress=False)
    assert out.read_bytes() == good and gzip.decompress(out.read_bytes()).startswith(b"@SRR9901011")
    assert [r for r in site.ranges if r[0].endswith("SRR9901011_1.fastq.gz") and r[1] != "bytes=0-"]  # resumed
    with pytest.raises(RemoteError, match="md5 mismatch"):
        remote.download(url, tmp_path / "bad.fastq.gz", md5="0" * 32, progress=False)
    assert not (tmp_path / "bad.fastq.gz").exists()


def test_session_is_polite_and_identifies_itself(site):
    services = {"eutils": Service(f"{site.base_url}/eutils", 10.0)}
    remote = Remote(services, email="curator@example.org", retries=0)
    site.requests.clear()
    started = time.monotonic()
    for _ in range(6):
        remote.get("eutils", "esearch.fcgi", {"db": "gds", "mindate": "2020/01/01", "maxdate": "2020/12/31"})
    assert time.monotonic() - started >= 0.5  # 6 requests at 10/s: at least 5 intervals of 0.1 s
    assert all("tool=scatlas" in r and "email=curator%40example.org" in r for r in site.requests)
    assert any(agent.startswith("scatlas/") for agent in site.user_agents)
    assert Remote(email="x", api_key="k").services["eutils"].requests_per_second == 10.0  # NCBI's keyed limit
    assert Remote().services["eutils"].requests_per_second == 3.0


def test_retry_after_is_honoured(site):
    remote = Remote({"eutils": Service(f"{site.base_url}/eutils", 100.0)}, retries=2, backoff=0)
    site.inject("/eutils/esearch", "status:429:1")
    started = time.monotonic()
    remote.get("eutils", "esearch.fcgi", {"db": "gds", "mindate": "2020/01/01", "maxdate": "2020/12/31"})
    assert time.monotonic() - started >= 1.0  # waited as the server asked, although backoff is 0


def test_runs_without_fastq_urls_are_dumped_from_sra(tmp_path, monkeypatch):
    """The fallback runs the real fasterq-dump; prefetch's layout (./RUN/RUN.sra) keeps it offline."""
    reads = "".join(f"@read{i}\n{'ACGTTGCA' * 6}\n+\n{'I' * 48}\n" for i in range(50))
    (tmp_path / "reads.fastq").write_text(reads)
    subprocess.run(
        ["latf-load", "--output", str(tmp_path / "table"), "--quality", "PHRED_33", str(tmp_path / "reads.fastq")],
        capture_output=True,
        check=True,
    )
    (tmp_path / "SRR990000").mkdir()
    subprocess.run(
        ["kar", "--create", str(tmp_path / "SRR990000/SRR990000.sra"), "-d", str(tmp_path / "table")],
        capture_output=True,
        check=True,
    )
    monkeypatch.chdir(tmp_path)
    run = {"run": "SRR990000", "layout": "SINGLE", "fastq_url_1": ""}
    fetch_mate(run, 1, tmp_path / "reads/SRR990000_1.fastq.gz")
    dumped = gzip.decompress((tmp_path / "reads/SRR990000_1.fastq.gz").read_bytes()).decode().splitlines()
    assert len(dumped) == 200 and dumped[1] == "ACGTTGCA" * 6
    with pytest.raises(AccessionError):
        fetch_mate({**run, "run": "SRR1; rm -rf ~"}, 1, tmp_path / "x.fastq.gz")
