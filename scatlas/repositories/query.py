"""Stages 1–2: query GEO and ArrayExpress for single-cell RNA-seq studies, resolve them to runs.

The query covers a publication-date window (by default from the end of the last successful query
to today), keeps only samples that are single-cell RNA-seq of the configured organism with one
cell's reads per run, and merges what it found into the manifests. A study whose records cannot be
fetched stops the query with an error naming it; what was resolved before is written, valid, and the
window is not marked done, so the next run asks again without duplicating anything.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from scatlas.config import default, with_defaults
from scatlas.repositories import arrayexpress, geo, manifests, sra
from scatlas.repositories.accessions import check, geo_series_of_mirror, is_accession
from scatlas.repositories.http import Remote, RemoteError

log = logging.getLogger(__name__)


@dataclass
class Criteria:
    """What a sample must be to enter the atlas (the ``query`` config section; its defaults)."""

    organism: str = default("query.organism")
    library_strategies: tuple[str, ...] = tuple(default("query.library_strategies"))
    single_cell_pattern: str = default("query.single_cell_pattern")
    bulk_pattern: str = default("query.bulk_pattern")
    multi_cell_pattern: str = default("query.multi_cell_pattern")

    def __post_init__(self):
        self._single = re.compile(self.single_cell_pattern, re.IGNORECASE)
        self._bulk = re.compile(self.bulk_pattern, re.IGNORECASE)
        self._multi = re.compile(self.multi_cell_pattern, re.IGNORECASE)

    def exclusion(self, sample: Mapping[str, str], study_text: str) -> str | None:
        """Why ``sample`` is not a single-cell RNA-seq sample of the organism, or None if it is."""
        organism = sample.get("organism", "")
        if organism and self.organism.lower() not in organism.lower():
            return f"not the organism ({organism}, not {self.organism})"
        strategy = sample.get("library_strategy", "")
        if strategy and strategy.lower() not in {s.lower() for s in self.library_strategies}:
            return f"not RNA-seq (library strategy {strategy})"
        text = " ".join(
            sample.get(k, "") for k in ("title", "source_name", "characteristics", "description", "protocol")
        )
        multi = self._multi.search(text)
        if multi:
            return f"one file holds many cells ({multi.group(0)} protocol) with no per-cell barcode metadata"
        if "single cell" in sample.get("library_source", "").lower():
            return None
        bulk = self._bulk.search(text)
        if bulk:
            return f"not single-cell (bulk sample: '{bulk.group(0)}')"
        if self._single.search(text) or self._single.search(study_text):
            return None
        return "not single-cell (no single-cell evidence in the metadata)"


@dataclass
class Found:
    """What one query resolved, in manifest form."""

    studies: list[dict] = field(default_factory=list)
    samples: list[dict] = field(default_factory=list)
    runs: list[dict] = field(default_factory=list)
    excluded: list[dict] = field(default_factory=list)

    def exclude(self, level: str, accession: str, study: str, reason: str, today: str) -> None:
        self.excluded.append({"level": level, "accession": accession, "study": study, "reason": reason, "date": today})


def _geo_date(date: str) -> str:
    return date.replace("-", "/")


def _iso_date(date: str) -> str:
    return date.replace("/", "-")


def resolve_geo_series(remote: Remote, document: dict, criteria: Criteria, found: Found, today: str) -> None:
    """One GEO series → its samples (family SOFT) → their runs (ENA filereport, RunInfo fallback)."""
    series = check("series", document.get("accession", ""), "GEO esummary")
    study = {
        "study": series,
        "source": "GEO",
        "title": document.get("title", ""),
        "organism": document.get("taxon", ""),
        "published": _iso_date(document.get("pdat", "")),
        "n_samples": document.get("n_samples", ""),
        "sra_study": geo.series_sra_study(document),
        "status": "included",
    }
    found.studies.append(study)
    if criteria.organism.lower() not in document.get("taxon", criteria.organism).lower():
        study["status"] = "excluded"
        return found.exclude("study", series, series, f"not the organism ({document.get('taxon')})", today)
    if "sequencing" not in document.get("gdstype", "sequencing").lower():
        study["status"] = "excluded"
        return found.exclude("study", series, series, f"not sequencing ({document.get('gdstype')})", today)
    samples = geo.fetch_series_samples(remote, series)
    study["n_samples"] = str(len(samples))
    _resolve_samples(
        remote,
        series,
        samples,
        f"{document.get('title', '')} {document.get('summary', '')}",
        study["sra_study"],
        criteria,
        found,
        today,
    )
    if not any(s["study"] == series for s in found.samples):
        study["status"] = "excluded"


def _resolve_samples(
    remote: Remote,
    study: str,
    samples: list[dict],
    study_text: str,
    sra_study: str,
    criteria: Criteria,
    found: Found,
    today: str,
) -> None:
    candidates = []
    for sample in samples:
        accession = sample.get("accession", "")
        if not is_accession("sample", accession) and not is_accession("sra_sample", accession):
            found.exclude(
                "sample",
                re.sub(r"[^A-Za-z0-9._-]", "_", accession)[:40] or "unknown",
                study,
                "no valid sample accession",
                today,
            )
            continue
        reason = criteria.exclusion(sample, study_text)
        if reason is None and not sample.get("sra"):
            reason = "no raw data (no SRA experiment or run linked)"
        if reason:
            found.exclude("sample", accession, study, reason, today)
        else:
            candidates.append(sample)
    if not candidates:
        return
    runs = _runs_for(remote, study, candidates, sra_study)
    for sample in candidates:
        links = set(sample["sra"].split(","))
        mine = [
            r for r in runs if r["experiment"] in links or r["run"] in links or r["sample_alias"] == sample["accession"]
        ]
        if not mine:
            found.exclude("sample", sample["accession"], study, "no raw data (no sequencing runs found)", today)
            continue
        found.samples.append(
            {
                "study": study,
                "sample": sample["accession"],
                **{k: sample.get(k, "") for k in geo.METADATA_FIELDS},
                "sra_experiment": ",".join(sorted({r["experiment"] for r in mine if r["experiment"]})),
            }
        )
        for run in mine:
            layout = run["layout"] if run["layout"] in ("SINGLE", "PAIRED") else ""
            if not layout:
                found.exclude("run", run["run"], study, f"unknown library layout {run['layout']!r}", today)
                continue
            found.runs.append(
                {
                    "study": study,
                    "sample": sample["accession"],
                    **{k: run.get(k, "") for k in manifests.COLUMNS["runs"] if k not in ("study", "sample")},
                    "layout": layout,
                }
            )


def _runs_for(remote: Remote, study: str, samples: list[dict], sra_study: str) -> list[dict]:
    """The study's runs: one filereport for the whole SRA study when known, else per experiment."""
    if sra_study:
        runs = sra.ena_runs(remote, check("sra_study", sra_study, study))
        linked = {link for s in samples for link in s["sra"].split(",")}
        if linked & ({r["experiment"] for r in runs} | {r["run"] for r in runs}):
            return runs
    runs = []
    for sample in samples:
        for link in sample["sra"].split(","):
            if is_accession("sra_experiment", link) or is_accession("run", link):
                found = sra.ena_runs(remote, link) or sra.sra_runinfo(remote, link)
                runs += [r for r in found if r["run"] not in {x["run"] for x in runs}]
    return runs


