"""Parameters of a method from a mapping (a config section, ``scatlas cluster --config``): the fields of a
dataclass, each value taken as its field's type, an unknown or mistyped one refused with its name."""

from __future__ import annotations

import dataclasses
import math
import os
import typing
from pathlib import Path
from typing import ClassVar

import yaml

from scatlas.io import InputError


@dataclasses.dataclass
class MethodParams:
    """Base of a method's parameter dataclass; ``model_name`` names the method in errors."""

    model_name: ClassVar[str] = "method"
    # field → (lowest, highest) allowed, closed; None: unbounded on that side
    ranges: ClassVar[dict[str, tuple[float | None, float | None]]] = {}

    def __post_init__(self):
        for name, (low, high) in self.ranges.items():
            value = getattr(self, name)
            if (low is not None and value < low) or (high is not None and value > high):
                bounds = f"at least {low}" if high is None else f"between {low} and {high}"
                raise ValueError(f"{self.model_name} {name} must be {bounds}, not {value!r}")

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


def load_params(path: str | os.PathLike | None) -> dict:
    """A method's parameters from a YAML mapping (``--config``); {} without a path."""
    if path is None:
        return {}
    try:
        values = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as err:
        raise InputError(path, f"cannot read parameters ({err})") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise InputError(path, "parameters must be a YAML mapping of name: value")
    return values


def parse_assignment(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` (``--param``) → (key, value read as YAML: 2000 → int, 1e-3 → float, [256, 128] → list);
    ``ValueError`` when the text is not of that form."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ValueError(f"{text!r} is not KEY=VALUE")
    return key, yaml.safe_load(value)
