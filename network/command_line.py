"""Command-line parsing whose mistakes read like the tools' other errors, and where the tools'
messages go."""
import argparse
import logging
import sys
from typing import TextIO

from tqdm import tqdm


class CommandLineParser(argparse.ArgumentParser):
    """An argparse.ArgumentParser whose usage errors (an unknown flag, a bad value, a missing
    argument) are one line on stderr, `error: … (see --help)`, and exit status 1, as the tools'
    other errors are, instead of the usage text and status 2."""

    def error(self, message: str):
        self.exit(1, f"error: {message} (see --help)\n")


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """--help shows each flag's default, except None: those flags' help says what leaving them
    out does. A list default reads as it is typed (`--size 128 128`: "default: 128 128")."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None:
            return action.help
        if isinstance(action.default, (list, tuple)):
            typed = " ".join(map(str, action.default)).replace("%", "%%")
            return f"{action.help} (default: {typed})"
        return super()._get_help_string(action)


class LevelPrefix(logging.Formatter):
    """`warning: message` (the level's name in lower case, as the tools print `error: …`)."""

    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {super().format(record)}"


class AboveProgressBars(logging.StreamHandler):
    """Writes each message through `tqdm.write`, which lifts the progress bars on the console
    out of the way and redraws them below it, instead of onto a bar's line."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=self.stream)
            self.flush()                  # as logging.StreamHandler: each message at once
        except Exception:                 # as logging.StreamHandler: report, never raise
            self.handleError(record)


def log_to_console(level: int = logging.INFO, info_stream: TextIO | None = None) -> None:
    """Log messages below WARNING as they are to `info_stream` (None: stdout), and warnings
    to stderr as `warning: …`, so that a user who redirects stdout (or pipes video through it)
    still sees them; above any progress bar. Like logging.basicConfig, does nothing when the
    root logger has handlers."""
    info = AboveProgressBars(info_stream or sys.stdout)
    info.addFilter(lambda record: record.levelno < logging.WARNING)
    warnings = AboveProgressBars(sys.stderr)
    warnings.setLevel(logging.WARNING)
    warnings.setFormatter(LevelPrefix())
    logging.basicConfig(level=level, format="%(message)s", handlers=[info, warnings])