def resolve_arrayexpress_study(remote: Remote, accession: str, criteria: Criteria, found: Found, today: str) -> None:
    record = arrayexpress.study_record(remote, accession)
    study = {
        "study": accession,
        "source": "ArrayExpress",
        "title": record["title"],
        "organism": record["organism"],
        "published": record["release_date"],
        "n_samples": "",
        "sra_study": "",
        "status": "included",
    }
    found.studies.append(study)
    if record["organism"] and criteria.organism.lower() not in record["organism"].lower():
        study["status"] = "excluded"
        return found.exclude("study", accession, accession, f"not the organism ({record['organism']})", today)
    samples = arrayexpress.study_samples(remote, accession)
    study["n_samples"] = str(len(samples))
    # ArrayExpress runs live in ENA; resolve each run listed in the SDRF
    _resolve_samples(
        remote, accession, samples, f"{record['title']} {record['study_type']}", "", criteria, found, today
    )
    if not any(s["study"] == accession for s in found.samples):
        study["status"] = "excluded"


def _resolved(resolve, remote, study, criteria, found: Found, today: str, failures: list[str]) -> bool:
    """Resolve one study; when its responses fail (a corrupt family SOFT, a service down for it), record
    it as ``failed`` with none of its samples or runs, keep the failure and go on with the others."""
    n_studies, n_samples, n_runs = len(found.studies), len(found.samples), len(found.runs)
    try:
        resolve(remote, study, criteria, found, today)
    except RemoteError as err:
        failures.append(str(err))
        log.info("study failed, retried next query: %s", err)
        del found.samples[n_samples:], found.runs[n_runs:]
        for record in found.studies[n_studies:]:
            record["status"] = "failed"
        return False
    return True


