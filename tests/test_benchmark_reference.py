"""The benchmark scripts reproduce the reference implementation's scores on the fixture datasets.

Every tests/benchmarks/<set>/expected.json holds, per dataset and variant, the averages and
per-sample scores the official scripts computed with the stand-in weights of synth.py on the
miniature datasets next to it (tests/benchmarks/README.md). The scripts must match them within
2e-4 dB PSNR and 2e-5 SSIM. Always on CPU: the reference SSIM carries the float32 rounding of
the CPU 3-D convolution.
"""
import json
import os
from pathlib import Path

import pytest

from benchmark import test_snufilm, test_ucf101, test_vimeo90k

FIXTURES = Path(__file__).resolve().parent / "benchmarks"
FIXTURE_SETS = sorted(path.parent.name for path in FIXTURES.glob("*/expected.json"))
PSNR_TOLERANCE = 2e-4
SSIM_TOLERANCE = 2e-5

SCRIPTS = {
    "vimeo90k": (test_vimeo90k.main, lambda root: ["--path", root / "vimeo_triplet"]),
    "ucf101": (test_ucf101.main, lambda root: ["--path", root / "ucf101"]),
    "snufilm": (test_snufilm.main, lambda root: ["--path", root / "snufilm" / "eval_modes",
                                                 "--img_data_path", root / "snufilm"]),
}
# Lite on every dataset, base on one SNU-FILM mode (its global-motion path), to keep the CPU time
# small; ATM_TEST_ALL_BENCHMARKS=1 runs both variants on everything.
ALL_RUNS = [(dataset, variant, []) for variant in ("lite", "base") for dataset in SCRIPTS]
RUNS = ALL_RUNS if os.environ.get("ATM_TEST_ALL_BENCHMARKS") == "1" else [
    ("vimeo90k", "lite", []), ("ucf101", "lite", []), ("snufilm", "lite", []),
    ("snufilm", "base", ["--modes", "extreme"])]


def expected_splits(expected: dict, dataset: str, variant: str) -> dict[str, dict]:
    """{split: {"psnr", "ssim", "per_sample"}} in the reference's own layout."""
    if dataset == "snufilm":
        return {mode: by_variant[variant] for mode, by_variant in expected["snufilm"].items()}
    return {"all": expected[dataset][variant]}


@pytest.mark.parametrize("fixture_set", FIXTURE_SETS)
@pytest.mark.parametrize(("dataset", "variant", "extra"), RUNS, ids=[f"{d}-{v}" for d, v, _ in RUNS])
def test_scores_match_the_reference(request, tmp_path, fixture_set, dataset, variant, extra):
    root = FIXTURES / fixture_set
    expected = json.loads((root / "expected.json").read_text())
    checkpoint = request.getfixturevalue(f"{variant}_ckpt")
    main, dataset_args = SCRIPTS[dataset]
    out = tmp_path / "scores.json"

    argv = [*dataset_args(root), "--ckpt", checkpoint, "--model_type", variant, "--device", "cpu",
            "--json", out, *extra]
    assert main([str(arg) for arg in argv]) == 0

    report = json.loads(out.read_text())
    assert (report["dataset"], report["variant"], report["device"]) == (dataset, variant, "cpu")
    assert report["checkpoint"] == str(checkpoint)
    reference = expected_splits(expected, dataset, variant)
    modes = extra[1].split(",") if extra else list(reference)
    assert list(report["splits"]) == modes
    for split, scores in report["splits"].items():
        want = reference[split]
        want_by_name = {name: (psnr, ssim) for name, psnr, ssim in want["per_sample"]}
        got_by_name = {sample["name"]: (sample["psnr"], sample["ssim"]) for sample in scores["per_sample"]}
        assert set(got_by_name) == set(want_by_name)
        assert scores["n"] == len(want_by_name)
        for name, (psnr, ssim) in want_by_name.items():
            assert got_by_name[name][0] == pytest.approx(psnr, abs=PSNR_TOLERANCE), (split, name)
            assert got_by_name[name][1] == pytest.approx(ssim, abs=SSIM_TOLERANCE), (split, name)
        assert scores["psnr"] == pytest.approx(want["psnr"], abs=PSNR_TOLERANCE), split
        assert scores["ssim"] == pytest.approx(want["ssim"], abs=SSIM_TOLERANCE), split
