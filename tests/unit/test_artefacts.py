"""The one layout of a saved model folder: complete, atomic, readable back."""

import pytest
import torch
import yaml

from scatlas.io import InputError
from scatlas.models.artefacts import load_model_dir, save_model_dir


def test_a_saved_folder_holds_weights_params_history_env_and_extras(tmp_path):
    folder = save_model_dir(
        tmp_path / "m",
        {"weight": torch.arange(3.0)},
        {"seed": 2, "layers": (4, 2)},
        [{"epoch": 0, "loss": 1.5}, {"epoch": 1, "loss": 0.5}],
        extra={"genes.txt": lambda path: path.write_text("a\nb\n")},
    )
    assert {p.name for p in folder.iterdir()} == {"model.pt", "params.yaml", "history.tsv", "env.json", "genes.txt"}
    state, params = load_model_dir(folder)
    assert torch.equal(state["weight"], torch.arange(3.0))
    assert params == {"seed": 2, "layers": [4, 2]}
    assert (folder / "history.tsv").read_text().splitlines() == ["epoch\tloss", "0\t1.5", "1\t0.5"]


def test_a_failed_save_leaves_the_earlier_model_untouched(tmp_path):
    save_model_dir(tmp_path / "m", {"v": torch.tensor(1)}, {"seed": 0}, [])

    def broken(path):
        raise OSError("no space left on device")

    with pytest.raises(OSError):
        save_model_dir(tmp_path / "m", {"v": torch.tensor(2)}, {"seed": 1}, [], extra={"x": broken})
    assert yaml.safe_load((tmp_path / "m" / "params.yaml").read_text()) == {"seed": 0}
    assert [p.name for p in tmp_path.iterdir()] == ["m"]


def test_a_folder_without_a_model_is_refused_by_name(tmp_path):
    with pytest.raises(InputError, match="not a saved scatlas model"):
        load_model_dir(tmp_path)
