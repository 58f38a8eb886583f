"""A replay site for the query tests: real recorded responses plus generated ones in the same formats.

Real: the family SOFT of GSE93431 (mouse liver Hi-C/ChIP-seq/bulk RNA-seq), the esummary document
of GSE93374 (mouse Drop-seq) and the ENA filereport format. Generated: the esearch/esummary pages of
two publication windows (paged two series at a time), Smart-seq2 single-cell series with small
FASTQ files, their ENA filereports, and BioStudies search pages, study record and SDRF for one
ArrayExpress study and one ArrayExpress mirror of a GEO series.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
from pathlib import Path

import pandas as pd
from conftest import SHARED

from scatlas.repositories.geo import family_soft_path
from scatlas.repositories.sra import ENA_FIELDS

FIXTURES = SHARED / "data" / "api_fixtures"
PAGE = 2  # esummary page size used by the tests, so that every window spans several pages
HOSTILE_TITLE = "cell ../../etc/passwd $(rm -rf ~); ls `id` | cat"

# window → series published in it. GSE93431 (real SOFT) and GSE93374 (real esummary) are mouse
# series whose samples must all be excluded: not RNA-seq / not single-cell, and Drop-seq.
WINDOWS = {
    ("2020-01-01", "2020-12-31"): ["GSE990101", "GSE990102", "GSE93431"],
    ("2021-01-01", "2021-12-31"): ["GSE990103", "GSE93374", "GSE990104"],
}
SMART_SEQ = ["GSE990101", "GSE990102", "GSE990103", "GSE990104"]
CELLS_PER_SERIES = 3
ARRAYEXPRESS = "E-MTAB-99901"


def _write(path: Path, body: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body.encode() if isinstance(body, str) else body)
    return path


def _fastq(path: Path, name: str, n: int = 20) -> tuple[str, int]:
    rng = random.Random(name)  # random bases compress poorly: larger files exercise resumed downloads
    reads = "".join(f"@{name}.{i}\n{''.join(rng.choices('ACGT', k=50))}\n+\n{'I' * 50}\n" for i in range(n))
    body = gzip.compress(reads.encode(), mtime=0)
    _write(path, body)
    return hashlib.md5(body).hexdigest(), len(body)


def samples_of(series: str) -> list[str]:
    return [f"GSM{series[3:]}{i}" for i in range(1, CELLS_PER_SERIES + 1)]


def runs_of(series: str) -> list[str]:
    return [f"SRR{series[3:]}{i}" for i in range(1, CELLS_PER_SERIES + 1)]


def build(root: Path) -> Path:
    """Write the site into ``root`` (routes.tsv and bodies); return ``root``."""
    routes: list[tuple[str, str, str]] = []
    real_gse93374 = json.loads((FIXTURES / "ffq/GSE93374_summary.txt").read_text())["result"]["200093374"]
    for number, ((start, end), series_list) in enumerate(WINDOWS.items(), start=1):
        webenv = f"MCID_window{number}"
        search = {
            "header": {"type": "esearch", "version": "0.3"},
            "esearchresult": {
                "count": str(len(series_list)),
                "retmax": "0",
                "retstart": "0",
                "querykey": "1",
                "webenv": webenv,
                "idlist": [],
            },
        }
        _write(root / f"esearch{number}.json", json.dumps(search))
        routes.append(
            (
                "/eutils/esearch.fcgi",
                f"mindate={start.replace('-', '/')}&maxdate={end.replace('-', '/')}",
                f"esearch{number}.json",
            )
        )
        for page_start in range(0, len(series_list), PAGE):
            documents = {}
            for series in series_list[page_start : page_start + PAGE]:
                uid = f"200{series[3:]}"
                if series == "GSE93374":
                    documents[uid] = real_gse93374
                else:
                    documents[uid] = {
                        "uid": uid,
                        "accession": series,
                        "entrytype": "GSE",
                        "taxon": "Mus musculus",
                        "title": f"Series {series}",
                        "summary": "",
                        "n_samples": CELLS_PER_SERIES,
                        "gdstype": "Expression profiling by high throughput sequencing",
                        "pdat": start.replace("-", "/"),
                        "extrelations": [{"relationtype": "SRA", "targetobject": f"SRP{series[3:]}"}],
                    }
            page = {"header": {"type": "esummary"}, "result": {"uids": list(documents), **documents}}
            name = f"esummary{number}-{page_start}.json"
            _write(root / name, json.dumps(page))
            routes.append(("/eutils/esummary.fcgi", f"WebEnv={webenv}&retstart={page_start}", name))
    # an incremental query starts on the day the last window ended: same answer as window 2
    routes.append(("/eutils/esearch.fcgi", "mindate=2020/12/31&maxdate=2021/12/31", "esearch2.json"))
    for series in SMART_SEQ:
        routes += _smart_seq_series(root, series)
    soft = family_soft_path("GSE93431")
    routes.append((f"/geo/{soft}", "", str(FIXTURES / "dcicwrangling/GSE93431_family.soft.gz")))
    routes += _drop_seq_series(root, real_gse93374)
    routes += _arrayexpress(root)
    pd.DataFrame(routes, columns=["path", "query", "file"]).to_csv(root / "routes.tsv", sep="\t", index=False)
    return root


def _smart_seq_series(root: Path, series: str) -> list[tuple[str, str, str]]:
    lines = [f"^SERIES = {series}", f"!Series_title = Smart-seq2 single-cell RNA-seq {series}"]
    lines += [f"!Series_sample_id = {s}" for s in samples_of(series)]
    report, routes = [], []
    for i, (sample, run) in enumerate(zip(samples_of(series), runs_of(series), strict=False)):
        # the second study's first sample carries hostile text; it must stay inert metadata
        title = HOSTILE_TITLE if series == "GSE990102" and i == 0 else f"single hepatocyte {i}"
        lines += [
            f"^SAMPLE = {sample}",
            f"!Sample_title = {title}",
            f"!Sample_geo_accession = {sample}",
            "!Sample_source_name_ch1 = liver",
            "!Sample_organism_ch1 = Mus musculus",
            "!Sample_characteristics_ch1 = cell type: hepatocyte",
            "!Sample_extract_protocol_ch1 = Smart-seq2 on FACS-sorted single cells",
            "!Sample_library_strategy = RNA-Seq",
            "!Sample_library_source = transcriptomic single cell",
            f"!Sample_relation = SRA: https://www.ncbi.nlm.nih.gov/sra?term=SRX{sample[3:]}",
        ]
        paired = i == 2
        files = []
        for mate in (1, 2) if paired else (1,):
            name = f"{run}_{mate}.fastq.gz"
            md5, size = _fastq(root / "fastq" / name, run, n=8000 if run == "SRR9901011" else 20)
            files.append((f"@REPLAY@/fastq/{name}", md5, str(size)))
            routes.append((f"/fastq/{name}", "", f"fastq/{name}"))
        report.append(
            {
                "run_accession": run,
                "experiment_accession": f"SRX{sample[3:]}",
                "sample_alias": sample,
                "secondary_sample_accession": f"SRS{sample[3:]}",
                "library_layout": "PAIRED" if paired else "SINGLE",
                "library_strategy": "RNA-Seq",
                "library_source": "TRANSCRIPTOMIC SINGLE CELL",
                "read_count": "20",
                "tax_id": "10090",
                "scientific_name": "Mus musculus",
                "fastq_ftp": ";".join(f[0] for f in files),
                "fastq_md5": ";".join(f[1] for f in files),
                "fastq_bytes": ";".join(f[2] for f in files),
            }
        )
    soft = family_soft_path(series)
    _write(root / "geo" / soft, gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0))
    _write(root / f"ena/SRP{series[3:]}.tsv", pd.DataFrame(report, columns=ENA_FIELDS).to_csv(sep="\t", index=False))
    return [
        *routes,
        (f"/geo/{soft}", "", f"geo/{soft}"),
        ("/ena/filereport", f"accession=SRP{series[3:]}", f"ena/SRP{series[3:]}.tsv"),
    ]


def _drop_seq_series(root: Path, document: dict) -> list[tuple[str, str, str]]:
    """GSE93374's samples as its esummary lists them (real titles), in a family SOFT."""
    lines = ["^SERIES = GSE93374", f"!Series_title = {document['title']}"]
    for sample in document["samples"]:
        lines += [
            f"^SAMPLE = {sample['accession']}",
            f"!Sample_title = {sample['title']}",
            f"!Sample_geo_accession = {sample['accession']}",
            "!Sample_organism_ch1 = Mus musculus",
            "!Sample_library_strategy = RNA-Seq",
            "!Sample_library_source = transcriptomic",
            f"!Sample_relation = SRA: https://www.ncbi.nlm.nih.gov/sra?term=SRX{sample['accession'][3:]}",
        ]
    soft = family_soft_path("GSE93374")
    _write(root / "geo" / soft, gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0))
    return [(f"/geo/{soft}", "", f"geo/{soft}")]


