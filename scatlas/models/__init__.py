"""Trainable models: fit / predict / save / load wrappers that own seeding, devices and training loops."""

from scatlas.models.scdmac import Scdmac, ScdmacParams, choose_device

__all__ = ["Scdmac", "ScdmacParams", "choose_device"]
