"""Stage 6, quantify: reads per gene (featureCounts), RPKM, and one AnnData per study."""

from scatlas.quant.counts import count_fragments, mapped_fragments, quantify_run, rpkm
from scatlas.quant.study import alignment_exclusions, assemble_study

__all__ = ["alignment_exclusions", "assemble_study", "count_fragments", "mapped_fragments", "quantify_run", "rpkm"]
