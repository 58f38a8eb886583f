"""scQuery's supervised embeddings (Alavi et al., Nat. Commun. 2018): fit / transform / query / save / load
around :class:`scatlas.nn.embed.EmbeddingNetwork`, with an HNSW index (hnswlib, cosine) of the training
cells' embeddings for retrieval.

The networks see ``ln(1 + counts × 10⁴ / library size)`` of the modelled genes (library size over every gene
of the input; :class:`scatlas.preprocess.expression.LogExpression`). A query's genes are aligned to the
model's by name: genes it lacks read as zeros.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from torch.nn import functional as F

from scatlas.io import InputError
from scatlas.models.artefacts import load_model_dir, save_model_dir
from scatlas.models.base import Params
from scatlas.models.training import adam, choose_device, deterministic, shuffled_batches
from scatlas.nn.embed import (
    EmbeddingNetwork,
    batch_hard_triplet_loss,
    contrastive_loss,
    denoising_layer_loss,
    pair_distance,
    type_similarity,
)
from scatlas.preprocess.expression import CountRows, LogExpression, align_genes
from scatlas.preprocess.normalize import TARGET_SUM, highly_variable

log = logging.getLogger(__name__)

MODELS = ("dense", "siamese", "triplet")
INDEX_FILE = "index.bin"
GENES_FILE = "genes.tsv"
TYPES_FILE = "cell_types.tsv"
CELLS_FILE = "training_cells.tsv"
MIN_GENE_SHARE = 0.5  # a query sharing fewer of the model's genes is refused


@dataclass
class EmbedParams(Params):
    """scQuery's defaults (AmirAlavi/scrna_nn): ``dense 1136 100`` (tanh; embedding = the last hidden layer),
    optional greedy denoising pretraining (noise 0.1 · N(0, 1)), siamese pairs (≤ 750 same-type pairs per
    type, twice as many different-type ones, margin 1), triplet batches of 18 types × 4 cells with a linear
    last layer and the soft margin. Adam at 1e-3 in place of scQuery's SGD (its ``--opt`` flags are swapped
    in the reference code; docs/models/embed.md). Retrieval: the 100 nearest training cells in an HNSW index
    (cosine distance)."""

    model_name = "embed"

    model: str = "dense"  # dense (softmax classifier), siamese (contrastive pairs) or triplet (batch-hard)
    hidden: list[int] = field(default_factory=lambda: [1136, 100])  # layer widths; the last is the embedding
    n_top_genes: int = 2000  # genes modelled: the input's var['highly_variable'] when marked, else the most variable
    pretrain: bool = False  # greedy layer-wise denoising autoencoder pretraining (scQuery's "PT")
    pretrain_epochs: int = 10
    noise: float = 0.1  # sd of the Gaussian noise of the pretraining's corrupted input
    epochs: int = 30
    dropout: float = 0.0  # share of each layer's input dropped in training (scQuery: none)
    batch_size: int = 256  # cells (dense), pairs (siamese)
    learning_rate: float = 1e-3
    margin: float = 1.0  # siamese contrastive margin
    dynamic_margin: bool = False  # siamese: margin (1 − ontology similarity of the two types) · margin
    same_pairs: int = 750  # siamese: same-type pairs per type and epoch
    diff_multiplier: int = 2  # siamese: different-type pairs per same-type pair
    triplet_types: int = 18  # triplet: types per batch (P)
    triplet_cells: int = 4  # triplet: cells per type (K)
    triplet_batches: int = 0  # triplet batches per epoch; 0: as many as cover the training cells once
    n_neighbors: int = 100  # training cells a query cell's type similarity sums over
    index_m: int = 16  # HNSW links per node (hnswlib M)
    index_ef_construction: int = 200
    index_ef: int = 128  # HNSW search breadth (≥ n_neighbors is used)
    index_threads: int = 1  # threads adding cells to the index; 1 builds the same index on every run

    def __post_init__(self):
        super().__post_init__()
        self._check_choice("model", MODELS)
        if not self.hidden or min(self.hidden) < 1:
            raise ValueError(f"embed hidden must be a non-empty list of layer widths, not {self.hidden!r}")
        for name in ("epochs", "batch_size", "n_neighbors", "index_m", "index_ef_construction", "index_ef"):
            if getattr(self, name) < 1:
                raise ValueError(f"embed {name} must be at least 1, not {getattr(self, name)!r}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"embed dropout must be in [0, 1), not {self.dropout!r}")
        if self.triplet_cells < 2 or self.triplet_types < 2:
            raise ValueError("embed triplet_types and triplet_cells must be at least 2")


class Embedder:
    """A supervised cell embedding and the HNSW index of its training cells (see the module's docstring).

    Parameters
    ----------
    params
        :class:`EmbedParams`; its defaults when None.
    seed
        Fixes the initial weights, batches, pairs, triplets, noise and the index's construction (with
        ``index_threads`` 1): on the CPU the same model and predictions on every run.
    device
        ``auto`` (CUDA when present), ``cpu`` or ``cuda``; bfloat16 autocast on CUDA (``mixed_precision``).
    """

    def __init__(self, params: EmbedParams | None = None, seed: int = 0, device: str = "auto"):
        self.params = params or EmbedParams()
        self.seed = seed
        self.device = choose_device(device)
        self.network: EmbeddingNetwork | None = None
        self.genes: pd.Index | None = None
        self.types: list[str] = []
        self.type_terms: list[str] = []
        self.cells = pd.DataFrame(columns=["cell", "study", "label"])
        self.index = None
        self.history: list[dict] = []

    # ------------------------------------------------------------------ fit
    def _autocast(self):
        precision = self.params.mixed_precision
        if precision == "bfloat16" or (precision == "auto" and self.device.type == "cuda"):
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def fit(
        self,
        counts: sp.spmatrix,
        gene_names,
        labels,
        studies=None,
        cells=None,
        highly_variable_genes: np.ndarray | None = None,
        type_terms: dict | None = None,
        type_similarity_matrix: np.ndarray | None = None,
        path: str | os.PathLike = "<input>",
    ) -> Embedder:
        """Train on the training cells' raw counts (cells × genes) and their labels; build the index.

        ``studies``: each cell's study (kept to report a query's nearest studies); ``cells``: their names;
        ``highly_variable_genes``: a boolean mask of genes to model (else the ``n_top_genes`` most variable
        of these cells); ``type_terms``: label → Cell Ontology id (saved in the label table);
        ``type_similarity_matrix``: types × types similarity in [0, 1] in sorted-label order (the
        siamese dynamic margin).
        """
        p = self.params
        started = time.perf_counter()
        labels = np.asarray(labels).astype(str)
        n = len(labels)
        self.types = sorted({str(t) for t in labels})
        if len(self.types) < 2:
            raise InputError(path, f"training needs 2 or more cell types, the training cells have {len(self.types)}")
        codes = np.searchsorted(self.types, labels)
        self.type_terms = [str((type_terms or {}).get(t, "")) for t in self.types]
        counts = sp.csr_matrix(counts)
        gene_names = pd.Index(np.asarray(gene_names).astype(str))
        if highly_variable_genes is not None and np.asarray(highly_variable_genes).any():
            genes = np.flatnonzero(np.asarray(highly_variable_genes, dtype=bool))
        elif p.n_top_genes <= 0 or p.n_top_genes >= counts.shape[1]:
            genes = np.arange(counts.shape[1])
        else:
            genes = np.sort(highly_variable(counts, p.n_top_genes))
        self.genes = gene_names[genes]
        self.cells = pd.DataFrame(
            {
                "cell": np.asarray(cells if cells is not None else np.arange(n)).astype(str),
                "study": np.asarray(studies if studies is not None else np.full(n, "")).astype(str),
                "label": labels,
            }
        )
        with deterministic(self.seed):
            x = self._expression(counts, gene_names, path)
            y = torch.from_numpy(codes).to(self.device)
            generator = torch.Generator().manual_seed(self.seed)
            self.network = EmbeddingNetwork(
                len(self.genes),
                p.hidden,
                n_types=len(self.types) if p.model == "dense" else 0,
                linear_last=p.model == "triplet",
                dropout=p.dropout,
            ).to(self.device)
            if p.pretrain:
                self._pretrain(x, generator)
            if p.model == "dense":
                self._fit_dense(x, y, generator)
            elif p.model == "siamese":
                similarity = None
                if p.dynamic_margin:
                    if type_similarity_matrix is None:
                        raise InputError(path, "the siamese dynamic margin needs the Cell Ontology (--ontology)")
                    similarity = torch.as_tensor(np.nan_to_num(type_similarity_matrix), dtype=torch.float32)
                self._fit_siamese(x, codes, generator, similarity)
            else:
                self._fit_triplet(x, codes, generator)
            embedding = self._embed(x)
        self._build_index(embedding)
        log.info(
            "embed %s: %d cells × %d genes, %d types, %.1f s on %s",
            p.model,
            n,
            len(self.genes),
            len(self.types),
            time.perf_counter() - started,
            self.device,
        )
        return self

    def _expression(self, counts: sp.spmatrix, gene_names: pd.Index, path) -> torch.Tensor:
        """Dense ln(1 + CP10k) of the model's genes (aligned by name; absent genes zeros), on the device."""
        index = align_genes(gene_names, self.genes, path, fill_missing=True)
        data = LogExpression(CountRows(counts, gene_names, path=path), index, TARGET_SUM, self.genes)
        return torch.from_numpy(np.concatenate([b.toarray() for _, _, b in data.blocks()])).to(self.device)

    def _progress(self, stage: str, epoch: int, epochs: int, loss: float, started: float):
        self.history.append({"stage": stage, "epoch": epoch, "loss": loss, "seconds": time.perf_counter() - started})
        if epoch == epochs - 1 or (epoch + 1) % 10 == 0:
            log.info("%s epoch %d/%d loss %.4f", stage, epoch + 1, epochs, loss)

    def _pretrain(self, x: torch.Tensor, generator: torch.Generator) -> None:
        """scQuery's greedy pretraining: each layer in turn as a denoising autoencoder of the previous
        layer's (fixed) output."""
        p = self.params
        h = x
        for i, layer in enumerate(self.network.layers):
            decoder = torch.nn.Linear(layer.out_features, layer.in_features).to(self.device)
            optimizer = adam([*layer.parameters(), *decoder.parameters()], p.learning_rate)
            started = time.perf_counter()
            for epoch in range(p.pretrain_epochs):
                total, steps = 0.0, 0
                for batch in shuffled_batches(h.shape[0], p.batch_size, generator, self.device):
                    with self._autocast():
                        loss = denoising_layer_loss(layer, decoder, h[batch], p.noise, generator)
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                    total, steps = total + loss.item(), steps + 1
                self._progress(f"pretrain{i + 1}", epoch, p.pretrain_epochs, total / max(steps, 1), started)
            with torch.no_grad():
                h = torch.tanh(layer(h))

    def _fit_dense(self, x, y, generator) -> None:
        p = self.params
        optimizer = adam(self.network.parameters(), p.learning_rate)
        started = time.perf_counter()
        self.network.train()
        for epoch in range(p.epochs):
            total, steps = 0.0, 0
            for batch in shuffled_batches(x.shape[0], p.batch_size, generator, self.device):
                with self._autocast():
                    logits = self.network(x[batch])
                loss = F.cross_entropy(logits.float(), y[batch])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total, steps = total + loss.item(), steps + 1
            self._progress("dense", epoch, p.epochs, total / max(steps, 1), started)

    def _pairs(self, codes: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One epoch's siamese pairs (first cells, second cells, same-type flags), shuffled: per type up to
        ``same_pairs`` same-type pairs, and ``diff_multiplier`` times as many pairs of two random types."""
        p = self.params
        by_type = [np.flatnonzero(codes == t) for t in range(len(self.types))]
        first, second = [], []
        for members in by_type:
            if len(members) < 2:
                continue
            n_pairs = min(p.same_pairs, len(members) * (len(members) - 1) // 2)
            a = rng.choice(members, n_pairs)
            b = rng.choice(members, n_pairs)
            clash = a == b
            b[clash] = members[(np.searchsorted(members, b[clash]) + 1) % len(members)]
            first.append(a)
            second.append(b)
        n_same = sum(len(a) for a in first)
        n_diff = p.diff_multiplier * n_same
        type_a = rng.integers(len(by_type), size=n_diff)
        type_b = (type_a + rng.integers(1, len(by_type), size=n_diff)) % len(by_type)
        sizes = np.array([len(m) for m in by_type])
        offsets = (rng.random(n_diff) * sizes[type_a]).astype(int)
        first.append(np.array([by_type[t][o] for t, o in zip(type_a, offsets, strict=True)], dtype=np.int64))
        offsets = (rng.random(n_diff) * sizes[type_b]).astype(int)
        second.append(np.array([by_type[t][o] for t, o in zip(type_b, offsets, strict=True)], dtype=np.int64))
        a, b = np.concatenate(first), np.concatenate(second)
        same = np.concatenate([np.ones(n_same), np.zeros(n_diff)]).astype(np.float32)
        order = rng.permutation(len(a))
        return a[order], b[order], same[order]

    def _fit_siamese(self, x, codes, generator, similarity: torch.Tensor | None) -> None:
        p = self.params
        optimizer = adam(self.network.parameters(), p.learning_rate)
        rng = np.random.default_rng(self.seed)
        codes_t = torch.from_numpy(codes)
        started = time.perf_counter()
        self.network.train()
        for epoch in range(p.epochs):
            a, b, same = self._pairs(codes, rng)
            a, b, same = torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(same)
            total, steps = 0.0, 0
            for batch in shuffled_batches(len(a), p.batch_size, generator, torch.device("cpu")):
                ia, ib = a[batch], b[batch]
                with self._autocast():
                    distance = pair_distance(
                        self.network.embed(x[ia.to(self.device)]), self.network.embed(x[ib.to(self.device)])
                    )
                pair_similarity = None
                if similarity is not None:
                    pair_similarity = similarity[codes_t[ia], codes_t[ib]].to(self.device)
                loss = contrastive_loss(distance, same[batch].to(self.device), p.margin, pair_similarity)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total, steps = total + loss.item(), steps + 1
            self._progress("siamese", epoch, p.epochs, total / max(steps, 1), started)

    def _fit_triplet(self, x, codes, generator) -> None:
        p = self.params
        optimizer = adam(self.network.parameters(), p.learning_rate)
        rng = np.random.default_rng(self.seed)
        by_type = [np.flatnonzero(codes == t) for t in range(len(self.types))]
        n_types = min(p.triplet_types, len(by_type))
        per_batch = n_types * p.triplet_cells
        n_batches = p.triplet_batches or max(1, -(-len(codes) // per_batch))
        started = time.perf_counter()
        self.network.train()
        for epoch in range(p.epochs):
            total = 0.0
            for _ in range(n_batches):
                chosen = rng.choice(len(by_type), n_types, replace=False)
                cells = np.concatenate(
                    [rng.choice(by_type[t], p.triplet_cells, replace=len(by_type[t]) < p.triplet_cells) for t in chosen]
                )
                batch = torch.from_numpy(cells).to(self.device)
                with self._autocast():
                    embedding = self.network.embed(x[batch])
                loss = batch_hard_triplet_loss(embedding, torch.from_numpy(codes[cells]).to(self.device))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += loss.item()
            self._progress("triplet", epoch, p.epochs, total / n_batches, started)

    @torch.no_grad()
    def _embed(self, x: torch.Tensor, size: int = 4096) -> np.ndarray:
        self.network.eval()
        out = []
        for start in range(0, x.shape[0], size):
            with self._autocast():
                out.append(self.network.embed(x[start : start + size]).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.params.hidden[-1]), np.float32)

    def _build_index(self, embedding: np.ndarray) -> None:
        import hnswlib

        p = self.params
        index = hnswlib.Index(space="cosine", dim=embedding.shape[1])
        index.init_index(
            max_elements=len(embedding), M=p.index_m, ef_construction=p.index_ef_construction, random_seed=self.seed
        )
        index.add_items(embedding, np.arange(len(embedding)), num_threads=p.index_threads)
        index.set_ef(max(p.index_ef, p.n_neighbors))
        self.index = index

    # --------------------------------------------------------------- query
    def transform(self, counts: sp.spmatrix, gene_names, path: str | os.PathLike = "<input>") -> np.ndarray:
        """Embedding (cells × hidden[-1], float32) of raw counts (cells × genes), genes matched to the model's
        by name; a gene it lacks reads as zero, and fewer than half the model's genes raise :class:`InputError`."""
        gene_names = pd.Index(np.asarray(gene_names).astype(str))
        present = int(self.genes.isin(gene_names).sum())
        if present < MIN_GENE_SHARE * len(self.genes):
            raise InputError(
                path,
                f"has {present} of the model's {len(self.genes)} genes (fewer than {MIN_GENE_SHARE:.0%}; genes are "
                "matched by var name: is it the same organism and gene naming as the atlas?)",
            )
        if present < len(self.genes):
            log.warning(
                "%s lacks %d of the model's %d genes: read as zeros", path, len(self.genes) - present, len(self.genes)
            )
        with deterministic(self.seed):
            return self._embed(self._expression(sp.csr_matrix(counts), gene_names, path))

    def neighbours(self, embedding: np.ndarray, threads: int = 1, k: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """(training-cell indices, cosine distances) of each row's ``k`` (default ``n_neighbors``) nearest
        training cells (at most the number of training cells), nearest first."""
        k = min(k or self.params.n_neighbors, self.index.get_current_count())
        found, distances = self.index.knn_query(
            np.ascontiguousarray(embedding, dtype=np.float32), k=k, num_threads=threads
        )
        return found.astype(np.int64), distances

    def query(
        self, counts: sp.spmatrix, gene_names, path: str | os.PathLike = "<input>", threads: int = 1, depth: int = 0
    ):
        """(embedding, type similarity cells × types, neighbour indices, neighbour distances) of raw counts.

        The similarity sums over the ``n_neighbors`` nearest; the neighbours returned are the
        ``max(n_neighbors, depth)`` nearest (``depth``: a retrieval list longer than the vote, for MAP)."""
        embedding = self.transform(counts, gene_names, path)
        found, distances = self.neighbours(embedding, threads, max(self.params.n_neighbors, depth))
        vote = min(self.params.n_neighbors, found.shape[1])
        codes = np.searchsorted(self.types, self.cells["label"].to_numpy())
        similarity = type_similarity(distances[:, :vote], codes[found[:, :vote]], len(self.types))
        return embedding, similarity, found, distances

    # ---------------------------------------------------------- save / load
    def save(self, folder: str | os.PathLike, extra: dict | None = None) -> Path:
        """The model folder (layout: :mod:`scatlas.models.artefacts`) plus the index (index.bin), the gene
        list (genes.tsv), the label table (cell_types.tsv: type, term_id, n_cells) and the training cells
        with their studies (training_cells.tsv)."""
        params = dataclasses.asdict(self.params)
        state = {
            "params": params,
            "seed": self.seed,
            "genes": [str(g) for g in self.genes],
            "types": list(self.types),
            "network": self.network.state_dict(),
        }
        n_cells = self.cells["label"].value_counts()
        description = {
            "model": f"embed-{self.params.model}",
            "params": params,
            "seed": self.seed,
            "normalisation": f"ln(1 + counts x {TARGET_SUM:g} / library size); library size over every input gene",
            "n_genes": len(self.genes),
            "n_training_cells": len(self.cells),
            "n_types": len(self.types),
            "index": {"library": "hnswlib", "space": "cosine", "M": self.params.index_m},
        }
        files = {
            INDEX_FILE: lambda path: self.index.save_index(str(path)),
            GENES_FILE: lambda path: pd.DataFrame({"gene": self.genes}).to_csv(path, sep="\t", index=False),
            TYPES_FILE: lambda path: pd.DataFrame(
                {"type": self.types, "term_id": self.type_terms, "n_cells": [int(n_cells[t]) for t in self.types]}
            ).to_csv(path, sep="\t", index=False),
            CELLS_FILE: lambda path: self.cells.to_csv(path, sep="\t", index=False),
        }
        return save_model_dir(folder, state, description, self.history, self.device, {**files, **(extra or {})})

    @classmethod
    def load(cls, folder: str | os.PathLike, device: str = "auto") -> Embedder:
        import hnswlib

        folder = Path(folder)
        if (folder / "SKIPPED").is_file():
            reason = (folder / "SKIPPED").read_text().strip()
            raise InputError(folder, f"no embedding was trained here ({reason})")
        state, _ = load_model_dir(folder)
        if "types" not in state or not (folder / INDEX_FILE).is_file():
            raise InputError(folder, "not a saved scatlas embedding (no cell types or no index.bin)")
        model = cls(EmbedParams(**state["params"]), state["seed"], device)
        model.genes = pd.Index(state["genes"])
        model.types = list(state["types"])
        table = pd.read_csv(folder / TYPES_FILE, sep="\t", dtype=str, keep_default_na=False)
        model.type_terms = table["term_id"].tolist()
        model.cells = pd.read_csv(folder / CELLS_FILE, sep="\t", dtype=str, keep_default_na=False)
        p = model.params
        model.network = EmbeddingNetwork(
            len(model.genes),
            p.hidden,
            n_types=len(model.types) if p.model == "dense" else 0,
            linear_last=p.model == "triplet",
            dropout=p.dropout,
        )
        model.network.load_state_dict(state["network"])
        model.network.to(model.device)
        model.index = hnswlib.Index(space="cosine", dim=p.hidden[-1])
        model.index.load_index(str(folder / INDEX_FILE), max_elements=len(model.cells))
        model.index.set_ef(max(p.index_ef, p.n_neighbors))
        history = folder / "history.tsv"
        model.history = pd.read_csv(history, sep="\t").to_dict("records") if history.stat().st_size > 1 else []
        return model
