"""ArrayExpress through the BioStudies API: search (paged until an empty page), study record, SDRF."""

from __future__ import annotations

import csv
import io

from scatlas.repositories.accessions import is_accession
from scatlas.repositories.http import MalformedResponse, Remote, parse_json_object

PAGE_SIZE_MAX = 100  # BioStudies rejects larger pages


def _search_page(body: bytes) -> list[dict]:
    page = parse_json_object(body)
    if not isinstance(page.get("hits"), list):
        raise MalformedResponse("BioStudies search JSON without a hits list")
    return [hit for hit in page["hits"] if isinstance(hit, dict) and hit.get("accession")]


def search_studies(
    remote: Remote, query: str, organism: str, start: str, end: str, page_size: int = PAGE_SIZE_MAX
) -> list[dict]:
    """ArrayExpress studies of ``organism`` matching ``query`` released in [start, end] (YYYY-MM-DD).

    Pages until a page comes back empty (``totalHits`` may be approximate). Returns the hits
    (``accession``, ``title``, ``release_date``, ...), each accession once.
    """
    hits: dict[str, dict] = {}
    page = 1
    while True:
        params = {
            "query": query,
            "organism": organism,
            "release_date": f"[{start} {end}]",
            "page": page,
            "pageSize": min(page_size, PAGE_SIZE_MAX),
        }
        found = remote.get(
            "biostudies",
            "api/v1/arrayexpress/search",
            params,
            parse=_search_page,
            what=f"ArrayExpress search {start}..{end} page {page}",
            cache=False,
        )
        if not found:
            return list(hits.values())
        for hit in found:
            hits.setdefault(hit["accession"], hit)
        page += 1


def _attributes(node: dict) -> dict[str, str]:
    return {
        a.get("name", "").lower(): str(a.get("value", "")) for a in node.get("attributes", []) if isinstance(a, dict)
    }


def parse_study(body: bytes) -> dict:
    """A BioStudies study record → ``title``, ``organism``, ``study_type``, ``release_date``, ``secondary``."""
    record = parse_json_object(body)
    if "accno" not in record:
        raise MalformedResponse("BioStudies study JSON without accno")
    top, section = _attributes(record), _attributes(record.get("section", {}) or {})
    return {
        "accession": record["accno"],
        "title": section.get("title", top.get("title", "")),
        "organism": section.get("organism", ""),
        "study_type": section.get("study type", ""),
        "release_date": top.get("releasedate", ""),
        "secondary": section.get("secondary accession", top.get("secondary accession", "")),
    }


def study_record(remote: Remote, accession: str) -> dict:
    return remote.get("biostudies", f"api/v1/studies/{accession}", parse=parse_study, what=accession)


def parse_sdrf(body: bytes) -> list[dict]:
    """SDRF rows grouped by source: sample records (the GEO sample fields) with their ENA runs."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise MalformedResponse(f"SDRF is not UTF-8 ({err})") from None
    rows = [row for row in csv.reader(io.StringIO(text), delimiter="\t") if any(c.strip() for c in row)]
    if not rows or "Source Name" not in rows[0]:
        raise MalformedResponse("SDRF without a Source Name column")
    header = [h.strip() for h in rows[0]]
    samples: dict[str, dict] = {}
    for row in rows[1:]:
        if len(row) != len(header):
            raise MalformedResponse(f"SDRF row has {len(row)} fields, header {len(header)}")
        cells = list(zip(header, (c.strip() for c in row), strict=False))
        value = {}
        for name, cell in cells:
            value.setdefault(name, cell)
        source = value["Source Name"]
        sample = samples.setdefault(
            source,
            {
                "accession": value.get("Comment[ENA_SAMPLE]") or value.get("Comment[BioSD_SAMPLE]", ""),
                "organism": value.get("Characteristics[organism]", ""),
                "title": source,
                "source_name": source,
                "characteristics": " | ".join(
                    f"{name[len('Characteristics[') : -1]}: {cell}"
                    for name, cell in cells
                    if name.startswith("Characteristics[") and name != "Characteristics[organism]" and cell
                ),
                "description": value.get("Description", ""),
                "library_strategy": value.get("Comment[LIBRARY_STRATEGY]", ""),
                "library_source": value.get("Comment[LIBRARY_SOURCE]", ""),
                "runs": [],
            },
        )
        run = value.get("Comment[ENA_RUN]", "")
        if run and run not in sample["runs"]:
            sample["runs"].append(run)
    for sample in samples.values():
        sample["sra"] = ",".join(r for r in sample["runs"] if is_accession("run", r))
    return list(samples.values())


def study_samples(remote: Remote, accession: str) -> list[dict]:
    return remote.get("biostudies", f"files/{accession}/{accession}.sdrf.txt", parse=parse_sdrf, what=accession)
