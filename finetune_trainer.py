"""Fine-tuning (phases 3 and 4): the `Trainer` loop with two changes.

- Data: even epochs train on Vimeo90K and validate on its test list; odd epochs train on
  X4K1000FPS and validate on SNU-FILM. Checkpoints are named `vimeo_...` / `x4k_...`.
- Losses (phase 4): VGG19 perceptual and style terms are added to the Laplacian and warping
  ones.
"""
from torch import Tensor

from loss import PerceptualStyleLoss
from network.training import TrainConfig
from trainer import DataSource, EpochData, Trainer


class FinetuneTrainer(Trainer):
    """`Trainer` alternating two datasets by epoch, with optional perceptual/style losses
    (`perceptual` None, or either weight 0, leaves them out)."""

    def __init__(self, config: TrainConfig, vimeo: tuple[DataSource, DataSource],
                 x4k: tuple[DataSource, DataSource | None],
                 perceptual: PerceptualStyleLoss | None = None,
                 perceptual_weight: float = 0.0, style_weight: float = 0.0):
        self.vimeo, self.x4k = vimeo, x4k          # read by epoch_data during set-up
        self.perceptual = perceptual
        self.perceptual_weight, self.style_weight = perceptual_weight, style_weight
        super().__init__(config, *vimeo)
        if self.perceptual is not None:
            self.perceptual.to(self.device)

    def epoch_data(self, epoch: int) -> EpochData:
        if epoch % 2 == 0:
            return EpochData(*self.vimeo, checkpoint_prefix="vimeo_", val_tag="val_vimeo")
        return EpochData(*self.x4k, checkpoint_prefix="x4k_", val_tag="val_snufilm")

    def train_sources(self) -> tuple[DataSource, ...]:
        return self.vimeo[0], self.x4k[0]

    def losses(self, out: dict, gt: Tensor) -> dict[str, Tensor]:
        terms = super().losses(out, gt)
        if self.perceptual is None or not (self.perceptual_weight or self.style_weight):
            return terms
        perceptual, style = self.perceptual(out["I_t"], gt)
        return {"lap_loss": terms["lap_loss"],
                "perceptual_loss": self.perceptual_weight * perceptual,
                "style_loss": self.style_weight * style,
                "warping_loss": terms["warping_loss"]}
