"""Converting whole videos and folders of frames with an `Interpolator`.

A video conversion is four stages that run at once (`network.video.stages`): decoding and
conversion to RGB in one thread, the network in the caller's thread, conversion from RGB and
encoding in another thread; audio and subtitle packets travel with the frames, so muxing
happens in one thread. The output timeline (`network.video.timeline`) follows the input's
true timestamps and lasts as long as the input; the whole timeline is shifted so that the
earliest stream (video, audio or subtitles) starts at 0, keeping every offset between them.
"""
import contextlib
import shutil
import sys
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .inference import Interpolator
from .runtime import UserError
from .video import (CONTAINER_FORMATS, TimedFrame, VideoInfo, VideoReader, VideoWriter,
                    Y4MReader, Y4MWriter, check_not_input, check_output_path, describe_image,
                    list_images, probe_video, read_image, write_image)
from .video.paths import partial_path
from .video.reading import timeline_start
from .video.stages import ReadAhead, WriteBehind
from .video.timeline import MultiTimeline, RateTimeline, parse_rate, time_base_for
from .video.writing import DEFAULT_CRF, streams_kept


@dataclass
class StreamResult:
    """What `interpolate_video` / `interpolate_folder` did."""
    frames_in: int = 0
    frames_out: int = 0
    rate: Fraction | None = None  # nominal output frames per second (videos only)
    variable_rate: bool = False  # videos: output frames not all 1 / rate apart
    scene_cuts: list[int] = field(default_factory=list)  # i of each input pair (i, i+1) held


def comparison_path(out: Path) -> Path:
    """Where `--combine_video` writes: out.mp4 -> out_combine.mp4."""
    return out.with_name(f"{out.stem}_combine{out.suffix}")


PIPE = Path("-")  # as src: a yuv4mpegpipe stream on stdin; as out: one on stdout


def _open_source(src: Path, stack: contextlib.ExitStack) -> tuple[VideoReader | Y4MReader,
                                                                   VideoInfo]:
    """A reader for `src` (a file, or PIPE) and what is known about it before decoding."""
    if src != PIPE:
        info = probe_video(src)
        return stack.enter_context(VideoReader(src)), info
    reader = stack.enter_context(Y4MReader(sys.stdin.buffer))
    info = VideoInfo(width=reader.width, height=reader.height, rate=reader.rate, frame_count=0,
                     time_base=1 / reader.rate,
                     video_start=Fraction(0), display_matrix=None,
                     pixel_aspect=reader.pixel_aspect, colour=reader.colour)
    return reader, info


def _check_max_frames(max_frames: int | None) -> None:
    if max_frames is not None and max_frames < 2:
        raise UserError(f"max_frames must be at least 2, got {max_frames}")


def check_video_request(src: Path, out: Path, *, fps: Fraction | None = None,
                        codec: str | None = None, combine: bool = False,
                        max_frames: int | None = None, crf: int = DEFAULT_CRF) -> None:
    """UserError for a request `interpolate_video` refuses, raised before any work: too few
    frames, a rate that is not positive, a quality outside 0-51, what a y4m stream on stdout
    (`out` PIPE) cannot carry, an output file of no known container, in a missing or
    unwritable folder, or that would replace `src`."""
    _check_max_frames(max_frames)
    if not 0 <= crf <= 51:
        raise UserError(f"crf must be from 0 (best) to 51 (worst), got {crf}")
    if fps is not None and fps <= 0:
        raise UserError(f"the output frame rate must be positive, got {fps}")
    if out == PIPE and (combine or codec):
        raise UserError("a y4m stream on stdout is raw video: no --codec or --combine_video")
    if out != PIPE:
        for target in [out, comparison_path(out)] if combine else [out]:
            check_output_path(target, CONTAINER_FORMATS)
            if src != PIPE:
                check_not_input(target, [src])


def check_folder_request(src: Path, out: Path, max_frames: int | None = None) -> list[Path]:
    """The images `interpolate_folder` reads from `src` (its first `max_frames`); UserError,
    before any work, for too few of them or an output folder that is not new or empty."""
    _check_max_frames(max_frames)
    images = list_images(src)[:max_frames]
    if out.exists() and not out.is_dir():
        raise UserError(f"output {out} exists and is not a directory")
    check_not_input(out, [src])
    if not out.parent.is_dir():
        raise UserError(f"output directory does not exist: {out.parent}")
    if out.is_dir() and any(out.iterdir()):
        raise UserError(f"output directory {out} is not empty (nothing in it is replaced); "
                        "give a new or empty one")
    return images


