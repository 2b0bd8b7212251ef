"""Output paths: checks before any work, and partial files renamed into place when complete
(removed after an error, Ctrl-C or SIGTERM: see network.interruption)."""
import contextlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..runtime import UserError


def check_output_path(path: Path, suffixes: Iterable[str]) -> None:
    """UserError unless `path` has one of `suffixes` and its directory exists and can be
    written in."""
    suffixes = tuple(suffixes)
    if path.is_dir():
        raise UserError(f"output {path} is a directory")
    if path.suffix.lower() not in suffixes:
        choice = suffixes[0] if len(suffixes) == 1 else f"one of {', '.join(suffixes)}"
        raise UserError(f"output {path} must end in {choice}")
    if not path.parent.is_dir():
        raise UserError(f"output directory does not exist: {path.parent}")
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise UserError(f"output {path}: no permission to write in {path.parent}")


def check_not_input(path: Path, inputs: Iterable[Path]) -> None:
    """UserError if writing `path` would replace one of the files or folders `inputs`."""
    for source in inputs:
        if path.resolve() == source.resolve():
            raise UserError(f"output {path} would replace the input {source}")


def partial_path(path: Path) -> Path:
    """Where `path` is written until it is complete: a hidden `.NAME.part` beside it."""
    return path.with_name(f".{path.name}.part")


@contextlib.contextmanager
def written_atomically(path: Path) -> Iterator[Path]:
    """Yields `partial_path(path)` to write; renamed over `path` when the block completes,
    deleted when it raises (errors, Ctrl-C, SIGTERM), so `path` is never half written."""
    partial = partial_path(path)
    try:
        yield partial
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
