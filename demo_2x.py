"""ATM-VFI on your own frames: two images, a folder of images or a whole video.

    python demo_2x.py --frame0 a.png --frame1 b.png --out mid.png
    python demo_2x.py --video in.mp4 --out out.mp4 --multi 4
    python demo_2x.py --video in.mkv --out out.mkv --fps 59.94
    ffmpeg -i a.mkv -f yuv4mpegpipe - | python demo_2x.py --video - --out - | ffmpeg -i - b.mkv
    python demo_2x.py --frames_dir frames/ --out frames_2x/

`--ckpt base|lite|pct` downloads the authors' weights once into ~/.cache/atm-vfi/;
`--ckpt PATH` uses a local file. Run with --help for every option.
"""
import argparse
import logging
import sys
from fractions import Fraction
from pathlib import Path

from network import (PRECISIONS, VARIANTS, UserError, compile_network, keep_freed_memory,
                     load_model_checkpoint, load_network, select_device)
from network.command_line import CommandLineParser, DefaultsHelpFormatter, log_to_console
from network.conversion import (PIPE, check_folder_request, check_video_request, comparison_path,
                                interpolate_folder, interpolate_video)
from network.inference import MULTIPLIERS, Interpolator, inference_2frame, interpolate
from network.interruption import run_script
from network.pretrained import PRETRAINED, resolve_checkpoint
from network.scene import DEFAULT_SCENE_THRESHOLD
from network.video import (IMAGE_SUFFIXES, check_not_input, check_output_path, describe_image,
                           probe_video, read_image, write_image)
from network.video.timeline import parse_rate
from network.video.writing import DEFAULT_CRF, ENCODERS, choose_encoding

__all__ = ["main", "build_parser", "inference_2frame", "load_model_checkpoint"]

log = logging.getLogger("demo_2x")


