"""network.video.timeline and recursive midpoints: exact output times, positions and costs.

`Average` stands in for the network: its "middle frame" is the mean of the two inputs, so
a frame made by recursive midpoints at dyadic position p is exactly (1 - p)·a + p·b."""
import re
from fractions import Fraction

import numpy as np
import pytest
import torch

from network import UserError, parse_rate
from network.inference import Interpolator, midpoints
from network.video import TimedFrame
from network.video.timeline import (MIDPOINT_TOLERANCE, MultiTimeline, OutputFrame, RateTimeline,
                                    midpoint_depth, midpoint_parents, midpoint_position,
                                    time_base_for)

F = Fraction


class Average(torch.nn.Module):
    """A stand-in network whose middle frame is the mean of its inputs; counts its passes."""

    def __init__(self):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(()))  # gives the module a device
        self.inputs = []  # batch size of each forward pass

    def forward(self, im0, im1):
        self.inputs.append(im0.shape[0])
        return {"I_t": (im0 + im1) / 2}


@pytest.mark.parametrize("text, rate", [
    ("60", F(60)), ("59.94", F(60000, 1001)), ("29.97", F(30000, 1001)),
    ("23.976", F(24000, 1001)), ("23.98", F(24000, 1001)), ("119.88", F(120000, 1001)),
    ("60000/1001", F(60000, 1001)), ("12.5", F(25, 2)), ("59.9", F(599, 10)), ("25.00", F(25)),
    ("23.9760239", F(24000, 1001)), ("23.9760240", F(24000, 1001)),   # cut off, rounded
    ("12.3456789", F(123456789, 10**7)), ("0.01", F(1, 100)), ("100000", F(100_000)),
])
def test_parse_rate_reads_ntsc_decimals_as_fractions(text, rate):
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["fast", "0", "-24", "30/0", "", "1e-9", "0.009", "1e12",
                                  "100000.5", "12.3456789012"])
def test_parse_rate_refuses_nonsense(text):
    with pytest.raises(UserError):
        parse_rate(text)


def test_midpoint_position_worked_examples():
    # 0.4: 1/2, 1/4, 3/8 and 7/16 are more than 1/64 away; 13/32 is 0.00625 away.
    assert midpoint_position(F(2, 5)) == F(13, 32)
    assert midpoint_position(F(49, 100)) == F(1, 2)  # within 1/64 of the first midpoint
    assert midpoint_position(F(1, 100)) == 0 and midpoint_position(F(99, 100)) == 1
    for k in range(8):
        assert midpoint_position(F(k, 8)) == F(k, 8)
    assert midpoint_position(F(0)) == 0


def test_midpoint_position_is_within_tolerance_and_at_most_five_deep():
    depths = []
    for k in range(1000):
        s = F(k, 1000)
        position = midpoint_position(s)
        assert abs(position - s) <= MIDPOINT_TOLERANCE
        assert position.denominator & (position.denominator - 1) == 0  # dyadic
        depths.append(midpoint_depth(position))
    assert max(depths) == 5          # within 1/64 of s after 5 halvings: j / 32


def test_midpoint_parents_and_depth():
    assert midpoint_parents(F(1, 2)) == (0, 1)
    assert midpoint_parents(F(3, 8)) == (F(1, 4), F(1, 2))
    assert [midpoint_depth(p) for p in (F(0), F(1), F(1, 2), F(3, 4), F(13, 32))] == [0, 0, 1, 2, 5]


def test_time_base_holds_every_step_exactly():
    assert time_base_for(F(1, 12800), F(1001, 60000)) == F(1, 960000)
    assert time_base_for(F(1, 30000) / 2, F(1001, 60000)) == F(1, 60000)
    assert time_base_for(F(1, 90000), F(0)) == F(1, 90000)
    # 1 / 12.3456789 needs a denominator of 1234567890000 against 1/90000: microseconds instead
    assert time_base_for(F(1, 90000), F(10**7, 123456789)) == F(1, 10**6)


