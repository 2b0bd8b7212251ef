"""demo_2x.py on two frames and the Python API behind it (network.inference), lite stand-in
weights. Expected frames are the network's I_t on inputs padded here by hand."""
import copy
from fractions import Fraction

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import demo_2x
import network
from network import load_network
from network.inference import inference_2frame, interpolate
from video_clips import carphone, decoded_frames

HEIGHT, WIDTH = 69, 91  # padded to 128 x 128: rows 29 above, 30 below; columns 18 left, 19 right


@pytest.fixture(scope="module")
def lite_model(lite_ckpt, device):
    return load_network(lite_ckpt, device=device)


@pytest.fixture(scope="module")
def pair():
    """Two consecutive carphone frames cropped to 69 x 91, [H, W, 3] uint8 RGB."""
    frames = decoded_frames(carphone(), 40, 2)
    return [f[30:30 + HEIGHT, 40:40 + WIDTH].copy() for f in frames]


@pytest.fixture(scope="module")
def expected(lite_model, pair):
    """The pair's network middle frame, [H, W, 3] float in [0, 1]."""
    return network_middle(lite_model, *pair)


def network_middle(model, rgb0: np.ndarray, rgb1: np.ndarray) -> np.ndarray:
    """I_t of the centred, replicate-padded pair, cropped back: [H, W, 3] float in [0, 1]."""
    def padded(rgb):
        tensor = torch.from_numpy(rgb.astype(np.float32) / 255).permute(2, 0, 1)[None]
        return F.pad(tensor, (18, 19, 29, 30), mode="replicate").to(model_device(model))
    with torch.no_grad():
        middle = model(padded(rgb0), padded(rgb1))["I_t"][0, :, 29:29 + HEIGHT, 18:18 + WIDTH]
    return middle.permute(1, 2, 0).cpu().numpy()


def model_device(model):
    return next(model.parameters()).device


def save_rgb(path, rgb):
    cv2.imwrite(str(path), np.ascontiguousarray(rgb[:, :, ::-1]))


def test_cli_output_is_the_networks_rounded_middle_frame(tmp_path, lite_ckpt, lite_model, pair,
                                                        expected, device):
    save_rgb(tmp_path / "a.png", pair[0])
    save_rgb(tmp_path / "b.png", pair[1])
    out = tmp_path / "mid.png"
    assert demo_2x.main(["--frame0", str(tmp_path / "a.png"), "--frame1", str(tmp_path / "b.png"),
                         "--out", str(out), "--ckpt", str(lite_ckpt), "--device", str(device)]) == 0
    got = cv2.imread(str(out))[:, :, ::-1].astype(int)
    assert got.shape == (HEIGHT, WIDTH, 3)
    assert np.abs(got - np.round(expected * 255)).max() <= 1
    bgr = inference_2frame(pair[0][:, :, ::-1], pair[1][:, :, ::-1], lite_model)  # authors' API
    np.testing.assert_array_equal(bgr[:, :, ::-1], got)
    # BGRA as cv2.IMREAD_UNCHANGED reads it: colours as BGR, the opaque alpha stays last.
    opaque = np.full((HEIGHT, WIDTH, 1), 255, np.uint8)
    bgra = inference_2frame(*(np.concatenate((f[:, :, ::-1], opaque), axis=2) for f in pair),
                            lite_model)
    np.testing.assert_array_equal(bgra[:, :, :3], bgr)
    assert (bgra[:, :, 3] == 255).all()


def test_tensor_api_keeps_shape_dtype_and_batch(lite_model, pair, expected):
    expected = torch.from_numpy(expected).permute(2, 0, 1)
    frames = [torch.from_numpy(p.astype(np.float32) / 255).permute(2, 0, 1) for p in pair]
    single = interpolate(frames[0], frames[1], lite_model)
    assert single.shape == (3, HEIGHT, WIDTH) and single.dtype == torch.float32
    torch.testing.assert_close(single, expected, atol=1e-5, rtol=0)
    batch = interpolate(torch.stack([frames[0], frames[1]]), torch.stack([frames[1], frames[0]]),
                        lite_model)
    assert batch.shape == (2, 3, HEIGHT, WIDTH)
    torch.testing.assert_close(batch[0], expected, atol=1e-4, rtol=0)


