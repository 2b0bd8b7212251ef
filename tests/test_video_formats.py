"""network.video formats: bit depth, colour matrix/range/tags, codecs, containers, exact
timestamps (Matroska's milliseconds), time offsets and subtitles; 10-bit PQ through demo_2x."""
import math
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

import demo_2x
from network import UserError, load_network
from network.inference import interpolate
from network.video import StreamColour, VideoReader, VideoWriter, probe_video, rgb_to_frame
from network.video.colour import frame_to_rgb
from video_clips import audio_packets, bigbuckbunny, video_stream_facts, write_clip

NTSC_FILM = Fraction(24000, 1001)
BT709, BT2020 = (1, 1, 1), (9, 9, 16)  # (matrix, primaries, transfer); 16 is PQ
RAMP_WIDTH = 512


def write_deep_clip(path: Path, codec: str, tags: tuple[int, int, int], options: dict,
                    count: int = 3) -> None:
    """A (near-)lossless yuv420p10le clip: luma ramps 64 ... 940 (all 512 columns differ), neutral
    chroma, tagged (matrix, primaries, transfer), limited range, at 24000/1001 fps."""
    width, height = RAMP_WIDTH, 32
    ramp = np.linspace(64, 940, width).round().astype(np.uint16)
    luma = np.ascontiguousarray(np.broadcast_to(ramp, (height, width)))
    chroma = np.full((height // 2, width // 2), 512, np.uint16)
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=NTSC_FILM)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p10le"
        stream.options = options
        cc = stream.codec_context
        cc.colorspace, cc.color_primaries, cc.color_trc = tags
        cc.color_range = 1
        for index in range(count):
            frame = av.VideoFrame(width, height, "yuv420p10le")
            for plane, samples in zip(frame.planes, (luma, chroma, chroma)):
                plane.update(samples)
            frame.pts = index
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


def luma_rows(path: Path) -> list[np.ndarray]:
    """The first luma row of every frame, as stored (no colour conversion)."""
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format=frame.format.name)[0]
                for frame in container.decode(video=0)]


def colour_facts(path: Path) -> dict:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frame = next(container.decode(stream))
        return {"codec": stream.codec_context.name, "profile": stream.codec_context.profile,
                "pix_fmt": frame.format.name, "matrix": frame.colorspace,
                "primaries": frame.color_primaries, "transfer": frame.color_trc,
                "range": frame.color_range}


def convert(src: Path, out: Path, **writer_options) -> None:
    """Decode `src` to RGB and encode it again, as the pipeline does, copying other streams."""
    info = probe_video(src)
    with VideoReader(src) as reader, VideoWriter(
            out, (info.width, info.height), info.rate, colour=info.colour,
            copy_from=reader.copied_streams, **writer_options) as writer:
        for frame in reader.frames(lambda p: writer.copy_packet(p, p.stream.index)):
            writer.write(frame.image, frame.time)


@pytest.mark.parametrize("codec, tags, options, profile, written_as", [
    ("libx264", BT709, {"qp": "1"}, "High 10", {}),  # qp 0 would be High 4:4:4 Predictive
    ("libx265", BT2020, {"x265-params": "lossless=1:log-level=error"}, "Main 10",
     {"codec": "hevc"}),
])
def test_ten_bit_input_stays_ten_bit_with_its_tags_and_levels(tmp_path, codec, tags, options,
                                                              profile, written_as):
    src = tmp_path / "deep.mkv"
    write_deep_clip(src, codec, tags, options)
    source = colour_facts(src)
    assert (source["profile"], source["pix_fmt"]) == (profile, "yuv420p10le")
    info = probe_video(src)
    assert info.colour == StreamColour(*tags, full_range=False, bit_depth=10)
    with VideoReader(src) as reader:
        image = next(reader.frames()).image
    assert image.dtype == np.uint16 and len(np.unique(image[0, :, 1])) == RAMP_WIDTH

    out = tmp_path / "out.mp4"
    convert(src, out, crf=1, **written_as)
    facts = colour_facts(out)
    assert facts["pix_fmt"] == "yuv420p10le" and facts["profile"] == profile
    assert (facts["matrix"], facts["primaries"], facts["transfer"], facts["range"]) == (*tags, 1)
    for row in luma_rows(out):
        assert len(np.unique(row)) > 256  # 8 bits would keep at most 220 levels of 64..940
        assert np.abs(row.astype(int) - luma_rows(src)[0]).max() <= 2


