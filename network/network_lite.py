"""Compatibility name of the authors' code: `from network.network_lite import Network`."""
from . import model
from .config import LITE


class Network(model.Network):
    """ATM-VFI lite (11.98 M parameters)."""

    def __init__(self, global_motion: bool = False, ensemble_global_motion: bool = False):
        super().__init__(LITE, global_motion=global_motion,
                         ensemble_global_motion=ensemble_global_motion)
