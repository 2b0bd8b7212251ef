"""Shared fixtures: stand-in ATM-VFI checkpoints in the authors' layout (tests/conformance/synth.py)."""
import importlib.util
import os
from pathlib import Path

import pytest
import torch

CONFORMANCE = Path(__file__).resolve().parent / "conformance"


def load_synth():
    """The conformance kit's weight synthesiser, imported from its file."""
    spec = importlib.util.spec_from_file_location("conformance_synth", CONFORMANCE / "synth.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def synth():
    return load_synth()


@pytest.fixture(scope="session")
def checkpoint_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("checkpoints")


@pytest.fixture(scope="session")
def lite_ckpt(synth, checkpoint_dir) -> Path:
    """Official-layout checkpoint of the lite variant with deterministic stand-in weights."""
    path = checkpoint_dir / "lite.pt"
    synth.write_checkpoint("lite", path)
    return path


@pytest.fixture(scope="session")
def base_ckpt(synth, checkpoint_dir) -> Path:
    """Official-layout checkpoint of the base variant with deterministic stand-in weights."""
    path = checkpoint_dir / "base.pt"
    synth.write_checkpoint("base", path)
    return path


@pytest.fixture(scope="session")
def device() -> torch.device:
    """Device under test: $ATM_TEST_DEVICE, default cpu."""
    return torch.device(os.environ.get("ATM_TEST_DEVICE", "cpu"))


@pytest.fixture(scope="session")
def training_roots(tmp_path_factory) -> dict[str, Path]:
    """Tiny Vimeo90K-, X4K1000FPS- and SNU-FILM-layout datasets cut from real clips."""
    from training_data import make_snufilm, make_vimeo, make_x4k
    base = tmp_path_factory.mktemp("training_data")
    return {"vimeo": make_vimeo(base / "vimeo"), "x4k": make_x4k(base / "x4k"),
            "snufilm": make_snufilm(base / "snufilm")}


@pytest.fixture(autouse=True)
def keep_thread_count():
    """A Trainer sizes the process's compute threads to the cores its DataLoader workers leave;
    later tests run with the count they started with (float32 rounding depends on it)."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
