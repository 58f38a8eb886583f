"""HISAT2 alignment of one run into an (unsorted, name-grouped) SAM or BAM and its summary."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from scatlas import tools
from scatlas.align.fastq import inspect_run, phred_offset_of
from scatlas.io import InputError, atomic_output


@dataclass(frozen=True)
class AlignmentSummary:
    n_reads: int  # reads (single-end) or read pairs (paired-end) given to HISAT2
    alignment_rate: float  # HISAT2's overall alignment rate, 0..1
    phred_offset: int

    def to_dict(self) -> dict:
        return asdict(self)


_TOTAL = re.compile(r"^\s*(\d+) reads; of these:", re.MULTILINE)
_RATE = re.compile(r"^\s*([\d.]+)% overall alignment rate", re.MULTILINE)


def parse_hisat2_summary(path: str | os.PathLike) -> tuple[int, float]:
    """(reads or pairs, overall alignment rate in 0..1) from a HISAT2 ``--summary-file``."""
    text = Path(path).read_text()
    total, rate = _TOTAL.search(text), _RATE.search(text)
    if not total or not rate:
        raise InputError(path, "not a HISAT2 alignment summary (no read total or overall alignment rate)")
    return int(total.group(1)), round(float(rate.group(1)) / 100, 6)


def align_run(
    fastqs: Sequence[str | os.PathLike],
    index_prefix: str | os.PathLike,
    bam: str | os.PathLike,
    summary: str | os.PathLike,
    threads: int = 1,
    phred: str = "auto",
    extra_args: Sequence[str] = (),
) -> AlignmentSummary:
    """Align a single-end (one FASTQ) or paired-end (two FASTQs) run with HISAT2.

    The FASTQs are checked (readable to the end, whole records, mates of equal length)
    while HISAT2 runs, since HISAT2 itself takes a truncated gzip for a short file; the
    quality encoding is detected from the first reads unless ``phred`` is "33" or "64".
    Unaligned reads are left out of ``bam``; ``summary`` is HISAT2's own summary. A ``bam`` named
    ``*.sam`` is HISAT2's SAM as it writes it: no second process, no compression, the cheapest
    input for counting when the alignments are not kept.
    """
    if len(fastqs) not in (1, 2):
        raise InputError(fastqs[0], f"a run has one or two FASTQs, got {len(fastqs)}")
    phred_offset = phred_offset_of(fastqs) if phred == "auto" else int(phred)
    reads = ["-U", fastqs[0]] if len(fastqs) == 1 else ["-1", fastqs[0], "-2", fastqs[1]]
    with ThreadPoolExecutor(max_workers=1) as pool, atomic_output(bam) as tmp_bam, atomic_output(summary) as tmp_sum:
        check = pool.submit(inspect_run, list(fastqs))  # zlib/bz2 release the GIL: a real second core
        hisat2 = [
            tools.require("hisat2"),
            "-p",
            str(threads),
            f"--phred{phred_offset}",
            "--no-unal",
            "-x",
            str(index_prefix),
            *map(str, reads),
            "--summary-file",
            str(tmp_sum),
            *extra_args,
        ]
        try:
            if str(bam).endswith(".sam"):
                tools.run([*hisat2, "-S", tmp_bam])
            else:
                _pipe(hisat2, [tools.require("samtools"), "view", "-b", "-1", "-o", str(tmp_bam), "-"])
        except tools.ToolError:
            check.result()  # a bad FASTQ explains a failed alignment better than the aligner does
            if not any(Path(f"{index_prefix}.1.{suffix}").is_file() for suffix in ("ht2", "ht2l")):
                raise InputError(
                    index_prefix, f"no HISAT2 index here ({Path(index_prefix).name}.1.ht2 not found)"
                ) from None
            raise
        check.result()
        n_reads, rate = parse_hisat2_summary(tmp_sum)
    return AlignmentSummary(n_reads=n_reads, alignment_rate=rate, phred_offset=phred_offset)


def _pipe(producer: list[str], consumer: list[str]) -> None:
    """Run ``producer | consumer``; raise ToolError naming whichever failed."""
    first = subprocess.Popen(producer, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    second = subprocess.Popen(consumer, stdin=first.stdout, stderr=subprocess.PIPE)
    first.stdout.close()  # so the producer sees a broken pipe if the consumer dies
    first_err = first.stderr.read().decode(errors="replace")
    second_err = second.communicate()[1].decode(errors="replace")
    for process, err in ((first, first_err), (second, second_err)):
        if process.wait() != 0:
            name = Path(process.args[0]).name
            raise tools.ToolError(f"{name} failed (exit {process.returncode}): {tools.last_line(err)}")
