"""Alignment + quantification of one run by scatlas against bare HISAT2 on the same reads.

Reads: QuasR's real paired-end Phred+64 sample (3,002 pairs on an hg19 slice), repeated
to a library of realistic size. scatlas' path = FASTQ checks + HISAT2 writing its SAM +
featureCounts beside flagstat (``scatlas_bam``: the same through HISAT2 | samtools BAM, the path
before); bare = ``hisat2 ... > /dev/null`` (and, for reference, HISAT2 writing its SAM to a file).
Prints wall and CPU times and the ratios (CPU: the machine may be shared).

    python benchmarks/align_quant.py [--copies 150] [--threads 2] [--repeats 3] [--output OUT.tsv]

Results: ``benchmarks/results/<date>_<commit>/align_quant.tsv`` (default): one row per path × repeat;
``align_quant.env.json`` beside it.
"""

from __future__ import annotations

import argparse
import bz2
import gzip
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import add_output_argument, write_result

from scatlas.align import align_run
from scatlas.quant import quantify_run
from scatlas.reference import build_hisat2_index, gene_table, read_exons, write_gene_gtf

SHARED = Path(os.environ.get("SCATLAS_SHARED", Path(__file__).resolve().parents[2] / "shared"))
QUASR = SHARED / "data" / "reference" / "hisat2_quasr_hg19sub"


def timed(task) -> tuple[float, float]:
    """Wall seconds, and CPU seconds of this process and its children (the machine may be shared)."""
    start, before, own = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN), time.process_time()
    task()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime + time.process_time() - own
    return time.perf_counter() - start, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=150, help="times the 3,002 read pairs are repeated")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    add_output_argument(parser, "align_quant")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        exons = read_exons(QUASR / "hg19sub_annotation.gtf")
        write_gene_gtf(exons, gene_table(exons).index, scratch / "genes.gtf")
        build_hisat2_index(
            QUASR / "hg19sub.fa", QUASR / "hg19sub_annotation.gtf", scratch / "idx", threads=args.threads
        )
        fastqs = []
        for mate in (1, 2):
            text = bz2.decompress((QUASR / f"rna_1_{mate}.fq.bz2").read_bytes())
            path = scratch / f"reads_{mate}.fq.gz"
            with gzip.open(path, "wb", compresslevel=6) as out:
                for _ in range(args.copies):
                    out.write(text)
            fastqs.append(path)
        bare_cmd = [
            "hisat2",
            "-p",
            str(args.threads),
            "--phred64",
            "-x",
            str(scratch / "idx"),
            "-1",
            str(fastqs[0]),
            "-2",
            str(fastqs[1]),
        ]

        def bare():
            subprocess.run(bare_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)

        def bare_to_file():  # the least any path that keeps the alignments pays
            subprocess.run([*bare_cmd, "-S", str(scratch / "bare.sam")], stderr=subprocess.DEVNULL, check=True)

        def scatlas(kind):  # the workflow's path (HISAT2's SAM), or the BAM it wrote before
            def task():
                alignments = scratch / f"run.{kind}"
                align_run(fastqs, scratch / "idx", alignments, scratch / "run.summary.txt", threads=args.threads)
                quantify_run(alignments, scratch / "genes.gtf", scratch / f"{kind}.tsv", True, threads=1)

            return task

        paths = {"bare": bare, "bare_to_file": bare_to_file, "scatlas": scatlas("sam"), "scatlas_bam": scatlas("bam")}
        times = {name: [] for name in paths}
        for _ in range(args.repeats):  # interleaved, so drifts in machine load hit all alike
            for name, task in paths.items():
                times[name].append(timed(task))
        if (scratch / "sam.tsv").read_text() != (scratch / "bam.tsv").read_text():
            raise SystemExit("the SAM and BAM paths counted differently")
    median = {name: statistics.median(wall for wall, _ in values) for name, values in times.items()}
    cpu = {name: statistics.median(c for _, c in values) for name, values in times.items()}
    rows = [
        {
            "path": name,
            "repeat": repeat,
            "seconds": wall,
            "cpu_seconds": c,
            "read_pairs": 3002 * args.copies,
            "threads": args.threads,
        }
        for name, values in times.items()
        for repeat, (wall, c) in enumerate(values)
    ]
    write_result("align_quant", pd.DataFrame(rows), output=args.output, float_format="%.3f")
    print(f"read pairs: {3002 * args.copies:,}  threads: {args.threads}  repeats: {args.repeats}")
    print(f"cpus: {os.cpu_count()}")
    print(f"bare hisat2, SAM to /dev/null:  {median['bare']:.2f} s (median)")
    print(f"bare hisat2, SAM to a file:     {median['bare_to_file']:.2f} s (median)")
    print(f"scatlas align + quantify:       {median['scatlas']:.2f} s (median)")
    print(f"  the same through a BAM:       {median['scatlas_bam']:.2f} s (median)")
    print(f"ratio to bare hisat2: {median['scatlas'] / median['bare']:.3f} (goal <= 1.15)")
    print(f"ratio to hisat2 writing SAM: {median['scatlas'] / median['bare_to_file']:.3f}")
    print(f"CPU ratio to bare hisat2: {cpu['scatlas'] / cpu['bare']:.3f}", end=" ")
    print(f"(through a BAM: {cpu['scatlas_bam'] / cpu['bare']:.3f})")


if __name__ == "__main__":
    sys.exit(main())
