"""Interpolating real frames: padding, device, precision and frames at any fraction of a pair.

`interpolate(frame0, frame1, model)` returns the middle frame of two frames given as
numpy images or tensors; `Interpolator` makes the frames of an output timeline
(`network.video.timeline`) from a stream of timed input frames, with scene cuts held
instead of blended. `network.conversion` runs it over video files and folders.

Image layouts (numpy, channels last, RGB order):
* [H, W, 3] colour; uint8, uint16 (scaled by 1/65535) or float in [0, 1]. The result has
  the input's dtype; integer results are rounded to the nearest level.
* [H, W] or [H, W, 1] grey: replicated to RGB for the network; the result is the mean of
  the three predicted channels, in the input's shape.
* [H, W, 4] RGBA: colour is interpolated as above. Alpha is copied when both alpha planes
  are identical (e.g. fully opaque), otherwise it is interpolated as a grey image of its own.
"""
from collections.abc import Iterable, Iterator, Sequence
from fractions import Fraction
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from .padding import InputPadder
from .runtime import PRECISIONS, UserError, autocast
from .scene import DEFAULT_SCENE_THRESHOLD, is_scene_cut
from .video import TimedFrame
from .video.timeline import (MultiTimeline, OutputFrame, RateTimeline, midpoint_depth,
                             midpoint_parents)

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
    weights = next(model.parameters()).dtype
    if weights != torch.float32:
        raise UserError(f"the network's weights are {str(weights).removeprefix('torch.')}: "
                        "keep them float32 and pass precision='bf16' or 'fp16' instead")
    with autocast(im0.device, precision):
        return model(im0, im1)["I_t"].float()


def midpoints(model: torch.nn.Module, pairs: Sequence[tuple[Tensor, Tensor]],
              wanted: Sequence[Iterable[Fraction]], batch: int = 1,
              precision: str = "fp32") -> list[dict[Fraction, Tensor]]:
    """Frames at dyadic positions of frame pairs, by recursive midpoints.

    pairs: (im0, im1), each [1, 3, H, W] on the model's device, one H and W for all.
    wanted[k]: dyadic positions in [0, 1] needed from pair k (1/2, 1/4, 3/8, ...).
    Each midpoint a position needs is computed once per pair, shallowest first, and
    midpoints of one depth run as one batch of up to `batch` (over all pairs).
    Returns for each pair {position: [1, 3, H, W] float32}, holding 0 and 1 (the pair)
    and every midpoint computed on the way.
    """
    known = [{Fraction(0): im0, Fraction(1): im1} for im0, im1 in pairs]
    needed: list[set[Fraction]] = [set() for _ in pairs]
    for need, positions in zip(needed, wanted):
        stack = list(positions)
        while stack:
            position = stack.pop()
            if midpoint_depth(position) > 0 and position not in need:
                need.add(position)
                stack.extend(midpoint_parents(position))
    deepest = max((midpoint_depth(p) for need in needed for p in need), default=0)
    for depth in range(1, deepest + 1):
        jobs = [(k, p) for k, need in enumerate(needed) for p in sorted(need)
                if midpoint_depth(p) == depth]
        for first in range(0, len(jobs), batch):
            chunk = jobs[first:first + batch]
            parents = [midpoint_parents(p) for _, p in chunk]
            im0 = torch.cat([known[k][left] for (k, _), (left, _) in zip(chunk, parents)])
            im1 = torch.cat([known[k][right] for (k, _), (_, right) in zip(chunk, parents)])
            middles = predict_middle(model, im0, im1, precision)  # [len(chunk), 3, H, W]
            for (k, position), middle in zip(chunk, middles):
                known[k][position] = middle[None]
    return known


def _to_unit(image: np.ndarray) -> np.ndarray:
    """Any supported dtype -> float32 in [0, 1]."""
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0
    if image.dtype == np.uint16:
        return image.astype(np.float32) / 65535.0
    if np.issubdtype(image.dtype, np.floating):
        if not np.isfinite(image).all():
            raise UserError("float images must be RGB in [0, 1], got NaN or infinite values")
        low, high = (float(image.min()), float(image.max())) if image.size else (0.0, 0.0)
        if high > 1.5 or low < -0.5:   # rounding may overshoot [0, 1] a little, not more
            raise UserError(f"float images must be RGB in [0, 1], got values from {low:g} to "
                            f"{high:g} (divide 0-255 frames by 255, or pass them as uint8)")
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


