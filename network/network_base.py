"""Compatibility name of the authors' code: `from network.network_base import Network`."""
from . import model
from .config import BASE


class Network(model.Network):
    """ATM-VFI base (51.56 M parameters)."""

    def __init__(self, global_motion: bool = False, ensemble_global_motion: bool = False):
        super().__init__(BASE, global_motion=global_motion,
                         ensemble_global_motion=ensemble_global_motion)