def test_rate_timeline_24_to_60_places_every_frame_exactly():
    timeline = RateTimeline(F(60))
    times = [F(k, 24) for k in range(4)]
    out = []
    for i in range(3):
        out += timeline.between(i, times[i], times[i + 1])
    out += timeline.hold(3, times[3], times[3] + F(1, 24))
    assert [o.time for o in out] == [F(k, 60) for k in range(10)]  # 4 frames of 1/24 s = 10/60
    # 2.5 output frames per interval: fractions 0, 0.4, 0.8 | 0.2, 0.6 | 0, 0.4, 0.8 | held.
    assert [(o.pair, o.position) for o in out] == [
        (0, 0), (0, F(13, 32)), (0, F(13, 16)), (1, F(3, 16)), (1, F(19, 32)),
        (2, 0), (2, F(13, 32)), (2, F(13, 16)), (3, 0), (3, 0)]


def test_rate_timeline_follows_variable_input_times():
    timeline = RateTimeline(F(10))
    times = [F(1), F(1) + F(1, 20), F(1) + F(3, 10)]  # 50 ms then 250 ms gaps, starting at 1 s
    out = timeline.between(0, times[0], times[1]) + timeline.between(1, times[1], times[2])
    out += timeline.hold(2, times[2], times[2] + F(1, 20))
    assert [o.time for o in out] == [1 + F(k, 10) for k in range(4)]
    # 1.1 s is 1/5 into the 250 ms gap, 1.2 s is 3/5 into it; 1.3 s is the last frame.
    assert out == [OutputFrame(F(1), 0, F(0)), OutputFrame(F(11, 10), 1, F(3, 16)),
                   OutputFrame(F(6, 5), 1, F(19, 32)), OutputFrame(F(13, 10), 2, F(0))]


def test_multi_timeline_halves_each_true_interval():
    timeline = MultiTimeline(4)
    out = timeline.between(0, F(0), F(1, 10)) + timeline.hold(1, F(1, 10), F(3, 10))
    assert [o.time for o in out] == [F(0), F(1, 40), F(1, 20), F(3, 40),
                                     F(1, 10), F(3, 20), F(1, 5), F(1, 4)]
    assert [o.position for o in out[:4]] == [0, F(1, 4), F(1, 2), F(3, 4)]
    assert MultiTimeline(2).time_base(F(1, 90000), F(25)) == F(1, 180000)


def test_midpoints_reuse_each_midpoint_and_batch_one_depth_at_a_time():
    model = Average()
    a, b = torch.zeros(1, 3, 4, 4), torch.ones(1, 3, 4, 4)
    wanted = [[F(13, 32), F(13, 16)], [F(3, 16), F(19, 32)]]
    known = midpoints(model, [(a, b), (a, 2 * b)], wanted, batch=1)
    for scale, positions, frames in zip((1, 2), wanted, known):
        for p in positions:
            torch.testing.assert_close(frames[p], scale * float(p) * b, rtol=0, atol=0)
    # 13/32 needs 1/2, 1/4, 3/8, 7/16, 13/32; 13/16 then adds 3/4, 7/8, 13/16 (1/2 reused).
    # 3/16 needs 1/2, 1/4, 1/8, 3/16; 19/32 then adds 3/4, 5/8, 9/16, 19/32.
    assert len(model.inputs) == 8 + 8
    model.inputs.clear()
    midpoints(model, [(a, b), (a, 2 * b)], wanted, batch=3)
    # depth by depth over both pairs: 2, 4, 4, 4, 2 midpoints, at most 3 per pass.
    assert model.inputs == [2, 3, 1, 3, 1, 3, 1, 2]


