"""Known-motion triplets: real photographs moved by known motions, with their true flows.

A scene is one or two layers, each a photograph of scikit-image's data module (shipped in its
wheel, never downloaded) moved by a similarity motion: a shift, a rotation and a zoom about a
centre, every pose parameter linear in time. The middle frame (t = 0.5) is the layers at rest;
frame t in {0, 1} shows each layer at pose e = t - 0.5 of its motion. A second, elliptic layer
(a piece of another photograph) moving differently occludes the first.

Every frame samples the photographs directly, bicubically in float64, at the exact sub-pixel
positions of its pose, so the middle frame is exactly halfway and the flows are exact:

    W_e(p) = c + exp(e * zoom) * R(e * angle) (p - c) + e * shift     (p in the middle frame)
    flow t->0 (p) = W_{-1/2}(p) - p,   flow t->1 (p) = W_{+1/2}(p) - p

([2, H, W] each, pixels, x then y), with I_t(p) = I_0(p + flow t->0 (p)) wherever p is visible
in frame 0. `valid` marks the pixels whose flows can be judged: visible in both outer frames,
at least `MARGIN` pixels inside them, and at least `EDGE` pixels from the ellipse's outline.

Training and test triplets are cut from different photographs (`TRAIN_PHOTOS`, `TEST_PHOTOS`),
so a test score is on unseen textures. `write_known_motion` writes a set in the Vimeo90K
layout (test triplets with their flows); `KnownMotionTriplet` reads it back.
"""
import math
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm import tqdm

from network import UserError
from network.command_line import CommandLineParser, DefaultsHelpFormatter
from network.interruption import interruption_status, terminate_as_interrupt

from .frames import require_file
from .vimeo import VimeoTriplet

# scikit-image data functions (colour photographs, then grey textures) per split.
TRAIN_PHOTOS = ("astronaut", "rocket", "immunohistochemistry", "motorcycle", "camera", "brick",
                "grass", "moon")
TEST_PHOTOS = ("chelsea", "coffee", "gravel")
KINDS = ("translation", "affine", "layers")
MARGIN = 2          # valid flows end at least this many pixels inside the outer frames
EDGE = 2.0          # ... and start at least this far (middle-frame pixels) from a layer's outline
FLOW_FILES = ("flow_t0.npy", "flow_t1.npy")
VALID_FILE = "valid.png"


@cache
def photograph(name: str) -> np.ndarray:
    """A scikit-image sample photograph as H x W x 3 float64 RGB in [0, 1]."""
    from skimage import data
    image = data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(data, name)()
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    return image[:, :, :3].astype(np.float64) / 255


@dataclass(frozen=True)
class Motion:
    """A similarity motion from frame 0 to frame 1, in middle-frame pixels.

    shift: (x, y) pixels; angle: radians, clockwise on screen when positive (y points down);
    zoom: log of the scale factor; centre: (x, y) pixels, the fixed point of rotation and zoom.
    """

    shift: tuple[float, float] = (0.0, 0.0)
    angle: float = 0.0
    zoom: float = 0.0
    centre: tuple[float, float] = (0.0, 0.0)

    def _linear(self, e: float) -> np.ndarray:
        c, s = math.cos(e * self.angle), math.sin(e * self.angle)
        return math.exp(e * self.zoom) * np.array([[c, -s], [s, c]])

    def forward(self, points: np.ndarray, e: float) -> np.ndarray:
        """W_e: middle-frame points [..., 2] (x, y) -> where they are at pose e (t - 0.5)."""
        centre = np.asarray(self.centre)
        return centre + (points - centre) @ self._linear(e).T + e * np.asarray(self.shift)

    def inverse(self, points: np.ndarray, e: float) -> np.ndarray:
        """W_e^-1: points of the frame at pose e [..., 2] -> middle-frame points."""
        centre = np.asarray(self.centre)
        moved = points - centre - e * np.asarray(self.shift)
        return centre + moved @ np.linalg.inv(self._linear(e)).T


