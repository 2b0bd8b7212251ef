"""Output paths: checks before any work, partial files renamed into place when complete, and
SIGTERM turned into an exception so that, as after Ctrl-C, no partial file is left behind."""
import contextlib
import os
import signal
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..runtime import UserError


def check_output_path(path: Path, suffixes: Iterable[str]) -> None:
    """UserError unless `path` has one of `suffixes` and its directory exists."""
    suffixes = tuple(suffixes)
    if path.is_dir():
        raise UserError(f"output {path} is a directory")
    if path.suffix.lower() not in suffixes:
        choice = suffixes[0] if len(suffixes) == 1 else f"one of {', '.join(suffixes)}"
        raise UserError(f"output {path} must end in {choice}")
    if not path.parent.is_dir():
        raise UserError(f"output directory does not exist: {path.parent}")


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


class Terminated(KeyboardInterrupt):
    """SIGTERM (kill, timeout, docker stop) received: unwinds like Ctrl-C."""


def _raise_terminated(signum: int, frame) -> None:
    raise Terminated(f"terminated by signal {signum}")


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """While active, SIGTERM raises `Terminated` in the main thread, as SIGINT raises
    KeyboardInterrupt, so writers discard their partial files; the previous handler is
    restored on exit. For scripts' `main`; must be entered in the main thread."""
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def interruption_status(error: KeyboardInterrupt, hint: str = "") -> int:
    """For scripts' `main`: print "terminated" (SIGTERM) or "interrupted" (Ctrl-C), then `hint`,
    on stderr and return the shell's exit status for it (143 or 130)."""
    terminated = isinstance(error, Terminated)
    print(("terminated" if terminated else "interrupted") + hint, file=sys.stderr)
    return 143 if terminated else 130