def test_api_mistakes_are_clear_errors_not_wrong_frames(lite_model, lite_ckpt, pair):
    """8-bit tensors or 0-255 floats would come back near black (the network clips to [0, 1]);
    a half-precision model or an empty image would fail deep inside the network."""
    frame = torch.from_numpy(pair[0]).permute(2, 0, 1)
    cases = [((frame, frame, lite_model), r"float RGB in \[0, 1\], got torch.uint8"),
             ((frame.float(), frame.float(), lite_model), r"got values from \d+ to 2\d\d "),
             ((frame.float() / 127.5 - 1, frame.float() / 255, lite_model),
              r"got values from -0.95\d+ to 1 "),
             ((pair[0].astype(np.float32), pair[1].astype(np.float32), lite_model),
              r"float images must be RGB in \[0, 1\], got values from \d+ to 2\d\d "),
             ((pair[0] / 255.0, np.where(pair[1] > 100, np.nan, pair[1] / 255.0), lite_model),
              "float images must be RGB in \\[0, 1\\], got NaN or infinite values"),
             ((pair[0][:0], pair[1][:0], lite_model), "no pixels"),
             ((pair[0], pair[1], copy.deepcopy(lite_model).half()), "weights are float16")]
    for arguments, message in cases:
        with pytest.raises(network.UserError, match=message):
            interpolate(*arguments)
    if not torch.cuda.is_available():
        with pytest.raises(network.UserError, match="CUDA is not available"):
            load_network(lite_ckpt, device="cuda")
    assert network.parse_rate(59.94) == network.parse_rate("59.94") == Fraction(60000, 1001)


def test_sixteen_bit_stays_sixteen_bit(lite_model, pair, expected):
    deep = [p.astype(np.uint16) * 257 for p in pair]  # same picture, 16-bit scale
    got = interpolate(deep[0], deep[1], lite_model)
    assert got.dtype == np.uint16
    assert np.abs(got.astype(float) - np.round(expected * 65535)).max() <= 1


def test_alpha_is_copied_when_equal_and_interpolated_when_not(lite_model, pair, expected):
    opaque = [np.dstack([p, np.full((HEIGHT, WIDTH), 255, np.uint8)]) for p in pair]
    got = interpolate(opaque[0], opaque[1], lite_model)
    assert got.shape == (HEIGHT, WIDTH, 4)
    assert (got[:, :, 3] == 255).all()
    assert np.abs(got[:, :, :3].astype(int) - np.round(expected * 255)).max() <= 1
    masks = [np.zeros((HEIGHT, WIDTH), np.uint8) for _ in pair]
    masks[0][10:40, 10:40] = 255
    masks[1][10:40, 20:50] = 255
    moving = [np.dstack([p, m]) for p, m in zip(pair, masks)]
    alpha = interpolate(moving[0], moving[1], lite_model)[:, :, 3]
    grey_middle = network_middle(lite_model, *(np.repeat(m[:, :, None], 3, axis=2) for m in masks))
    assert np.abs(alpha.astype(int) - np.round(grey_middle.mean(axis=2) * 255)).max() <= 1


def test_cli_grey_sixteen_bit_png_is_replicated_averaged_and_kept_deep(tmp_path, lite_ckpt,
                                                                       lite_model, pair, device):
    grey = [cv2.cvtColor(p, cv2.COLOR_RGB2GRAY) for p in pair]
    for name, plane in zip(("a.png", "b.png"), grey):
        cv2.imwrite(str(tmp_path / name), plane.astype(np.uint16) * 257)
    out = tmp_path / "mid.png"
    assert demo_2x.main(["--frame0", str(tmp_path / "a.png"), "--frame1", str(tmp_path / "b.png"),
                         "--out", str(out), "--ckpt", str(lite_ckpt), "--device", str(device)]) == 0
    result = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert result.dtype == np.uint16 and result.shape == (HEIGHT, WIDTH)
    middle = network_middle(lite_model, *(np.repeat(g[:, :, None], 3, axis=2) for g in grey))
    assert np.abs(result.astype(float) - np.round(middle.mean(axis=2) * 65535)).max() <= 1


