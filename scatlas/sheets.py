"""The runs sheet: reading, schema validation and the checks a schema cannot express."""

from __future__ import annotations

import io
import os
from functools import cache
from importlib.resources import files
from pathlib import Path

import jsonschema
import pandas as pd
import yaml

from scatlas.config import describe
from scatlas.io import InputError
from scatlas.repositories.accessions import is_accession

RUNS_SCHEMA = files("scatlas") / "schemas" / "runs.schema.yaml"


@cache
def runs_schema() -> dict:
    return yaml.safe_load(RUNS_SCHEMA.read_text())


def fetched(run: pd.Series) -> bool:
    """Whether the workflow downloads this run (no local FASTQ in the sheet)."""
    return not run["fastq_1"]


def _validate_rows(runs: pd.DataFrame, schema: dict, path: Path) -> None:
    """Every row against the schema, empty cells left out, the first failing row named.

    A sheet of 150,000 runs holds only a few distinct row shapes: in each column whose schema is
    a pattern (or nothing but a type), every valid non-empty value is replaced by the column's first
    one, and each distinct reduced row is validated once, as the whole sheet would be.
    """
    reduced = runs.copy()
    for column in runs.columns:
        rules = set(schema["properties"].get(column, {})) - {"type", "description"}
        if rules - {"pattern"}:
            continue  # enum, const, ...: few distinct values, validated as they are
        values = runs[column]
        valid = values != ""
        if "pattern" in rules:
            valid &= values.str.contains(schema["properties"][column]["pattern"], regex=True)
        if valid.any():
            reduced.loc[valid, column] = values[valid].iloc[0]
    validator = jsonschema.Draft202012Validator(schema)
    shapes = reduced.drop_duplicates()
    for position, record in zip(shapes.index, shapes.to_dict("records"), strict=True):
        record = {key: value for key, value in record.items() if value != ""}
        error = jsonschema.exceptions.best_match(validator.iter_errors(record))
        if error is not None:
            line = runs.index.get_loc(position) + 2
            row = {key: value for key, value in runs.loc[position].items() if value != ""}
            error = jsonschema.exceptions.best_match(validator.iter_errors(row))
            raise InputError(path, f"line {line} (run {row.get('run', '?')}): {describe(error)}")


def load_runs(path: str | os.PathLike) -> pd.DataFrame:
    """Read and validate a runs sheet (TSV); return it indexed by ``run``.

    FASTQ paths are made absolute, relative ones being taken relative to the sheet. A header without
    rows is an empty atlas (a query that found nothing yet): an empty table.
    Raises :class:`InputError` with the row and column at fault.
    """
    path = Path(path)
    return _checked_runs(_read_runs(path, path), path)


def load_run(path: str | os.PathLike, run: str) -> dict:
    """One run's row of a runs sheet, checked as :func:`load_runs` checks every row, without parsing the
    others: a per-run job reads its row in time independent of the sheet's length (150,000 rows)."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as lines:
            header = next((line for line in lines if not line.startswith("#")), "")
            columns = header.rstrip("\n").split("\t")
            if "run" not in columns:
                return load_runs(path).loc[run].to_dict()  # its error names the missing column
            position = columns.index("run")
            for line in lines:
                fields = line.rstrip("\n").split("\t")
                if len(fields) > position and fields[position] == run:
                    return _checked_runs(_read_runs(io.StringIO(header + line), path), path).loc[run].to_dict()
    except FileNotFoundError:
        raise InputError(path, "runs sheet not found") from None
    except UnicodeDecodeError as err:
        raise InputError(path, f"not a tab-separated sheet ({str(err).splitlines()[0]})") from None
    raise InputError(path, f"run {run} is not in the runs sheet")


def _read_runs(source, path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(source, sep="\t", dtype=str, comment="#", keep_default_na=False)
    except FileNotFoundError:
        raise InputError(path, "runs sheet not found") from None
    except pd.errors.EmptyDataError:
        raise InputError(path, "runs sheet is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise InputError(path, f"not a tab-separated sheet ({str(err).splitlines()[0]})") from None


def _checked_runs(runs: pd.DataFrame, path: Path) -> pd.DataFrame:
    schema = runs_schema()
    missing = [column for column in schema["required"] if column not in runs.columns]
    if missing:
        raise InputError(path, f"missing required column(s): {', '.join(missing)}")
    runs["layout"] = runs["layout"].str.upper()
    _validate_rows(runs, schema, path)
    duplicated = runs["run"][runs["run"].duplicated()].unique()
    if len(duplicated):
        raise InputError(path, f"duplicated run accession(s): {', '.join(duplicated[:5])}")
    single_with_mate = runs[(runs["layout"] == "SINGLE") & (runs.get("fastq_2", "") != "")]
    if not single_with_mate.empty:
        raise InputError(path, f"run {single_with_mate['run'].iloc[0]} is SINGLE but has a fastq_2")
    for column in ("fastq_1", "fastq_2", "fastq_url_1", "fastq_url_2", "fastq_md5_1", "fastq_md5_2"):
        if column not in runs:
            runs[column] = ""
    unfetchable = runs[
        (runs["fastq_1"] == "") & (runs["fastq_url_1"] == "") & ~runs["run"].map(lambda run: is_accession("run", run))
    ]
    if not unfetchable.empty:
        raise InputError(
            path,
            f"run {unfetchable['run'].iloc[0]} has no fastq_1, no fastq_url_1 and is not an "
            "SRA/ENA run accession to fetch",
        )
    for column in ("fastq_1", "fastq_2"):
        runs[column] = [str((path.parent / f).resolve()) if f else "" for f in runs[column]]
    return runs.set_index("run", drop=False).rename_axis(None)


def load_samples(path: str | os.PathLike) -> pd.DataFrame:
    """Read and validate the samples table (TSV, schema ``samples.schema.yaml``); empty fields are ''."""
    path = Path(path)
    try:
        samples = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise InputError(path, "samples table not found") from None
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as err:
        raise InputError(path, f"not a tab-separated samples table ({str(err).splitlines()[0]})") from None
    schema = yaml.safe_load((files("scatlas") / "schemas" / "samples.schema.yaml").read_text())
    missing = [column for column in schema["required"] if column not in samples.columns]
    if missing:
        raise InputError(path, f"missing required column(s): {', '.join(missing)}")
    validator = jsonschema.Draft202012Validator(schema)
    for line, record in enumerate(samples.to_dict("records"), start=2):
        error = jsonschema.exceptions.best_match(validator.iter_errors(record))
        if error is not None:
            raise InputError(path, f"line {line} (sample {record.get('sample', '?')}): {describe(error)}")
    duplicated = samples["sample"][samples["sample"].duplicated()].unique()
    if len(duplicated):
        raise InputError(path, f"duplicated sample accession(s): {', '.join(duplicated[:5])}")
    return samples
