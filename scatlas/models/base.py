"""What the deep clustering models' wrappers share: parameters from a mapping, the device and batches of
a fit, its progress log, prediction, and saving to / loading from one torch file."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from typing import ClassVar

import numpy as np
import scipy.sparse as sp
import torch

from scatlas.models.training import choose_device, epochs_for, shuffled_batches
from scatlas.params import MethodParams

log = logging.getLogger(__name__)


PRECISIONS = ("auto", "bfloat16", "float32")


@dataclasses.dataclass
class Params(MethodParams):
    """Base of a deep model's hyper-parameter dataclass (read from a mapping as every method's are).

    ``mixed_precision``: "auto" = the networks under bfloat16 autocast on CUDA, float32 on the CPU;
    "bfloat16" = autocast on the CPU too (losses stay float32): faster on CPUs with native bfloat16
    (AVX-512 BF16 or AMX: AMD Zen 4, Intel Sapphire Rapids and later), slower on others, and the results
    differ slightly from float32's (timings: docs/models/scdmac.md);
    "float32" = no autocast anywhere.
    """

    model_name: ClassVar[str] = "model"
    mixed_precision: str = "auto"

    def __post_init__(self):
        super().__post_init__()
        self._check_choice("mixed_precision", PRECISIONS)


class ClusteringModel:
    """Base of a deep clustering model fitted on raw counts.

    Subclasses set ``params_class`` and ``networks`` (the attributes holding their ``nn.Module`` s, saved
    by name), and define ``fit``, ``transform`` (raw counts → embedding), ``_assign`` (embedding →
    cluster) and ``_build_networks`` (the untrained modules, for :meth:`load`).

    Parameters
    ----------
    n_clusters
        Number of clusters k; None: the model estimates it (then ``n_clusters_``).
    params
        An instance of ``params_class``; its defaults when None.
    seed
        Fixes every random choice of the fit.
    device
        ``auto``, ``cpu`` or ``cuda``. On CUDA the networks run under bfloat16 autocast, losses in float32
        (``Params.mixed_precision`` changes that).
    """

    params_class: ClassVar[type]
    networks: ClassVar[tuple[str, ...]]

    def __init__(self, n_clusters: int | None, params=None, seed: int = 0, device: str = "auto"):
        self.n_clusters = n_clusters
        self.params = params or self.params_class()
        self.seed = seed
        self.device = choose_device(device)
        self.centres: torch.Tensor | None = None
        self.history: list[dict] = []
        for name in self.networks:
            setattr(self, name, None)

    def _autocast(self):
        precision = self.params.mixed_precision
        if precision == "bfloat16" or (precision == "auto" and self.device.type == "cuda"):
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _epochs(self, epochs: int, n: int) -> int:
        return epochs_for(epochs, n, self.params.batch_size, self.params.min_steps)

    def _batches(self, n: int, generator: torch.Generator):
        return shuffled_batches(n, self.params.batch_size, generator, self.device)

    @torch.no_grad()
    def _in_chunks(self, function, *tensors: torch.Tensor, size: int = 4096) -> torch.Tensor:
        """``function`` of the tensors' rows, ``size`` rows at a time (inference: no gradient, autocast
        on CUDA), concatenated in float32."""
        out = []
        for start in range(0, tensors[0].shape[0], size):
            with self._autocast():
                out.append(function(*(tensor[start : start + size] for tensor in tensors)).float())
        return torch.cat(out)

    def _progress(self, stage: str, epoch: int, epochs: int, **losses):
        self.history.append({"stage": stage, "epoch": epoch, **losses})
        if epoch == epochs - 1 or (epoch + 1) % 10 == 0:
            log.info("%s epoch %d/%d %s", stage, epoch + 1, epochs, " ".join(f"{k} {v:.4f}" for k, v in losses.items()))

    @property
    def n_clusters_(self) -> int:
        """The number of clusters fitted (``n_clusters``, or its estimate)."""
        return self.centres.shape[0]

    @torch.no_grad()
    def predict(self, counts: sp.spmatrix) -> np.ndarray:
        """Cluster of each cell of raw counts over the fitted input's genes (same order)."""
        return self._assign(torch.from_numpy(self.transform(counts)).to(self.device)).cpu().numpy()

    def save(self, path: str | os.PathLike) -> None:
        """State dicts, centres, parameters, seed and the modelled genes in one torch file."""
        state = {
            "n_clusters": self.n_clusters,
            "params": dataclasses.asdict(self.params),
            "seed": self.seed,
            "gene_names": [str(g) for g in self.gene_names],
            "genes": torch.from_numpy(self.genes_),
            "n_input_genes": self.n_input_genes_,
            "centres": self.centres.cpu(),
        }
        torch.save(state | {name: getattr(self, name).state_dict() for name in self.networks}, path)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str = "auto"):
        state = torch.load(path, map_location="cpu", weights_only=True)
        model = cls(state["n_clusters"], cls.params_class(**state["params"]), state["seed"], device)
        model.gene_names = np.asarray(state["gene_names"])
        model.genes_, model.n_input_genes_ = state["genes"].numpy(), state["n_input_genes"]
        model.centres = state["centres"].to(model.device)
        model._build_networks()
        for name in cls.networks:
            network = getattr(model, name)
            network.load_state_dict(state[name])
            network.to(model.device)
        return model
