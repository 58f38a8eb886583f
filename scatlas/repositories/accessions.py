"""Accession patterns: remote text becomes a path or a command argument only after it matches one."""

from __future__ import annotations

import re

PATTERNS = {
    "series": re.compile(r"GSE\d{1,9}"),
    "sample": re.compile(r"GSM\d{1,9}"),
    "arrayexpress": re.compile(r"E-[A-Z]{4}-\d{1,9}"),
    "sra_study": re.compile(r"[SED]RP\d{1,12}"),
    "sra_experiment": re.compile(r"[SED]RX\d{1,12}"),
    "sra_sample": re.compile(r"[SED]RS\d{1,12}|SAM[NED][A-Z]?\d{1,12}"),
    "run": re.compile(r"[SED]RR\d{1,12}"),
    "study": re.compile(r"GSE\d{1,9}|E-[A-Z]{4}-\d{1,9}"),
}
GEO_MIRROR = re.compile(r"E-GEOD-(\d{1,9})")


class AccessionError(ValueError):
    """Remote metadata named something that is not an accession of the expected kind."""


def is_accession(kind: str, value: str) -> bool:
    return isinstance(value, str) and PATTERNS[kind].fullmatch(value) is not None


def check(kind: str, value: str, where: str = "") -> str:
    """Return ``value`` when it is a ``kind`` accession, else raise :class:`AccessionError`."""
    if not is_accession(kind, value):
        shown = value if isinstance(value, str) and len(value) <= 60 else f"{str(value)[:60]}..."
        raise AccessionError(f"{where}: {shown!r} is not a valid {kind} accession".lstrip(": "))
    return value


def geo_series_of_mirror(accession: str) -> str | None:
    """The GEO series an ArrayExpress E-GEOD-n record mirrors (GSEn), or None."""
    match = GEO_MIRROR.fullmatch(accession)
    return f"GSE{match.group(1)}" if match else None
