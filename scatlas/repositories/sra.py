"""Sequencing runs: ENA portal filereport (FASTQ URLs and md5) and SRA RunInfo as the fallback.

A run record (:data:`RUN_FIELDS`) is what the runs sheet needs: layout, read count, the sample and
experiment it belongs to, and per mate a FASTQ URL with its md5 and size. Records without FASTQ
URLs are fetched from SRA by accession (``fasterq-dump``).
"""

from __future__ import annotations

import csv
import io

from scatlas.repositories.accessions import is_accession
from scatlas.repositories.http import MalformedResponse, Remote

RUN_FIELDS = [
    "run",
    "experiment",
    "sra_sample",
    "sample_alias",
    "layout",
    "library_strategy",
    "library_source",
    "read_count",
    "organism",
    "fastq_url_1",
    "fastq_url_2",
    "fastq_md5_1",
    "fastq_md5_2",
    "fastq_bytes_1",
    "fastq_bytes_2",
]
ENA_FIELDS = [
    "run_accession",
    "experiment_accession",
    "sample_accession",
    "secondary_sample_accession",
    "study_accession",
    "sample_alias",
    "experiment_alias",
    "library_layout",
    "library_strategy",
    "library_source",
    "read_count",
    "tax_id",
    "scientific_name",
    "fastq_ftp",
    "fastq_md5",
    "fastq_bytes",
]
# RunInfo rows sometimes come without their header (PavlidisLab/rnaseq-pipeline read_runinfo)
RUNINFO_COLUMNS = [
    "Run",
    "ReleaseDate",
    "LoadDate",
    "spots",
    "bases",
    "spots_with_mates",
    "avgLength",
    "size_MB",
    "AssemblyName",
    "download_path",
    "Experiment",
    "LibraryName",
    "LibraryStrategy",
    "LibrarySelection",
    "LibrarySource",
    "LibraryLayout",
    "InsertSize",
    "InsertDev",
    "Platform",
    "Model",
    "SRAStudy",
    "BioProject",
    "Study_Pubmed_id",
    "ProjectID",
    "Sample",
    "BioSample",
    "SampleType",
    "TaxID",
    "ScientificName",
    "SampleName",
]


def _rows(body: bytes, delimiter: str) -> list[list[str]]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as err:
        raise MalformedResponse(f"not UTF-8 text ({err})") from None
    return [row for row in csv.reader(io.StringIO(text), delimiter=delimiter) if any(cell.strip() for cell in row)]


def parse_filereport(body: bytes) -> list[dict]:
    """ENA portal ``filereport`` TSV → run records (an empty body or header-only report → [])."""
    rows = _rows(body, "\t")
    if not rows:
        return []
    header = rows[0]
    if "run_accession" not in header:
        raise MalformedResponse("filereport without a run_accession column")
    runs = []
    for row in rows[1:]:
        if len(row) != len(header):
            raise MalformedResponse(f"filereport row has {len(row)} fields, header {len(header)}")
        record = dict(zip(header, row, strict=False))
        if not is_accession("run", record["run_accession"]):
            raise MalformedResponse(f"filereport names {record['run_accession'][:40]!r} as a run")
        files = {key: record.get(key, "").split(";") for key in ("fastq_ftp", "fastq_md5", "fastq_bytes")}
        urls = files["fastq_ftp"] if any(files["fastq_ftp"]) else []
        # ENA lists a paired run's unpaired reads as a third file, RUN.fastq.gz; keep the two mates
        mates = [i for i, url in enumerate(urls) if url.endswith(("_1.fastq.gz", "_2.fastq.gz"))]
        mates = mates or list(range(len(urls)))
        layout = record.get("library_layout", "").upper() or ("PAIRED" if len(mates) == 2 else "SINGLE")
        per_mate = {}
        for mate, index in enumerate(mates[:2], start=1):
            for key, column in (("url", "fastq_ftp"), ("md5", "fastq_md5"), ("bytes", "fastq_bytes")):
                values = files[column]
                per_mate[f"fastq_{key}_{mate}"] = values[index] if index < len(values) else ""
        runs.append(
            {
                "run": record["run_accession"],
                "experiment": record.get("experiment_accession", ""),
                "sra_sample": record.get("secondary_sample_accession", "") or record.get("sample_accession", ""),
                "sample_alias": record.get("sample_alias", ""),
                "layout": layout,
                "library_strategy": record.get("library_strategy", ""),
                "library_source": record.get("library_source", ""),
                "read_count": record.get("read_count", ""),
                "organism": record.get("scientific_name", ""),
                **{f"fastq_{key}_{mate}": "" for key in ("url", "md5", "bytes") for mate in (1, 2)},
                **per_mate,
            }
        )
    return runs


def parse_runinfo(body: bytes) -> list[dict]:
    """SRA RunInfo CSV (with or without its header) → run records without FASTQ URLs."""
    rows = _rows(body, ",")
    if not rows:
        return []
    header = rows[0] if rows[0][0] == "Run" else RUNINFO_COLUMNS
    runs = []
    for row in rows[1:] if header is rows[0] else rows:
        if row[0] == "Run":  # RunInfo repeats its header between batches
            continue
        record = dict(zip(header, row, strict=False))
        if not is_accession("run", record.get("Run", "")):
            raise MalformedResponse(f"RunInfo names {record.get('Run', '')[:40]!r} as a run")
        runs.append(
            {
                **dict.fromkeys(RUN_FIELDS, ""),
                "run": record["Run"],
                "experiment": record.get("Experiment", ""),
                "sra_sample": record.get("Sample", ""),
                "sample_alias": record.get("SampleName", ""),
                "layout": record.get("LibraryLayout", "").upper(),
                "library_strategy": record.get("LibraryStrategy", ""),
                "library_source": record.get("LibrarySource", ""),
                "read_count": record.get("spots", ""),
                "organism": record.get("ScientificName", ""),
            }
        )
    return runs


def ena_runs(remote: Remote, accession: str) -> list[dict]:
    """Every run of an SRA/ENA study, experiment, sample or run accession, with its FASTQ files."""
    params = {"accession": accession, "result": "read_run", "fields": ",".join(ENA_FIELDS)}
    return remote.get("ena", "filereport", params, parse=parse_filereport, what=accession)


def sra_runinfo(remote: Remote, accession: str) -> list[dict]:
    """RunInfo of an SRA accession through E-utilities (for runs ENA does not list yet)."""
    params = {"db": "sra", "id": accession, "rettype": "runinfo", "retmode": "text"}
    return remote.get("eutils", "efetch.fcgi", params, parse=parse_runinfo, what=accession)
