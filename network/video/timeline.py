"""The output timeline: which frame is shown at which exact time, made from which input pair
at which fraction of its interval.

Conventions:
* Times are exact `Fraction`s of a second on the input's clock: input frame i is shown at
  t_i (strictly increasing, true timestamps, so variable frame rates are followed), and the
  last input frame lasts until `end`. Shifting the timeline to start at 0 is the writer's job.
* An output frame between input frames i and i + 1 sits at fraction s = (T - t_i) /
  (t_{i+1} - t_i) of their interval. The network predicts only s = 1/2, so other fractions
  are reached by recursive midpoints: s = 1/4 is the middle of (frame i, middle), and so on.
  Each output frame uses the shallowest such midpoint within `MIDPOINT_TOLERANCE` (1/64 of
  the interval) of s, the earlier one on a tie; 0 and 1 are the pair's own frames. An output
  time that falls on an input frame is that input frame.
* Every output frame lasts until the next one; the last input frame is held until `end`, so
  the output lasts as long as the input.

`MultiTimeline(m)` puts m output frames in every input interval, at fractions k/m (each
inserted frame halfway between its neighbours, whatever the intervals are), and m slots
across the last frame's duration. `RateTimeline(rate)` shows output frame k at exactly
t_0 + k / rate, wherever the input frames fall.
"""
import math
from fractions import Fraction
from typing import NamedTuple

from ..runtime import UserError

MIDPOINT_TOLERANCE = Fraction(1, 64)
NTSC = Fraction(1000, 1001)  # the NTSC rates are n * 1000/1001 (59.94 -> 60000/1001)
RATE_RANGE = (Fraction(1, 100), Fraction(100_000))  # frames per second that --fps accepts
MAX_TERM = 2**31 - 1       # FFmpeg's rationals hold 32-bit numerators and denominators
FINEST_TIME_BASE = Fraction(1, 1_000_000)  # FFmpeg's own clock, for times no time base holds


class OutputFrame(NamedTuple):
    """One frame of the output: when it is shown and what it is made of."""
    time: Fraction  # seconds, on the input's clock
    pair: int  # i: made from input frames i and i + 1 (for the held last frame: i = N - 1)
    position: Fraction  # dyadic in [0, 1]: 0 is input frame i, 1 is input frame i + 1


def parse_rate(text: str | float | Fraction) -> Fraction:
    """A frame rate as users write it -> exact frames per second.

    "60" -> 60; "60000/1001" -> 60000/1001; a decimal with two or more places that is
    n * 1000/1001 rounded or cut off for some integer n means that NTSC fraction ("59.94",
    "29.97", "23.976", "23.9760239" -> 60000/1001, 30000/1001, 24000/1001, 24000/1001); other
    decimals are exact ("12.5"). Numbers are read as they print: 59.94 as "59.94",
    Fraction(60000, 1001) exactly. UserError outside 1/100 to 100,000 frames per second, and
    for fractions whose terms FFmpeg cannot hold (32 bits).
    """
    text = str(text)
    try:
        rate = Fraction(text.strip())
    except (ValueError, ZeroDivisionError):
        raise UserError(f"not a frame rate: {text!r} (try 60, 59.94 or 60000/1001)") from None
    if rate <= 0:
        raise UserError(f"the frame rate must be positive, got {text!r}")
    places = len(text.strip().partition(".")[2])
    if places >= 2 and rate.denominator != 1:
        ntsc = round(rate / NTSC) * NTSC
        cut = Fraction(math.floor(ntsc * 10**places), 10**places)
        if rate in (round(ntsc, places), cut):
            return ntsc
    low, high = RATE_RANGE
    if not low <= rate <= high:
        raise UserError(f"the frame rate must be from {float(low):g} to {float(high):g} frames "
                        f"per second, got {text!r}")
    if max(rate.numerator, rate.denominator) > MAX_TERM:
        raise UserError(f"the frame rate {text!r} is too precise for a video file; give fewer "
                        "decimal places or a fraction such as 24000/1001")
    return rate


def midpoint_position(fraction: Fraction, tolerance: Fraction = MIDPOINT_TOLERANCE) -> Fraction:
    """The shallowest recursive midpoint (dyadic in [0, 1]) within `tolerance` of `fraction`
    in [0, 1); the earlier one when two are equally deep and near."""
    low, high = Fraction(0), Fraction(1)
    while True:
        nearest = low if fraction - low <= high - fraction else high
        if abs(fraction - nearest) <= tolerance:
            return nearest
        middle = (low + high) / 2
        low, high = (low, middle) if fraction < middle else (middle, high)