@dataclass(frozen=True)
class Layer:
    """A photograph moving by `motion`. texture: H x W x 3 float64 in [0, 1]; offset: (x, y),
    where middle-frame pixel (0, 0) lies in the texture. ellipse: None for a layer covering
    everything, else (centre x, centre y, semi-axis a, semi-axis b, angle) in middle-frame
    pixels and radians."""

    texture: np.ndarray
    motion: Motion
    offset: tuple[float, float] = (0.0, 0.0)
    ellipse: tuple[float, float, float, float, float] | None = None

    def signed_distance(self, points: np.ndarray) -> np.ndarray:
        """Approximate distance in pixels from middle-frame points [..., 2] to the outline,
        negative inside (first order in the ellipse's normalised radius)."""
        cx, cy, a, b, angle = self.ellipse
        c, s = math.cos(angle), math.sin(angle)
        dx, dy = points[..., 0] - cx, points[..., 1] - cy
        u, v = c * dx + s * dy, -s * dx + c * dy
        radius = np.sqrt((u / a) ** 2 + (v / b) ** 2)
        gradient = np.sqrt((u / a**2) ** 2 + (v / b**2) ** 2) / np.maximum(radius, 1e-12)
        return (radius - 1) / np.maximum(gradient, 1e-12)

    def coverage(self, points: np.ndarray) -> np.ndarray:
        """Opacity in [0, 1] at middle-frame points [..., 2]: a one-pixel anti-aliased edge."""
        if self.ellipse is None:
            return np.ones(points.shape[:-1])
        return np.clip(0.5 - self.signed_distance(points), 0.0, 1.0)


def sample_bicubic(texture: np.ndarray, points: np.ndarray) -> np.ndarray:
    """texture H x W x 3 at points [h, w, 2] (x, y; pixel centres at integers) -> h x w x 3,
    bicubic (a = -0.75) in float64. Points must lie at least 2 pixels inside the texture."""
    height, width = texture.shape[:2]
    if (points.min(axis=(0, 1)) < 1).any() or points[..., 0].max() > width - 2 or \
            points[..., 1].max() > height - 2:
        raise ValueError("sample points reach the texture's border")
    image = torch.from_numpy(np.ascontiguousarray(texture.transpose(2, 0, 1)))[None]
    grid = torch.from_numpy(points.copy())
    grid[..., 0] = 2 * grid[..., 0] / (width - 1) - 1
    grid[..., 1] = 2 * grid[..., 1] / (height - 1) - 1
    out = F.grid_sample(image, grid[None], mode="bicubic", padding_mode="border",
                        align_corners=True)
    return out[0].numpy().transpose(1, 2, 0)


