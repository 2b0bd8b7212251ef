"""Interpolating real frames: padding, device, precision, 2x/4x/8x, videos and folders.

`interpolate(frame0, frame1, model)` returns the middle frame of two frames given as
numpy images or tensors; `Interpolator` turns a stream of frames into a stream `multi`
times as dense, with scene cuts repeated instead of blended; `interpolate_video` and
`interpolate_folder` run it over a video file or a folder of images.

Image layouts (numpy, channels last, RGB order):
* [H, W, 3] colour; uint8, uint16 (scaled by 1/65535) or float in [0, 1]. The result has
  the input's dtype; integer results are rounded to the nearest level.
* [H, W] or [H, W, 1] grey: replicated to RGB for the network; the result is the mean of
  the three predicted channels, in the input's shape.
* [H, W, 4] RGBA: colour is interpolated as above. Alpha is copied when both alpha planes
  are identical (e.g. fully opaque), otherwise it is interpolated as a grey image of its own.
"""
import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from .padding import InputPadder
from .runtime import UserError, autocast
from .scene import DEFAULT_SCENE_THRESHOLD, scene_change
from .video import VideoReader, VideoWriter, list_images, probe_video, read_image, write_image

PAD_DIVISOR = 64  # what the global-motion ensemble needs; the authors' demo pads to 64 too
MULTIPLIERS = (2, 4, 8)


def model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def predict_middle(model: torch.nn.Module, im0: Tensor, im1: Tensor,
                   precision: str = "fp32") -> Tensor:
    """The network's I_t for frames already on its device; padding, if any, is the caller's.

    im0, im1: [B, 3, H, W] RGB in [0, 1]. Returns [B, 3, H, W] float32.
    """
    with autocast(im0.device, precision):
        return model(im0, im1)["I_t"].float()


def inbetweens(model: torch.nn.Module, im0: Tensor, im1: Tensor, multi: int = 2,
               precision: str = "fp32") -> list[Tensor]:
    """The `multi - 1` frames at t = 1/multi, 2/multi, ... by recursive midpoints.

    im0, im1: [B, 3, H, W] on the model's device; multi: a power of two.
    """
    if multi < 2 or multi & (multi - 1):
        raise UserError(f"multi must be a power of two >= 2, got {multi}")
    middle = predict_middle(model, im0, im1, precision)
    if multi == 2:
        return [middle]
    half = multi // 2
    return (inbetweens(model, im0, middle, half, precision) + [middle]
            + inbetweens(model, middle, im1, half, precision))


def _to_unit(image: np.ndarray) -> np.ndarray:
    """Any supported dtype -> float32 in [0, 1]."""
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0
    if image.dtype == np.uint16:
        return image.astype(np.float32) / 65535.0
    if np.issubdtype(image.dtype, np.floating):
        return np.clip(image, 0.0, 1.0).astype(np.float32)
    raise UserError(f"unsupported image dtype {image.dtype} (uint8, uint16 or float)")


