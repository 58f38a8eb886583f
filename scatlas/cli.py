"""The ``scatlas`` command: one entry point for the workflow's scripts and for users; its sub-commands and
options are a stable contract (more may be added, none changes meaning)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from scatlas import __version__
from scatlas.config import check_window, checked, default, option
from scatlas.io import InputError, output_error
from scatlas.lock import AtlasLocked
from scatlas.registry import CLUSTERING, IMPUTATION
from scatlas.repositories.accessions import AccessionError
from scatlas.repositories.http import RemoteError
from scatlas.tools import ToolError


def _quantify(args: argparse.Namespace) -> None:
    from scatlas.quant import quantify_run

    stats = quantify_run(
        args.bam, args.gtf, args.output, paired=args.paired, strandedness=args.strandedness, threads=args.threads
    )
    print(json.dumps(stats), file=sys.stderr)


def _align(args: argparse.Namespace) -> None:
    from scatlas.align import align_run

    summary = align_run(args.fastq, args.index, args.bam, args.summary, threads=args.threads, phred=args.phred)
    print(json.dumps(summary.to_dict()))


def _reference(args: argparse.Namespace) -> None:
    from scatlas.reference import build_hisat2_index, write_gene_set
    from scatlas.reference.gtf import check_gtf

    outdir = Path(args.outdir)
    check_gtf(args.gtf)  # before anything is written; the gene set after the index, which checks the FASTA
    build_hisat2_index(args.fasta, args.gtf, outdir / "hisat2" / "genome", args.threads, not args.no_splice_sites)
    write_gene_set(args.gtf, args.biotypes, outdir / "genes.gtf", outdir / "genes.tsv")


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)


def _date(text: str) -> str:
    try:
        check_window(text, None, "")
    except InputError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD") from None
    return text


class _Parser(argparse.ArgumentParser):
    """argparse with the house's one-line errors (``scatlas de: error: argument --fdr: ...``), no usage dump."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _cluster(args: argparse.Namespace) -> None:
    from scatlas.cluster import run_clustering

    labels = run_clustering(
        args.method,
        args.input,
        args.n_clusters,
        args.output,
        seed=args.seed,
        device=args.device,
        config=args.config,
        threads=args.threads,
        save_model=args.save_model,
        model=args.model,
    )
    if args.n_clusters is None and args.model is None:
        print(
            f"scatlas cluster: {len(set(labels.tolist()))} clusters (K estimated by Leiden at resolution 1 on the "
            f"{args.method} embedding)",
            file=sys.stderr,
        )


def _impute_params(values: list[str]) -> dict:
    from scatlas.params import parse_assignment

    try:
        return dict(parse_assignment(item) for item in values or [])
    except ValueError as err:
        raise InputError("--param", str(err)) from None


def _impute(args: argparse.Namespace) -> None:
    from scatlas.impute import run_impute

    if not args.output.endswith(".h5ad"):
        raise InputError(args.output, "--output must name an .h5ad file")
    run_impute(
        args.method,
        args.input,
        args.output,
        reference=args.reference,
        seed=args.seed,
        device=args.device,
        config=args.config,
        params=_impute_params(args.param),
        save_model=args.save_model,
        model=args.model,
        fill_missing=args.fill_missing,
        threads=args.threads,
    )


def _impute_benchmark(args: argparse.Namespace) -> None:
    import math

    from scatlas.impute.benchmark import run_benchmark
    from scatlas.params import load_params

    params = {**load_params(args.config), **_impute_params(args.param)}
    results = run_benchmark(
        args.input,
        holdout=args.holdout,
        seed=args.seed,
        reference=args.reference,
        methods=args.methods,
        device=args.device,
        params={name: params for name in ("late", "translate")} if params else None,
        n_top_genes=args.n_top_genes,
        fill_missing=args.fill_missing,
    )
    clean = {
        m: {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in s.items()} for m, s in results.items()
    }
    print(json.dumps(clean))


def _score(args: argparse.Namespace) -> None:
    from scatlas.evaluate import score_files

    print(json.dumps(score_files(args.labels, args.truth, key=args.key)))


