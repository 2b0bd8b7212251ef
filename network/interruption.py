"""Ctrl-C and SIGTERM in the scripts: SIGTERM (kill, timeout, docker stop) unwinds like Ctrl-C,
so writers discard their partial files, and both end in one line and the shell's exit status."""
import contextlib
import signal
import sys
from collections.abc import Callable, Iterator

from .runtime import UserError


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


def run_script(work: Callable[[], int | None]) -> int:
    """For scripts' `main`: the exit status of `work()` (None: 0), run with SIGTERM unwinding
    like Ctrl-C; a UserError, or an OSError (a folder it may not write in, a full disk: naming
    the file), printed as one line `error: ...` (status 1), an interruption as "interrupted"
    or "terminated" (130 or 143), none with a traceback."""
    try:
        with terminate_as_interrupt():
            return work() or 0
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        where = f"{error.filename}: " if error.filename else ""
        print(f"error: {where}{error.strerror or error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as interruption:
        return interruption_status(interruption)
