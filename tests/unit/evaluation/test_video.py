"""Videos decode back to the frames written: MP4 (H.264, 4:2:0) within a stated error, GIF exactly; the side-by-side
writer puts true frames left and predicted frames right; bad input is a one-line ValueError and writes nothing."""

from __future__ import annotations

import numpy as np
import pytest

from wam_isaac.evaluation.video import CameraRecorder, read_video, side_by_side, write_side_by_side, write_video

T, H, W = 12, 24, 32
SCALE = 4


def _frames(seed: int = 0) -> np.ndarray:
    """A shaded background with a moving coloured square, uint8 (T, H, W, 3), like a camera frame of the cube."""
    rows = np.linspace(60, 200, H)[None, :, None, None]
    frames = np.broadcast_to(rows, (T, H, W, 3)).copy()
    frames[..., 2] = 120
    color = np.random.default_rng(seed).integers(0, 256, size=3)
    for t in range(T):
        frames[t, 6:14, 2 + 2 * t : 10 + 2 * t] = color
    return frames.astype(np.uint8)


def _unscale(frames: np.ndarray, scale: int) -> np.ndarray:
    """Mean of each ``scale`` x ``scale`` block: back to the written resolution."""
    count, height, width, _ = frames.shape
    return frames.reshape(count, height // scale, scale, width // scale, scale, 3).mean(axis=(2, 4))


def test_mp4_decodes_to_the_same_frames_within_a_few_levels(tmp_path):
    frames = _frames()
    path = write_video(frames, tmp_path / "v.mp4", fps=25, scale=SCALE)
    decoded = read_video(path)
    assert decoded.shape == (T, H * SCALE, W * SCALE, 3) and decoded.dtype == np.uint8
    error = np.abs(_unscale(decoded, SCALE) - frames)
    # bound: mean |error| < 1.5 levels of 255 and PSNR > 40 dB (crf 12; chroma at half resolution blurs the edges)
    assert error.mean() < 1.5, error.mean()
    psnr = 10 * np.log10(255.0**2 / np.mean(error**2))
    assert psnr > 40.0, psnr
    assert not list(tmp_path.glob(".*partial*"))


def test_gif_decodes_to_exactly_the_frames(tmp_path):
    frames = _frames()  # fewer than 256 colours: the palette holds every one
    decoded = read_video(write_video(frames, tmp_path / "v.gif", fps=25))
    np.testing.assert_array_equal(decoded, frames)


def test_side_by_side_puts_true_left_and_predicted_right(tmp_path):
    true, predicted = _frames(1), _frames(2)
    decoded = read_video(write_side_by_side(true, predicted, tmp_path / "s.gif", fps=10, scale=1))
    assert decoded.shape == (T, H, 2 * W + 2, 3)
    np.testing.assert_array_equal(decoded[:, :, :W], true)
    np.testing.assert_array_equal(decoded[:, :, W + 2 :], predicted)
    assert (decoded[:, :, W : W + 2] == 255).all()
    grey = side_by_side([true[..., :1], true[..., :1]])  # one channel is repeated to RGB
    np.testing.assert_array_equal(grey[..., 0], grey[..., 2])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda p: write_side_by_side(_frames(), _frames()[:5], p / "s.mp4", 10), "must have one shape"),
        (lambda p: write_video(_frames().astype(np.float32), p / "v.mp4", 10), "must be uint8"),
        (lambda p: write_video(_frames(), p / "v.avi", 10), "must end in .mp4 or .gif"),
        (lambda p: write_video(_frames(), p / "v.mp4", 0), "fps > 0"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, call, message):
    with pytest.raises(ValueError, match=message) as error:
        call(tmp_path)
    assert "\n" not in str(error.value)
    assert not list(tmp_path.iterdir())


def test_camera_recorder_keeps_one_env_up_to_max_frames(tmp_path):
    import torch

    recorder = CameraRecorder(env_index=1, max_frames=3)
    frames = torch.from_numpy(_frames())
    for t in range(5):
        recorder({"camera": torch.stack([frames[t], frames[(t + 4) % T]])})
    assert len(recorder.frames) == 3
    decoded = read_video(recorder.write(tmp_path / "r.gif", fps=10, scale=1))
    np.testing.assert_array_equal(decoded, _frames()[4:7])