def run_query(
    config: Mapping[str, Any],
    directory: str | os.PathLike,
    remote: Remote | None = None,
    since: str | None = None,
    until: str | None = None,
    today: str | None = None,
) -> dict:
    """Query every configured source for the window and merge the results into the manifests.

    Parameters
    ----------
    config
        The workflow config (``query`` and ``repositories`` sections); a key it leaves out takes the
        schema's default (:func:`scatlas.config.with_defaults`).
    directory
        The manifests folder (studies.tsv, samples.tsv, runs.tsv, excluded.tsv, queries.tsv).
    since, until
        Publication-date window ``YYYY-MM-DD``, inclusive. By default from the end of the last
        successful query of each source (or ``query.since``) to ``query.until`` or today.

    Returns counts of what was found. A study whose responses fail is recorded with status ``failed``
    and the others go on; its source's window is not marked done, so the next query retries it. Then
    raises :class:`RemoteError` naming every accession that failed, after writing everything resolved.
    """
    config = with_defaults(config)
    query = config["query"]
    remote = remote or Remote.from_config(config["repositories"])
    today = today or dt.date.today().isoformat()
    criteria = Criteria(
        **{k: (tuple(v) if isinstance(v, list) else v) for k, v in query.items() if k in Criteria.__dataclass_fields__}
    )
    directory = Path(directory)
    known = set(manifests.read(directory, "studies")["study"])
    found, windows, failures = Found(), [], []
    geo_done: set[str] = set()
    for source in query["sources"]:
        start = since or manifests.last_window_end(directory, source) or query["since"]
        end = until or query["until"] or today
        log.info("querying %s for studies published %s..%s", source, start, end)
        n_before = len(found.studies)
        ok = True  # every study of the window resolved: else the window is queried again next time
        try:
            if source == "geo":
                documents = geo.search_series(
                    remote,
                    query["term"],
                    criteria.organism,
                    _geo_date(start),
                    _geo_date(end),
                    query["page_size"],
                )
                for document in documents:
                    if document.get("accession") in geo_done:
                        continue
                    geo_done.add(document.get("accession"))
                    ok &= _resolved(resolve_geo_series, remote, document, criteria, found, today, failures)
            elif source == "arrayexpress":
                hits = arrayexpress.search_studies(remote, query["arrayexpress_query"], criteria.organism, start, end)
                for hit in hits:
                    accession = check("arrayexpress", hit["accession"], "BioStudies search")
                    mirror = geo_series_of_mirror(accession)
                    if mirror:  # the same study as a GEO series: record it once, as the series
                        if mirror not in geo_done and mirror not in known:
                            geo_done.add(mirror)
                            document = {"accession": mirror, "title": hit.get("title", "")}
                            ok &= _resolved(resolve_geo_series, remote, document, criteria, found, today, failures)
                        continue
                    ok &= _resolved(resolve_arrayexpress_study, remote, accession, criteria, found, today, failures)
            else:
                raise ValueError(f"unknown source {source!r}")
        except RemoteError as err:
            failures.append(str(err))
            log.info("%s query stopped: %s", source, err)  # raised below, after the merge
            continue
        if not ok:
            continue
        windows.append(
            {
                "source": source,
                "window_start": start,
                "window_end": end,
                "finished": dt.datetime.now().isoformat(timespec="seconds"),
                "n_studies": len(found.studies) - n_before,
                "n_new": len({s["study"] for s in found.studies[n_before:]} - known),
            }
        )
    _merge(directory, found, windows, today)
    if failures:
        raise RemoteError("; ".join(failures))
    return {
        "studies": len(found.studies),
        "samples": len(found.samples),
        "runs": len(found.runs),
        "excluded": len(found.excluded),
        "new_studies": len({s["study"] for s in found.studies} - known),
    }


def _merge(directory: Path, found: Found, windows: list[dict], today: str) -> None:
    """Merge into the manifests; runs last but one and the query log last, so a crash never marks a window done."""
    directory.mkdir(parents=True, exist_ok=True)
    excluded = pd.DataFrame(found.excluded, columns=manifests.COLUMNS["excluded"])
    samples = pd.DataFrame(found.samples, columns=manifests.COLUMNS["samples"])
    runs = pd.DataFrame(found.runs, columns=manifests.COLUMNS["runs"])
    now_excluded = set(excluded.loc[excluded["level"] == "sample", "accession"])
    old_excluded = manifests.read(directory, "excluded")
    old_excluded = manifests.remove(
        old_excluded, "excluded", {("sample", s) for s in samples["sample"]} | {("run", r) for r in runs["run"]}
    )
    manifests.write(directory, "excluded", manifests.upsert(old_excluded, excluded, "excluded"))
    old_samples = manifests.remove(manifests.read(directory, "samples"), "samples", now_excluded)
    manifests.write(directory, "samples", manifests.upsert(old_samples, samples, "samples"))
    old_runs = manifests.read(directory, "runs")
    old_runs = old_runs[~old_runs["sample"].isin(now_excluded)]
    manifests.write(directory, "runs", manifests.upsert(old_runs, runs, "runs"))
    studies = pd.DataFrame(found.studies, columns=manifests.COLUMNS["studies"])
    manifests.write(
        directory, "studies", manifests.record_studies(manifests.read(directory, "studies"), studies, today)
    )
    if windows:
        queries = pd.concat([manifests.read(directory, "queries"), pd.DataFrame(windows)], ignore_index=True)
        manifests.write(directory, "queries", queries.astype(str))
