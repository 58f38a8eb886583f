"""The reference each organism gets unless the config names one: genome and genes, by query.organism."""

from __future__ import annotations

from collections.abc import Mapping

ENSEMBL = "https://ftp.ensembl.org/pub/release-102"
PRESETS = {
    # GRCm38 (mm10) with Ensembl 102 genes, as scQuery used
    "Mus musculus": {
        "genome_fasta": f"{ENSEMBL}/fasta/mus_musculus/dna/Mus_musculus.GRCm38.dna.primary_assembly.fa.gz",
        "gtf": f"{ENSEMBL}/gtf/mus_musculus/Mus_musculus.GRCm38.102.gtf.gz",
    },
    "Homo sapiens": {
        "genome_fasta": f"{ENSEMBL}/fasta/homo_sapiens/dna/Homo_sapiens.GRCh38.dna.primary_assembly.fa.gz",
        "gtf": f"{ENSEMBL}/gtf/homo_sapiens/Homo_sapiens.GRCh38.102.gtf.gz",
    },
}


def resolved_reference(config: Mapping) -> dict:
    """``config["reference"]`` with an empty genome_fasta or gtf filled from the preset of
    ``config["query"]["organism"]``; ValueError when there is none for that organism."""
    reference = dict(config["reference"])
    organism = config["query"]["organism"]
    for key in ("genome_fasta", "gtf"):
        if not reference[key]:
            if organism not in PRESETS:
                raise ValueError(
                    f"reference.{key} is empty and there is no preset for query.organism {organism!r} "
                    f"(presets: {', '.join(PRESETS)}): give the file or URL"
                )
            reference[key] = PRESETS[organism][key]
    return reference
