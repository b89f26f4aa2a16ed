"""Argument types for the commands: each checks one value and names the flag it is for.

argparse turns the ArgumentTypeError into ``ctl CMD: error: argument --flag: ...`` and
exit status 2.

Each checker carries its bounds as text (``parse.bounds``, e.g. "1 to 100,000"): ``ctl.cli``
adds them to the option's help wherever the help does not already say them, so a limit
is stated once, where it is checked, and every ``--help`` states it.
"""

from __future__ import annotations

import argparse
import math


def integer(flag: str, low: int | None = None, high: int | None = None):
    """A whole number, within [low, high] where given."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} must be an integer, got {text!r}") from None
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"at least {low}" if high is None else f"between {low} and {high}" if low is not None else f"at most {high}"
            raise argparse.ArgumentTypeError(f"{flag} must be {bounds}, got {value}")
        return value

    parse.__name__ = "integer"
    parse.bounds = (f"{low:,} to {high:,}" if low is not None and high is not None
                    else f"at least {low:,}" if low is not None
                    else f"at most {high:,}" if high is not None else None)
    return parse


def seconds(flag: str, high: float = 86_400.0, zero: bool = False):
    """A positive (with ``zero``: or zero), finite number of seconds, at most ``high``."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} must be a number of seconds, got {text!r}") from None
        if not ((value > 0 or (zero and value == 0)) and math.isfinite(value)) or value > high:
            low = "at least 0" if zero else "more than 0"
            raise argparse.ArgumentTypeError(f"{flag} must be {low} and at most {high:g} seconds, got {text}")
        return value

    parse.__name__ = "seconds"
    parse.bounds = f"{'0' if zero else 'more than 0'} to {high:,g} s"
    return parse


def probability(flag: str):
    """A probability p with 0 <= p < 1."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} must be a probability, got {text!r}") from None
        if not 0.0 <= value < 1.0:
            raise argparse.ArgumentTypeError(f"{flag} must be at least 0 and below 1, got {text!r}")
        return value

    parse.__name__ = "probability"
    parse.bounds = "0 to below 1"
    return parse