# Pure red (255, 0, 0) in 8-bit YUV, worked out from each standard's Kr, Kb:
# limited Y = 16 + 219 Kr, Cb = 128 - 112 Kr / (1 - Kb), Cr = 240; full range 255 Kr, 128 -
# 127.5 Kr / (1 - Kb), 255. BT.601: Kr .299, Kb .114; BT.709: Kr .2126, Kb .0722.
@pytest.mark.parametrize("matrix, full_range, yuv", [
    (2, False, (81, 90, 240)),  # untagged: BT.601
    (1, False, (63, 102, 240)),
    (1, True, (54, 99, 255)),
])
def test_rgb_conversion_uses_the_matrix_and_range_both_ways(matrix, full_range, yuv):
    colour = StreamColour(matrix=matrix, full_range=full_range)
    red = np.zeros((16, 16, 3), np.uint8)
    red[..., 0] = 255
    frame = rgb_to_frame(red, "yuv444p", colour)
    planes = frame.to_ndarray(format="yuv444p")  # [3, H, W]
    np.testing.assert_allclose(planes[:, 8, 8], yuv, atol=1)
    assert (frame.colorspace, frame.color_range) == (matrix, 2 if full_range else 1)
    back = frame_to_rgb(frame)
    assert back.dtype == np.uint8 and np.abs(back.astype(int) - red).max() <= 2


@pytest.mark.parametrize("tagged_rgb", [True, False])   # FFV1 RGB from FFmpeg is often untagged
def test_rgb_source_becomes_bt709_limited_yuv_at_its_depth(tmp_path, tagged_rgb):
    src = tmp_path / "rgb.mkv"
    x = np.linspace(0, 65535, 64)
    image = np.stack(np.broadcast_arrays(x[None, :], x[::-1, None], np.full((64, 1), 30000.0)),
                     axis=2).round().astype(np.uint16)  # smooth, survives 4:2:0
    with av.open(str(src), "w") as out:
        stream = out.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "gbrp10le"
        if tagged_rgb:
            stream.codec_context.colorspace = 0  # AVCOL_SPC_RGB; else 2, unspecified
        for index in range(2):
            frame = av.VideoFrame.from_ndarray(image, "rgb48le").reformat(format="gbrp10le")
            frame.pts = index
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    out = tmp_path / "out.mkv"
    convert(src, out, codec="ffv1")
    facts = colour_facts(out)
    assert (facts["pix_fmt"], facts["matrix"], facts["range"]) == ("yuv420p10le", 1, 1)
    with av.open(str(out)) as container:
        back = frame_to_rgb(next(container.decode(video=0)))
    assert back.dtype == np.uint16
    assert np.abs(back.astype(float) - image).mean() < 0.002 * 65535


