"""GEO: series search through E-utilities (db=gds) and sample metadata from SOFT, MINiML or SRA XML.

The same parsers read a response from the replay server, a file downloaded by hand and the
``scatlas geo samples FILE`` command: one sample record format, :data:`SAMPLE_FIELDS`.
"""

from __future__ import annotations

import gzip
import io
import logging
import re
import tempfile
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Iterator
from pathlib import Path

from scatlas.io import InputError
from scatlas.repositories.accessions import is_accession
from scatlas.repositories.http import MalformedResponse, Remote, parse_json_object

log = logging.getLogger(__name__)

# the free-text metadata of a sample, as every parser and the samples manifest name it
METADATA_FIELDS = [
    "organism",
    "title",
    "source_name",
    "characteristics",
    "description",
    "library_strategy",
    "library_source",
]
SAMPLE_FIELDS = ["accession", *METADATA_FIELDS, "sra"]
MINIML_NS = "{http://www.ncbi.nlm.nih.gov/geo/info/MINiML}"
SRA_ID = re.compile(r"\b([SED]R[PXSR]\d{4,12})\b")


def series_term(term: str, organism: str) -> str:
    """The esearch term for GEO series (``gse[ETYP]``) of ``organism`` matching ``term``."""
    return f'({term}) AND "{organism}"[Organism] AND gse[ETYP]'


def search_series(
    remote: Remote, term: str, organism: str, mindate: str, maxdate: str, page_size: int = 500
) -> list[dict]:
    """esearch + esummary (history server, paged with retstart/retmax) for series published in a window.

    ``mindate``/``maxdate`` are ``YYYY/MM/DD`` publication dates (inclusive). Returns the esummary
    documents of the series (``accession``, ``title``, ``summary``, ``taxon``, ``pdat``,
    ``n_samples``, ``gdstype``, ``extrelations``, ...), in the order esearch gave them.
    """
    what = f"GEO search {mindate}..{maxdate}"
    params = {
        "db": "gds",
        "term": series_term(term, organism),
        "datetype": "pdat",
        "mindate": mindate,
        "maxdate": maxdate,
        "usehistory": "y",
        "retmax": 0,
        "retmode": "json",
    }
    found = remote.get("eutils", "esearch.fcgi", params, parse=_esearch, what=what, cache=False)
    count, documents = found["count"], []
    for start in range(0, count, page_size):
        expected = min(page_size, count - start)
        page = {
            "db": "gds",
            "query_key": found["querykey"],
            "WebEnv": found["webenv"],
            "retstart": start,
            "retmax": page_size,
            "retmode": "json",
        }
        documents += remote.get(
            "eutils",
            "esummary.fcgi",
            page,
            what=f"{what} (records {start + 1}..)",
            parse=lambda body, n=expected: _esummary(body, n),
            cache=False,
        )
    return [doc for doc in documents if doc.get("entrytype", "GSE") == "GSE"]


def _esearch(body: bytes) -> dict:
    result = parse_json_object(body).get("esearchresult")
    if not isinstance(result, dict) or "count" not in result:
        raise MalformedResponse("esearch JSON without esearchresult.count")
    if "ERROR" in result:
        raise MalformedResponse(f"esearch error: {result['ERROR']}")
    return {"count": int(result["count"]), "querykey": result.get("querykey"), "webenv": result.get("webenv")}


def _esummary(body: bytes, expected: int) -> list[dict]:
    result = parse_json_object(body).get("result")
    if not isinstance(result, dict) or not isinstance(result.get("uids"), list):
        raise MalformedResponse("esummary JSON without result.uids")
    documents = [result[uid] for uid in result["uids"] if isinstance(result.get(uid), dict)]
    if len(documents) != expected:  # a short page would silently lose series
        raise MalformedResponse(f"esummary page has {len(documents)} records, expected {expected}")
    return documents


def series_sra_study(document: dict) -> str:
    """The SRA study (SRP...) an esummary series document links to, or ''."""
    for relation in document.get("extrelations", []):
        target = relation.get("targetobject", "")
        if relation.get("relationtype") == "SRA" and is_accession("sra_study", target):
            return target
    return ""


