"""HISAT2 index, splice-aware when asked: splice sites and exons come from the full GTF."""

from __future__ import annotations

import errno
import gzip
import os
import shutil
import tempfile
from pathlib import Path

from scatlas import tools
from scatlas.io import InputError, made_folder
from scatlas.reference.gtf import check_gtf

INDEX_SUFFIXES = tuple(f".{i}.ht2" for i in range(1, 9))


def hisat2_index_files(prefix: str | os.PathLike) -> list[str]:
    return [f"{prefix}{suffix}" for suffix in INDEX_SUFFIXES]


def build_hisat2_index(
    fasta: str | os.PathLike,
    gtf: str | os.PathLike,
    prefix: str | os.PathLike,
    threads: int = 1,
    splice_aware: bool = True,
) -> None:
    """Build ``{prefix}.{1..8}.ht2`` from a genome FASTA (plain or gzipped).

    With ``splice_aware`` the known splice sites and exons of ``gtf`` go into the
    index (HISAT2 then needs ~160 GB RAM for a mammalian genome instead of ~8 GB).
    The index is built in a scratch folder and moved into place only when complete.
    """
    prefix = Path(prefix)
    with made_folder(prefix.parent), tempfile.TemporaryDirectory(dir=prefix.parent, prefix=".hisat2-build.") as scratch:
        scratch = Path(scratch)
        genome = _plain_fasta(Path(fasta), scratch)
        cmd = ["hisat2-build", "-p", threads]
        if splice_aware:
            check_gtf(gtf)  # names the file and line HISAT2's scripts would fail on without a word
            splice_sites, exons = scratch / "splice_sites.txt", scratch / "exons.txt"
            tools.run(["hisat2_extract_splice_sites.py", gtf], stdout=splice_sites)
            tools.run(["hisat2_extract_exons.py", gtf], stdout=exons)
            cmd += ["--ss", splice_sites, "--exon", exons]
        try:
            tools.run([*cmd, genome, scratch / "index"])
        except tools.ToolError:
            # hisat2-build on a full disk dies of a corrupted heap, not of a write error: say what it was
            if shutil.disk_usage(scratch).free < max(Path(genome).stat().st_size, 1 << 26):
                raise OSError(errno.ENOSPC, "No space left on device", str(prefix)) from None
            raise
        for suffix in INDEX_SUFFIXES:
            os.replace(scratch / f"index{suffix}", f"{prefix}{suffix}")


def _plain_fasta(fasta: Path, scratch: Path) -> Path:
    """hisat2-build reads only uncompressed FASTA: decompress a .gz copy into scratch."""
    opener = gzip.open if fasta.suffix == ".gz" else open
    try:
        with opener(fasta, "rb") as handle:
            first = handle.read(1)
            if first != b">":
                raise InputError(fasta, "not a FASTA file (does not start with '>')")
            if opener is open:
                return fasta
            plain = scratch / "genome.fa"
            with open(plain, "wb") as out:
                out.write(first)
                shutil.copyfileobj(handle, out, 1 << 20)
            return plain
    except FileNotFoundError:
        raise InputError(fasta, "genome FASTA not found") from None
    except (EOFError, gzip.BadGzipFile, OSError) as err:
        raise InputError(fasta, f"truncated or corrupt gzip ({err})") from None