class PairFrames(NamedTuple):
    """What `Interpolator.frames` needs of one pair of neighbouring input frames."""
    frame0: np.ndarray  # a numpy image (module docstring)
    frame1: np.ndarray  # like frame0
    positions: Sequence[Fraction]  # dyadic positions in [0, 1] to return


class Interpolator:
    """Interpolates numpy frames with a model: pads to 64, runs on the model's device in
    `precision`, holds the earlier frame across scene cuts.

    multi: output frames per input interval (2, 4 or 8) when no other timeline is given.
    scene_threshold: `scene_change` score above which a pair counts as a cut (1: never).
    batch: network inputs per forward pass, taken from several pairs (worth it on GPUs).
    """

    def __init__(self, model: torch.nn.Module, multi: int = 2, precision: str = "fp32",
                 scene_threshold: float = DEFAULT_SCENE_THRESHOLD, batch: int = 1):
        if multi not in MULTIPLIERS:
            choices = ", ".join(map(str, MULTIPLIERS))
            raise UserError(f"multi must be one of {choices}, got {multi}")
        if not isinstance(batch, int) or batch < 1:
            raise UserError(f"batch must be a whole number of at least 1, got {batch}")
        if not 0 <= scene_threshold <= 1:                               # NaN included
            raise UserError(f"scene_threshold must be from 0 to 1, got {scene_threshold}")
        if precision not in PRECISIONS:
            raise UserError(f"unknown precision {precision!r}; use one of "
                            f"{', '.join(PRECISIONS)}")
        self.model, self.multi, self.precision = model, multi, precision
        self.scene_threshold, self.batch = scene_threshold, batch
        self.scene_cuts: list[int] = []  # i for each input pair (i, i+1) treated as a cut
        self.end: Fraction | None = None  # when the held last input frame ends, seconds

    def _tensor(self, rgb: np.ndarray) -> Tensor:
        """[H, W, 3] float -> [1, 3, H, W] on the model's device (where it is now: the model may
        have moved since this Interpolator was made)."""
        tensor = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None]
        return tensor.to(model_device(self.model))

    def _colour_frames(self, pairs: Sequence[tuple[np.ndarray, np.ndarray] | None],
                       wanted: Sequence[Sequence[Fraction]]) -> list[list[np.ndarray]]:
        """[H, W, 3] float RGB pairs -> for each pair, [H, W, 3] float frames at its `wanted`
        positions (none for a pair given as None)."""
        todo = [k for k, pair in enumerate(pairs) if pair is not None and wanted[k]]
        results: list[list[np.ndarray]] = [[] for _ in pairs]
        if not todo:
            return results
        padder = InputPadder(pairs[todo[0]][0].shape[:2], divisor=PAD_DIVISOR)
        tensors = [padder.pad(*(self._tensor(rgb) for rgb in pairs[k])) for k in todo]
        known = midpoints(self.model, tensors, [wanted[k] for k in todo], self.batch,
                          self.precision)
        for k, frames in zip(todo, known):
            results[k] = [padder.unpad(frames[p])[0].permute(1, 2, 0).cpu().numpy()
                          for p in wanted[k]]
        return results

    def frames(self, pairs: Sequence[PairFrames]) -> list[list[np.ndarray]]:
        """For each pair, the frames at its dyadic positions, each like the inputs (module
        docstring); positions 0 and 1 are the pair's own frames. All pairs share one size
        and layout. Scene cuts are not looked for here."""
        layout = _Layout(pairs[0].frame0)
        for frame in (f for pair in pairs for f in pair[:2]):
            if frame.shape != layout.shape or frame.dtype != layout.dtype:
                raise UserError(f"frames differ in size or type: {layout.shape} {layout.dtype} "
                                f"vs {frame.shape} {frame.dtype}")
        inner = [sorted({p for p in positions if 0 < p < 1}) for *_, positions in pairs]
        colours = self._colour_frames([(layout.colour(f0), layout.colour(f1)) if wanted else None
                                       for (f0, f1, _), wanted in zip(pairs, inner)], inner)
        moving_alpha = [bool(wanted) and layout.alpha(f0) is not None
                        and not np.array_equal(layout.alpha(f0), layout.alpha(f1))
                        for (f0, f1, _), wanted in zip(pairs, inner)]
        greys = self._colour_frames(
            [(_grey_to_rgb(_to_unit(layout.alpha(f0))), _grey_to_rgb(_to_unit(layout.alpha(f1))))
             if moving else None for (f0, f1, _), moving in zip(pairs, moving_alpha)], inner)
        results = []
        for (frame0, frame1, positions), wanted, colour, grey in zip(pairs, inner, colours, greys):
            alpha0 = layout.alpha(frame0)
            table = {Fraction(0): frame0, Fraction(1): frame1}
            for index, position in enumerate(wanted):
                alpha = _from_unit(grey[index].mean(axis=2), alpha0.dtype) if grey else alpha0
                table[position] = layout.assemble(colour[index], alpha)
            results.append([table[p] for p in positions])
        return results

    def between(self, frame0: np.ndarray, frame1: np.ndarray) -> list[np.ndarray]:
        """The multi - 1 frames between two numpy images of one size and layout (module
        docstring), in time order, each like the inputs."""
        positions = [Fraction(k, self.multi) for k in range(1, self.multi)]
        return self.frames([PairFrames(frame0, frame1, positions)])[0]

    def is_cut(self, frame0: np.ndarray, frame1: np.ndarray) -> bool:
        return is_scene_cut(_preview(frame0), _preview(frame1), self.scene_threshold)

    def _render(self, pending: list[tuple[int, TimedFrame, TimedFrame, list[OutputFrame]]]
                ) -> Iterator[tuple[OutputFrame, np.ndarray, np.ndarray]]:
        """The output frames of consecutive pairs (index, frame i, frame i + 1, outputs)."""
        if not pending:
            return
        pairs = []
        for index, frame0, frame1, outputs in pending:
            positions = [o.position for o in outputs]
            if any(0 < p for p in positions) and self.is_cut(frame0.image, frame1.image):
                self.scene_cuts.append(index)
                positions = [Fraction(0)] * len(positions)  # the earlier frame, held
            pairs.append(PairFrames(frame0.image, frame1.image, positions))
        for (_, frame0, _, outputs), images in zip(pending, self.frames(pairs)):
            for output, image in zip(outputs, images):
                yield output, image, frame0.image

    def outputs(self, frames: Iterable[TimedFrame],
                timeline: MultiTimeline | RateTimeline | None = None, hold: bool = True
                ) -> Iterator[tuple[OutputFrame, np.ndarray, np.ndarray]]:
        """Yield (output frame, its image, latest input image) for a stream of timed input
        frames (strictly increasing times), in time order; `batch` pairs are made at once.

        timeline: `MultiTimeline` or `RateTimeline` (default: MultiTimeline(multi)).
        hold: show the last input frame for its duration (its own, else the interval
        before it), as the timeline lays out; otherwise it is output once, at its time.
        Only `batch` + 1 input frames are held at a time. Afterwards `scene_cuts` lists the
        pairs treated as cuts and `end` is when the held last frame ends.
        """
        timeline = timeline or MultiTimeline(self.multi)
        timeline.begin()
        self.scene_cuts, self.end = [], None
        pending, previous, index = [], None, -1
        for index, frame in enumerate(frames):
            if not isinstance(frame, TimedFrame):
                raise TypeError(f"outputs takes network.TimedFrame(image, time) items, got "
                                f"{type(frame).__name__}")
            if previous is not None and (frame.image.shape != previous.image.shape
                                         or frame.image.dtype != previous.image.dtype):
                raise UserError(f"input frame {index} ({frame.image.shape} {frame.image.dtype}) "
                                f"differs in size or type from frame {index - 1} "
                                f"({previous.image.shape} {previous.image.dtype})")
            if previous is not None and not frame.time > previous.time:
                raise UserError(f"input frame {index} at {float(frame.time):g} s does not come "
                                f"after frame {index - 1} at {float(previous.time):g} s; the "
                                "times must increase")
            if previous is not None:
                outputs = timeline.between(index - 1, previous.time, frame.time)
                pending.append((index - 1, previous, frame, outputs))
                if len(pending) == self.batch:
                    yield from self._render(pending)
                    pending = []
            previous, before = frame, previous
        yield from self._render(pending)
        if previous is None:
            return
        if not hold:
            yield OutputFrame(previous.time, index, Fraction(0)), previous.image, previous.image
            return
        duration = previous.duration or (previous.time - before.time if before else None)
        if not duration:
            raise UserError("the input has 1 video frame; interpolation needs at least 2")
        self.end = previous.time + duration
        for output in timeline.hold(index, previous.time, self.end):
            yield output, previous.image, previous.image