def pixel_grid(height: int, width: int) -> np.ndarray:
    """[H, W, 2] float64 pixel coordinates (x, y)."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    return np.stack((xs, ys), axis=-1)


@dataclass
class Scene:
    """Layers, bottom first: the first covers the frame, the others are ellipses on top."""

    layers: list[Layer]
    height: int
    width: int

    def frame(self, e: float) -> np.ndarray:
        """The frame at pose e = t - 0.5, H x W x 3 float64 in [0, 1]."""
        points = pixel_grid(self.height, self.width)
        image = np.zeros((self.height, self.width, 3))
        for layer in self.layers:
            source = layer.motion.inverse(points, e)              # middle-frame points
            alpha = layer.coverage(source)[..., None]
            where = source + np.asarray(layer.offset)             # texture points
            # Transparent pixels read anything inside the texture: keep them off its border.
            limit = np.array(layer.texture.shape[1::-1]) - 2
            where = np.where(alpha > 0, where, np.clip(where, 1, limit))
            image = alpha * sample_bicubic(layer.texture, where) + (1 - alpha) * image
        return np.clip(image, 0.0, 1.0)

    def flows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(flow t->0, flow t->1, valid): [2, H, W] float32 pixels x then y, and H x W bool."""
        points = pixel_grid(self.height, self.width)
        top = np.zeros((self.height, self.width), dtype=int)      # visible layer per pixel
        near_edge = np.zeros((self.height, self.width), dtype=bool)
        for index, layer in enumerate(self.layers[1:], start=1):
            distance = layer.signed_distance(points)
            top[distance < 0] = index
            near_edge |= np.abs(distance) < EDGE
        valid = ~near_edge
        flows = []
        for e in (-0.5, 0.5):
            target = np.zeros((self.height, self.width, 2))
            for index, layer in enumerate(self.layers):
                moved = layer.motion.forward(points, e)
                target[top == index] = moved[top == index]
            for index, layer in enumerate(self.layers[1:], start=1):
                # Covered at pose e by a layer above the visible one: occluded.
                covered = layer.coverage(layer.motion.inverse(target, e)) > 0
                valid &= ~(covered & (top < index))
            inside = ((target >= MARGIN) & (target <= np.array([self.width, self.height]) - 1
                                            - MARGIN)).all(axis=-1)
            valid &= inside
            flows.append((target - points).transpose(2, 0, 1).astype(np.float32))
        return flows[0], flows[1], valid


def draw_motion(rng: np.random.Generator, kind: str, max_shift: float, height: int,
                width: int) -> Motion:
    """A random motion: shift of each axis uniform in +-2 max_shift from frame 0 to 1 (so the
    flows of a translation reach +-max_shift); "affine" adds a rotation up to +-4 degrees and a
    zoom up to +-8 % about a random centre in the frame."""
    shift = tuple(rng.uniform(-2 * max_shift, 2 * max_shift, size=2))
    if kind == "translation":
        return Motion(shift)
    centre = (rng.uniform(0, width - 1), rng.uniform(0, height - 1))
    return Motion(shift, math.radians(rng.uniform(-4, 4)), math.log(rng.uniform(0.92, 1.08)),
                  centre)


