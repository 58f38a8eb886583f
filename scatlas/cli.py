"""The ``scatlas`` command: one entry point for the workflow's scripts and for users (SPEC §6)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from scatlas import __version__
from scatlas.io import InputError
from scatlas.tools import ToolError


def _quantify(args: argparse.Namespace) -> None:
    from scatlas.quant import quantify_run

    stats = quantify_run(args.bam, args.gtf, args.output, paired=args.paired, strandedness=args.strandedness,
                         threads=args.threads)  # fmt: skip
    print(json.dumps(stats), file=sys.stderr)


def _align(args: argparse.Namespace) -> None:
    from scatlas.align import align_run

    summary = align_run(args.fastq, args.index, args.bam, args.summary, threads=args.threads, phred=args.phred)
    print(json.dumps(summary.to_dict()))


def _reference(args: argparse.Namespace) -> None:
    from scatlas.reference import build_hisat2_index, write_gene_set

    outdir = Path(args.outdir)
    write_gene_set(args.gtf, args.biotypes, outdir / "genes.gtf", outdir / "genes.tsv")
    build_hisat2_index(args.fasta, args.gtf, outdir / "hisat2" / "genome", args.threads, not args.no_splice_sites)


def _cluster(args: argparse.Namespace) -> None:
    from scatlas.cluster import run_clustering

    run_clustering(args.method, args.input, args.n_clusters, args.output, seed=args.seed, device=args.device,
                   config=args.config)  # fmt: skip


def _score(args: argparse.Namespace) -> None:
    from scatlas.evaluate import score_files

    print(json.dumps(score_files(args.labels, args.truth, key=args.key)))


def _demo(args: argparse.Namespace) -> None:
    from scatlas.demo import simulate

    simulate(args.outdir, seed=args.seed)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scatlas", description=__doc__)
    parser.add_argument("--version", action="version", version=f"scatlas {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    quantify = commands.add_parser("quantify", help="per-gene counts, length and RPKM of one run's BAM")
    quantify.add_argument("--bam", required=True, help="aligned reads of one run (BAM/SAM)")
    quantify.add_argument("--gtf", required=True, help="genes to count (GTF; exons, gene_id)")
    quantify.add_argument("--paired", action="store_true", help="count fragments (read pairs), not reads")
    quantify.add_argument("--strandedness", choices=["unstranded", "forward", "reverse"], default="unstranded")
    quantify.add_argument("--threads", type=int, default=1)
    quantify.add_argument("--output", required=True, help="TSV: gene_id, count, length (bp), rpkm")
    quantify.set_defaults(func=_quantify)

    align = commands.add_parser("align", help="align one run with HISAT2 into an unsorted BAM")
    align.add_argument("--fastq", nargs="+", required=True, help="one FASTQ (single-end) or two (paired-end)")
    align.add_argument("--index", required=True, help="HISAT2 index prefix")
    align.add_argument("--phred", choices=["auto", "33", "64"], default="auto", help="quality encoding")
    align.add_argument("--threads", type=int, default=1)
    align.add_argument("--bam", required=True)
    align.add_argument("--summary", required=True, help="HISAT2 alignment summary")
    align.set_defaults(func=_align)

    reference = commands.add_parser("reference", help="HISAT2 index, gene table and gene GTF from FASTA + GTF")
    reference.add_argument("--fasta", required=True, help="genome FASTA (plain or .gz)")
    reference.add_argument("--gtf", required=True, help="gene annotation GTF (plain or .gz)")
    reference.add_argument("--biotypes", nargs="*", default=["protein_coding"], help="gene biotypes kept (none: all)")
    reference.add_argument("--no-splice-sites", action="store_true", help="index without known splice sites")
    reference.add_argument("--threads", type=int, default=1)
    reference.add_argument("--outdir", required=True)
    reference.set_defaults(func=_reference)

    cluster = commands.add_parser("cluster", help="cluster the cells of an h5ad of raw counts (scDMAC or a baseline)")
    cluster.add_argument("--method", required=True, choices=["scdmac", "scsmd", "pca-kmeans", "leiden"],
                         help="scdmac: denoising + masking autoencoder (SPEC 2.1); pca-kmeans, leiden: scanpy "
                              "baselines; scsmd: not implemented yet (error)")  # fmt: skip
    cluster.add_argument("--input", required=True, help="h5ad whose X holds raw counts, cells x genes")
    cluster.add_argument("--n-clusters", required=True, type=int, help="number of clusters K (<= number of cells)")
    cluster.add_argument("--seed", type=int, default=0, help="fixes every random choice (on CPU: same labels)")
    cluster.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="auto: CUDA when present")
    cluster.add_argument("--config", help="YAML mapping of the method's parameters (scdmac: ScdmacParams fields)")
    cluster.add_argument("--output", required=True, help="TSV cell, cluster (input order); OUT.embedding.npy beside it")
    cluster.set_defaults(func=_cluster)

    score = commands.add_parser("score", help="ARI, NMI, Hungarian accuracy, silhouette of a clustering as JSON")
    score.add_argument("--labels", required=True, help="clusters TSV (cell, cluster) written by scatlas cluster")
    score.add_argument("--truth", required=True, help="h5ad whose obs holds the true labels")
    score.add_argument("--key", default="label", help="obs column of the true labels")
    score.set_defaults(func=_score)

    demo = commands.add_parser("demo", help="write the synthetic offline demo (genome, GTF, reads, sheet, config)")
    demo.add_argument("--outdir", required=True)
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        args.func(args)
    except (InputError, ToolError) as err:
        print(f"scatlas {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
