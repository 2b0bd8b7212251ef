"""benchmark/speed.py: its report, not its timings (those are for people to read)."""
import json

from benchmark import speed


def test_bad_size_is_one_line_and_exit_1(capsys, tmp_path):
    assert speed.main(["--sizes", "1080p"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: size '1080p' is not HEIGHTxWIDTH, e.g. 1080x1920"]
    assert speed.main(["--json", str(tmp_path / "missing" / "out.json")]) == 1


def test_tiny_run_reports_every_field(tmp_path):
    out = tmp_path / "speed.json"
    assert speed.main(["--variants", "lite", "--sizes", "64x96", "--precisions", "fp32",
                       "--device", "cpu", "--repeats", "0", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["machine"]["throughput_gflops"]["fp32"]["matmul"] > 0
    (row,) = report["results"]
    assert row["variant"] == "lite" and row["size"] == [64, 96] and row["precision"] == "fp32"
    # FLOPs are counted at 256x448 and scaled by the padded area (64x128 here).
    assert abs(row["gflop"] - speed.count_gflop("lite", True) * 64 * 128 / (256 * 448)) < 1e-6
    assert row["latency_s"] > 0 and row["peak_memory_gib"] > 0.1
    assert abs(row["frames_per_s"] * row["latency_s"] - 1) < 1e-9
