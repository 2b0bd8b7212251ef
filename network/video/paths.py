"""Output paths: checks before any work, and partial files renamed into place when complete."""
from collections.abc import Iterable
from pathlib import Path

from ..runtime import UserError


def check_output_path(path: Path, suffixes: Iterable[str]) -> None:
    """UserError unless `path` has one of `suffixes` and its directory exists."""
    suffixes = tuple(suffixes)
    if path.suffix.lower() not in suffixes:
        raise UserError(f"output {path} must end in one of {', '.join(suffixes)}")
    if not path.parent.is_dir():
        raise UserError(f"output directory does not exist: {path.parent}")
    if path.is_dir():
        raise UserError(f"output {path} is a directory")


def partial_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.part")
