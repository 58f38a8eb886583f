"""MultiQC over the runs' HISAT2 and featureCounts summaries: one HTML report in the output folder."""

import subprocess
import sys

from _common import setup

log = setup(snakemake)

command = ["multiqc", "--force", "--no-data-dir", "--filename", "multiqc_report.html", "--outdir"]
subprocess.run([*command, snakemake.output[0], *snakemake.input], check=True, stdout=sys.stderr, stderr=sys.stderr)
log.info("MultiQC over %d summaries", len(snakemake.input))
