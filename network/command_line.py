"""Command-line parsing whose mistakes read like the tools' other errors, and where the tools'
messages go."""
import argparse
import logging
import sys
from typing import TextIO


class CommandLineParser(argparse.ArgumentParser):
    """An argparse.ArgumentParser whose usage errors (an unknown flag, a bad value, a missing
    argument) are one line on stderr, `error: … (see --help)`, and exit status 1, as the tools'
    other errors are, instead of the usage text and status 2."""

    def error(self, message: str):
        self.exit(1, f"error: {message} (see --help)\n")


def log_to_console(level: int = logging.INFO, info_stream: TextIO | None = None) -> None:
    """Log bare messages: those below WARNING to `info_stream` (None: stdout), warnings and
    errors to stderr, so that a user who redirects stdout (or pipes video through it) still
    sees them. Like logging.basicConfig, does nothing when the root logger has handlers."""
    info = logging.StreamHandler(info_stream or sys.stdout)
    info.addFilter(lambda record: record.levelno < logging.WARNING)
    warnings = logging.StreamHandler(sys.stderr)
    warnings.setLevel(logging.WARNING)
    logging.basicConfig(level=level, format="%(message)s", handlers=[info, warnings])