def test_codec_and_container_choices(tmp_path, capfd, monkeypatch):
    monkeypatch.delenv("SVT_LOG", raising=False)
    cases = [("out.mkv", "ffv1", None, "yuv420p"), ("out.mov", "prores", None, "yuv422p10le"),
             ("out.webm", None, None, "yuv420p"), ("out.webm", "av1", None, "yuv420p"),
             ("out.mp4", "hevc", "yuv444p12le", "yuv444p12le")]
    expected_codec = {"ffv1": "ffv1", "prores": "prores", None: "vp9", "av1": "libdav1d",
                      "hevc": "hevc"}
    for name, codec, pix_fmt, want in cases:
        out = tmp_path / name
        with VideoWriter(out, (64, 64), Fraction(25), codec=codec, pix_fmt=pix_fmt) as writer:
            for _ in range(3):  # libx265 via FFmpeg gives 2-frame streams garbage dts
                writer.write(np.zeros((64, 64, 3), np.uint8))
        facts = video_stream_facts(out)
        assert (facts["codec"], facts["pix_fmt"]) == (expected_codec[codec], want), name
    assert "Svt[info]" not in capfd.readouterr().err     # the AV1 encoder kept its settings quiet
    with av.open(str(tmp_path / "out.mp4")) as container:
        assert container.streams.video[0].codec_context.codec_tag == "hvc1"  # Apple players
    deep = StreamColour(bit_depth=10)
    for name, codec, pix_fmt, message in [("x.webm", "h264", None, "cannot hold h264"),
                                          ("x.mov", "ffv1", None, "cannot hold ffv1"),
                                          ("x.mp4", "vp9", None, "cannot write 10-bit"),
                                          ("x.mp4", "h264", "yuv420p12le", "not yuv420p12le"),
                                          ("x.mp4", "mpeg2", None, "unknown codec")]:
        with pytest.raises(UserError, match=message):
            VideoWriter(tmp_path / name, (64, 48), Fraction(25), codec=codec, pix_fmt=pix_fmt,
                        colour=deep)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({name for name, *_ in cases})


def test_hdr_tags_at_eight_bits_warn(tmp_path, caplog):
    pq = StreamColour(*BT2020, bit_depth=10)
    with VideoWriter(tmp_path / "out.mp4", (64, 48), Fraction(25), colour=pq,
                     pix_fmt="yuv420p") as writer:
        writer.write(np.zeros((48, 64, 3), np.uint16))
    assert "banding" in caplog.text


def half_up(value: Fraction) -> int:
    """Nearest integer, ties up (FFmpeg's rounding; 500.5 ms -> 501 ms)."""
    return math.floor(value + Fraction(1, 2))


@pytest.mark.parametrize("name", ["out.mkv", "out.mp4"])
def test_each_timestamp_is_rounded_once_from_its_exact_time(tmp_path, name):
    rate = Fraction(60000, 1001)
    out = tmp_path / name
    with VideoWriter(out, (64, 48), rate) as writer:
        for _ in range(120):  # 2 s: accumulated millisecond steps would drift by 2 ms
            writer.write(np.zeros((48, 64, 3), np.uint8))
    times = video_stream_facts(out)["times"]
    if name == "out.mkv":
        assert times == [Fraction(half_up(k / rate * 1000), 1000) for k in range(120)]
    else:
        assert times == [k / rate for k in range(120)]


def test_variable_frame_times_and_time_offset(tmp_path):
    # Irregular times (30 fps with gaps and midpoints), shifted so the first is at 0.
    offset = Fraction(600)
    times = [offset + Fraction(k, 60) for k in (0, 1, 2, 4, 5, 9, 10, 16)]
    for name in ("out.mp4", "out.mkv"):
        out = tmp_path / name
        with VideoWriter(out, (64, 48), Fraction(30), time_base=Fraction(1, 60),
                         time_offset=offset) as writer:
            for time in times:
                writer.write(np.zeros((48, 64, 3), np.uint8), time)
        got = video_stream_facts(out)["times"]
        if name == "out.mkv":
            assert got == [Fraction(half_up((t - offset) * 1000), 1000) for t in times]
        else:
            assert got == [t - offset for t in times]
    with pytest.raises(ValueError, match="not after"):
        with VideoWriter(tmp_path / "back.mp4", (64, 48), Fraction(30)) as writer:
            writer.write(np.zeros((48, 64, 3), np.uint8), Fraction(1))
            writer.write(np.zeros((48, 64, 3), np.uint8), Fraction(1))
    assert not (tmp_path / "back.mp4").exists()


def write_srt(path: Path) -> None:
    path.write_text("1\n00:00:00,100 --> 00:00:00,200\nHello\n\n"
                    "2\n00:00:00,240 --> 00:00:00,380\nWorld\n\n")


