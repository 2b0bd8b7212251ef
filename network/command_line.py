"""Command-line parsing whose mistakes read like the tools' other errors."""
import argparse


class CommandLineParser(argparse.ArgumentParser):
    """An argparse.ArgumentParser whose usage errors (an unknown flag, a bad value, a missing
    argument) are one line on stderr, `error: … (see --help)`, and exit status 1, as the tools'
    other errors are, instead of the usage text and status 2."""

    def error(self, message: str):
        self.exit(1, f"error: {message} (see --help)\n")
