"""Streaming video and image-sequence input/output (PyAV for video, OpenCV for images).

Conventions:
* Frames are numpy arrays [H, W, 3], uint8, RGB, decoded or encoded one at a time, so
  memory does not grow with the length of a video.
* Frame rates are exact `Fraction`s (30000/1001, never 29.97).
* Output video is H.264 (libx264, yuv420p) at a constant frame rate in an MP4 or MOV
  file: output frame j has pts `first_pts + j` in time base 1 / rate. (Matroska stores
  milliseconds and cannot hold rates such as 60000/1001 exactly, so it is refused.)
* yuv420p needs even sizes: a frame with an odd width or height gets one replicated
  column on the right or row at the bottom.
* Audio and subtitle streams are copied packet by packet: same bytes, same timestamps.
  A stream whose codec the output container cannot hold is left out with a warning.
* The input's display matrix (rotation or flip metadata) is set on the output; frames are
  never rotated themselves, so players show the output as they show the input.
* Every file is written under a temporary name and renamed into place when complete, so
  a failed run never leaves half a file or replaces an existing one.
"""
from .images import IMAGE_SUFFIXES, list_images, read_image, write_image
from .paths import check_output_path
from .reading import TimedFrame, VideoInfo, VideoReader, probe_video
from .writing import CONTAINER_FORMATS, VideoWriter, pad_to_even

__all__ = ["IMAGE_SUFFIXES", "CONTAINER_FORMATS", "TimedFrame", "VideoInfo", "VideoReader", "VideoWriter",
           "check_output_path", "list_images", "pad_to_even", "probe_video", "read_image",
           "write_image"]
