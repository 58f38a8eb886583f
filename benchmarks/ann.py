"""ANN retrieval: hnswlib HNSW (cosine, the index ``scatlas embed train`` builds) against exact search.

Database of N × 100 float32 vectors, 10 k queries, k = 100; build seconds, query seconds, recall@100 against
exact cosine search (faiss IndexFlatIP on unit vectors) and the index's memory, for three kinds of data:
``uniform`` (random directions), ``clustered`` (a Gaussian mixture) and ``embedding`` (real cells'
embeddings, a short dense fit on kang, tiled with noise to N). One build per data set and M; the search
breadth ef is swept on it (ef changes no build).

    python benchmarks/ann.py [--n-database 1000000] [--data clustered embedding uniform] [--m 16] [--ef 100 128 256]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import add_output_argument, write_result

DIM = 100
SHARED = Path(os.environ.get("SCATLAS_SHARED", Path(__file__).resolve().parents[2] / "shared"))


def _unit(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x / np.linalg.norm(x, axis=1, keepdims=True), dtype=np.float32)


def uniform(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.standard_normal((n, DIM), dtype=np.float32)


def clustered(n: int, rng: np.random.Generator, n_clusters: int = 200, spread: float = 0.3) -> np.ndarray:
    centres = rng.standard_normal((n_clusters, DIM), dtype=np.float32)
    members = rng.integers(n_clusters, size=n)
    return centres[members] + spread * rng.standard_normal((n, DIM), dtype=np.float32)


_REAL: np.ndarray | None = None


def embedding(n: int, rng: np.random.Generator, noise: float = 0.1) -> np.ndarray:
    """Rows of real embeddings (a short dense fit on kang's 2,800 cells), drawn with replacement, plus
    Gaussian noise of ``noise`` × each dimension's sd."""
    global _REAL
    if _REAL is None:
        import anndata as ad
        import torch

        from scatlas.models.embed import Embedder, EmbedParams

        torch.set_num_threads(2)
        adata = ad.read_h5ad(SHARED / "data" / "benchmarks" / "pbmc_ifnb_kang_2800.h5ad")
        params = EmbedParams.from_dict({"n_top_genes": 1000, "epochs": 10})
        model = Embedder(params, 0, "cpu").fit(adata.X, adata.var_names, adata.obs["label"].astype(str))
        _REAL = model.transform(adata.X, adata.var_names)
    rows = _REAL[rng.integers(len(_REAL), size=n)]
    return rows + noise * _REAL.std(axis=0) * rng.standard_normal((n, DIM), dtype=np.float32)


DATA = {"uniform": uniform, "clustered": clustered, "embedding": embedding}


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


def exact(database: np.ndarray, queries: np.ndarray, k: int, threads: int) -> np.ndarray:
    import faiss

    faiss.omp_set_num_threads(threads)
    index = faiss.IndexFlatIP(DIM)
    index.add(database)
    return index.search(queries, k)[1]


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    hits = sum(len(np.intersect1d(a, b, assume_unique=True)) for a, b in zip(found, truth, strict=True))
    return hits / truth.size


def run(name: str, n: int, n_queries: int, k: int, m: int, ef_construction: int, efs, threads: int, seed: int):
    import hnswlib

    rng = np.random.default_rng(seed)
    vectors = DATA[name](n + n_queries, rng)
    database, queries = _unit(vectors[:n]), _unit(vectors[n:])
    del vectors
    started = time.perf_counter()
    truth = exact(database, queries, k, threads)
    exact_seconds = time.perf_counter() - started
    before = rss_mb()
    started = time.perf_counter()
    index = hnswlib.Index(space="cosine", dim=DIM)
    index.init_index(max_elements=n, M=m, ef_construction=ef_construction, random_seed=seed)
    index.add_items(database, np.arange(n), num_threads=threads)
    build = time.perf_counter() - started
    index_mb = rss_mb() - before
    rows = []
    for ef in efs:
        index.set_ef(max(ef, k))
        started = time.perf_counter()
        found, _ = index.knn_query(queries, k=k, num_threads=threads)
        seconds = time.perf_counter() - started
        row = {
            "data": name,
            "n_database": n,
            "n_queries": n_queries,
            "k": k,
            "M": m,
            "ef_construction": ef_construction,
            "ef": max(ef, k),
            "threads": threads,
            "build_seconds": round(build, 1),
            "query_seconds": round(seconds, 2),
            "recall_at_k": round(recall(found, truth), 4),
            "exact_seconds": round(exact_seconds, 1),
            "index_memory_mb": round(index_mb),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        }
        print(row, flush=True)
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-database", type=int, default=1_000_000)
    parser.add_argument("--n-queries", type=int, default=10_000)
    parser.add_argument("--k", type=int, default=100, help="neighbours per query (EmbedParams.n_neighbors)")
    parser.add_argument("--data", nargs="+", choices=sorted(DATA), default=["clustered", "embedding", "uniform"])
    parser.add_argument("--m", nargs="+", type=int, default=[16])
    parser.add_argument("--ef-construction", type=int, default=200)
    parser.add_argument("--ef", nargs="+", type=int, default=[100, 128, 256])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    add_output_argument(parser, "ann")
    args = parser.parse_args()
    rows = []
    for name in args.data:
        for m in args.m:
            rows += run(
                name, args.n_database, args.n_queries, args.k, m, args.ef_construction, args.ef, args.threads, args.seed
            )
    write_result("ann", pd.DataFrame(rows), output=args.output)


if __name__ == "__main__":
    main()
