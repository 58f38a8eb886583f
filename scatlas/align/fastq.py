"""FASTQ checks before alignment: readable to the end, whole records, and the quality encoding."""

from __future__ import annotations

import bz2
import gzip
import itertools
import lzma
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

from scatlas.io import InputError

_OPENERS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
_CHUNK = 1 << 20


@dataclass(frozen=True)
class FastqInfo:
    n_reads: int
    phred_offset: int  # 33 (Sanger / Illumina 1.8+) or 64 (Illumina 1.3-1.7)


def detect_phred_offset(qualities: bytes) -> int:
    """Phred offset from a sample of quality strings (concatenated bytes).

    Characters below '@' (64) exist only in Phred+33; above 'K' (75) only in
    Phred+64. Data whose qualities all lie in '@'..'K' are read as Phred+33, the
    encoding of every Illumina instrument since 2011.
    """
    if not qualities:
        return 33
    lowest, highest = min(qualities), max(qualities)
    if lowest < 33 or highest > 126:
        raise ValueError(f"quality characters outside the printable range ({lowest}..{highest})")
    if lowest < 64:
        return 33
    return 64 if highest > 75 else 33


def _scan(path: Path, sample_reads: int, to_end: bool) -> tuple[list[bytes], int, bytes]:
    """The first ``4 * sample_reads`` lines, the line count and the last chunk (to the end if asked)."""
    try:
        with _OPENERS.get(path.suffix, open)(path, "rb") as handle:
            head = list(itertools.islice(handle, 4 * sample_reads))
            n_lines, last = len(head), head[-1] if head else b""
            while to_end and (chunk := handle.read(_CHUNK)):
                n_lines += chunk.count(b"\n")
                last = chunk
    except FileNotFoundError:
        raise InputError(path, "FASTQ file not found") from None
    except (EOFError, zlib.error, gzip.BadGzipFile, OSError, lzma.LZMAError) as err:
        raise InputError(path, f"truncated or corrupt compressed FASTQ ({err})") from None
    if not head:
        raise InputError(path, "empty FASTQ (no reads)")
    _check_records(path, head)
    return head, n_lines, last


def _phred_offset(path: Path, head: list[bytes]) -> int:
    try:
        return detect_phred_offset(b"".join(line.rstrip(b"\r\n") for line in head[3::4]))
    except ValueError as err:
        raise InputError(path, str(err)) from None


def inspect_fastq(path: str | os.PathLike, sample_reads: int = 10_000) -> FastqInfo:
    """Read a FASTQ (plain, .gz, .bz2, .xz) to its end: count reads and detect the quality encoding.

    Raises :class:`InputError` for a missing, empty, truncated or malformed file,
    so that a bad download is caught before its reads are taken for a whole run.
    """
    path = Path(path)
    head, n_lines, last = _scan(path, sample_reads, to_end=True)
    if not last.endswith(b"\n"):
        n_lines += 1
    if n_lines % 4:
        raise InputError(path, f"truncated FASTQ: {n_lines} lines is not a whole number of 4-line records")
    return FastqInfo(n_reads=n_lines // 4, phred_offset=_phred_offset(path, head))


def _check_records(path: Path, head: list[bytes]) -> None:
    for i in range(0, len(head) - len(head) % 4, 4):
        header, sequence, plus, quality = (line.rstrip(b"\r\n") for line in head[i : i + 4])
        if not header.startswith(b"@") or not plus.startswith(b"+"):
            raise InputError(path, f"not a FASTQ file: record {i // 4 + 1} does not have the @/+ layout")
        if len(sequence) != len(quality):
            raise InputError(path, f"record {i // 4 + 1}: sequence and quality lengths differ")


def phred_offset_of(fastqs: list[str | os.PathLike], sample_reads: int = 10_000) -> int:
    """Quality encoding of a run, from the first ``sample_reads`` reads of its first FASTQ."""
    path = Path(fastqs[0])
    head, _, _ = _scan(path, sample_reads, to_end=False)
    return _phred_offset(path, head)


def inspect_run(fastqs: list[str | os.PathLike]) -> FastqInfo:
    """Inspect the one (single-end) or two (paired-end) FASTQs of a run; mates must agree."""
    infos = [inspect_fastq(fastq) for fastq in fastqs]
    if len({info.n_reads for info in infos}) > 1:
        counts = ", ".join(f"{Path(f).name}={i.n_reads}" for f, i in zip(fastqs, infos, strict=True))
        raise InputError(fastqs[-1], f"paired FASTQs hold different numbers of reads ({counts})")
    if len({info.phred_offset for info in infos}) > 1:
        raise InputError(fastqs[-1], "paired FASTQs use different quality encodings")
    return infos[0]
