"""One layout for every saved model (clustering, imputation, embedding):

``DIR/model.pt``      the weights and whatever the model needs to rebuild itself (torch file, weights only)
``DIR/params.yaml``   the parameters actually used, the seed and what the model describes about itself
``DIR/history.tsv``   one row per epoch of each training stage (loss terms, seconds)
``DIR/env.json``      the software and machine the model was fitted with
plus any extra files the model names (an ANN index, a gene list, a label table).

The folder is written under a temporary name beside ``DIR`` and renamed onto it, so a reader never sees a
half-saved model and a failed save leaves an earlier model in ``DIR`` untouched.
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Callable, Mapping
from importlib import metadata
from pathlib import Path

import pandas as pd
import torch
import yaml

from scatlas.io import InputError, atomic_folder

MODEL_FILE = "model.pt"
PARAMS_FILE = "params.yaml"
HISTORY_FILE = "history.tsv"
ENV_FILE = "env.json"


def environment(device: torch.device | str = "cpu") -> dict:
    """The software and machine a model was fitted with (saved beside it)."""
    device = torch.device(device)
    versions = {}
    for name in ("scatlas", "torch", "numpy", "scipy", "scanpy", "anndata", "hnswlib"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "device": str(device),
        "gpu": torch.cuda.get_device_name(0) if device.type == "cuda" else None,
        "torch_threads": torch.get_num_threads(),
        "versions": versions,
    }


def save_model_dir(
    folder: str | os.PathLike,
    state: Mapping,
    params: Mapping,
    history: list[dict] | pd.DataFrame,
    device: torch.device | str = "cpu",
    extra: Mapping[str, Callable[[Path], None]] | None = None,
) -> Path:
    """Write a model folder atomically (the layout in the module's docstring).

    ``state``: what ``torch.save`` stores in model.pt (tensors, state dicts, plain values); ``params``: the
    YAML-able description; ``extra``: file name → a function writing that file at the path it is given.
    """
    folder = Path(folder)
    with atomic_folder(folder) as tmp:
        torch.save(dict(state), tmp / MODEL_FILE)
        (tmp / PARAMS_FILE).write_text(yaml.safe_dump(_plain(dict(params)), sort_keys=False))
        pd.DataFrame(history).to_csv(tmp / HISTORY_FILE, sep="\t", index=False)
        (tmp / ENV_FILE).write_text(json.dumps(environment(device), indent=2) + "\n")
        for name, write in (extra or {}).items():
            write(tmp / name)
    return folder


def load_model_dir(folder: str | os.PathLike) -> tuple[dict, dict]:
    """(the model.pt state, the params.yaml mapping) of a saved model folder; a missing or broken folder
    raises :class:`InputError` naming it."""
    folder = Path(folder)
    if not (folder / MODEL_FILE).is_file():
        raise InputError(folder, f"not a saved scatlas model (no {MODEL_FILE})")
    try:
        state = torch.load(folder / MODEL_FILE, map_location="cpu", weights_only=True)
        params = yaml.safe_load((folder / PARAMS_FILE).read_text()) if (folder / PARAMS_FILE).is_file() else {}
    except (OSError, RuntimeError, EOFError, yaml.YAMLError) as err:
        raise InputError(folder, f"unreadable saved model ({str(err).splitlines()[0]})") from None
    return state, params or {}


def _plain(value):
    """``value`` with numpy scalars, tuples and paths turned into YAML's plain types."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str):
        return value.item()
    if isinstance(value, os.PathLike):
        return str(value)
    return value
