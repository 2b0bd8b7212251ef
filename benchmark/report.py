"""JSON reports of the benchmark scripts: the path checked before any work, the file written
atomically when the work is done."""
import json
from collections.abc import Iterable
from pathlib import Path

from network.video import check_not_input, check_output_path
from network.video.paths import written_atomically


def check_report_path(path: Path, inputs: Iterable[Path] = ()) -> None:
    """UserError unless `path` is a .json file that can be written and replaces none of
    `inputs` (checkpoints, data)."""
    check_output_path(path, (".json",))
    check_not_input(path, inputs)


def write_report(report: dict, path: Path) -> None:
    """Write `report` as indented JSON (a partial file renamed over the target)."""
    with written_atomically(path) as partial:
        partial.write_text(json.dumps(report, indent=2) + "\n")
