"""HISAT2 index: built (splice-aware when asked, splice sites and exons from the full GTF) or prebuilt."""

from __future__ import annotations

import errno
import gzip
import hashlib
import os
import shutil
import tarfile
import tempfile
import zlib
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


def install_hisat2_index(source: str | os.PathLike, prefix: str | os.PathLike, md5: str = "") -> None:
    """Put a prebuilt HISAT2 index at ``{prefix}.{1..8}.ht2``, once, from a folder or an archive.

    ``source`` is a folder holding one index (``NAME.1.ht2`` ... ``NAME.8.ht2``; linked, not
    copied) or a ``.tar.gz`` / ``.tgz`` / ``.tar`` archive of one (such as the HISAT2 project's
    ``grcm38_tran.tar.gz``), whose ``md5``, when given, must match. An archive's index files are
    unpacked into a scratch folder and moved into place only when all are complete. Raises
    :class:`InputError` naming ``source`` for a wrong md5, no index, several, or a corrupt archive.
    """
    source, prefix = Path(source), Path(prefix)
    if md5 and not source.is_dir() and source.exists():
        with open(source, "rb") as handle:
            actual = hashlib.file_digest(handle, "md5").hexdigest()
        if actual != md5.lower():
            raise InputError(
                source,
                f"md5 {actual} is not the configured {md5.lower()}: corrupt or changed (delete it to fetch again)",
            )
    prefix.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        name = _one_index(source, [p.name for p in source.iterdir()])
        for suffix in INDEX_SUFFIXES:
            target = Path(f"{prefix}{suffix}")
            target.unlink(missing_ok=True)
            target.symlink_to((source / f"{name}{suffix}").resolve())
        return
    if not source.exists():
        raise InputError(source, "HISAT2 index not found (neither a folder nor an archive)")
    with tempfile.TemporaryDirectory(dir=prefix.parent, prefix=".hisat2-index.") as scratch:
        try:
            with tarfile.open(source) as archive:
                members = {Path(m.name).name: m for m in archive.getmembers() if m.isfile()}
                name = _one_index(source, list(members))
                for suffix in INDEX_SUFFIXES:
                    member = members[f"{name}{suffix}"]  # read by name, written to our name: no path escapes
                    with archive.extractfile(member) as part, open(Path(scratch) / f"index{suffix}", "wb") as out:
                        shutil.copyfileobj(part, out, 1 << 20)
        except (tarfile.TarError, EOFError, OSError, zlib.error) as err:
            raise InputError(source, f"corrupt HISAT2 index archive ({err})") from None
        for suffix in INDEX_SUFFIXES:
            os.replace(Path(scratch) / f"index{suffix}", f"{prefix}{suffix}")


def _one_index(source: Path, names: list[str]) -> str:
    """The one index name whose eight ``.N.ht2`` files are all among ``names``."""
    complete = sorted(
        name.removesuffix(".1.ht2")
        for name in names
        if name.endswith(".1.ht2") and all(f"{name.removesuffix('.1.ht2')}{s}" in names for s in INDEX_SUFFIXES)
    )
    if len(complete) != 1:
        found = "no complete HISAT2 index (.1.ht2 ... .8.ht2)" if not complete else f"several indexes: {complete}"
        raise InputError(source, f"expected one HISAT2 index, found {found}")
    return complete[0]
