"""Observation layout with history, term-major and time-major, as Isaac Lab's observation manager lays it out."""

from __future__ import annotations

import numpy as np
import pytest

from wam_isaac.deploy.observation import ObservationAssembler


def spec(order: str) -> dict:
    return {
        "size": 9,
        "history_order": order,
        "terms": [
            {"name": "a", "shape": [2], "history_length": 3, "clip": None, "scale": None, "source": "robot"},
            {"name": "b", "shape": [1], "history_length": 3, "clip": [-1.0, 1.0], "scale": 10.0, "source": "robot"},
        ],
    }


@pytest.mark.parametrize("order", ["term", "time"])
def test_history_layout(order):
    assembler = ObservationAssembler(spec(order))
    a = [np.array([1.0, 2.0]), np.array([3.0, 4.0]), np.array([5.0, 6.0]), np.array([7.0, 8.0])]
    b = [np.array([0.5]), np.array([-3.0]), np.array([0.1]), np.array([0.2])]
    layouts = []
    for t in range(4):
        assembler.stage({"a": a[t], "b": b[t]}, last_action=np.zeros(0))
        assembler.commit(assembler.assemble())
        layouts.append(assembler.buffer[0].copy())
    # after the first push the history is filled with the first frame (Isaac Lab's CircularBuffer), oldest first
    a_hist = [[a[0]] * 3, [a[0], a[0], a[1]], [a[0], a[1], a[2]], [a[1], a[2], a[3]]]
    b_frames = [np.clip(x, -1, 1) * 10.0 for x in b]
    b_hist = [[b_frames[0]] * 3, [b_frames[0], b_frames[0], b_frames[1]], b_frames[:3], b_frames[1:4]]
    for t in range(4):
        if order == "term":
            expected = np.concatenate([*a_hist[t], *b_hist[t]])
        else:
            expected = np.concatenate([np.concatenate([a_hist[t][k], b_hist[t][k]]) for k in range(3)])
        assert np.allclose(layouts[t], expected), (t, layouts[t], expected)
    assembler.reset()
    assembler.stage({"a": a[3], "b": b[3]}, last_action=np.zeros(0))
    assembler.assemble()
    obs = assembler.buffer
    assert np.allclose(obs[0][:6] if order == "term" else obs[0][[0, 1, 3, 4, 6, 7]], np.tile(a[3], 3))
