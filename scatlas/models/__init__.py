"""Trainable models: fit / predict / save / load wrappers that own seeding, devices and training loops."""

from scatlas.models.scdmac import Scdmac, ScdmacParams
from scatlas.models.scsmd import Scsmd, ScsmdParams
from scatlas.models.training import choose_device

__all__ = ["Scdmac", "ScdmacParams", "Scsmd", "ScsmdParams", "choose_device"]