def build_parser() -> argparse.ArgumentParser:
    parser = CommandLineParser(description=__doc__.split("\n\n")[0],
                               formatter_class=DefaultsHelpFormatter)
    source = parser.add_argument_group("input (give exactly one kind)")
    source.add_argument("--frame0", type=Path, help="first of two frames (PNG, JPG, ...)")
    source.add_argument("--frame1", type=Path, help="second of two frames, same size as --frame0")
    source.add_argument("--video", type=Path,
                        help="a video file FFmpeg can read, or - for a yuv4mpegpipe stream on "
                             "stdin")
    source.add_argument("--frames_dir", type=Path,
                        help="a folder of frames, interpolated in natural file-name order "
                             "(frame_2 before frame_10)")
    parser.add_argument("--out", type=Path, default=None,
                        help="output image (frames), .mp4/.m4v/.mov/.mkv/.webm file or - for a "
                             "yuv4mpegpipe stream on stdout (video), or folder (frames_dir); "
                             "when left out: next to the input, e.g. in_2x.mp4")

    model = parser.add_argument_group("model")
    model.add_argument("--ckpt", default="base",
                       help=f"checkpoint file, or one of {', '.join(PRETRAINED)} "
                            "(downloaded once to $ATM_VFI_CACHE, else ~/.cache/atm-vfi/)")
    model.add_argument("--model_type", choices=sorted(VARIANTS), default=None,
                       help="network variant; when left out: detected from the checkpoint")
    model.add_argument("--global_off", action="store_true",
                       help="turn off the global-motion branch (local motion only)")
    model.add_argument("--device", default="auto",
                       help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps")
    model.add_argument("--precision", choices=list(PRECISIONS), default="fp32",
                       help="arithmetic precision of the network (bf16/fp16 via autocast)")
    model.add_argument("--compile", action="store_true",
                       help="torch.compile the network: the first frame pair of each size waits "
                            "for compilation (minutes on a CPU); see the README for when it pays")

    video = parser.add_argument_group("video and frames_dir")
    timing = video.add_mutually_exclusive_group()
    timing.add_argument("--multi", type=int, choices=MULTIPLIERS, default=2,
                        help="output frames per input interval; 4 and 8 interpolate recursively")
    timing.add_argument("--fps", type=_rate, default=None, metavar="RATE",
                        help="video only: output frame rate from 0.01 to 100000, e.g. 60, 59.94 "
                             "(= 60000/1001) or 60000/1001; frames between inputs by recursive "
                             "midpoints")
    video.add_argument("--scene_threshold", type=_within(float, 0, 1), default=None,
                       help="scene-change score in [0, 1] above which a frame pair is a cut and "
                            "the earlier frame is repeated instead of blended (1: never); when "
                            f"left out: {DEFAULT_SCENE_THRESHOLD}")
    video.add_argument("--combine_video", action="store_true",
                       help="video only: also write OUT_combine.EXT (e.g. out_combine.mp4): "
                            "input (frames repeated) on the left, output on the right")
    video.add_argument("--codec", choices=list(ENCODERS), default=None,
                       help="video only: codec; when left out: H.264 up to 10 bits, HEVC above "
                            "(VP9 or AV1 in .webm)")
    video.add_argument("--pix_fmt", default=None,
                       help="video only: encoded pixel format, e.g. yuv420p10le; when left "
                            "out: 4:2:0 at the input's bit depth")
    video.add_argument("--crf", type=_within(int, 0, 51), default=None,
                       help=f"video only: quality, 0 (best) to 51 (worst); when left out: "
                            f"{DEFAULT_CRF}, which looks lossless (VP9 and AV1 read it on their "
                            "0-63 scale; FFV1 and ProRes take none)")
    video.add_argument("--batch", type=_within(int, 1), default=1,
                       help="run up to N midpoints, from up to N frame pairs, as one network "
                            "pass (speeds up GPUs; no gain on CPUs)")
    video.add_argument("--max_frames", type=_within(int, 2), default=None,
                       help="use only the first N frames of the video (and its audio up to "
                            "them) or of the folder")
    video.add_argument("--no_progress", action="store_true", help="hide the progress bar")
    return parser


def _rate(text: str) -> Fraction:
    try:
        return parse_rate(text)
    except UserError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _within(kind: type, low: float, high: float | None = None):
    """An argparse type: a `kind` number from `low` up to `high` (no limit: None)."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not (low <= value and (high is None or value <= high)):   # NaN included
            limits = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise argparse.ArgumentTypeError(f"must be {limits}, got {text}")
        return value
    return parse


def _mode(args: argparse.Namespace) -> str:
    """"frames", "video" or "frames_dir"; UserError for none or a mix."""
    given = [name for name, present in (("frames", args.frame0 or args.frame1),
                                        ("video", args.video), ("frames_dir", args.frames_dir))
             if present]
    if len(given) != 1:
        raise UserError("give exactly one input: --frame0 and --frame1, --video, or --frames_dir")
    if given == ["frames"] and not (args.frame0 and args.frame1):
        raise UserError("--frame0 and --frame1 must be given together")
    return given[0]


def _default_out(args: argparse.Namespace, mode: str) -> Path:
    """The output next to the input, named after it."""
    if mode == "video" and args.video == PIPE:
        raise UserError("give --out (a file, or - for stdout) when reading from stdin")
    source = {"frames": args.frame0, "video": args.video, "frames_dir": args.frames_dir}[mode]
    if source.name in ("", ".."):              # . or ..: named after the folder they stand for
        source = source.resolve()
        if not source.name:
            raise UserError(f"give --out: {source} has no name to derive the output's from")
    if mode == "frames":
        return source.with_name(f"{source.stem}_mid.png")
    if mode == "video":
        rate = f"{float(args.fps):.3f}".rstrip("0").rstrip(".") + "fps" if args.fps \
            else f"{args.multi}x"
        return source.with_name(f"{source.stem}_{rate}.mp4")
    return source.with_name(f"{source.name}_{args.multi}x")


def _check_inputs(args: argparse.Namespace, mode: str) -> tuple | None:
    """Fail on bad input before a checkpoint is loaded or downloaded; returns the two frames
    of the "frames" mode, read once (None in the other modes)."""
    if mode != "video":
        video_only = [flag for flag, given in (("--fps", args.fps is not None),
                                               ("--codec", args.codec is not None),
                                               ("--pix_fmt", args.pix_fmt is not None),
                                               ("--crf", args.crf is not None),
                                               ("--combine_video", args.combine_video)) if given]
        if video_only:
            why = (" (a folder of frames has no timestamps)"
                   if mode == "frames_dir" and "--fps" in video_only else "")
            raise UserError(f"{', '.join(video_only)}: for a --video only{why}")
    elif args.crf is not None and args.out == PIPE:
        raise UserError("--crf: a y4m stream on stdout is not compressed")
    elif args.crf is not None and args.codec in ("ffv1", "prores"):
        raise UserError(f"--crf: {args.codec} takes no quality setting (FFV1 is lossless, "
                        "ProRes has fixed-rate profiles)")
    if mode == "frames":
        sequence_only = [flag for flag, given in (
            ("--multi", args.multi != 2), ("--max_frames", args.max_frames is not None),
            ("--scene_threshold", args.scene_threshold is not None),
            ("--batch", args.batch != 1)) if given]
        if sequence_only:
            raise UserError(f"two frames give their middle frame: {', '.join(sequence_only)} "
                            "for --video and --frames_dir only")
        check_output_path(args.out, IMAGE_SUFFIXES)
        check_not_input(args.out, [args.frame0, args.frame1])
        first, second = read_image(args.frame0), read_image(args.frame1)
        if first.shape != second.shape or first.dtype != second.dtype:
            raise UserError(f"frames differ: {args.frame0} is {describe_image(first)}, "
                            f"{args.frame1} is {describe_image(second)}")
        return first, second
    elif mode == "video":
        check_video_request(args.video, args.out, fps=args.fps, codec=args.codec,
                            combine=args.combine_video, max_frames=args.max_frames)
        if args.video != PIPE:
            info = probe_video(args.video)
            if args.out != PIPE:   # --codec/--pix_fmt against the encoder and the container
                choose_encoding(args.out, args.codec, args.pix_fmt, info.colour.bit_depth)
    else:
        check_folder_request(args.frames_dir, args.out, args.max_frames)


def _run(args: argparse.Namespace) -> None:
    mode = _mode(args)
    args.out = args.out or _default_out(args, mode)
    pair = _check_inputs(args, mode)
    device = select_device(args.device)
    model = load_network(resolve_checkpoint(args.ckpt), variant=args.model_type, device=device,
                         global_motion=False if args.global_off else None)
    if args.compile:
        compile_network(model)
    log.info("ATM-VFI %s on %s (%s%s), global motion %s", model.variant, device, args.precision,
             ", compiled" if args.compile else "", "on" if model.global_motion else "off")
    if mode == "frames":
        write_image(args.out, interpolate(*pair, model, args.precision))
        log.info("wrote %s", args.out)
        return
    scene_threshold = (DEFAULT_SCENE_THRESHOLD if args.scene_threshold is None
                       else args.scene_threshold)
    interpolator = Interpolator(model, args.multi, args.precision, scene_threshold, args.batch)
    if mode == "video":
        result = interpolate_video(args.video, args.out, interpolator, fps=args.fps,
                                   codec=args.codec, pix_fmt=args.pix_fmt,
                                   crf=DEFAULT_CRF if args.crf is None else args.crf,
                                   combine=args.combine_video, max_frames=args.max_frames,
                                   progress=not args.no_progress)
        if result.variable_rate:
            log.info("wrote %s: %d frames, at the input's variable rate with %d per input "
                     "frame", args.out, result.frames_out, args.multi)
        else:
            log.info("wrote %s: %d frames at %s fps (%.3f)", args.out, result.frames_out,
                     result.rate, float(result.rate))
        if args.combine_video:
            log.info("wrote %s", comparison_path(args.out))
    else:
        result = interpolate_folder(args.frames_dir, args.out, interpolator,
                                    max_frames=args.max_frames, progress=not args.no_progress)
        log.info("wrote %d frames to %s", result.frames_out, args.out)
    if result.scene_cuts:
        log.info("scene cuts (earlier frame repeated) after input frames: %s",
                 ", ".join(map(str, result.scene_cuts)))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # With --out - stdout carries the video, so every message goes to stderr.
    log_to_console(info_stream=sys.stderr if args.out == PIPE else sys.stdout)
    keep_freed_memory()             # large frames: no page faults for every new tensor
    return run_script(lambda: _run(args))   # SIGTERM unwinds like Ctrl-C: no partial output


if __name__ == "__main__":
    sys.exit(main())