def _preview(frame: np.ndarray) -> np.ndarray:
    """Any supported image -> [H, W, 3] uint8 RGB for the scene-cut test."""
    if frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3:
        return frame  # already what the test takes (the common case: 8-bit video)
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
        if frame0.ndim < 2 or 0 in frame0.shape[:2]:
            raise UserError(f"frame0 has no pixels: shape {frame0.shape}")
        return Interpolator(model, 2, precision).between(frame0, frame1)[0]
    if not (isinstance(frame0, Tensor) and isinstance(frame1, Tensor)):
        raise TypeError("frame0 and frame1 must both be numpy arrays or both be tensors")
    if frame0.shape != frame1.shape or frame0.dim() not in (3, 4) or frame0.shape[-3] != 3:
        raise UserError(f"expected two [3, H, W] or [B, 3, H, W] tensors of one shape, got "
                        f"{tuple(frame0.shape)} and {tuple(frame1.shape)}")
    if 0 in frame0.shape[-2:]:
        raise UserError(f"the frames have no pixels: shape {tuple(frame0.shape)}")
    if not (frame0.is_floating_point() and frame1.is_floating_point()):
        raise UserError(f"tensors must be float RGB in [0, 1], got {frame0.dtype} and "
                        f"{frame1.dtype} (divide 8-bit frames by 255, or pass numpy images)")
    both = torch.stack((frame0.detach(), frame1.detach()))
    if not both.isfinite().all():
        raise UserError("tensors must be float RGB in [0, 1], got NaN or infinite values")
    low, high = (both.min().item(), both.max().item()) if both.numel() else (0.0, 0.0)
    if high > 1.5 or low < -0.5:   # rounding may overshoot [0, 1] a little, not more
        raise UserError(f"tensors must be float RGB in [0, 1], got values from {low:g} to "
                        f"{high:g} (divide 0-255 frames by 255)")
    device = model_device(model)
    im0, im1 = (f.reshape(-1, *f.shape[-3:]).to(device=device, dtype=torch.float32)
                for f in (frame0, frame1))
    padder = InputPadder(im0.shape, divisor=PAD_DIVISOR)
    middle = padder.unpad(predict_middle(model, *padder.pad(im0, im1), precision))
    return middle.reshape(frame0.shape).to(device=frame0.device, dtype=frame0.dtype)


def inference_2frame(img0: np.ndarray, img1: np.ndarray, model: torch.nn.Module,
                     isBGR: bool = True) -> np.ndarray:  # noqa: N803 - the authors' name
    """The authors' demo API: two [H, W, 3] uint8 frames (BGR as cv2 reads them when
    `isBGR`; BGRA keeps its alpha last; grey [H, W] has no order) -> the middle frame in the
    same layout and channel order."""
    def swap_colour(image: np.ndarray) -> np.ndarray:        # BGR(A) <-> RGB(A)
        if not isBGR or image.ndim != 3 or image.shape[2] < 3:
            return image
        swapped = image.copy()
        swapped[:, :, :3] = image[:, :, 2::-1]
        return swapped
    return swap_colour(interpolate(swap_colour(img0), swap_colour(img1), model))
