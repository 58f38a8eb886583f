"""Stage 5, align: HISAT2 per run, quality encoding detected, alignment summary parsed."""

from scatlas.align.fastq import FastqInfo, inspect_fastq, inspect_run
from scatlas.align.hisat2 import AlignmentSummary, align_run, parse_hisat2_summary

__all__ = ["AlignmentSummary", "FastqInfo", "align_run", "inspect_fastq", "inspect_run", "parse_hisat2_summary"]