def _arrayexpress(root: Path) -> list[tuple[str, str, str]]:
    hits = [
        {"accession": "E-GEOD-990101", "type": "study", "title": "mirror"},
        {"accession": ARRAYEXPRESS, "type": "study", "title": "single-cell RNA-seq of mouse islets"},
    ]
    _write(root / "ae/search1.json", json.dumps({"page": 1, "pageSize": 100, "totalHits": 2, "hits": hits}))
    _write(root / "ae/empty.json", json.dumps({"page": 2, "pageSize": 100, "totalHits": 2, "hits": []}))
    study = {
        "accno": ARRAYEXPRESS,
        "attributes": [{"name": "Title", "value": "islet cells"}, {"name": "ReleaseDate", "value": "2020-05-05"}],
        "section": {
            "type": "Study",
            "attributes": [
                {"name": "Title", "value": "single-cell RNA-seq of mouse islets"},
                {"name": "Organism", "value": "Mus musculus"},
                {"name": "Study type", "value": "RNA-seq of coding RNA from single cells"},
            ],
        },
    }
    _write(root / "ae/study.json", json.dumps(study))
    header = [
        "Source Name",
        "Characteristics[organism]",
        "Characteristics[cell type]",
        "Comment[ENA_SAMPLE]",
        "Comment[LIBRARY_STRATEGY]",
        "Comment[LIBRARY_SOURCE]",
        "Comment[ENA_RUN]",
        "Comment[FASTQ_URI]",
    ]
    rows, routes = [], []
    for i, cell_type in enumerate(["type B pancreatic cell", "pancreatic A cell"], start=1):
        run = f"ERR99901{i}"
        md5, size = _fastq(root / "fastq" / f"{run}.fastq.gz", run)
        routes.append((f"/fastq/{run}.fastq.gz", "", f"fastq/{run}.fastq.gz"))
        rows.append(
            [
                f"islet cell {i}",
                "Mus musculus",
                cell_type,
                f"ERS99901{i}",
                "RNA-Seq",
                "TRANSCRIPTOMIC SINGLE CELL",
                run,
                f"ftp://ftp.sra.ebi.ac.uk/{run}.fastq.gz",
            ]
        )
        report = {
            "run_accession": run,
            "experiment_accession": f"ERX99901{i}",
            "sample_alias": f"islet cell {i}",
            "library_layout": "SINGLE",
            "library_strategy": "RNA-Seq",
            "scientific_name": "Mus musculus",
            "fastq_ftp": f"@REPLAY@/fastq/{run}.fastq.gz",
            "fastq_md5": md5,
            "fastq_bytes": str(size),
        }
        _write(root / f"ae/{run}.tsv", pd.DataFrame([report], columns=ENA_FIELDS).to_csv(sep="\t", index=False))
        routes.append(("/ena/filereport", f"accession={run}", f"ae/{run}.tsv"))
    _write(root / "ae/sdrf.txt", "\n".join("\t".join(r) for r in [header, *rows]) + "\n")
    return [
        *routes,
        ("/biostudies/api/v1/arrayexpress/search", "page=1", "ae/search1.json"),
        ("/biostudies/api/v1/arrayexpress/search", "", "ae/empty.json"),
        (f"/biostudies/api/v1/studies/{ARRAYEXPRESS}", "", "ae/study.json"),
        (f"/biostudies/files/{ARRAYEXPRESS}/{ARRAYEXPRESS}.sdrf.txt", "", "ae/sdrf.txt"),
    ]


def config(server_address: str, cache_dir: Path | None = None, **repositories) -> dict:
    """A workflow config whose repositories point at the replay server."""
    services = {
        name: {"base_url": f"http://{server_address}/{name}", "requests_per_second": 200}
        for name in ("eutils", "geo", "ena", "biostudies")
    }
    return {
        "query": {"organism": "Mus musculus"},
        "repositories": {
            "services": services,
            "backoff": 0.0,
            "retries": 6,
            "timeout": 2,
            "cache_dir": str(cache_dir) if cache_dir else "",
            **repositories,
        },
    }
