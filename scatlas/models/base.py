"""What the deep clustering models' wrappers share: parameters from a mapping, the device and batches of
a fit, its progress log, prediction, and saving to / loading from a model folder
(:mod:`scatlas.models.artefacts`); :class:`FittedClustering`, the members of one ``scatlas cluster`` fit
(an ensemble's, or a single model) saved as one folder."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time
from pathlib import Path
from typing import ClassVar

import numpy as np
import scipy.sparse as sp
import torch

from scatlas.models.artefacts import load_model_dir, save_model_dir
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

    ``guard``: ``scatlas cluster`` checks the partition against PCA + K-means' without labels and falls back
    to it when the deep one is clearly worse (:mod:`scatlas.cluster.guard`); false keeps the deep one always.
    """

    model_name: ClassVar[str] = "model"
    mixed_precision: str = "auto"
    guard: bool = True

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
    method: ClassVar[str]  # the registry's name (scatlas.registry.CLUSTERING)
    networks: ClassVar[tuple[str, ...]]

    def __init__(self, n_clusters: int | None, params=None, seed: int = 0, device: str = "auto"):
        self.n_clusters = n_clusters
        self.params = params or self.params_class()
        self.seed = seed
        self.device = choose_device(device)
        self.centres: torch.Tensor | None = None
        self.history: list[dict] = []
        self.history_seconds: list[float] = []  # seconds since the model was made, at each history row
        self._made = time.perf_counter()
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
        self.history_seconds.append(round(time.perf_counter() - self._made, 3))
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

    def state(self) -> dict:
        """What rebuilds the fitted model: state dicts, centres, parameters, seed and the modelled genes."""
        state = {
            "n_clusters": self.n_clusters,
            "params": dataclasses.asdict(self.params),
            "seed": self.seed,
            "gene_names": [str(g) for g in self.gene_names],
            "genes": torch.from_numpy(self.genes_),
            "n_input_genes": self.n_input_genes_,
            "centres": self.centres.cpu(),
        }
        return state | {name: getattr(self, name).state_dict() for name in self.networks}

    @classmethod
    def from_state(cls, state: dict, device: str = "auto"):
        """The model :meth:`state` describes, on ``device``."""
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

    def history_table(self) -> list[dict]:
        """One row per epoch of each training stage: stage, epoch, loss terms, seconds since the start."""
        return [row | {"seconds": seconds} for row, seconds in zip(self.history, self.history_seconds, strict=False)]

    def save(self, folder: str | os.PathLike) -> Path:
        """The model folder (layout: :mod:`scatlas.models.artefacts`) of this one model."""
        return FittedClustering(self.method, [self]).save(folder)

    @classmethod
    def load(cls, folder: str | os.PathLike, device: str = "auto"):
        """The (first) model of a folder :meth:`save` or :meth:`FittedClustering.save` wrote."""
        return FittedClustering.load(folder, device).members[0]


def combine_members(labels: list[np.ndarray], embeddings: list[np.ndarray], n_clusters: int):
    """An ensemble's (labels, embedding) from its members': the consensus partition
    (:func:`scatlas.partition.ensemble_partition`) and the embeddings side by side, each divided by its overall
    sd so that every member weighs the same. One member: its own labels and embedding."""
    if len(labels) == 1:
        return labels[0], embeddings[0]
    from scatlas.partition import ensemble_partition

    combined = np.hstack([z / max(float(z.std()), 1e-12) for z in embeddings])
    return ensemble_partition(labels, n_clusters), combined


class FittedClustering:
    """The fitted members of one clustering (one model, or an ensemble's) with the fit's labels and embedding
    (None when loaded); saved as one model folder and reloaded to cluster cells without refitting.

    ``method``: the registry's name of the method (:data:`scatlas.registry.CLUSTERING`), which names the
    members' class when the folder is loaded.
    """

    def __init__(self, method: str, members: list[ClusteringModel], labels=None, embedding=None, input_genes=None):
        self.method, self.members = method, members
        # names of the fit's input genes (the columns predict expects); None: positions only
        self.input_genes = input_genes
        if labels is None and all(hasattr(m, "labels_") for m in members):
            labels, embedding = combine_members(
                [m.labels_ for m in members], [m.embedding_ for m in members], members[0].n_clusters_
            )
        self.labels_, self.embedding_ = labels, embedding

    @torch.no_grad()
    def predict(self, counts: sp.spmatrix) -> tuple[np.ndarray, np.ndarray]:
        """(labels, embedding) of raw counts (cells × the fitted input's genes, same order), as the fit made
        them: on the fit's own cells on the CPU, the fit's labels exactly."""
        embeddings = [member.transform(counts) for member in self.members]
        labels = [
            member._assign(torch.from_numpy(z).to(member.device)).cpu().numpy()
            for member, z in zip(self.members, embeddings, strict=True)
        ]
        return combine_members(labels, embeddings, self.members[0].n_clusters_)

    def save(self, folder: str | os.PathLike) -> Path:
        """model.pt: every member's state; params.yaml: method, K, seeds, parameters and the number of modelled
        genes; history.tsv: every member's epochs (column member); env.json."""
        first = self.members[0]
        description = {
            "model": self.method,
            "n_clusters": int(first.n_clusters_),
            "seeds": [member.seed for member in self.members],
            "params": dataclasses.asdict(first.params),
            "n_genes": len(first.gene_names),
            "n_input_genes": int(first.n_input_genes_),
        }
        history = [row | {"member": i} for i, m in enumerate(self.members) for row in m.history_table()]
        state = {
            "method": self.method,
            "members": [member.state() for member in self.members],
            "input_genes": self.input_genes or [str(i) for i in range(first.n_input_genes_)],
        }
        return save_model_dir(folder, state, description, history, first.device)

    @classmethod
    def load(cls, folder: str | os.PathLike, device: str = "auto") -> FittedClustering:
        """A saved clustering; a folder that is no saved clustering raises :class:`~scatlas.io.InputError`."""
        from scatlas.io import InputError
        from scatlas.registry import CLUSTERING

        state, _ = load_model_dir(folder)
        if "members" not in state or "method" not in state:
            raise InputError(folder, "not a saved clustering model (no members in model.pt)")
        try:
            model_class = CLUSTERING.method(state["method"]).model_class()
        except KeyError as err:
            raise InputError(folder, err.args[0]) from None
        members = [model_class.from_state(member, device) for member in state["members"]]
        return cls(state["method"], members, input_genes=list(state["input_genes"]))