def test_interpolator_timeline_holds_cuts_and_the_last_frame():
    model = Average()
    interpolator = Interpolator(model, multi=2, scene_threshold=0.12)
    grey = np.full((8, 8, 3), 100, np.uint8)
    red = np.zeros((8, 8, 3), np.uint8)
    red[..., 0] = 255
    frames = [TimedFrame(grey, F(0)), TimedFrame(grey + 20, F(1, 10)),
              TimedFrame(red, F(3, 10), F(1, 5))]  # a cut, then red for 0.2 s
    timeline = RateTimeline(20.0)
    out = list(interpolator.outputs(frames, timeline))
    assert [o.time for o, _, _ in out] == [F(k, 20) for k in range(10)]  # until 0.3 + 0.2 s
    again = list(interpolator.outputs(frames, timeline))   # a timeline serves a stream anew
    assert [o for o, _, _ in again] == [o for o, _, _ in out]
    assert interpolator.scene_cuts == [1]
    np.testing.assert_array_equal(out[1][1], grey + 10)  # halfway through the first pair
    for index in (2, 3, 4, 5):  # 0.1 .. 0.25 s: across the cut, the earlier frame is held
        np.testing.assert_array_equal(out[index][1], grey + 20)
    for index in range(6, 10):  # the last frame held for its 0.2 s
        np.testing.assert_array_equal(out[index][1], red)


@pytest.mark.parametrize("settings, message", [
    ({"multi": 3}, "multi must be one of 2, 4, 8, got 3"),
    ({"batch": 0}, "batch must be a whole number of at least 1, got 0"),
    ({"batch": 2.5}, "batch must be a whole number of at least 1, got 2.5"),
    ({"scene_threshold": 5}, "scene_threshold must be from 0 to 1, got 5"),
    ({"scene_threshold": float("nan")}, "scene_threshold must be from 0 to 1, got nan"),
    ({"precision": "x"}, "unknown precision 'x'; use one of fp32, bf16, fp16"),
])
def test_interpolator_refuses_impossible_settings_when_made(settings, message):
    with pytest.raises(UserError, match=f"^{re.escape(message)}$"):
        Interpolator(Average(), **settings)


def test_interpolator_refuses_times_that_do_not_increase_and_untimed_frames():
    interpolator = Interpolator(Average())
    grey = np.full((8, 8, 3), 100, np.uint8)
    for times in ([F(1, 10), F(0), F(2, 10)], [F(0), F(0), F(1, 10)]):
        with pytest.raises(UserError, match=r"^input frame 1 at 0\.?1? s does not come after "
                                            r"frame 0 at 0\.?1? s; the times must increase$"):
            list(interpolator.outputs([TimedFrame(grey, t) for t in times]))
    with pytest.raises(TypeError, match="network.TimedFrame.image, time. items, got ndarray"):
        list(interpolator.outputs([grey, grey]))
    small = np.full((4, 6, 3), 100, np.uint8)      # scene cuts off: no test ran on them first
    with pytest.raises(UserError, match=r"^input frame 1 \(\(4, 6, 3\) uint8\) differs in size "
                                        r"or type from frame 0 \(\(8, 8, 3\) uint8\)$"):
        list(Interpolator(Average(), scene_threshold=1).outputs(
            [TimedFrame(grey, F(0)), TimedFrame(small, F(1, 10))]))


def test_interpolator_frames_blend_by_their_position_and_batching_changes_nothing():
    rng = np.random.default_rng(0)
    frames = [TimedFrame(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8), F(k, 25))
              for k in range(5)]
    single = list(Interpolator(Average(), multi=4, scene_threshold=1).outputs(frames))
    assert [o.position for o, _, _ in single] == [F(k, 4) for k in range(4)] * 4 + [0] * 4
    for output, image, _ in single:        # Average: position p is (1 - p)·a + p·b
        a, b = (frames[min(output.pair + k, 4)].image.astype(float) for k in (0, 1))
        blend = (1 - float(output.position)) * a + float(output.position) * b
        assert np.abs(image - blend).max() <= 0.5 + 1e-3, output   # rounded to a level
    model = Average()
    batched = list(Interpolator(model, multi=4, scene_threshold=1, batch=3).outputs(frames))
    assert [o for o, _, _ in batched] == [o for o, _, _ in single]
    for (_, image, _), (_, expected, _) in zip(batched, single):
        np.testing.assert_array_equal(image, expected)
    assert model.inputs == [3, 3, 3, 1, 2]  # pairs 0-2: 1/2, then 1/4 and 3/4; then pair 3