def midpoint_parents(position: Fraction) -> tuple[Fraction, Fraction]:
    """The two frames whose middle is the dyadic `position` j / 2^d (j odd): the positions
    (j - 1) / 2^d and (j + 1) / 2^d."""
    step = Fraction(1, position.denominator)
    return position - step, position + step


def midpoint_depth(position: Fraction) -> int:
    """How many halvings the dyadic `position` is below the pair: 0 for 0 and 1, 1 for 1/2."""
    return 0 if position.denominator == 1 else position.denominator.bit_length() - 1


def time_base_for(*steps: Fraction) -> Fraction:
    """The largest time base (seconds per tick) that holds every one of `steps` exactly, i.e.
    their greatest common divisor as fractions; zero steps are ignored. Where that needs a
    denominator beyond FFmpeg's 32 bits (a rate such as 12.3456789 against a 1/90000 clock),
    1 microsecond: times are then rounded to it."""
    steps = [abs(Fraction(s)) for s in steps if s]
    exact = Fraction(math.gcd(*(s.numerator for s in steps)),
                     math.lcm(*(s.denominator for s in steps)))
    return exact if exact.denominator <= MAX_TERM else FINEST_TIME_BASE


class MultiTimeline:
    """`multi` output frames per input interval, at fractions k / multi (multi: 2, 4 or 8)."""

    def __init__(self, multi: int):
        self.multi = multi

    def begin(self) -> None:
        """Start a new stream (nothing to forget: every pair is laid out on its own)."""

    def rate(self, input_rate: Fraction) -> Fraction:
        """Nominal output frames per second for an input at `input_rate`."""
        return input_rate * self.multi

    def time_base(self, input_time_base: Fraction, input_rate: Fraction) -> Fraction:
        """A time base that holds every output time of an input whose times are multiples of
        `input_time_base` (the last frame's duration may default to 1 / `input_rate`)."""
        return time_base_for(input_time_base / self.multi, 1 / self.rate(input_rate))

    def between(self, pair: int, start: Fraction, stop: Fraction) -> list[OutputFrame]:
        """The output frames shown from input frame `pair` (at `start`) until the next one
        (at `stop`)."""
        return [OutputFrame(start + (stop - start) * Fraction(k, self.multi), pair,
                            Fraction(k, self.multi)) for k in range(self.multi)]

    def hold(self, last: int, start: Fraction, end: Fraction) -> list[OutputFrame]:
        """The output frames across the last input frame `last`, shown from `start` to `end`."""
        return [OutputFrame(start + (end - start) * Fraction(k, self.multi), last, Fraction(0))
                for k in range(self.multi)]


class RateTimeline:
    """Output frame k at exactly t_0 + k / rate."""

    def __init__(self, rate: Fraction | float | str):
        self.output_rate = parse_rate(rate)     # 59.94 is 60000/1001, not a binary fraction
        self.begin()

    def begin(self) -> None:
        """Start a new stream: t_0 is set afresh by the next call."""
        self.origin: Fraction | None = None  # t_0, set by the first call
        self.count = 0  # output frames handed out so far

    def rate(self, input_rate: Fraction) -> Fraction:
        return self.output_rate

    def time_base(self, input_time_base: Fraction, input_rate: Fraction) -> Fraction:
        return time_base_for(input_time_base, 1 / self.output_rate)

    def _until(self, stop: Fraction) -> list[Fraction]:
        """The output times not yet handed out that come before `stop`."""
        times = []
        while (time := self.origin + self.count / self.output_rate) < stop:
            times.append(time)
            self.count += 1
        return times

    def between(self, pair: int, start: Fraction, stop: Fraction) -> list[OutputFrame]:
        if self.origin is None:
            self.origin = start
        return [OutputFrame(time, pair, midpoint_position((time - start) / (stop - start)))
                for time in self._until(stop)]

    def hold(self, last: int, start: Fraction, end: Fraction) -> list[OutputFrame]:
        if self.origin is None:
            self.origin = start
        return [OutputFrame(time, last, Fraction(0)) for time in self._until(end)]

