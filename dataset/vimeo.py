"""Vimeo90K triplets (phases 1, 3 and 4; README: Training)."""
from pathlib import Path

from torch import Tensor
from torch.utils.data import Dataset

from network import UserError

from .augment import random_crop, vimeo_augment
from .frames import (check_triplet, read_lines, read_rgb, require_dir, require_file, sample_rng,
                     to_tensors)

LIST_FILES = {"train": "tri_trainlist.txt", "test": "tri_testlist.txt"}


class VimeoTriplet(Dataset):
    """Vimeo90K triplet set: `<root>/tri_trainlist.txt`, `<root>/tri_testlist.txt` and
    `<root>/sequences/<id>/im1.png, im2.png, im3.png` (I0, GT, I1; 256 x 448 frames).

    split "train": a random `crop` x `crop` window of each triplet, then the Vimeo
    augmentation when `augment`; split "test": full frames, unchanged. Items are
    (I0, GT, I1), each [3, H, W] float32 RGB in [0, 1]. Randomness depends only on
    (`seed`, the epoch given to `set_epoch`, the item index).
    """

    def __init__(self, root: Path, split: str = "train", crop: int | None = 256,
                 augment: bool = True, seed: int = 0):
        if split not in LIST_FILES:
            raise ValueError(f"split must be one of {sorted(LIST_FILES)}, got {split!r}")
        self.root = require_dir(root, "Vimeo90K triplet root (holding tri_trainlist.txt, "
                                      "tri_testlist.txt and sequences/)")
        list_file = require_file(self.root / LIST_FILES[split], f"Vimeo90K {split} list")
        self.names = [line.strip() for line in read_lines(list_file, f"Vimeo90K {split} list")
                      if line.strip()]
        if not self.names:
            raise UserError(f"Vimeo90K {split} list {list_file} names no triplets")
        self.train = split == "train"
        # Every listed file, checked now rather than hours into a run (51,313 triplets: ~1 s).
        files = self.files_per_triplet()
        for name in self.names:
            for file, what in files.items():
                require_file(self.root / "sequences" / name / file, what)
        self.crop = crop if self.train else None
        self.augment = augment and self.train
        self.seed = seed
        self.epoch = 0
        height, width = read_rgb(self._frame_paths(0)[0]).shape[:2]
        if self.crop and (height < self.crop or width < self.crop):
            raise UserError(f"the frames of {self.root} are {height}x{width}, smaller than the "
                            f"crop {self.crop}x{self.crop}")

    def files_per_triplet(self) -> dict[str, str]:
        """{file name: what it is} of each triplet's folder in this split."""
        return {f"im{k}.png": "Vimeo90K frame" for k in (1, 2, 3)}

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation draws of `epoch`."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.names)

    def _frame_paths(self, index: int) -> list[Path]:
        folder = self.root / "sequences" / self.names[index]
        return [require_file(folder / f"im{k}.png", "Vimeo90K frame") for k in (1, 2, 3)]

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor, Tensor]:
        paths = self._frame_paths(index)
        frames = check_triplet(tuple(read_rgb(path) for path in paths), paths[0].parent,
                               self.crop)
        if self.train:
            rng = sample_rng(self.seed, self.epoch, index)
            if self.crop:
                frames = random_crop(frames, self.crop, rng)
            if self.augment:
                frames = vimeo_augment(frames, rng)
        return to_tensors(frames)
