"""Stage 3: a run's FASTQ files, over HTTP(S) from ENA when listed, else from SRA with fasterq-dump."""

from __future__ import annotations

import gzip
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from scatlas.io import atomic_output
from scatlas.repositories.accessions import check
from scatlas.repositories.http import Remote
from scatlas.tools import require, run

log = logging.getLogger(__name__)


def fastq_url(location: str, scheme: str = "https") -> str:
    """ENA lists FASTQ locations without a scheme (``ftp.sra.ebi.ac.uk/vol1/...``); add one."""
    return location if "://" in location else f"{scheme}://{location}"


def fetch_mate(
    run: Mapping[str, str],
    mate: int,
    output: str | os.PathLike,
    remote: Remote | None = None,
    scheme: str = "https",
    threads: int = 1,
) -> None:
    """Write mate ``mate`` (1 or 2) of a run's reads to ``output`` (gzipped FASTQ).

    ``run`` is a runs-sheet row. When ENA lists the file (``fastq_url_N``, ``fastq_md5_N``,
    ``fastq_bytes_N``) it is downloaded with resume and md5 check; otherwise the run accession is
    dumped from SRA with fasterq-dump.
    """
    accession = check("run", run["run"], "runs sheet")
    url = run.get(f"fastq_url_{mate}", "")
    if url:
        size = str(run.get(f"fastq_bytes_{mate}", ""))
        (remote or Remote()).download(
            fastq_url(url, scheme),
            output,
            md5=run.get(f"fastq_md5_{mate}", ""),
            size=int(size) if size.isdigit() else None,
            what=f"{accession} mate {mate}",
        )
        return
    log.info("%s: no FASTQ listed in ENA; dumping it from SRA", accession)
    fasterq_dump(accession, mate, output, paired=run.get("layout") == "PAIRED", threads=threads)


def fasterq_dump(accession: str, mate: int, output: str | os.PathLike, paired: bool, threads: int = 1) -> None:
    """``fasterq-dump --split-files`` into a scratch folder, then gzip one mate atomically onto ``output``."""
    check("run", accession, "fasterq-dump")
    require("fasterq-dump")
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{accession}.", dir=output.parent) as scratch:
        # fasterq-dump rejects "--"; the accession was checked against its pattern, so it cannot be an option
        run(
            [
                "fasterq-dump",
                "--split-files",
                "--threads",
                str(threads),
                "--outdir",
                scratch,
                "--temp",
                scratch,
                accession,
            ]
        )
        candidates = [f"{accession}_{mate}.fastq"] + ([] if paired else [f"{accession}.fastq"])
        dumped = next((Path(scratch) / name for name in candidates if (Path(scratch) / name).exists()), None)
        if dumped is None:
            raise RuntimeError(f"{accession}: fasterq-dump wrote no {' or '.join(candidates)}")
        with atomic_output(output) as tmp, open(dumped, "rb") as src, gzip.open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