def write_clip_with_subtitles(path: Path, srt: Path) -> None:
    """10 grey frames at 25 fps, bigbuckbunny's AAC for 0.4 s and the SRT's subtitles, in .mkv."""
    plain = path.with_name("plain.mp4")
    write_clip(plain, [np.full((48, 64, 3), 128, np.uint8)] * 10, Fraction(25),
               audio_from=bigbuckbunny())
    with av.open(str(plain)) as source, av.open(str(srt)) as subtitles, \
            av.open(str(path), "w") as out:
        mapping = {}
        for stream in (*source.streams, *subtitles.streams):
            mapping[stream] = out.add_stream_from_template(stream)
        for container in (source, subtitles):
            for packet in container.demux():
                if packet.size:
                    packet.stream = mapping[packet.stream]
                    out.mux(packet)


def subtitle_packets(path: Path) -> list[tuple[bytes, Fraction, int]]:
    with av.open(str(path)) as container:
        return [(bytes(p), p.pts * p.time_base, p.duration * p.time_base)
                for p in container.demux(subtitles=0) if p.size]


def test_subtitles_and_audio_copied_where_the_container_holds_them(tmp_path, caplog):
    srt = tmp_path / "subs.srt"
    write_srt(srt)
    src = tmp_path / "in.mkv"
    write_clip_with_subtitles(src, srt)
    source_subtitles = subtitle_packets(src)
    assert [text for text, *_ in source_subtitles] == [b"Hello", b"World"]

    convert(src, tmp_path / "out.mkv")
    assert subtitle_packets(tmp_path / "out.mkv") == source_subtitles
    assert audio_packets(tmp_path / "out.mkv") == audio_packets(src)
    assert "leaving out" not in caplog.text

    convert(src, tmp_path / "out.mp4")  # MP4 holds mov_text, not SRT
    assert audio_packets(tmp_path / "out.mp4") == audio_packets(src)
    with av.open(str(tmp_path / "out.mp4")) as container:
        assert [s.type for s in container.streams] == ["video", "audio"]
    warnings = [r.getMessage() for r in caplog.records if "leaving out" in r.getMessage()]
    assert warnings == ["leaving out subtitle stream #2 (srt): .mp4 files cannot hold it"]

    caplog.clear()
    convert(src, tmp_path / "out.webm")  # WebM: no AAC, no SRT
    with av.open(str(tmp_path / "out.webm")) as container:
        assert [s.type for s in container.streams] == ["video"]
    assert len([r for r in caplog.records if "leaving out" in r.getMessage()]) == 2


def write_opus_clip(path: Path, srt: Path) -> None:
    """10 grey frames at 25 fps (FFV1), 0.4 s of a 440 Hz tone in Opus and the SRT's subtitles."""
    with av.open(str(srt)) as subtitles, av.open(str(path), "w") as out:
        video = out.add_stream("ffv1", rate=25)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = out.add_stream("libopus", rate=48000, layout="mono")
        text = out.add_stream_from_template(subtitles.streams.subtitles[0])
        for index in range(10):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 128, np.uint8), "rgb24")
            frame.pts = index
            out.mux(video.encode(frame))
        tone = np.sin(2 * np.pi * 440 * np.arange(19200) / 48000).astype(np.float32)
        for start in range(0, tone.size, 960):
            samples = av.AudioFrame.from_ndarray(tone[None, start:start + 960], "flt", "mono")
            samples.sample_rate, samples.pts = 48000, start
            out.mux(audio.encode(samples))
        out.mux(audio.encode(None))
        out.mux(video.encode(None))
        for packet in subtitles.demux():
            if packet.size:
                packet.stream = text
                out.mux(packet)


def test_webm_keeps_opus_and_leaves_out_srt(tmp_path, caplog):
    srt = tmp_path / "subs.srt"
    write_srt(srt)
    src = tmp_path / "in.mkv"
    write_opus_clip(src, srt)
    convert(src, tmp_path / "out.webm")
    with av.open(str(tmp_path / "out.webm")) as container:
        assert [(s.type, s.codec_context.name) for s in container.streams] == [
            ("video", "vp9"), ("audio", "opus")]
    assert audio_packets(tmp_path / "out.webm") == audio_packets(src)
    warnings = [r.getMessage() for r in caplog.records if "leaving out" in r.getMessage()]
    assert warnings == ["leaving out subtitle stream #2 (srt): .webm files cannot hold it"]


