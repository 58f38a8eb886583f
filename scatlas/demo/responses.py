"""Repository responses describing the demo's studies, in the formats the real services return.

Written beside the simulated reads and served by :mod:`scatlas.demo.replay`: E-utilities esearch and
esummary JSON (db=gds), a family SOFT per series, ENA filereport TSV per SRA study, BioStudies
search pages (one ArrayExpress mirror of a demo series, then an empty page), and the FASTQ files.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import pandas as pd

from scatlas.io import atomic_output
from scatlas.repositories.geo import family_soft_path
from scatlas.repositories.sra import ENA_FIELDS

PUBLISHED = "2020/06/01"


def _write(path: Path, body: bytes | str) -> None:
    with atomic_output(path) as tmp:
        tmp.write_bytes(body.encode() if isinstance(body, str) else body)


def _sra_study(series: str) -> str:
    return f"SRP{series[3:]}"


def _experiment(sample: str) -> str:
    return f"SRX{sample[3:]}"


def write_responses(outdir: Path, samples: pd.DataFrame, runs: pd.DataFrame, extra_samples: list[dict]) -> Path:
    """Write ``outdir/replay`` (routes.tsv and bodies) for the demo's samples and runs; return it.

    ``extra_samples`` are listed in the series' SOFT but have no reads (e.g. a bulk sample the
    query stage must exclude).
    """
    root = outdir / "replay"
    routes = []
    studies = sorted(samples["study"].unique())
    search = {
        "header": {"type": "esearch", "version": "0.3"},
        "esearchresult": {
            "count": str(len(studies)),
            "retmax": "0",
            "retstart": "0",
            "querykey": "1",
            "webenv": "MCID_demo",
            "idlist": [],
        },
    }
    _write(root / "esearch.json", json.dumps(search, indent=1))
    routes.append(("/eutils/esearch.fcgi", "db=gds", "esearch.json"))
    uids = [f"200{s[3:]}" for s in studies]
    summary = {"header": {"type": "esummary", "version": "0.3"}, "result": {"uids": uids}}
    for uid, series in zip(uids, studies, strict=False):
        members = samples[samples["study"] == series]
        summary["result"][uid] = {
            "uid": uid,
            "accession": series,
            "title": f"Single-cell RNA-seq of mouse cells, demo study {series}",
            "summary": "Smart-seq2 single-cell transcriptomes of sorted mouse cells (synthetic demo).",
            "taxon": "Mus musculus",
            "entrytype": "GSE",
            "gdstype": "Expression profiling by high throughput sequencing",
            "pdat": PUBLISHED,
            "n_samples": len(members),
            "samples": [
                {"accession": a, "title": t} for a, t in zip(members["sample"], members["title"], strict=False)
            ],
            "extrelations": [{"relationtype": "SRA", "targetobject": _sra_study(series), "targetftplink": ""}],
        }
        extras = [e for e in extra_samples if e["study"] == series]
        soft = _family_soft(series, members.to_dict("records"), extras)
        _write(root / "geo" / family_soft_path(series), gzip.compress(soft.encode(), mtime=0))
        routes.append((f"/geo/{family_soft_path(series)}", "", f"geo/{family_soft_path(series)}"))
        report = _filereport(runs[runs["study"] == series], root)
        _write(root / "ena" / f"{_sra_study(series)}.tsv", report)
        routes.append(("/ena/filereport", f"accession={_sra_study(series)}", f"ena/{_sra_study(series)}.tsv"))
    _write(root / "esummary.json", json.dumps(summary, indent=1))
    routes.append(("/eutils/esummary.fcgi", "db=gds&retstart=0", "esummary.json"))
    mirror = {
        "page": 1,
        "pageSize": 100,
        "totalHits": 1,
        "isTotalHitsExact": True,
        "hits": [
            {
                "accession": f"E-GEOD-{studies[0][3:]}",
                "type": "study",
                "title": "mirror of a GEO series",
                "release_date": PUBLISHED.replace("/", "-"),
            }
        ],
    }
    _write(root / "biostudies" / "search-1.json", json.dumps(mirror, indent=1))
    _write(root / "biostudies" / "search-empty.json", json.dumps({**mirror, "page": 2, "hits": []}, indent=1))
    routes.append(("/biostudies/api/v1/arrayexpress/search", "page=1", "biostudies/search-1.json"))
    routes.append(("/biostudies/api/v1/arrayexpress/search", "", "biostudies/search-empty.json"))
    table = pd.DataFrame(routes, columns=["path", "query", "file"])
    for fastq in sorted((outdir / "fastq").glob("*.fastq.gz")):
        table.loc[len(table)] = [f"/fastq/{fastq.name}", "", f"../fastq/{fastq.name}"]
    with atomic_output(root / "routes.tsv") as tmp:
        table.to_csv(tmp, sep="\t", index=False)
    return root


def _family_soft(series: str, samples: list[dict], extras: list[dict]) -> str:
    every = samples + extras
    lines = [
        f"^SERIES = {series}",
        f"!Series_title = Single-cell RNA-seq of mouse cells, demo study {series}",
        f"!Series_geo_accession = {series}",
        "!Series_type = Expression profiling by high throughput sequencing",
    ]
    lines += [f"!Series_sample_id = {s['sample']}" for s in every]
    lines.append(f"!Series_relation = SRA: https://www.ncbi.nlm.nih.gov/sra?term={_sra_study(series)}")
    for sample in every:
        lines += [
            f"^SAMPLE = {sample['sample']}",
            f"!Sample_title = {sample['title']}",
            f"!Sample_geo_accession = {sample['sample']}",
            "!Sample_type = SRA",
            "!Sample_channel_count = 1",
        ]
        if sample.get("source_name"):
            lines.append(f"!Sample_source_name_ch1 = {sample['source_name']}")
        lines += [f"!Sample_organism_ch1 = {sample['organism']}", "!Sample_taxid_ch1 = 10090"]
        lines += [
            f"!Sample_characteristics_ch1 = {c.strip()}" for c in sample["characteristics"].split("|") if c.strip()
        ]
        lines.append(
            "!Sample_extract_protocol_ch1 = Single cells were sorted into plates and amplified with Smart-seq2."
        )
        if sample.get("description"):
            lines.append(f"!Sample_description = {sample['description']}")
        lines += [
            f"!Sample_library_strategy = {sample['library_strategy']}",
            f"!Sample_library_source = {sample['library_source']}",
        ]
        if sample.get("has_reads", True):
            lines.append(
                f"!Sample_relation = SRA: https://www.ncbi.nlm.nih.gov/sra?term={_experiment(sample['sample'])}"
            )
        lines.append("!Sample_data_row_count = 0")
    return "\n".join(lines) + "\n"


def _filereport(runs: pd.DataFrame, root: Path) -> str:
    rows = []
    for run in runs.to_dict("records"):
        files = [Path(run["fastq_1"])] + ([Path(run["fastq_2"])] if run["layout"] == "PAIRED" else [])
        rows.append(
            {
                "run_accession": run["run"],
                "experiment_accession": _experiment(run["sample"]),
                "sample_accession": f"SAMN{run['sample'][3:]}",
                "secondary_sample_accession": f"SRS{run['sample'][3:]}",
                "study_accession": _sra_study(run["study"]),
                "sample_alias": run["sample"],
                "experiment_alias": run["sample"],
                "library_layout": run["layout"],
                "library_strategy": "RNA-Seq",
                "library_source": "TRANSCRIPTOMIC SINGLE CELL",
                "read_count": str(gzip.decompress(files[0].read_bytes()).count(b"\n") // 4),
                "tax_id": "10090",
                "scientific_name": "Mus musculus",
                # like ENA: locations without a scheme; the replay server fills in its own address
                "fastq_ftp": ";".join(f"@REPLAY@/fastq/{f.name}" for f in files),
                "fastq_md5": ";".join(hashlib.md5(f.read_bytes()).hexdigest() for f in files),
                "fastq_bytes": ";".join(str(f.stat().st_size) for f in files),
            }
        )
    return pd.DataFrame(rows, columns=ENA_FIELDS).to_csv(sep="\t", index=False)
