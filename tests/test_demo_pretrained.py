"""network.pretrained: named checkpoints resolve to the cache and never touch the network
when present; download failures give the manual steps. gdown itself is replaced, never run."""
import shutil

import cv2
import gdown
import numpy as np
import pytest
import requests

import demo_2x
from network import UserError
from network.pretrained import PRETRAINED, cache_dir, resolve_checkpoint


@pytest.fixture
def cache(tmp_path, monkeypatch):
    directory = tmp_path / "cache"
    monkeypatch.setenv("ATM_VFI_CACHE", str(directory))
    return directory


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("gdown.download must not be called")
    monkeypatch.setattr(gdown, "download", refuse)


def test_names_match_the_authors_drive_files():
    assert {name: p.drive_id for name, p in PRETRAINED.items()} == {
        "base": "1AVX1n5HGPK8hmuo23aLtAL46FnGf0YIU",
        "lite": "1_WYXzeFezkJGLhx_dIVyoDUS4E6_qapM",
        "pct": "1QiDkavHmzGfkma1QUP21hdl9Znyq7Gxy"}
    assert {name: p.variant for name, p in PRETRAINED.items()} == {
        "base": "base", "lite": "lite", "pct": "base"}


def test_cache_dir_defaults_to_home(monkeypatch, tmp_path):
    monkeypatch.delenv("ATM_VFI_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_dir() == tmp_path / ".cache" / "atm-vfi"


def test_paths_pass_through_and_missing_paths_fail(tmp_path, no_network):
    ckpt = tmp_path / "my.pt"
    ckpt.write_bytes(b"PK")
    assert resolve_checkpoint(str(ckpt)) == ckpt
    with pytest.raises(UserError, match="checkpoint not found"):
        resolve_checkpoint(str(tmp_path / "missing.pt"))


def test_cached_name_is_used_without_network(cache, no_network, lite_ckpt):
    cache.mkdir()
    shutil.copy(lite_ckpt, cache / "atm-vfi-lite.pt")
    assert resolve_checkpoint("lite") == cache / "atm-vfi-lite.pt"


def test_download_lands_once_under_the_final_name(cache, monkeypatch, lite_ckpt):
    calls = []

    def fake_download(id, output, quiet):
        calls.append(id)
        shutil.copy(lite_ckpt, output)
        return output
    monkeypatch.setattr(gdown, "download", fake_download)
    assert resolve_checkpoint("lite") == cache / "atm-vfi-lite.pt"
    assert resolve_checkpoint("lite") == cache / "atm-vfi-lite.pt"
    assert calls == [PRETRAINED["lite"].drive_id]
    assert sorted(p.name for p in cache.iterdir()) == ["atm-vfi-lite.pt"]


def test_offline_download_explains_manual_steps(cache, monkeypatch):
    def offline(*args, **kwargs):
        raise requests.ConnectionError("Failed to resolve 'drive.google.com'")
    monkeypatch.setattr(gdown, "download", offline)
    with pytest.raises(UserError) as error:
        resolve_checkpoint("base")
    message = str(error.value)
    assert "\n" not in message
    assert PRETRAINED["base"].drive_id in message and str(cache / "atm-vfi-base.pt") in message
    assert not any(cache.iterdir())


def test_interrupted_download_leaves_nothing(cache, monkeypatch):
    def interrupted(id, output, quiet):
        # gdown streams into a temporary file of its own beside `output`, kept when interrupted
        with open(f"{output}x1y2z3.part", "wb") as f:
            f.write(b"half a checkpoint")
        raise KeyboardInterrupt
    monkeypatch.setattr(gdown, "download", interrupted)
    with pytest.raises(KeyboardInterrupt):
        resolve_checkpoint("lite")
    assert not any(cache.iterdir())


def test_truncated_download_is_refused(cache, monkeypatch, lite_ckpt):
    def cut_short(id, output, quiet):
        with open(output, "wb") as f:
            f.write(lite_ckpt.read_bytes()[:100_000])     # starts as a zip archive, ends early
        return output
    monkeypatch.setattr(gdown, "download", cut_short)
    with pytest.raises(UserError, match="incomplete"):
        resolve_checkpoint("lite")
    assert not any(cache.iterdir())


def test_html_instead_of_checkpoint_is_refused(cache, monkeypatch):
    def quota_page(id, output, quiet):
        with open(output, "w") as f:
            f.write("<html>Too many users have viewed or downloaded this file</html>")
        return output
    monkeypatch.setattr(gdown, "download", quota_page)
    with pytest.raises(UserError, match="not a PyTorch checkpoint"):
        resolve_checkpoint("pct")
    assert not any(cache.iterdir())


def test_demo_runs_offline_with_a_cached_name(cache, no_network, lite_ckpt, tmp_path):
    cache.mkdir()
    shutil.copy(lite_ckpt, cache / "atm-vfi-lite.pt")
    frame = tmp_path / "a.png"
    cv2.imwrite(str(frame), np.full((8, 8, 3), 100, np.uint8))
    out = tmp_path / "mid.png"
    assert demo_2x.main(["--frame0", str(frame), "--frame1", str(frame), "--out", str(out),
                         "--ckpt", "lite", "--device", "cpu"]) == 0
    assert out.is_file()