def exact_audio_packets(path: Path) -> list[tuple[bytes, Fraction]]:
    with av.open(str(path)) as container:
        return [(bytes(p), p.pts * p.time_base) for p in container.demux(audio=0) if p.size]


def test_time_offset_moves_copied_packets_exactly(tmp_path):
    src = tmp_path / "bbb.mp4"
    write_clip(src, [np.zeros((36, 64, 3), np.uint8)] * 10, Fraction(25),
               audio_from=bigbuckbunny())
    offset = Fraction(1, 25)  # the output starts at the second frame
    kept = [(data, time) for data, time in exact_audio_packets(src) if time >= offset]

    def copy_from_offset(packet):
        if packet.pts * packet.time_base >= offset:
            writer.copy_packet(packet, packet.stream.index)

    for name in ("out.mp4", "out.mkv"):
        out = tmp_path / name
        with VideoReader(src) as reader, VideoWriter(
                out, (64, 36), Fraction(25), time_offset=offset,
                copy_from=reader.copied_streams) as writer:
            for frame in reader.frames(copy_from_offset):
                if frame.time >= offset:
                    writer.write(frame.image, frame.time)
        copied = exact_audio_packets(out)
        assert [data for data, _ in copied] == [data for data, _ in kept]
        milliseconds = name == "out.mkv"
        assert [time for _, time in copied] == [
            Fraction(half_up((time - offset) * 1000), 1000) if milliseconds else time - offset
            for _, time in kept]
        assert video_stream_facts(out)["times"][:2] == [0, Fraction(1, 25)]


def test_one_packet_copied_into_two_writers_lands_right_in_both(tmp_path):
    src = tmp_path / "bbb.mp4"
    write_clip(src, [np.zeros((36, 64, 3), np.uint8)] * 10, Fraction(25),
               audio_from=bigbuckbunny())
    delay = Fraction(1, 75)  # 640 samples: Matroska's milliseconds round, MP4 keeps samples
    with VideoReader(src) as reader, VideoWriter(
            tmp_path / "out.mkv", (64, 36), Fraction(25), time_offset=-delay,
            copy_from=reader.copied_streams) as delayed, VideoWriter(
            tmp_path / "out.mp4", (64, 36), Fraction(25),
            copy_from=reader.copied_streams) as plain:

        def copy(packet):
            for writer in (delayed, plain):
                writer.copy_packet(packet, packet.stream.index)

        for frame in reader.frames(copy):
            delayed.write(frame.image, frame.time)
            plain.write(frame.image, frame.time)
    source = exact_audio_packets(src)
    assert exact_audio_packets(tmp_path / "out.mp4") == source
    assert exact_audio_packets(tmp_path / "out.mkv") == [
        (data, Fraction(half_up((time + delay) * 1000), 1000)) for data, time in source]


def test_demo_interpolates_ten_bit_pq_at_ten_bits(tmp_path, lite_ckpt):
    src = tmp_path / "pq.mkv"
    write_deep_clip(src, "libx265", BT2020, {"x265-params": "lossless=1:log-level=error"})
    out = tmp_path / "out.mkv"
    assert demo_2x.main(["--video", str(src), "--out", str(out), "--ckpt", str(lite_ckpt),
                         "--device", "cpu", "--no_progress", "--crf", "0"]) == 0
    facts = colour_facts(out)
    assert (facts["pix_fmt"], facts["matrix"], facts["primaries"], facts["transfer"],
            facts["range"]) == ("yuv420p10le", *BT2020, 1)
    info = probe_video(src)
    with VideoReader(src) as reader:
        first, second = (frame.image for frame in reader.frames(limit=2))
    middle = interpolate(first, second, load_network(lite_ckpt, device="cpu"))  # uint16
    expected = rgb_to_frame(middle, "yuv420p10le", info.colour).to_ndarray()[:32].astype(int)
    made = luma_rows(out)[1].astype(int)  # the in-between frame
    assert len(np.unique(expected[0])) > 256 and len(np.unique(made)) > 256
    assert np.abs(made - expected[0]).mean() < 2  # of 1023 levels, after H.264 at crf 0