def test_load_model_checkpoint_is_importable_from_the_demo():
    assert demo_2x.load_model_checkpoint is network.load_model_checkpoint
    assert demo_2x.inference_2frame is inference_2frame


def bad_inputs(tmp_path):
    """(name, argv without --out, expected message) for each kind of mistake."""
    ok = [tmp_path / "a.png", tmp_path / "b.png"]
    for path in ok:
        cv2.imwrite(str(path), np.zeros((16, 24, 3), np.uint8))
    small = tmp_path / "small.png"
    cv2.imwrite(str(small), np.zeros((16, 20, 3), np.uint8))
    text = tmp_path / "text.png"
    text.write_text("not an image")
    not_ckpt = tmp_path / "weights.pt"
    not_ckpt.write_text("not a checkpoint")
    frames = ["--frame0", str(ok[0]), "--frame1", str(ok[1])]
    return [
        ("missing frame", ["--frame0", str(tmp_path / "nope.png"), "--frame1", str(ok[1])],
         "not found"),
        ("unreadable frame", ["--frame0", str(text), "--frame1", str(ok[1])], "cannot read"),
        ("sizes differ", ["--frame0", str(ok[0]), "--frame1", str(small)], "frames differ"),
        ("one frame only", ["--frame0", str(ok[0])], "together"),
        ("no input", [], "exactly one input"),
        ("two kinds of input", frames + ["--video", str(ok[0])], "exactly one input"),
        ("not a checkpoint", frames + ["--ckpt", str(not_ckpt)], "not a PyTorch checkpoint"),
        ("missing checkpoint", frames + ["--ckpt", str(tmp_path / "none.pt")], "not found"),
    ]


def test_bad_input_is_one_line_exit_1_and_never_clobbers(tmp_path, capsys):
    out = tmp_path / "mid.png"
    out.write_bytes(b"precious")
    for name, argv, message in bad_inputs(tmp_path):
        assert demo_2x.main(argv + ["--out", str(out), "--device", "cpu"]) == 1, name
        captured = capsys.readouterr()
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], name
        assert "Traceback" not in captured.out + captured.err
        assert out.read_bytes() == b"precious", name
    assert demo_2x.main(["--frame0", str(tmp_path / "a.png"), "--frame1", str(tmp_path / "b.png"),
                         "--out", str(tmp_path / "missing" / "mid.png")]) == 1
    assert "output directory does not exist" in capsys.readouterr().err


def test_replacing_an_input_and_mismatched_frames_fail_before_the_checkpoint_is_read(tmp_path,
                                                                                    capsys):
    """The checkpoint given does not exist: each mistake is found first; nothing is written."""
    rgb, grey = tmp_path / "rgb.png", tmp_path / "grey.png"
    cv2.imwrite(str(rgb), np.full((16, 24, 3), 7, np.uint8))
    cv2.imwrite(str(grey), np.full((16, 24), 7, np.uint8))
    before = rgb.read_bytes()
    mid = tmp_path / "mid.png"
    cases = [(["--frame1", rgb, "--out", rgb], f"output {rgb} would replace the input"),
             (["--frame1", grey, "--out", mid], "is 24x16 RGB 8-bit, " + f"{grey} is 24x16 grey"),
             (["--frame1", rgb, "--out", mid, "--multi", 4], "give their middle frame"),
             (["--frame1", rgb, "--out", mid, "--batch", 4, "--scene_threshold", 0.12],
              "middle frame: --scene_threshold, --batch for --video and --frames_dir only"),
             (["--frame1", rgb, "--out", mid, "--fps", 60], "--fps: for a --video only")]
    for argv, message in cases:
        code = demo_2x.main([*map(str, ["--frame0", rgb, *argv]), "--ckpt",
                             str(tmp_path / "missing.pt"), "--device", "cpu"])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 1 and len(err) == 1 and message in err[0], (argv, err)
    assert rgb.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grey.png", "rgb.png"]