def _ontology_match(args: argparse.Namespace) -> None:
    from scatlas.ontology import Matcher, load_ontology

    matcher = Matcher(load_ontology(args.ontology), scopes=args.scopes, exclude=args.exclude)
    print("text\tterm_id\tterm_name")
    for text in args.text:
        matches = sorted(matcher.match({"text": text}), key=lambda m: m.term_id) or [None]
        for m in matches:
            print("\t".join([" ".join(text.split()), m.term_id if m else "", m.term_name if m else ""]))


def _geo_samples(args: argparse.Namespace) -> None:
    import csv

    from scatlas.repositories.geo import SAMPLE_FIELDS, parse_samples

    samples = parse_samples(args.file)
    writer = csv.writer(sys.stdout, delimiter="\t", lineterminator="\n")
    writer.writerow(SAMPLE_FIELDS)
    for sample in samples:
        writer.writerow(" ".join(str(sample[field]).split()) for field in SAMPLE_FIELDS)


def _query(args: argparse.Namespace) -> None:
    import yaml

    from scatlas.repositories.query import run_query

    try:
        config = yaml.safe_load(Path(args.config).read_text()) if args.config else {}
    except (OSError, yaml.YAMLError) as err:
        raise InputError(args.config, f"unreadable config ({str(err).splitlines()[0]})") from None
    if config is not None and not isinstance(config, dict):
        raise InputError(args.config, "not a YAML mapping of config sections")
    config = checked(config, source=args.config or "config")
    check_window(args.since or config["query"]["since"], args.until or config["query"]["until"], "--since/--until")
    print(json.dumps(run_query(config, args.manifests, since=args.since, until=args.until)))


def _refresh(args: argparse.Namespace) -> None:
    import subprocess

    from scatlas.refresh import refresh

    try:
        extra = args.snakemake_args[1:] if args.snakemake_args[:1] == ["--"] else args.snakemake_args
        refresh(args.directory, args.configfile, cores=args.cores, args=extra, query=not args.no_query)
    except subprocess.CalledProcessError as err:
        print(f"scatlas refresh: error: snakemake exited with {err.returncode} (see its log above)", file=sys.stderr)
        sys.exit(1)


def _demo(args: argparse.Namespace) -> None:
    if args.run:
        from scatlas.demo.workflow import run_demo

        run_demo(args.outdir, cores=args.cores, seed=args.seed)
    else:
        from scatlas.demo import simulate

        simulate(args.outdir, seed=args.seed)


def _de(args: argparse.Namespace) -> None:
    from scatlas.de import DEParams, run_de

    params = DEParams(
        method=args.method,
        min_cells=args.min_cells,
        max_cells=args.max_cells,
        fdr=args.fdr,
        n_bootstrap=args.n_bootstrap,
        pseudo_replicates=args.pseudo_replicates,
        seed=args.seed,
        exclude=args.exclude,
    )
    run_de(args.input, args.output, args.group_key, args.study_key, params)


def _embed_train(args: argparse.Namespace) -> None:
    from scatlas.embed import train_embedding
    from scatlas.params import load_params

    _, scores = train_embedding(
        args.input,
        args.output,
        args.label_key,
        args.study_key,
        args.model,
        args.min_cells,
        seed=args.seed,
        device=args.device,
        params={**load_params(args.config), **_impute_params(args.param)},
        pretrain=args.pretrain or None,
        holdout=args.holdout,
        ontology=args.ontology,
        term_key=args.term_key,
        threads=args.threads,
        metrics=args.metrics,
    )
    print(json.dumps(scores))


def _embed_query(args: argparse.Namespace) -> None:
    from scatlas.embed import query_embedding

    query_embedding(args.model, args.input, args.output, device=args.device, threads=args.threads or 1)