def family_soft_path(series: str) -> str:
    """Path of a series' family SOFT below the GEO FTP root, e.g. series/GSE93nnn/GSE93374/soft/..."""
    stub = re.sub(r"\d{1,3}$", "nnn", series)
    return f"series/{stub}/{series}/soft/{series}_family.soft.gz"


def fetch_series_samples(remote: Remote, series: str) -> list[dict]:
    """Download and parse a series' family SOFT; one record per sample (:data:`SAMPLE_FIELDS`)."""
    return remote.get("geo", family_soft_path(series), parse=lambda body: _family_samples(body, series), what=series)


def _family_samples(body: bytes, series: str) -> list[dict]:
    try:
        text = gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body
    except (OSError, EOFError, zlib.error) as err:
        raise MalformedResponse(f"family SOFT is not valid gzip ({err})") from None
    if not text.lstrip().startswith((b"^", b"!")):
        raise MalformedResponse("not a SOFT file")
    with tempfile.NamedTemporaryFile(suffix=".soft") as tmp:
        tmp.write(text)
        tmp.flush()
        samples, listed = _soft_samples(tmp.name)
    if listed and set(listed) != {s["accession"] for s in samples}:  # e.g. a body cut short
        raise MalformedResponse(f"{series} family SOFT lists {len(listed)} samples but holds {len(samples)}")
    return samples


def _soft_samples(path: str) -> tuple[list[dict], list[str]]:
    from GEOparse.GEOparse import parse_GSE

    logging.getLogger("GEOparse").setLevel(logging.WARNING)  # it logs every sample at DEBUG
    try:
        gse = parse_GSE(path, open_kwargs={"encoding": "utf-8", "errors": "replace"})
    except Exception as err:  # GEOparse raises bare exceptions on malformed blocks
        raise MalformedResponse(f"unparsable SOFT ({type(err).__name__}: {err})") from None
    samples = [_soft_record(gsm.metadata) for gsm in gse.gsms.values()]
    return samples, list(gse.metadata.get("sample_id", []))


def _soft_record(meta: dict[str, list[str]]) -> dict:
    def joined(*keys: str, sep: str = " ") -> str:
        return sep.join(v.strip() for key in keys for v in meta.get(key, []) if v.strip())

    sra = [m.group(1) for rel in meta.get("relation", []) if rel.startswith("SRA") for m in SRA_ID.finditer(rel)]
    return {
        "accession": joined("geo_accession"),
        "organism": joined("organism_ch1", sep=", "),
        "title": joined("title"),
        "source_name": joined("source_name_ch1", sep="; "),
        "characteristics": joined("characteristics_ch1", sep=" | "),
        "description": joined("description"),
        "library_strategy": joined("library_strategy"),
        "library_source": joined("library_source"),
        "sra": ",".join(dict.fromkeys(sra)),
        "protocol": joined("extract_protocol_ch1", "data_processing"),  # classification only, not a manifest column
    }


def _miniml_samples(root: ET.Element) -> list[dict]:
    def text(node: ET.Element | None) -> str:
        return " ".join("".join(node.itertext()).split()) if node is not None else ""

    samples = []
    for sample in root.iter(f"{MINIML_NS}Sample"):
        channel = sample.find(f"{MINIML_NS}Channel")
        characteristics = []
        organism = source = ""
        if channel is not None:
            organism = text(channel.find(f"{MINIML_NS}Organism"))
            source = text(channel.find(f"{MINIML_NS}Source"))
            for item in channel.findall(f"{MINIML_NS}Characteristics"):
                tag, value = item.get("tag", "").strip(), text(item)
                characteristics.append(f"{tag}: {value}" if tag else value)
        sra = [
            m.group(1)
            for rel in sample.findall(f"{MINIML_NS}Relation")
            if rel.get("type") == "SRA"
            for m in SRA_ID.finditer(rel.get("target", ""))
        ]
        samples.append(
            {
                "accession": sample.get("iid", ""),
                "organism": organism,
                "title": text(sample.find(f"{MINIML_NS}Title")),
                "source_name": source,
                "characteristics": " | ".join(c for c in characteristics if c),
                "description": text(sample.find(f"{MINIML_NS}Description")),
                "library_strategy": text(sample.find(f"{MINIML_NS}Library-Strategy")),
                "library_source": text(sample.find(f"{MINIML_NS}Library-Source")),
                "sra": ",".join(dict.fromkeys(sra)),
            }
        )
    return samples


