"""Streaming video and image-sequence input/output (PyAV for video, OpenCV for images).

Conventions:
* Frames are numpy arrays [H, W, 3] RGB, decoded or encoded one at a time, so memory does
  not grow with the length of a video: uint8 for 8-bit sources, uint16 on the full
  0..65535 scale for deeper ones (10-, 12-, 16-bit YUV; 16-bit PNG folders stay 16-bit).
* Times and rates are exact `Fraction`s (30000/1001, never 29.97). A frame written at time T
  gets pts round((T - time_offset) / time_base), the only rounding; Matroska (.mkv, .webm)
  then stores milliseconds, rounded once from that exact value, never accumulated.
* Colour: YUV <-> RGB uses the input's matrix (BT.601 when untagged, BT.709, BT.2020) and
  range, both ways; matrix, primaries, transfer (PQ, HLG) and range tags are copied. RGB
  sources (FFV1/ProRes RGB) are written as BT.709 limited-range YUV, tagged so.
* Depth and codec: output keeps the input's bit depth unless a pixel format is given.
  Default codec: H.264 up to 10 bits, HEVC above; in .webm, VP9 at 8 bits and AV1 above.
  `codec` may be h264, hevc, av1, vp9 (8-bit only in this build), ffv1 (lossless) or
  prores (10-bit 4:2:2 / 4:4:4); `pix_fmt` any format that encoder takes.
* Containers: .mp4/.m4v and .mov (H.264, HEVC, AV1, VP9; FFV1 in .mp4; ProRes in .mov),
  .mkv (all six) and .webm (VP9 and AV1 video, Opus/Vorbis audio, WebVTT subtitles only).
* 4:2:0 and 4:2:2 need even sizes: a frame with an odd width or height gets one replicated
  column on the right or row at the bottom.
* Audio and subtitle streams are copied packet by packet: same bytes, timestamps moved only
  by time_offset. Every stream keeps its tags (language, title) and disposition (default,
  forced, ...). A stream the container cannot hold (SRT in .mp4, mov_text in .mkv, AAC
  in .webm) is left out with a one-line warning.
* The input's display matrix (rotation or flip metadata) is set on the output; frames are
  never rotated themselves, so players show the output as they show the input. So is a
  non-square pixel aspect ratio (anamorphic DVD, DV, HDV) in .mp4, .mov and .mkv; WebM's
  encoders and y4m drop it.
* Every file is written under a temporary name and renamed into place when complete, so
  a failed or interrupted run (an exception, Ctrl-C, or SIGTERM inside
  `network.interruption.terminate_as_interrupt`) never leaves half a file or replaces an
  existing one.
* Pipes: `Y4MReader` / `Y4MWriter` read and write yuv4mpegpipe streams (stdin, stdout) with
  the interfaces of `VideoReader` / `VideoWriter`; see `network.video.y4m`.
"""
from .colour import StreamColour, frame_to_rgb, rgb_to_frame
from .images import IMAGE_SUFFIXES, describe_image, list_images, read_image, write_image
from .paths import check_not_input, check_output_path
from .reading import TimedFrame, VideoInfo, VideoReader, probe_video
from .writing import CONTAINER_FORMATS, ENCODERS, VideoWriter, pad_to_even
from .y4m import Y4MReader, Y4MWriter

__all__ = ["IMAGE_SUFFIXES", "CONTAINER_FORMATS", "ENCODERS", "StreamColour", "TimedFrame",
           "VideoInfo", "VideoReader", "VideoWriter", "Y4MReader", "Y4MWriter",
           "check_not_input", "check_output_path", "describe_image", "frame_to_rgb",
           "list_images", "pad_to_even", "probe_video", "read_image", "rgb_to_frame",
           "write_image"]