def interpolate_video(src: str | Path, out: str | Path, interpolator: Interpolator, *,
                      fps: Fraction | float | str | None = None, codec: str | None = None,
                      pix_fmt: str | None = None, crf: int = DEFAULT_CRF, combine: bool = False,
                      max_frames: int | None = None, progress: bool = True) -> StreamResult:
    """Write `out`: `src` at `fps` frames per second, or with `interpolator.multi` frames
    per input interval when `fps` is None; audio and subtitle packets copied unchanged.

    src, out: files, or PIPE (Path("-")) for a yuv4mpegpipe stream on stdin / stdout.
    fps: output frame k is shown at exactly t_0 + k / fps (t_0: the first input frame).
    codec, pix_fmt, crf: see `VideoWriter` (default: the input's bit depth and colour).
    combine: also write `comparison_path(out)`, input (each frame held) on the left and
    output on the right. max_frames: use only the first frames of `src` (and its audio up
    to their end). See `network.video` and `network.video.timeline` for the rules.
    """
    src, out = Path(src), Path(out)
    fps = None if fps is None else parse_rate(fps)
    check_video_request(src, out, fps=fps, codec=codec, combine=combine, max_frames=max_frames,
                        crf=crf)
    targets = [out, comparison_path(out)] if combine else [out]
    timeline = RateTimeline(fps) if fps else MultiTimeline(interpolator.multi)
    label = "stdin" if src == PIPE else src.name
    result = StreamResult()
    with contextlib.ExitStack() as stack:
        reader, info = _open_source(src, stack)
        result.rate = rate = timeline.rate(info.rate)
        # The output starts with its earliest stream: copied streams it cannot hold do not count.
        kept = [] if out == PIPE else streams_kept(out, reader.copied_streams)
        start = timeline_start(info.video_start, kept)
        time_base = time_base_for(timeline.time_base(info.time_base, info.rate), start)
        if out == PIPE:
            writers = [stack.enter_context(Y4MWriter(
                sys.stdout.buffer, (info.width, info.height), rate, pix_fmt=pix_fmt,
                colour=info.colour, copy_from=reader.copied_streams))]
        else:
            widths = [info.width, 2 * info.width]  # output; input and output side by side
            writers = [stack.enter_context(VideoWriter(
                target, (width, info.height), rate, time_base=time_base,
                time_offset=start, codec=codec, pix_fmt=pix_fmt,
                colour=info.colour, crf=crf, display_matrix=info.display_matrix,
                pixel_aspect=info.pixel_aspect, video_from=reader.video,
                copy_from=reader.copied_streams, metadata=dict(reader.container.metadata)))
                for target, width in zip(targets, widths)]

        def demuxed():
            """Runs ahead in a thread: ("packet", source stream index, packet) and frames."""
            packets = []
            for frame in reader.frames(packets.append, max_frames):
                yield from (("packet", p.stream.index, p) for p in packets)
                packets.clear()
                yield frame
            yield from (("packet", p.stream.index, p) for p in packets)

        def write(item):
            """Runs behind in a thread: muxes packets, encodes (time, output, input) frames,
            and takes when the last frame ends."""
            if item[0] == "packet":
                for writer in writers:
                    writer.copy_packet(item[2], item[1])
                return
            if item[0] == "end":
                for writer in writers:
                    writer.ends_at(item[1])
                return
            _, time, image, source = item
            writers[0].write(image, time)
            if combine:
                writers[1].write(np.concatenate([source, image], axis=1), time)

        total = min(info.frame_count, max_frames or info.frame_count) or max_frames
        bar = stack.enter_context(tqdm(total=total, unit="frame", desc=label,
                                       disable=not progress, dynamic_ncols=True))
        items = stack.enter_context(ReadAhead(demuxed(), name="decode"))
        output = stack.enter_context(WriteBehind(write, name="encode"))

        def frames():
            for item in items:
                if isinstance(item, TimedFrame):
                    result.frames_in += 1
                    bar.update()
                    yield item
                else:
                    output.put(item)

        previous = None
        for frame, image, source in interpolator.outputs(frames(), timeline):
            output.put(("frame", frame.time, image, source))
            result.frames_out += 1
            if previous is not None and frame.time - previous != 1 / rate:
                result.variable_rate = True
            previous = frame.time
        if fps is None and interpolator.end is not None:   # --fps: every frame lasts 1 / fps
            output.put(("end", interpolator.end))
        if result.frames_in < 2:
            raise UserError(f"{label} has {result.frames_in} video frame(s); "
                            "interpolation needs at least 2")
    result.scene_cuts = list(interpolator.scene_cuts)
    return result


def interpolate_folder(src: str | Path, out: str | Path, interpolator: Interpolator, *,
                       max_frames: int | None = None, progress: bool = True) -> StreamResult:
    """Interpolate the sorted images of `src` (its first `max_frames`) into the new or empty
    folder `out` as 00000000.png, 00000001.png, ... (multi·(N−1)+1 files; 16-bit and alpha
    are kept). The frames are written into a hidden folder beside `out` that takes its place
    when all are done, so a failed or interrupted run leaves no frames behind."""
    src, out = Path(src), Path(out)
    images = check_folder_request(src, out, max_frames)
    out = out.resolve()                 # "." has no name for the partial folder
    first = read_image(images[0])

    def frames():
        for index, path in enumerate(tqdm(images, unit="frame", desc=src.name,
                                          disable=not progress, dynamic_ncols=True)):
            image = first if index == 0 else read_image(path)
            if image.shape != first.shape or image.dtype != first.dtype:
                raise UserError(f"{path.name} is {describe_image(image)} but {images[0].name} "
                                f"is {describe_image(first)}; all frames must match")
            yield TimedFrame(image, Fraction(index))

    result = StreamResult(frames_in=len(images))
    partial = partial_path(out)
    shutil.rmtree(partial, ignore_errors=True)     # left by a run that was killed outright
    partial.mkdir()
    try:
        for index, (_, image, _) in enumerate(interpolator.outputs(frames(), hold=False)):
            write_image(partial / f"{index:08d}.png", image)
            result.frames_out += 1
        if out.is_dir():
            out.rmdir()                 # empty, as checked above
        partial.rename(out)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    result.scene_cuts = list(interpolator.scene_cuts)
    return result