def sra_experiment_packages(root: ET.Element) -> Iterator[dict]:
    """Each EXPERIMENT_PACKAGE of an efetch db=sra XML as a sample record plus its runs."""
    error = root.find("ERROR")
    if error is not None:
        raise MalformedResponse(f"SRA error: {' '.join(error.itertext()).strip()}")
    for package in root.iter("EXPERIMENT_PACKAGE"):
        experiment, sample = package.find("EXPERIMENT"), package.find("SAMPLE")
        library = experiment.find("DESIGN/LIBRARY_DESCRIPTOR") if experiment is not None else None
        attributes = (
            []
            if sample is None
            else [
                (a.findtext("TAG", "").strip(), a.findtext("VALUE", "").strip())
                for a in sample.findall("SAMPLE_ATTRIBUTES/SAMPLE_ATTRIBUTE")
            ]
        )
        source = next((value for tag, value in attributes if tag.lower() == "source_name"), "")
        geo = sample.find("IDENTIFIERS/EXTERNAL_ID[@namespace='GEO']") if sample is not None else None
        runs = [run.get("accession", "") for run in package.findall("RUN_SET/RUN")]
        layout = library.find("LIBRARY_LAYOUT") if library is not None else None
        yield {
            "accession": geo.text.strip()
            if geo is not None and geo.text
            else (sample.get("accession", "") if sample is not None else ""),
            "organism": sample.findtext("SAMPLE_NAME/SCIENTIFIC_NAME", "").strip() if sample is not None else "",
            "title": sample.findtext("TITLE", "").strip() if sample is not None else "",
            "source_name": source,
            "characteristics": " | ".join(
                f"{tag}: {value}" for tag, value in attributes if tag.lower() != "source_name"
            ),
            "description": sample.findtext("DESCRIPTION", "").strip() if sample is not None else "",
            "library_strategy": library.findtext("LIBRARY_STRATEGY", "").strip() if library is not None else "",
            "library_source": library.findtext("LIBRARY_SOURCE", "").strip() if library is not None else "",
            "sra": ",".join([experiment.get("accession", "")] * (experiment is not None) + runs),
            "protocol": library.findtext("LIBRARY_CONSTRUCTION_PROTOCOL", "").strip() if library is not None else "",
            "layout": layout[0].tag if layout is not None and len(layout) else "",
            "runs": runs,
        }


def parse_samples(path: str | Path) -> list[dict]:
    """Sample records from a GEO family/GSM SOFT (plain or .gz), a MINiML XML or an SRA XML file.

    Raises :class:`InputError` naming the file when it is none of these or is malformed.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise InputError(path, f"cannot read ({err.strerror})") from None
    try:
        body = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    except (OSError, EOFError, zlib.error) as err:
        raise InputError(path, f"not valid gzip ({err})") from None
    head = body.lstrip()[:1]
    try:
        if head in (b"^", b"!"):
            with tempfile.NamedTemporaryFile(suffix=".soft") as tmp:
                tmp.write(body)
                tmp.flush()
                return [{k: s[k] for k in SAMPLE_FIELDS} for s in _soft_samples(tmp.name)[0]]
        if head == b"<":
            root = ET.parse(io.BytesIO(body)).getroot()
            if root.tag == f"{MINIML_NS}MINiML":
                return _miniml_samples(root)
            if root.tag == "EXPERIMENT_PACKAGE_SET":
                return [{k: v for k, v in s.items() if k in SAMPLE_FIELDS} for s in sra_experiment_packages(root)]
            raise InputError(path, f"XML root <{root.tag}> is neither MINiML nor an SRA EXPERIMENT_PACKAGE_SET")
    except ET.ParseError as err:
        raise InputError(path, f"malformed XML ({err})") from None
    except MalformedResponse as err:
        raise InputError(path, str(err)) from None
    raise InputError(path, "not a GEO SOFT, MINiML or SRA XML file")
