"""LATE and TRANSLATE (Badsha et al., Quant. Biol. 2020): fit / impute / save / load around
:class:`scatlas.nn.late.LateAutoencoder`.

LATE trains the autoencoder on one data set's log expression (:class:`scatlas.preprocess.expression.LogExpression`)
with the loss over its observed (non-zero) entries; the cells are split 70 / 15 / 15 into training,
validation and test sets, training stops when the validation loss has not improved for ``patience`` epochs,
and the weights of the best validation epoch are kept. TRANSLATE is the same fit twice: on a reference, then,
from those weights, on the target at a tenth of the learning rate (:meth:`Late.fine_tune`).

Cells pass through training and prediction a block at a time (``block_cells``), so a data set read from disk
is never held whole; a set of at most one block is densified once and kept for the whole fit.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from scatlas.models.artefacts import load_model_dir, save_model_dir
from scatlas.models.base import Params
from scatlas.models.training import adam, batch_starts, choose_device, deterministic
from scatlas.nn.late import LateAutoencoder, nonzero_mse
from scatlas.preprocess.expression import NORMALISATION, LogExpression

log = logging.getLogger(__name__)


@dataclass
class LateParams(Params):
    """LATE's defaults (audreyqyfu/LATE): five layers G → 800 → 400 → 800 → G, dropout 0.2 at the input
    and 0.5 elsewhere (the reference's keep-probabilities 0.8 / 0.5), Adam 3e-4 (3e-5 for TRANSLATE's second
    step), batches of 256, cells split 70 / 15 / 15. The reference trains a fixed number of epochs; here
    training stops on the validation loss (``patience``; docs/models/late.md has the measurement behind it).
    """

    model_name = "LATE"

    n_top_genes: int = 2000  # genes modelled: the input's var['highly_variable'] when marked, else scanpy's
    target_sum: float = 0.0  # counts per cell before ln(1 + x); 0 = the median library size of the fitted set
    hidden: list[int] = field(default_factory=lambda: [800, 400])  # [400]: LATE's three layers
    input_dropout: float = 0.2  # share dropped (LATE pIn = 0.8 kept)
    hidden_dropout: float = 0.5  # share dropped (LATE pHidden = 0.5 kept)
    init_sd: float = 1e-3  # LATE's N(0, sd) weights and N(100 sd, sd) biases; 0 = torch's default initialisation
    learning_rate: float = 3e-4
    fine_tune_learning_rate: float = 3e-5  # TRANSLATE's second step
    batch_size: int = 256
    max_epochs: int = 300
    patience: int = 20  # epochs without a lower validation loss before training stops (0: never stops early)
    valid_fraction: float = 0.15
    test_fraction: float = 0.15
    max_valid_cells: int = 5000  # validation (and test) loss on at most this many of those cells
    block_cells: int = 8192  # cells read and densified at a time

    def __post_init__(self):
        super().__post_init__()
        if not self.hidden or min(self.hidden) < 1:
            raise ValueError(f"LATE hidden must be a non-empty list of layer widths, not {self.hidden!r}")
        for name in ("input_dropout", "hidden_dropout"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"LATE {name} must be in [0, 1), not {getattr(self, name)!r}")
        if not (self.valid_fraction > 0 and self.test_fraction >= 0 and self.valid_fraction + self.test_fraction < 1):
            raise ValueError("LATE valid_fraction must be > 0 and valid_fraction + test_fraction < 1")
        for name in ("batch_size", "max_epochs", "block_cells", "max_valid_cells"):
            if getattr(self, name) < 1:
                raise ValueError(f"LATE {name} must be at least 1, not {getattr(self, name)!r}")


def split_cells(n_cells: int, valid_fraction: float, test_fraction: float, seed: int) -> dict[str, np.ndarray]:
    """Sorted cell indices of the ``train`` / ``valid`` / ``test`` sets of a random split of ``n_cells``
    (at least one validation cell; the training set is never empty)."""
    order = np.random.default_rng(seed).permutation(n_cells)
    n_valid = max(1, round(valid_fraction * n_cells)) if n_cells > 1 else 0
    n_test = min(round(test_fraction * n_cells), n_cells - n_valid - 1)
    return {
        "valid": np.sort(order[:n_valid]),
        "test": np.sort(order[n_valid : n_valid + n_test]),
        "train": np.sort(order[n_valid + n_test :]),
    }


class Late:
    """LATE / TRANSLATE imputation (see the module's docstring).

    Parameters
    ----------
    params
        :class:`LateParams`; its defaults when None.
    seed
        Fixes the cell split, the initial weights, the batches and the dropout masks (on the CPU: the same
        imputed values on every run).
    device
        ``auto`` (CUDA when present), ``cpu`` or ``cuda``; on CUDA the network runs under bfloat16 autocast
        and the loss in float32 (``params.mixed_precision``).
    """

    def __init__(self, params: LateParams | None = None, seed: int = 0, device: str = "auto"):
        self.params = params or LateParams()
        self.seed = seed
        self.device = choose_device(device)
        self.network: LateAutoencoder | None = None
        self.gene_names: pd.Index | None = None
        self.target_sum: float = float("nan")
        self.history: list[dict] = []
        self.stages: list[dict] = []

    # ------------------------------------------------------------------ fit
    def _autocast(self):
        precision = self.params.mixed_precision
        if precision == "bfloat16" or (precision == "auto" and self.device.type == "cuda"):
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _build(self, n_genes: int) -> None:
        p = self.params
        self.network = LateAutoencoder(n_genes, p.hidden, p.input_dropout, p.hidden_dropout, p.init_sd)
        self.network.to(self.device)

    def fit(self, data: LogExpression, stage: str = "late", learning_rate: float | None = None) -> Late:
        """Train on ``data`` (cells × genes log expression; zeros are unobserved) from the present weights,
        or from LATE's initialisation when there are none; keep the best validation epoch's weights.

        ``stage`` names the fit in the history (``late``, ``pretrain``, ``translate``).
        """
        p = self.params
        lr = p.learning_rate if learning_rate is None else learning_rate
        seed = self.seed + len(self.stages)  # a second stage (fine-tuning) draws other splits and batches
        started = time.perf_counter()
        with deterministic(seed):
            if self.network is None:
                self._build(data.n_genes)
                self.gene_names, self.target_sum = data.gene_names, data.target_sum
            elif data.n_genes != self.network.layers[0][1].in_features:
                raise ValueError(f"{data.n_genes} genes given, the model has {self.network.layers[0][1].in_features}")
            split = split_cells(data.n_cells, p.valid_fraction, p.test_fraction, seed)
            generator = torch.Generator().manual_seed(seed)
            optimizer = adam(self.network.parameters(), lr)
            valid = self._dense(data.take(self._sample(split["valid"], seed)))
            train_cache = self._dense(data.take(split["train"])) if data.n_cells <= p.block_cells else None
            best, best_loss, since_best, epoch = None, float("inf"), 0, -1
            for epoch in range(p.max_epochs):
                train_loss = self._train_epoch(data, split["train"], train_cache, optimizer, generator)
                valid_loss = self._loss(valid)
                self.history.append(
                    {
                        "stage": stage,
                        "epoch": epoch,
                        "train_loss": train_loss,
                        "valid_loss": valid_loss,
                        "seconds": time.perf_counter() - started,
                    }
                )
                if (epoch + 1) % 10 == 0:
                    log.info("%s epoch %d: train %.5f valid %.5f", stage, epoch + 1, train_loss, valid_loss)
                if valid_loss < best_loss:
                    best, best_loss, since_best = copy.deepcopy(self.network.state_dict()), valid_loss, 0
                else:
                    since_best += 1
                    if p.patience and since_best >= p.patience:
                        break
            self.network.load_state_dict(best)
            test = split["test"]
            test_loss = self._loss(self._dense(data.take(self._sample(test, seed)))) if test.size else float("nan")
        seconds = time.perf_counter() - started
        self.stages.append(
            {
                "stage": stage,
                "n_cells": data.n_cells,
                "n_genes": data.n_genes,
                "learning_rate": lr,
                "epochs": epoch + 1,
                "best_epoch": epoch - since_best,
                "valid_loss": best_loss,
                "test_loss": test_loss,
                "seconds": seconds,
                "seed": seed,
            }
        )
        log.info(
            "%s: %d cells × %d genes, %d epochs (best %d), valid %.5f, test %.5f, %.1f s on %s",
            stage,
            data.n_cells,
            data.n_genes,
            epoch + 1,
            epoch - since_best + 1,
            best_loss,
            test_loss,
            seconds,
            self.device,
        )
        return self

    def fine_tune(self, data: LogExpression) -> Late:
        """TRANSLATE's second step: from the present (reference-trained) weights, train on ``data`` at
        ``fine_tune_learning_rate``."""
        if self.network is None:
            raise ValueError("TRANSLATE fine-tunes a fitted model: fit it on the reference first")
        self.gene_names = data.gene_names
        self.target_sum = data.target_sum
        return self.fit(data, "translate", self.params.fine_tune_learning_rate)

    def _sample(self, cells: np.ndarray, seed: int) -> np.ndarray:
        if cells.size <= self.params.max_valid_cells:
            return cells
        return np.sort(np.random.default_rng(seed).choice(cells, self.params.max_valid_cells, replace=False))

    def _dense(self, x) -> torch.Tensor:
        return torch.from_numpy(x.toarray()).to(self.device)

    def _train_epoch(self, data, train, cache, optimizer, generator) -> float:
        self.network.train()
        total, steps = 0.0, 0
        for x in self._training_blocks(data, train, cache, generator):
            starts = batch_starts(x.shape[0], self.params.batch_size)
            order = torch.randperm(x.shape[0], generator=generator).to(self.device)
            for i, start in enumerate(starts):
                end = starts[i + 1] if i + 1 < len(starts) else x.shape[0]
                with self._autocast():
                    loss = self.network.loss(x[order[start:end]])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total, steps = total + loss.item(), steps + 1
        return total / max(steps, 1)

    def _training_blocks(self, data, train, cache, generator) -> Iterator[torch.Tensor]:
        """Dense training cells a block at a time, the blocks in a random order (one block: all of them)."""
        if cache is not None:
            yield cache
            return
        size = self.params.block_cells
        n_blocks = -(-data.n_cells // size)
        for b in torch.randperm(n_blocks, generator=generator).tolist():
            start, end = b * size, min((b + 1) * size, data.n_cells)
            cells = train[(train >= start) & (train < end)] - start
            if cells.size:
                yield self._dense(data.block(start, end)[cells])

    @torch.no_grad()
    def _loss(self, x: torch.Tensor) -> float:
        """Mean :func:`nonzero_mse` of ``x``'s reconstruction (inference mode: no dropout)."""
        if x.shape[0] == 0:
            return float("nan")
        self.network.eval()
        total = 0.0
        for start in range(0, x.shape[0], 4096):
            chunk = x[start : start + 4096]
            with self._autocast():
                total += float(nonzero_mse(chunk, self.network(chunk))) * chunk.shape[0]
        return total / x.shape[0]

    # -------------------------------------------------------------- impute
    @torch.no_grad()
    def impute_blocks(self, data: LogExpression) -> Iterator[tuple[int, int, np.ndarray]]:
        """(start, end, imputed) for each block of ``data``'s cells: every entry replaced by the network's
        output (LATE's rule; cells × genes float32, the ln(1 + x) scale of ``data``), dropout off."""
        self.network.eval()
        for start, end, x in data.blocks(self.params.block_cells):
            dense = self._dense(x)
            out = []
            for i in range(0, dense.shape[0], 4096):
                with self._autocast():
                    out.append(self.network(dense[i : i + 4096]).float().cpu().numpy())
            yield start, end, np.concatenate(out) if out else np.zeros((0, data.n_genes), np.float32)

    def impute(self, data: LogExpression) -> np.ndarray:
        """The imputed matrix of ``data`` (cells × genes, dense float32): for sets that fit in memory."""
        return np.concatenate([block for _, _, block in self.impute_blocks(data)])

    # ---------------------------------------------------------- save / load
    def save(self, folder: str | os.PathLike) -> Path:
        """The model folder (layout: :mod:`scatlas.models.artefacts`): weights, genes and scale in model.pt;
        parameters, seed, normalisation and the training stages in params.yaml; one row per epoch of each
        stage in history.tsv; env.json."""
        params = dataclasses.asdict(self.params)
        state = {
            "params": params,
            "seed": self.seed,
            "gene_names": [str(g) for g in self.gene_names],
            "target_sum": self.target_sum,
            "stages": self.stages,
            "network": self.network.state_dict(),
        }
        description = {
            "model": "late",
            "params": params,
            "seed": self.seed,
            "target_sum": float(self.target_sum),
            "normalisation": NORMALISATION,
            "n_genes": len(self.gene_names),
            "stages": self.stages,
        }
        return save_model_dir(folder, state, description, self.history, self.device)

    @classmethod
    def load(cls, folder: str | os.PathLike, device: str = "auto") -> Late:
        state, _ = load_model_dir(folder)
        model = cls(LateParams(**state["params"]), state["seed"], device)
        model.gene_names = pd.Index(state["gene_names"])
        model.target_sum = float(state["target_sum"])
        model.stages = list(state["stages"])
        model._build(len(model.gene_names))
        model.network.load_state_dict(state["network"])
        return model


def fit_late(x, params: LateParams | None = None, seed: int = 0, device: str = "auto", reference=None) -> np.ndarray:
    """LATE as the imputation benchmark runs it: fit on ``x`` (cells × genes, ln(1 + x) expression, CSR;
    zeros unobserved) and return its imputed matrix (dense float32, same scale)."""
    data = LogExpression.from_log(x)
    return Late(params, seed, device).fit(data).impute(data)


def fit_translate(x, params: LateParams | None = None, seed: int = 0, device: str = "auto", reference=None):
    """TRANSLATE as the benchmark runs it: fit on ``reference`` (cells × the same genes, same scale), fine-tune
    on ``x``, return ``x``'s imputed matrix."""
    if reference is None:
        raise ValueError("translate needs a reference data set")
    data = LogExpression.from_log(x)
    model = Late(params, seed, device).fit(LogExpression.from_log(reference), "pretrain")
    return model.fine_tune(data).impute(data)
