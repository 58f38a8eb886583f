"""What the deep clustering models' wrappers share: parameters from a mapping, the device and batches of
a fit, its progress log, prediction, and saving to / loading from one torch file."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import typing
from typing import ClassVar

import numpy as np
import scipy.sparse as sp
import torch

from scatlas.models.training import choose_device, epochs_for, shuffled_batches

log = logging.getLogger(__name__)


PRECISIONS = ("auto", "bfloat16", "float32")


@dataclasses.dataclass
class Params:
    """Base of a model's hyper-parameter dataclass; ``model_name`` names it in errors.

    ``mixed_precision``: "auto" = the networks under bfloat16 autocast on CUDA, float32 on the CPU;
    "bfloat16" = autocast on the CPU too (losses stay float32): on CPUs with native bfloat16 (AVX-512
    BF16 or AMX: AMD Zen 4, Intel Sapphire Rapids and later) about 1.4 times faster, slower on others,
    and the results differ slightly from float32's (benchmarks/clustering.py ``--mixed-precision``);
    "float32" = no autocast anywhere.
    """

    model_name: ClassVar[str] = "model"
    mixed_precision: str = "auto"

    def __post_init__(self):
        self._check_choice("mixed_precision", PRECISIONS)

    def _check_choice(self, name: str, allowed: tuple[str, ...]) -> None:
        """Raise ``ValueError`` naming the field ``name`` when its value is not one of ``allowed``."""
        value = getattr(self, name)
        if value not in allowed:
            raise ValueError(f"{self.model_name} {name} must be {' or '.join(map(repr, allowed))}, not {value!r}")

    @classmethod
    def from_dict(cls, values: dict):
        """Parameters from a mapping; an unknown key or a bad value raises ``KeyError`` naming it."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise KeyError(f"unknown {cls.model_name} parameter(s): {', '.join(unknown)}")
        hints = typing.get_type_hints(cls)
        try:
            return cls(**{name: cls._typed(name, hints[name], value) for name, value in values.items()})
        except ValueError as err:
            raise KeyError(str(err)) from None

    @classmethod
    def _typed(cls, name: str, hint, value):
        """``value`` as the field ``name``'s type ``hint``, or ``ValueError`` naming it. YAML 1.1 (PyYAML)
        reads ``1e-3`` as a string (its floats need a dot: ``1.0e-3``), so a float field takes a string
        that reads as a number; an int field takes an integral number; nothing else is converted."""

        def refuse(kind: str):
            return ValueError(f"{cls.model_name} {name} must be {kind}, not {value!r}")

        if hint is bool:
            if not isinstance(value, bool):
                raise refuse("true or false")
            return value
        if hint is float:
            try:
                number = float(value) if isinstance(value, str | int | float) and not isinstance(value, bool) else None
            except ValueError:
                number = None
            if number is None or not math.isfinite(number):
                raise refuse("a finite number")
            return number
        if hint is int:
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or value != int(value)
            ):
                raise refuse("a whole number")
            return int(value)
        if hint is str:
            if not isinstance(value, str):
                raise refuse("a string")
            return value
        if typing.get_origin(hint) is list:
            if not isinstance(value, list):
                raise refuse("a list")
            return [cls._typed(name, typing.get_args(hint)[0], item) for item in value]
        return value


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