def _from_unit(image: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """float in [0, 1] -> `dtype`, integers rounded to the nearest level."""
    if dtype == np.uint8:
        return np.round(image * 255.0).astype(np.uint8)
    if dtype == np.uint16:
        return np.round(image * 65535.0).astype(np.uint16)
    return image.astype(dtype)


def _grey_to_rgb(plane: np.ndarray) -> np.ndarray:
    return np.repeat(plane[:, :, None], 3, axis=2)


class _Layout:
    """How a numpy image maps to the network's RGB input and back."""

    def __init__(self, image: np.ndarray):
        if image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (1, 3, 4)):
            self.shape, self.dtype = image.shape, image.dtype
            self.channels = 1 if image.ndim == 2 else image.shape[2]
        else:
            raise UserError(f"unsupported image shape {image.shape}: expected [H, W], "
                            "[H, W, 1], [H, W, 3] or [H, W, 4]")

    def colour(self, image: np.ndarray) -> np.ndarray:
        """[H, W, 3] float RGB in [0, 1]."""
        unit = _to_unit(image)
        if self.channels == 1:
            return _grey_to_rgb(unit.reshape(unit.shape[:2]))
        return unit[:, :, :3]

    def alpha(self, image: np.ndarray) -> np.ndarray | None:
        return image[:, :, 3] if self.channels == 4 else None

    def assemble(self, colour: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
        """[H, W, 3] float RGB (+ alpha in the input dtype) -> an image like the input."""
        if self.channels == 1:
            return _from_unit(colour.mean(axis=2), self.dtype).reshape(self.shape)
        out = _from_unit(colour, self.dtype)
        return out if alpha is None else np.concatenate([out, alpha[:, :, None]], axis=2)


class Interpolator:
    """Interpolates numpy frames with a model: pads to 64, runs on the model's device in
    `precision`, repeats the earlier frame across scene cuts.

    multi: output frames per input interval (2, 4 or 8).
    scene_threshold: `scene_change` score above which a pair counts as a cut (1: never).
    """

    def __init__(self, model: torch.nn.Module, multi: int = 2, precision: str = "fp32",
                 scene_threshold: float = DEFAULT_SCENE_THRESHOLD):
        if multi not in MULTIPLIERS:
            choices = ", ".join(map(str, MULTIPLIERS))
            raise UserError(f"--multi must be one of {choices}, got {multi}")
        self.model, self.multi, self.precision = model, multi, precision
        self.scene_threshold = scene_threshold
        self.device = model_device(model)
        self.scene_cuts: list[int] = []  # i for each input pair (i, i+1) treated as a cut

    def _tensor(self, rgb: np.ndarray) -> Tensor:
        """[H, W, 3] float -> [1, 3, H, W] on the model's device."""
        return torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None].to(self.device)

    def _colour_inbetweens(self, rgb0: np.ndarray, rgb1: np.ndarray) -> list[np.ndarray]:
        """Two [H, W, 3] float RGB frames -> multi - 1 [H, W, 3] float frames."""
        im0, im1 = self._tensor(rgb0), self._tensor(rgb1)
        padder = InputPadder(im0.shape, divisor=PAD_DIVISOR)
        im0, im1 = padder.pad(im0, im1)
        frames = inbetweens(self.model, im0, im1, self.multi, self.precision)
        return [padder.unpad(f)[0].permute(1, 2, 0).cpu().numpy() for f in frames]

    def between(self, frame0: np.ndarray, frame1: np.ndarray) -> list[np.ndarray]:
        """The multi - 1 frames between two numpy images of one size and layout (module
        docstring), in time order, each like the inputs."""
        layout = _Layout(frame0)
        if frame1.shape != frame0.shape or frame1.dtype != frame0.dtype:
            raise UserError(f"frames differ in size or type: {frame0.shape} {frame0.dtype} "
                            f"vs {frame1.shape} {frame1.dtype}")
        colours = self._colour_inbetweens(layout.colour(frame0), layout.colour(frame1))
        alpha0, alpha1 = layout.alpha(frame0), layout.alpha(frame1)
        if alpha0 is None:
            alphas = [None] * len(colours)
        elif np.array_equal(alpha0, alpha1):
            alphas = [alpha0] * len(colours)
        else:
            greys = self._colour_inbetweens(_grey_to_rgb(_to_unit(alpha0)),
                                            _grey_to_rgb(_to_unit(alpha1)))
            alphas = [_from_unit(g.mean(axis=2), alpha0.dtype) for g in greys]
        return [layout.assemble(c, a) for c, a in zip(colours, alphas)]

    def is_cut(self, frame0: np.ndarray, frame1: np.ndarray) -> bool:
        return scene_change(_preview(frame0), _preview(frame1)) > self.scene_threshold

    def stream(self, frames: Iterable[np.ndarray]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield (output frame, latest input frame) for a stream of N input frames: each input
        frame followed by multi - 1 in-betweens, and the last input frame: multi·(N−1)+1 in all.
        Only two input frames are held at a time."""
        self.scene_cuts = []
        previous = None
        for index, frame in enumerate(frames):
            if previous is not None:
                yield previous, previous
                if self.is_cut(previous, frame):
                    self.scene_cuts.append(index - 1)
                    middles = [previous] * (self.multi - 1)
                else:
                    middles = self.between(previous, frame)
                for middle in middles:
                    yield middle, previous
            previous = frame
        if previous is not None:
            yield previous, previous


def _preview(frame: np.ndarray) -> np.ndarray:
    """Any supported image -> [H, W, 3] uint8 RGB for the scene-cut test."""
    layout = _Layout(frame)
    return _from_unit(layout.colour(frame), np.dtype(np.uint8))


def interpolate(frame0: np.ndarray | Tensor, frame1: np.ndarray | Tensor, model: torch.nn.Module,
                precision: str = "fp32") -> np.ndarray | Tensor:
    """The middle frame (t = 0.5) between two frames, on the model's device.

    numpy: any layout of the module docstring, RGB order; returns the same shape and dtype.
    Tensor: [3, H, W] or [B, 3, H, W] float RGB in [0, 1]; returns the same shape, dtype
    and device. Any H and W: frames are padded to a multiple of 64 and cropped back.
    """
    if isinstance(frame0, np.ndarray) and isinstance(frame1, np.ndarray):
        return Interpolator(model, 2, precision).between(frame0, frame1)[0]
    if not (isinstance(frame0, Tensor) and isinstance(frame1, Tensor)):
        raise TypeError("frame0 and frame1 must both be numpy arrays or both be tensors")
    if frame0.shape != frame1.shape or frame0.dim() not in (3, 4) or frame0.shape[-3] != 3:
        raise UserError(f"expected two [3, H, W] or [B, 3, H, W] tensors of one shape, got "
                        f"{tuple(frame0.shape)} and {tuple(frame1.shape)}")
    device = model_device(model)
    im0, im1 = (f.reshape(-1, *f.shape[-3:]).to(device=device, dtype=torch.float32)
                for f in (frame0, frame1))
    padder = InputPadder(im0.shape, divisor=PAD_DIVISOR)
    middle = padder.unpad(predict_middle(model, *padder.pad(im0, im1), precision))
    return middle.reshape(frame0.shape).to(device=frame0.device, dtype=frame0.dtype)


def inference_2frame(img0: np.ndarray, img1: np.ndarray, model: torch.nn.Module,
                     isBGR: bool = True) -> np.ndarray:  # noqa: N803 - the authors' name
    """The authors' demo API: two [H, W, 3] uint8 frames (BGR as cv2 reads them when
    `isBGR`) -> the [H, W, 3] uint8 middle frame in the same channel order."""
    if isBGR:
        img0, img1 = img0[:, :, ::-1], img1[:, :, ::-1]
    middle = interpolate(np.ascontiguousarray(img0), np.ascontiguousarray(img1), model)
    return np.ascontiguousarray(middle[:, :, ::-1]) if isBGR else middle



@dataclass
class StreamResult:
    """What `interpolate_video` / `interpolate_folder` did."""
    frames_in: int = 0
    frames_out: int = 0
    rate: Fraction | None = None  # output frames per second (videos only)
    scene_cuts: list[int] = field(default_factory=list)  # i of each input pair (i, i+1) repeated


def comparison_path(out: Path) -> Path:
    """Where `--combine_video` writes: out.mp4 -> out_combine.mp4."""
    return out.with_name(f"{out.stem}_combine{out.suffix}")


def interpolate_video(src: Path, out: Path, interpolator: Interpolator, *, crf: int = 18,
                      combine: bool = False, max_frames: int | None = None,
                      progress: bool = True) -> StreamResult:
    """Write `out`: the frames of `src` with multi - 1 in-betweens after each but the last,
    at exactly multi x its frame rate, its audio and subtitle packets copied unchanged.

    combine: also write `comparison_path(out)`, input (each frame repeated) on the left and
    output on the right. max_frames: use only the first frames of `src` (and its audio up
    to their end). See `network.video` for the container rules.
    """
    if max_frames is not None and max_frames < 2:
        raise UserError(f"--max_frames must be at least 2, got {max_frames}")
    info = probe_video(src)
    targets = [out, comparison_path(out)] if combine else [out]
    for target in targets:
        if target.resolve() == src.resolve():
            raise UserError(f"output {target} would replace the input video")
    rate = info.rate * interpolator.multi
    total = min(info.frame_count, max_frames or info.frame_count) or max_frames
    result = StreamResult(rate=rate)
    with contextlib.ExitStack() as stack:
        reader = stack.enter_context(VideoReader(src))
        widths = [info.width, 2 * info.width]  # output; input and output side by side
        writers = [stack.enter_context(VideoWriter(
            target, (width, info.height), rate, start_time=info.start_time, crf=crf,
            display_matrix=info.display_matrix, colour=info.colour,
            copy_from=reader.copied_streams, metadata=dict(reader.container.metadata)))
            for target, width in zip(targets, widths)]

        def copy_packet(packet):
            source = packet.stream.index
            for writer in writers:
                writer.copy_packet(packet, source)

        images = (frame.image for frame in reader.frames(copy_packet, max_frames))
        frames = tqdm(images, total=total, unit="frame", desc=src.name, disable=not progress,
                      dynamic_ncols=True)
        for frame, source in interpolator.stream(frames):
            writers[0].write(frame)
            if combine:
                writers[1].write(np.concatenate([source, frame], axis=1))
            result.frames_out += 1
    result.frames_in = (result.frames_out - 1) // interpolator.multi + 1
    result.scene_cuts = list(interpolator.scene_cuts)
    return result


def interpolate_folder(src: Path, out: Path, interpolator: Interpolator,
                       progress: bool = True) -> StreamResult:
    """Interpolate the sorted images of `src` into `out` (created if missing) as
    00000000.png, 00000001.png, ... (multi·(N−1)+1 files; 16-bit and alpha are kept)."""
    images = list_images(src)
    if out.exists() and not out.is_dir():
        raise UserError(f"output {out} exists and is not a directory")
    if out.resolve() == src.resolve():
        raise UserError("the output directory must differ from --frames_dir")
    if not out.parent.is_dir():
        raise UserError(f"output directory does not exist: {out.parent}")
    out.mkdir(exist_ok=True)
    first = read_image(images[0])

    def frames() -> Iterator[np.ndarray]:
        yield first
        for path in images[1:]:
            image = read_image(path)
            if image.shape != first.shape or image.dtype != first.dtype:
                raise UserError(f"{path.name} is {image.shape} {image.dtype} but {images[0].name} "
                                f"is {first.shape} {first.dtype}; all frames must match")
            yield image

    result = StreamResult()
    bar = tqdm(frames(), total=len(images), unit="frame", desc=src.name, disable=not progress,
               dynamic_ncols=True)
    for index, (frame, _) in enumerate(interpolator.stream(bar)):
        write_image(out / f"{index:08d}.png", frame)
        result.frames_out += 1
    result.frames_in = len(images)
    result.scene_cuts = list(interpolator.scene_cuts)
    return result
