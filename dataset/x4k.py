"""X4K1000FPS training clips (phases 2 to 4; README: Training)."""
from pathlib import Path

import numpy as np
from natsort import natsorted, ns
from torch import Tensor
from torch.utils.data import Dataset

from network import UserError

from .augment import random_crop, x4k_augment
from .frames import check_triplet, read_rgb, require_dir, sample_rng, to_tensors

FRAMES_PER_CLIP = 65  # frames 0..64 of every training clip are used


def draw_triplet(rng: np.random.Generator, min_step: int = 2, max_step: int = 32,
                 odd_steps: bool = False,
                 num_frames: int = FRAMES_PER_CLIP) -> tuple[int, int, int]:
    """Frame indices (I0, GT, I1) of one training triplet within a clip.

    The temporal step s (frames between I0 and I1) is uniform over the even values of
    [min_step, max_step], so GT = I0 + s/2 is the exact midpoint the network is trained to
    predict; `odd_steps` draws every integer of the range as the authors' code does (odd s then
    puts GT at floor(s/2)/s of the interval). The first frame is uniform over the positions
    that fit, and the order is reversed with p = 0.5.
    """
    steps = [s for s in range(min_step, max_step + 1) if odd_steps or s % 2 == 0]
    if not steps or max_step >= num_frames:
        raise ValueError(f"no usable temporal step in [{min_step}, {max_step}] for "
                         f"{num_frames}-frame clips")
    step = int(rng.choice(steps))
    first = int(rng.integers(0, num_frames - 1 - step, endpoint=True))
    start, middle, end = first, first + step // 2, first + step
    if rng.random() < 0.5:
        start, end = end, start
    return start, middle, end


class X4KTrain(Dataset):
    """X4K1000FPS training set: `<root>/<scene>/<clip>/*.png`, at least 65 consecutive frames
    per clip (768 x 768 in the release). `root` is the `train` folder or the X4K root that
    holds it.

    One item per clip: a random triplet (`draw_triplet`), a random `crop` x `crop` window and
    the X4K augmentation. Items are (I0, GT, I1), each [3, crop, crop] float32 RGB in [0, 1];
    randomness depends only on (`seed`, the epoch given to `set_epoch`, the item index).
    """

    def __init__(self, root: Path, crop: int = 448, min_step: int = 2, max_step: int = 32,
                 odd_steps: bool = False, augment: bool = True, seed: int = 0):
        root = require_dir(root, "X4K1000FPS training root (holding <scene>/<clip>/*.png)")
        if (root / "train").is_dir():
            root = root / "train"
        self.root = root
        folders = [clip for scene in sorted(root.iterdir()) if scene.is_dir()
                   for clip in sorted(scene.iterdir()) if clip.is_dir()]
        if not folders:
            raise UserError(f"X4K1000FPS training root {root} holds no <scene>/<clip>/ folders")
        # Frame numbers by value (the release pads them, so 0002 before 0010 either way)
        self.clips = [natsorted(sorted(clip.glob("*.png")), alg=ns.PATH) for clip in folders]
        for clip, frames in zip(folders, self.clips):
            if len(frames) < FRAMES_PER_CLIP:
                raise UserError(f"X4K1000FPS clip {clip} has {len(frames)} PNG frames; expected "
                                f"at least {FRAMES_PER_CLIP}")
        self.crop, self.augment, self.seed, self.epoch = crop, augment, seed, 0
        self.steps = dict(min_step=min_step, max_step=max_step, odd_steps=odd_steps)
        draw_triplet(np.random.default_rng(0), **self.steps)   # reject an empty step range now
        height, width = read_rgb(self.clips[0][0]).shape[:2]
        if height < crop or width < crop:
            raise UserError(f"X4K1000FPS frames are {height}x{width}, smaller than the crop "
                            f"{crop}x{crop}")

    def set_epoch(self, epoch: int) -> None:
        """Select the triplet and augmentation draws of `epoch`."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor, Tensor]:
        rng = sample_rng(self.seed, self.epoch, index)
        indices = draw_triplet(rng, **self.steps)
        paths = [self.clips[index][i] for i in indices]
        frames = check_triplet(tuple(read_rgb(path) for path in paths), paths[0], self.crop)
        frames = random_crop(frames, self.crop, rng)
        if self.augment:
            frames = x4k_augment(frames, rng)
        return to_tensors(frames)