def place(texture: np.ndarray, reached: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:
    """A random sub-pixel offset (x, y) at which every middle-frame point in `reached` [N, 2]
    lies at least one pixel inside `texture` (as bicubic sampling needs)."""
    low, high = reached.min(axis=0), reached.max(axis=0)
    limit = np.array(texture.shape[1::-1], dtype=np.float64) - 2
    lower, upper = 1 - low, limit - high
    if (upper < lower).any():
        raise UserError("a photograph is too small for this motion and frame size (give a "
                        "smaller size or largest shift)")
    return tuple(float(v) for v in rng.uniform(lower, upper))


def scaled_photograph(name: str, rng: np.random.Generator, needed: float) -> np.ndarray:
    """A photograph resized (area averaging) by a random factor in [0.4, 0.8], raised where
    needed so that its short side keeps at least `needed` pixels."""
    image = photograph(name)
    factor = max(rng.uniform(0.4, 0.8), needed / min(image.shape[:2]))
    if factor >= 1:
        return image
    size = (round(image.shape[1] * factor), round(image.shape[0] * factor))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def draw_scene(rng: np.random.Generator, kind: str, photos: tuple[str, ...], height: int,
               width: int, max_shift: float) -> Scene:
    """A random scene of `kind` ("translation", "affine" or "layers") from `photos`."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    needed = max(height, width) * 1.25 + 4 * max_shift + 8
    names = rng.permutation(len(photos))
    texture = scaled_photograph(photos[names[0]], rng, needed)
    motion = draw_motion(rng, "translation" if kind == "translation" else "affine", max_shift,
                         height, width)
    grid = pixel_grid(height, width).reshape(-1, 2)
    reached = np.concatenate([grid] + [motion.inverse(grid, e) for e in (-0.5, 0.5)])
    layers = [Layer(texture, motion, place(texture, reached, rng))]
    if kind == "layers":
        a, b = rng.uniform(0.12, 0.3, size=2) * min(height, width)
        ellipse = (rng.uniform(0.3, 0.7) * width, rng.uniform(0.3, 0.7) * height, a, b,
                   rng.uniform(0, math.pi))
        motion = draw_motion(rng, "affine", max_shift, height, width)
        texture = scaled_photograph(photos[names[1 % len(names)]], rng, 2 * max(a, b) + 8)
        # The layer is sampled only where it is opaque: inside the ellipse's square.
        half = max(a, b) + 1
        box = np.array(ellipse[:2]) + np.array([[-half, -half], [half, half]])
        layers.append(Layer(texture, motion, place(texture, box, rng), ellipse))
    return Scene(layers, height, width)


def to_uint8(image: np.ndarray) -> np.ndarray:
    return np.round(image * 255).astype(np.uint8)


def write_rgb(path: Path, image: np.ndarray) -> None:
    """H x W x 3 uint8 RGB -> PNG file."""
    if not cv2.imwrite(str(path), np.ascontiguousarray(image[:, :, ::-1])):
        raise UserError(f"cannot write {path}")


def is_known_motion_set(root: Path) -> bool:
    """Whether `root` holds a set `write_known_motion` wrote (its first test triplet's flows)."""
    return (root / "sequences" / "00002" / "0001" / FLOW_FILES[0]).is_file()


def write_known_motion(root: Path, train: int = 2000, test: int = 48,
                       size: tuple[int, int] = (128, 128), kinds: tuple[str, ...] = KINDS,
                       max_shift: float = 6.0, seed: int = 0, progress: bool = False) -> Path:
    """Write a known-motion set in the Vimeo90K layout under `root`.

    `root/tri_trainlist.txt` names `train` triplets `00001/NNNN` (from `TRAIN_PHOTOS`),
    `root/tri_testlist.txt` names `test` triplets `00002/NNNN` (from `TEST_PHOTOS`); each folder
    `root/sequences/<name>/` holds im1.png, im2.png, im3.png (I0, GT, I1; size = (H, W)), and
    test folders also the true flows `flow_t0.npy`, `flow_t1.npy` ([2, H, W] float32, pixels,
    x then y) and `valid.png` (255 where the flows are judged). Scene kinds cycle through
    `kinds`; triplet k of a split depends only on (seed, split, k). The two lists are removed
    first and written last, so a set that was not finished (an error, Ctrl-C) is no set at all
    rather than a mix of two. `root` must be new, empty or a set written before (which is
    replaced): UserError for a folder holding anything else, such as a Vimeo90K copy.
    `progress`: a progress bar on stderr (once writing takes 2 s).
    """
    root = Path(root)
    height, width = size
    if train < 1 or test < 1:
        raise UserError(f"a set needs training and test triplets, got {train} and {test}")
    if min(height, width) < 16:
        raise UserError(f"frames of {height}x{width} pixels are too small (16x16 at least)")
    if not 0 <= max_shift < math.inf:                              # NaN included
        raise UserError(f"the largest shift must be a number of pixels from 0 up, got {max_shift}")
    if seed < 0:
        raise UserError(f"the seed must be at least 0, got {seed}")
    if root.exists() and not root.is_dir():
        raise UserError(f"{root} exists and is not a directory")
    if root.is_dir() and any(root.iterdir()) and not is_known_motion_set(root):
        raise UserError(f"{root} holds files that are not a known-motion set (a Vimeo90K copy?); "
                        "give a new or empty folder, or one this command wrote before")
    lists = {split: root / f"tri_{split}list.txt" for split in ("train", "test")}
    for path in lists.values():
        path.unlink(missing_ok=True)
    names = {"train": [], "test": []}
    with tqdm(total=train + test, desc="known-motion triplets", disable=not progress,
              delay=2) as bar:       # shown after 2 s: a quick refusal stays one line
        for split, count, photos, folder in (("train", train, TRAIN_PHOTOS, "00001"),
                                             ("test", test, TEST_PHOTOS, "00002")):
            for k in range(count):
                rng = np.random.default_rng((seed, split == "test", k))
                scene = draw_scene(rng, kinds[k % len(kinds)], photos, height, width, max_shift)
                name = f"{folder}/{k + 1:04d}"
                target = root / "sequences" / name
                target.mkdir(parents=True, exist_ok=True)
                for index, e in enumerate((-0.5, 0.0, 0.5)):
                    write_rgb(target / f"im{index + 1}.png", to_uint8(scene.frame(e)))
                if split == "test":
                    flow_t0, flow_t1, valid = scene.flows()
                    np.save(target / FLOW_FILES[0], flow_t0)
                    np.save(target / FLOW_FILES[1], flow_t1)
                    cv2.imwrite(str(target / VALID_FILE), valid.astype(np.uint8) * 255)
                names[split].append(name)
                bar.update()
    for split, path in lists.items():
        path.write_text("\n".join(names[split]) + "\n")
    return root


class KnownMotionTriplet(VimeoTriplet):
    """A set written by `write_known_motion`. Training items are (I0, GT, I1) as from
    `VimeoTriplet`; test items add the true flows [4, H, W] (t->0 x, y, then t->1 x, y;
    pixels) and the valid mask [1, H, W] float32 in {0, 1}."""

    def files_per_triplet(self) -> dict[str, str]:
        if self.train:
            return super().files_per_triplet()
        return {**super().files_per_triplet(), **{name: "true flow" for name in FLOW_FILES},
                VALID_FILE: "valid mask"}

    def __getitem__(self, index: int) -> tuple[Tensor, ...]:
        frames = super().__getitem__(index)
        if self.train:
            return frames
        folder = self.root / "sequences" / self.names[index]
        flows = [np.load(require_file(folder / name, "true flow")) for name in FLOW_FILES]
        valid = cv2.imread(str(require_file(folder / VALID_FILE, "valid mask")),
                           cv2.IMREAD_GRAYSCALE)
        return (*frames, torch.from_numpy(np.concatenate(flows)),
                torch.from_numpy(valid > 127).float()[None])


def main(argv: list[str] | None = None) -> int:
    """`python -m dataset.synthetic DIR`: write a known-motion set."""
    parser = CommandLineParser(
        description="Write a known-motion set in the Vimeo90K layout: triplets of real "
                    "photographs moved by known shifts, rotations, zooms and occluding layers; "
                    "the test triplets come with their true flows (README: Known-motion data).",
        formatter_class=DefaultsHelpFormatter)
    parser.add_argument("root", type=Path, help="folder to write: new, empty, or a set this "
                                                "command wrote before (replaced)")
    parser.add_argument("--train", type=int, default=2000, help="training triplets")
    parser.add_argument("--test", type=int, default=48, help="test triplets (with true flows)")
    parser.add_argument("--size", type=int, nargs=2, default=(128, 128), metavar=("H", "W"),
                        help="frame size in pixels")
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS),
                        help="scene kinds, used in turn")
    parser.add_argument("--max_shift", type=float, default=6.0,
                        help="largest flow component of a translation, pixels (frame 0 to 1: "
                             "twice this)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every random choice")
    args = parser.parse_args(argv)
    try:
        with terminate_as_interrupt():
            write_known_motion(args.root, args.train, args.test, tuple(args.size),
                               tuple(args.kinds), args.max_shift, args.seed, progress=True)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except OSError as error:                     # a full disk, a folder it may not write in
        print(f"error: cannot write {error.filename or args.root}: {error.strerror or error}",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt as interruption:
        return interruption_status(interruption, f"; {args.root} is incomplete: run the "
                                                  "command again")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
