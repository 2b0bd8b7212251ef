"""Centred replicate padding of frames to a size the network accepts."""
import torch.nn.functional as F
from torch import Tensor


class InputPadder:
    """Pad frames of one size so that height and width become multiples of `divisor`.

    The padding is split evenly between the two sides, the odd pixel going to the
    bottom/right, and filled by repeating the edge pixels. `unpad` crops it off again.

    shape: the frames' shape, (..., H, W) (a tensor's [B, C, H, W], not an image's H x W x C).
    ValueError for a divisor below 1, or frames of another size than `shape` given to `pad`
    or `unpad`.
    """

    def __init__(self, shape: tuple[int, ...], divisor: int = 64):
        if divisor < 1:
            raise ValueError(f"divisor must be at least 1, got {divisor}")
        height, width = int(shape[-2]), int(shape[-1])
        pad_h, pad_w = -height % divisor, -width % divisor
        self.top, self.left = pad_h // 2, pad_w // 2
        self.bottom, self.right = pad_h - self.top, pad_w - self.left
        self.size = (height, width)

    @property
    def padded_size(self) -> tuple[int, int]:
        return (self.size[0] + self.top + self.bottom, self.size[1] + self.left + self.right)

    def pad(self, *frames: Tensor) -> list[Tensor]:
        """[B, C, H, W] each -> [B, C, H + pad_h, W + pad_w] each."""
        for frame in frames:
            self._check(frame.shape[-2:], self.size, "pad")
        if not (self.top or self.bottom or self.left or self.right):
            return list(frames)
        borders = (self.left, self.right, self.top, self.bottom)
        return [F.pad(frame, borders, mode="replicate") for frame in frames]

    def unpad(self, frame: Tensor) -> Tensor:
        """[..., H + pad_h, W + pad_w] -> [..., H, W]."""
        self._check(frame.shape[-2:], self.padded_size, "unpad")
        height, width = self.size
        return frame[..., self.top:self.top + height, self.left:self.left + width]

    def _check(self, size: tuple[int, ...], expected: tuple[int, int], method: str) -> None:
        if tuple(size) != expected:
            raise ValueError(f"InputPadder.{method}: frame of {size[0]}x{size[1]}, but this "
                             f"padder is for {expected[0]}x{expected[1]} (H x W)")
