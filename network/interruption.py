"""Ctrl-C and SIGTERM in the scripts: SIGTERM (kill, timeout, docker stop) unwinds like Ctrl-C,
so writers discard their partial files, and both end in one line and the shell's exit status."""
import contextlib
import signal
import sys
from collections.abc import Iterator


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


def interruption_code(error: KeyboardInterrupt) -> int:
    """The shell's exit status for SIGTERM (143) or Ctrl-C (130)."""
    return 143 if isinstance(error, Terminated) else 130


def interruption_status(error: KeyboardInterrupt, hint: str = "") -> int:
    """For scripts' `main`: print "terminated" (SIGTERM) or "interrupted" (Ctrl-C), then `hint`,
    on stderr and return `interruption_code(error)`."""
    terminated = isinstance(error, Terminated)
    print(("terminated" if terminated else "interrupted") + hint, file=sys.stderr)
    return interruption_code(error)