def _map(args: argparse.Namespace) -> None:
    from scatlas.embed import map_data

    table = map_data(args.model, args.input, args.output, device=args.device, threads=args.threads or 1)
    print(f"scatlas map: {len(table)} cells mapped to {table['predicted'].nunique()} cell types", file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="scatlas", description=__doc__)
    parser.add_argument("--version", action="version", version=f"scatlas {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    quantify = commands.add_parser("quantify", help="per-gene counts, length and RPKM of one run's BAM")
    quantify.add_argument("--bam", required=True, help="aligned reads of one run (BAM/SAM)")
    quantify.add_argument("--gtf", required=True, help="genes to count (GTF; exons, gene_id)")
    quantify.add_argument("--paired", action="store_true", help="count fragments (read pairs), not reads")
    quantify.add_argument(
        "--strandedness", choices=["unstranded", "forward", "reverse"], default=default("quantify.strandedness")
    )
    quantify.add_argument("--threads", type=option("quantify.threads"), default=default("quantify.threads"))
    quantify.add_argument("--output", required=True, help="TSV: gene_id, count, length (bp), rpkm")
    quantify.set_defaults(func=_quantify)

    align = commands.add_parser("align", help="align one run with HISAT2 into an unsorted BAM")
    align.add_argument("--fastq", nargs="+", required=True, help="one FASTQ (single-end) or two (paired-end)")
    align.add_argument("--index", required=True, help="HISAT2 index prefix")
    align.add_argument("--phred", choices=["auto", "33", "64"], default=default("align.phred"), help="quality encoding")
    align.add_argument("--threads", type=option("align.threads"), default=default("align.threads"))
    align.add_argument("--bam", required=True)
    align.add_argument("--summary", required=True, help="HISAT2 alignment summary")
    align.set_defaults(func=_align)

    reference = commands.add_parser("reference", help="HISAT2 index, gene table and gene GTF from FASTA + GTF")
    reference.add_argument("--fasta", required=True, help="genome FASTA (plain or .gz)")
    reference.add_argument("--gtf", required=True, help="gene annotation GTF (plain or .gz)")
    reference.add_argument(
        "--biotypes", nargs="*", default=default("reference.gene_biotypes"), help="gene biotypes kept (none: all)"
    )
    reference.add_argument(
        "--no-splice-sites",
        action="store_true",
        default=not default("reference.splice_aware_index"),
        help="index without known splice sites",
    )
    reference.add_argument("--threads", type=_positive_int, default=1)
    reference.add_argument("--outdir", required=True)
    reference.set_defaults(func=_reference)

    geo = commands.add_parser("geo", help="GEO metadata").add_subparsers(
        dest="geo_command", required=True, metavar="SUBCOMMAND"
    )
    samples = geo.add_parser("samples", help="one TSV row per sample of a SOFT, MINiML or SRA XML file")
    samples.add_argument(
        "file", help="GEO family/GSM SOFT (.soft, .soft.gz), MINiML XML or SRA EXPERIMENT_PACKAGE_SET XML"
    )
    samples.set_defaults(func=_geo_samples)

    query = commands.add_parser("query", help="query GEO and ArrayExpress and merge what is new into the manifests")
    manifests = str(Path(default("runs")).parent)  # where the workflow's query stage writes them
    query.add_argument(
        "--config",
        help="workflow config YAML (its query and repositories sections; the schema's defaults for the rest)",
    )
    query.add_argument("--manifests", default=manifests, help=f"manifests folder (default: {manifests})")
    query.add_argument(
        "--since", type=_date, help="window start YYYY-MM-DD (default: end of the last successful query)"
    )
    query.add_argument("--until", type=_date, help="window end YYYY-MM-DD (default: today)")
    query.set_defaults(func=_query)

    refresh = commands.add_parser(
        "refresh", help="query what is new since the last query, then run the workflow (one at a time per directory)"
    )
    refresh.add_argument("--directory", default=".", help="the atlas working directory (default: .)")
    refresh.add_argument("--configfile", help="workflow config (default: the Snakefile's config.yaml)")
    refresh.add_argument("--cores", type=_positive_int, default=2)
    refresh.add_argument("--no-query", action="store_true", help="only bring the workflow's outputs up to date")
    refresh.add_argument(
        "snakemake_args",
        nargs=argparse.REMAINDER,
        help="after --: passed to snakemake, e.g. -- --workflow-profile profiles/slurm",
    )
    refresh.set_defaults(func=_refresh)

    ontology = commands.add_parser("ontology", help="Cell Ontology look-ups")
    ontology = ontology.add_subparsers(dest="action", required=True, metavar="ACTION")
    match = ontology.add_parser("match", help="the most specific Cell Ontology terms named in each text (TSV)")
    match.add_argument("--ontology", required=True, help="CL file: OBO, OBO Graphs JSON or cellxgene JSON (.gz ok)")
    match.add_argument(
        "--scopes",
        nargs="+",
        default=default("label.synonym_scopes"),
        choices=["EXACT", "RELATED", "BROAD", "NARROW"],
        help="synonym scopes matched besides term names",
    )
    match.add_argument("--exclude", nargs="*", default=default("label.exclude_terms"), help="term ids never reported")
    match.add_argument("text", nargs="+", metavar="TEXT")
    match.set_defaults(func=_ontology_match)

    de = commands.add_parser("de", help="per-study DE of each cell type vs the others, combined over studies")
    de.add_argument("--input", required=True, help="h5ad: raw counts in layer 'counts' (else X), cells x genes")
    de.add_argument("--group-key", required=True, help="obs column of the cell types")
    de.add_argument("--study-key", required=True, help="obs column of the studies")
    de.add_argument("--method", choices=["scde", "wilcoxon", "pydeseq2"], default=default("de.method"))
    de.add_argument(
        "--min-cells",
        type=option("de.min_cells"),
        default=default("de.min_cells"),
        help="cells of a type a study needs to be tested",
    )
    de.add_argument(
        "--max-cells",
        type=option("de.max_cells"),
        default=default("de.max_cells"),
        help="cells sampled per side of a test (0: all)",
    )
    de.add_argument(
        "--n-bootstrap",
        type=option("de.n_bootstrap"),
        default=default("de.n_bootstrap"),
        help="SCDE bootstrap resamples per group",
    )
    de.add_argument(
        "--pseudo-replicates",
        type=option("de.pseudo_replicates"),
        default=default("de.pseudo_replicates"),
        help="pydeseq2: pseudo-bulk samples per group",
    )
    de.add_argument(
        "--fdr", type=option("de.fdr"), default=default("de.fdr"), help="threshold on the maximum adjusted p"
    )
    de.add_argument("--exclude", nargs="*", default=default("de.exclude"), help="group values never tested")
    de.add_argument("--seed", type=option("de.seed"), default=default("de.seed"))
    de.add_argument("--output", required=True, help="DIR: DIR/{cell_type}.tsv and DIR/_index.tsv")
    de.set_defaults(func=_de)

    methods = CLUSTERING.methods.values()
    cluster = commands.add_parser("cluster", help="cluster the cells of an h5ad of raw counts")
    cluster.add_argument(
        "--method",
        choices=CLUSTERING.names(),
        help="; ".join(f"{method.name}: {method.summary}" for method in methods) + " (required unless --model)",
    )
    cluster.add_argument("--input", required=True, help="h5ad of raw counts, cells x genes: layer counts, else X")
    cluster.add_argument(
        "--n-clusters",
        type=_positive_int,
        help="number of clusters K (<= number of cells); omitted: "
        "estimated (Leiden at resolution 1 on the method's embedding) and reported",
    )
    cluster.add_argument("--seed", type=int, default=0, help="fixes every random choice (on CPU: same labels)")
    cluster.add_argument(
        "--device", choices=["auto", "cpu", "cuda"], default=default("cluster.device"), help="auto: CUDA when present"
    )
    cluster.add_argument(
        "--config",
        help="YAML mapping of the method's parameters: the fields of "
        + ", ".join(f"{method.params.partition(':')[2]} ({method.name})" for method in methods),
    )
    cluster.add_argument("--threads", type=_positive_int, help="CPU threads of torch (default: the cores)")
    saved = cluster.add_mutually_exclusive_group()
    saved.add_argument(
        "--save-model",
        metavar="DIR",
        help="deep methods: save the fitted model (weights, parameters used, per-epoch history, environment) to DIR",
    )
    saved.add_argument(
        "--model", metavar="DIR", help="cluster with a saved model without refitting (its method, K and genes)"
    )
    cluster.add_argument("--output", required=True, help="TSV cell, cluster (input order); OUT.embedding.npy beside it")
    cluster.set_defaults(func=_cluster)

    score = commands.add_parser("score", help="ARI, NMI, Hungarian accuracy, silhouette of a clustering as JSON")
    score.add_argument("--labels", required=True, help="clusters TSV (cell, cluster) written by scatlas cluster")
    score.add_argument("--truth", required=True, help="h5ad whose obs holds the true labels")
    score.add_argument("--key", default=default("cluster.datasets.*.label_key"), help="obs column of the true labels")
    score.set_defaults(func=_score)

    deep_params = "YAML mapping of LATE's parameters (the fields of scatlas.models.late.LateParams)"
    impute = commands.add_parser(
        "impute",
        help="impute an h5ad of raw counts with LATE or TRANSLATE",
        description="Fits LATE (or TRANSLATE: LATE on --reference, fine-tuned on the input at a tenth of the "
        "learning rate) on the modelled genes' ln(1 + counts x target_sum / library size) (natural log; library "
        "size over every gene; target_sum: the median library size unless set) and writes OUT.h5ad: X the observed "
        "values, layer imputed the model's output for every entry (same scale), uns['impute'] the method, scale and "
        "parameters. The model (weights, parameters, per-epoch history, environment) goes to OUT.model/ or "
        "--save-model DIR; --model DIR reuses one without refitting.",
    )
    impute.add_argument("--method", required=True, choices=IMPUTATION.names("deep"))
    impute.add_argument("--input", required=True, help="h5ad of raw counts, cells x genes: layer counts, else X")
    impute.add_argument(
        "--reference",
        default=default("impute.reference"),
        help="translate: h5ad of raw counts to pretrain on (genes matched by name)",
    )
    impute.add_argument("--fill-missing", action="store_true", help="genes a file lacks read as unobserved (zeros)")
    impute.add_argument("--seed", type=int, default=0, help="fixes every random choice (on CPU: same values)")
    impute.add_argument("--device", choices=["auto", "cpu", "cuda"], default=default("impute.device"))
    impute.add_argument("--config", help=deep_params)
    impute.add_argument("--param", action="append", metavar="KEY=VALUE", help="one parameter (wins over --config)")
    impute.add_argument("--threads", type=_positive_int, help="CPU threads of torch (default: the cores)")
    models = impute.add_mutually_exclusive_group()
    models.add_argument("--save-model", metavar="DIR", help="where the fitted model goes (default: OUT.model/)")
    models.add_argument("--model", metavar="DIR", help="a saved model to impute with, without refitting")
    impute.add_argument("--output", required=True, help="OUT.h5ad")
    impute.set_defaults(func=_impute)

    bench = commands.add_parser(
        "impute-benchmark",
        help="hide a share of the non-zero counts, impute with every method, score on them (JSON)",
        description="Hides --holdout of the non-zero counts, then (from the masked counts alone) picks the "
        "--n-top-genes most variable genes, normalises to the median library size and takes ln(1 + x); imputes "
        "with each method and prints one JSON object keyed by method: mse_heldout, pearson_heldout, "
        "pearson_per_gene_median, pearson_per_cell_median (null where undefined), seconds.",
    )
    bench.add_argument("--input", required=True, help="h5ad of raw counts, cells x genes: layer counts, else X")
    bench.add_argument("--holdout", type=float, default=0.1, help="share of the non-zero counts hidden, in (0, 1)")
    bench.add_argument("--seed", type=int, default=0)
    bench.add_argument("--reference", help="h5ad of raw counts for translate (run only when given)")
    bench.add_argument("--fill-missing", action="store_true", help="genes the reference lacks read as unobserved")
    bench.add_argument(
        "--methods", nargs="+", choices=IMPUTATION.names(), help="default: all (translate with --reference)"
    )
    bench.add_argument("--n-top-genes", type=int, default=2000, help="genes modelled (0: all)")
    bench.add_argument("--device", choices=["auto", "cpu", "cuda"], default=default("impute.device"))
    bench.add_argument("--config", help=deep_params)
    bench.add_argument("--param", action="append", metavar="KEY=VALUE", help="one LATE parameter")
    bench.set_defaults(func=_impute_benchmark)

    embed = commands.add_parser("embed", help="supervised cell embeddings (scQuery) with an ANN index")
    embed = embed.add_subparsers(dest="action", required=True, metavar="ACTION")
    train = embed.add_parser(
        "train",
        help="train an embedding on labelled cells and build the ANN index of the training cells",
        description="Trains on cells whose only label has at least --min-cells cells; with --holdout study "
        "(scQuery's split) whole studies are held out as the query set and scored (accuracy, macro-F1, MAP, "
        "MAFP with --ontology), printed as JSON. MODEL_DIR holds the network, index.bin (hnswlib, cosine), "
        "genes.tsv, cell_types.tsv, training_cells.tsv, split.tsv, params.yaml, history.tsv and env.json.",
    )
    train.add_argument("--input", required=True, help="h5ad of raw counts, cells x genes: layer counts, else X")
    train.add_argument("--label-key", default=default("embed.label_key"), help="obs column of the cell types")
    train.add_argument("--study-key", default=default("embed.study_key"), help="obs column of the studies")
    train.add_argument("--model", choices=["dense", "siamese", "triplet"], default=default("embed.model"))
    train.add_argument(
        "--pretrain", action="store_true", default=default("embed.pretrain"), help="denoising-AE pretraining"
    )
    train.add_argument("--min-cells", type=_positive_int, default=default("embed.min_cells"), help="cells a type needs")
    train.add_argument("--holdout", choices=["study", "none"], default=default("embed.holdout"))
    train.add_argument("--ontology", help="Cell Ontology file (MAFP; the siamese dynamic margin)")
    train.add_argument("--term-key", default=default("embed.term_key"), help="obs column of the types' CL ids")
    train.add_argument("--seed", type=int, default=0, help="fixes every random choice (on CPU: same model)")
    train.add_argument("--device", choices=["auto", "cpu", "cuda"], default=default("embed.device"))
    train.add_argument("--config", help="YAML mapping of the fields of scatlas.models.embed.EmbedParams")
    train.add_argument("--param", action="append", metavar="KEY=VALUE", help="one parameter (wins over --config)")
    train.add_argument("--threads", type=_positive_int, help="CPU threads of torch (default: the cores)")
    train.add_argument("--metrics", help="also write the query-set scores to this JSON file")
    train.add_argument("--output", required=True, metavar="MODEL_DIR")
    train.set_defaults(func=_embed_train)
    query = embed.add_parser("query", help="predict the cell types of an h5ad's cells from a trained embedding")
    query.add_argument("--model", required=True, metavar="MODEL_DIR")
    query.add_argument("--input", required=True, help="h5ad of raw counts (genes matched to the model's by name)")
    query.add_argument("--device", choices=["auto", "cpu", "cuda"], default=default("embed.device"))
    query.add_argument("--threads", type=_positive_int, help="CPU threads of the search (default 1)")
    query.add_argument("--output", required=True, help="PRED.tsv: cell, predicted, score, one column per type")
    query.set_defaults(func=_embed_query)

    mapping = commands.add_parser(
        "map",
        help="map a user's raw-count data onto a trained embedding",
        description="Writes DIR/predictions.tsv (cell, predicted, score, one column per cell type with the "
        "normalised similarity), DIR/studies.tsv (cell, study, neighbours: the atlas studies among each cell's "
        "nearest training cells) and DIR/mapped.h5ad (the input with obsm['X_scatlas'], obs['scatlas_type'], "
        "obs['scatlas_score']). Genes are matched by name; genes the input lacks read as zeros (a warning "
        "counts them); fewer than half the model's genes is an error.",
    )
    mapping.add_argument("--model", required=True, metavar="MODEL_DIR")
    mapping.add_argument("--input", required=True, help="h5ad of raw counts: layer counts, else X, else raw.X")
    mapping.add_argument("--device", choices=["auto", "cpu", "cuda"], default=default("embed.device"))
    mapping.add_argument("--threads", type=_positive_int, help="CPU threads of the search (default 1)")
    mapping.add_argument("--output", required=True, metavar="DIR")
    mapping.set_defaults(func=_map)

    demo = commands.add_parser("demo", help="write the synthetic offline demo (genome, GTF, reads, sheet, config)")
    demo.add_argument("--outdir", required=True)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument(
        "--run",
        action="store_true",
        help="also run the workflow in OUTDIR (data in OUTDIR/data) against a local replay server",
    )
    demo.add_argument("--cores", type=_positive_int, default=2, help="cores for the workflow run (with --run)")
    demo.set_defaults(func=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        args.func(args)
    except AtlasLocked as err:
        print(f"scatlas {args.command}: {err}", file=sys.stderr)
        return 75  # EX_TEMPFAIL: try again later
    except (InputError, ToolError, RemoteError, AccessionError) as err:
        print(f"scatlas {args.command}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # a full disk, a read-only folder, an output path that is a folder
        print(f"scatlas {args.command}: error: {output_error(err)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
