"""ATM-VFI video frame interpolation.

Conventions used throughout the package: frames are RGB in [0, 1], tensors [B, 3, H, W];
t = 0.5 is the frame synthesised between frame 0 and frame 1; flows are backward (from the
synthesised frame into frame 0 or 1), [B, 2, H, W], x then y, in pixels of the grid they live
on (so always name the scale); pyramids and per-level lists are ordered finest first.

    from network import load_network, InputPadder
    model = load_network(resolve_checkpoint("base"))  # downloaded once; variant detected
    middle = model(im0, im1)["I_t"]                   # H, W multiples of 64, or:
    middle = interpolate(frame0, frame1, model)       # any size, numpy or tensor
    interpolate_video(Path("in.mp4"), Path("out.mp4"), Interpolator(model), fps=parse_rate("59.94"))
"""
from .checkpoint import (CheckpointError, clean_state_dict, detect_variant, load_model_checkpoint,
                         load_network, read_checkpoint, read_state_dict)
from .config import BASE, LITE, VARIANTS, NetworkConfig
from .conversion import interpolate_folder, interpolate_video
from .inference import Interpolator, inference_2frame, interpolate
from .model import Network
from .padding import InputPadder
from .pretrained import resolve_checkpoint
from .runtime import (PRECISIONS, UserError, autocast, compile_network, keep_freed_memory,
                      select_device)
from .video import TimedFrame, VideoReader, VideoWriter, probe_video
from .video.timeline import parse_rate
from .warp import downsample_half, upsample_flow, warp_backward

__all__ = [
    "BASE", "LITE", "VARIANTS", "NetworkConfig", "Network", "InputPadder", "CheckpointError",
    "UserError", "autocast", "select_device", "PRECISIONS", "clean_state_dict", "detect_variant",
    "load_model_checkpoint", "load_network", "read_checkpoint", "read_state_dict",
    "downsample_half", "upsample_flow", "warp_backward", "Interpolator", "inference_2frame",
    "interpolate", "interpolate_folder", "interpolate_video", "resolve_checkpoint", "TimedFrame",
    "VideoReader", "VideoWriter", "probe_video", "parse_rate", "compile_network",
    "keep_freed_memory",
]
