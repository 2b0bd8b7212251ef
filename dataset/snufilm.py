"""SNU-FILM triplets, used for validation."""
from pathlib import Path

from torch import Tensor
from torch.utils.data import Dataset

from network import UserError

from .frames import check_triplet, read_lines, read_rgb, require_dir, require_file, to_tensors

MODES = ("easy", "medium", "hard", "extreme")
LIST_PREFIX = "data/SNU-FILM/test/"  # written at the start of every path in the list files


def read_snufilm_list(list_file: Path, image_root: Path) -> list[tuple[Path, Path, Path]]:
    """(I0, GT, I1) paths of every line of a SNU-FILM list, in file order: the three paths of a
    line with LIST_PREFIX standing for `image_root`. UserError for a malformed or empty list."""
    triplets = []
    for number, line in enumerate(read_lines(list_file, "SNU-FILM list"), start=1):
        if not line.strip():
            continue
        entries = line.split()
        if len(entries) != 3:
            raise UserError(f"{list_file}:{number}: expected three paths 'I0 GT I1', got {line!r}")
        triplets.append(tuple(image_root / entry.removeprefix(LIST_PREFIX) for entry in entries))
    if not triplets:
        raise UserError(f"SNU-FILM list {list_file} names no triplets")
    return triplets


class SnuFilm(Dataset):
    """SNU-FILM test triplets of one difficulty `mode`.

    Layout: `<root>/eval_modes/test-<mode>.txt` (or `<root>/test-<mode>.txt`), each line three
    paths `data/SNU-FILM/test/<rel>` (I0, GT, I1) whose prefix stands for `<root>/`. Items are
    full frames (I0, GT, I1), each [3, H, W] float32 RGB in [0, 1], unpadded: sizes vary, so
    use batch size 1 and pad the inputs when evaluating.
    """

    def __init__(self, root: Path, mode: str = "hard"):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.root = require_dir(root, "SNU-FILM root (holding eval_modes/test-<mode>.txt and "
                                      "the frame folders)")
        name = f"test-{mode}.txt"
        candidates = [self.root / "eval_modes" / name, self.root / name]
        list_file = next((path for path in candidates if path.is_file()), candidates[0])
        require_file(list_file, f"SNU-FILM {mode} list")
        self.triplets = read_snufilm_list(list_file, self.root)
        for triplet in self.triplets:    # all of them now, not after an epoch of training
            for path in triplet:
                require_file(path, "SNU-FILM frame")

    def __len__(self) -> int:
        return len(self.triplets)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor, Tensor]:
        paths = self.triplets[index]
        return to_tensors(check_triplet(tuple(read_rgb(path) for path in paths), paths[0]))
