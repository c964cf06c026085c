"""Spec of decoding at the model's input size (``read_clips(..., max_size=...)``), decoder threads and backends."""

from __future__ import annotations

import pickle
from pathlib import Path

import decord
import numpy as np
import pytest
from PIL import Image

from modeling_siasamrea import video_io
from modeling_siasamrea.image_processing_siasamrea import SiaSamReaImageProcessor
from modeling_siasamrea.video_io import (
    VideoBytes,
    VideoDecodeError,
    decoder_threads,
    probe_video,
    read_clips,
    scaled_frame_size,
    write_video,
)

CLIPS = np.array([[0, 5, 10, 15], [2, 7, 12, 17], [19, 5, 5, 1]])  # unsorted, shared and repeated frames


def smooth_frames(num_frames: int, height: int, width: int) -> np.ndarray:
    """Gradients that drift with t (no detail finer than a few pixels, so resampling filters agree closely)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    t = np.arange(num_frames, dtype=np.float32)[:, None, None]
    red = 128 + 100 * np.sin(2 * np.pi * (x / width + t / num_frames))
    green = 128 + 100 * np.cos(2 * np.pi * (y / height - t / num_frames))
    blue = np.broadcast_to(255 * x / width * (y / height), red.shape)
    return np.stack([red, green, blue], axis=-1).clip(0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, Path]:
    """Landscape, portrait and small mp4s, a GIF and a JPEG frame folder, 20 frames each."""
    root = tmp_path_factory.mktemp("scaled")
    paths = {}
    for name, (height, width) in {"landscape": (120, 214), "portrait": (160, 90), "small": (32, 64)}.items():
        paths[name] = root / f"{name}.mp4"
        write_video(paths[name], smooth_frames(20, height, width), fps=10)
    frames = smooth_frames(20, 75, 100)
    images = [Image.fromarray(frame).quantize(256) for frame in frames]
    paths["gif"] = root / "clip.gif"
    images[0].save(paths["gif"], save_all=True, append_images=images[1:], loop=0, duration=50)
    paths["jpg_folder"] = root / "frames"
    paths["jpg_folder"].mkdir()
    for i, frame in enumerate(smooth_frames(20, 150, 200)):
        Image.fromarray(frame).save(paths["jpg_folder"] / f"{i:03d}.jpg", quality=95)
    return paths


def processor_resized(clips: np.ndarray, max_size: int) -> np.ndarray:
    """What the image processor makes of full-resolution clips, before normalising: its resized, unpadded frames."""
    processor = SiaSamReaImageProcessor(max_image_size=max_size, do_rescale=False, do_normalize=False)
    padded = processor(videos=[clips], return_tensors="np")["pixel_values"][0]  # (clips, frames, 3, S, S)
    height, width = scaled_frame_size(*clips.shape[2:4], max_size)
    return padded[..., :height, :width].transpose(0, 1, 3, 4, 2)  # (clips, frames, h, w, 3)


@pytest.mark.parametrize("name, backend, max_size", [
    ("landscape", None, 96),     # decord: 120x214 -> 53x96 (an odd height)
    ("portrait", None, 64),      # decord: 160x90 -> 64x36
    ("small", None, 48),         # decord: 32x64 -> 24x48, a width that trips decord 0.6's row-stride bug
    ("small", None, 128),        # decord, upscaled: 32x64 -> 64x128, as the processor would
    ("landscape", "pyav", 96),   # the PyAV backend (SIASAMREA_VIDEO_BACKEND=pyav)
    ("gif", None, 64),           # GIFs: PyAV
    ("jpg_folder", None, 64),    # a JPEG folder: PIL, drafted at a reduced DCT scale
])
def test_frames_decoded_at_size_have_the_processors_geometry_and_its_pixels(videos, name, backend, max_size):
    full = read_clips(videos[name], CLIPS, backend=backend)
    scaled = read_clips(videos[name], CLIPS, max_size=max_size, backend=backend)
    reference = processor_resized(full, max_size)
    assert scaled.dtype == np.uint8 and scaled.shape == reference.shape
    # FFmpeg's / PIL's bilinear scalers are antialiased and FFmpeg converts YUV at the target size, the processor's
    # resize is not antialiased: close, not equal (0.8 levels at 854x480 -> 448; H.264 itself loses 1.7-4 here)
    assert np.abs(scaled - reference).mean() < 3
    # the processor leaves frames of the right size alone: its output is then the decoded frames, padded
    assert np.array_equal(processor_resized(scaled, max_size), scaled.astype(np.float32))


def test_an_array_is_scaled_too(videos):
    frames = smooth_frames(20, 60, 80)
    scaled = read_clips(frames, CLIPS, max_size=40)
    assert scaled.shape == (3, 4, 30, 40, 3)
    assert np.abs(scaled - processor_resized(frames[CLIPS], 40)).mean() < 3


def test_decord_scales_while_decoding_with_the_threads_asked_for(videos, monkeypatch):
    opened = []

    class RecordingReader(decord.VideoReader):
        def __init__(self, uri, **kwargs):
            opened.append(kwargs)
            super().__init__(uri, **kwargs)

    monkeypatch.setattr(decord, "VideoReader", RecordingReader)
    read_clips(videos["landscape"], CLIPS, max_size=96, num_threads=3)
    assert [(o["height"], o["width"], o["num_threads"]) for o in opened] == [(53, 96, 3)]
    opened.clear()
    read_clips(videos["landscape"], CLIPS)  # no max_size: full resolution, threads from decoder_threads()
    assert [(o["height"], o["width"], o["num_threads"]) for o in opened] == [(-1, -1, decoder_threads())]


def test_decoder_threads_share_the_cores_between_processes_and_workers(monkeypatch):
    monkeypatch.setattr(video_io.os, "sched_getaffinity", lambda pid: set(range(16)), raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert decoder_threads() == 16  # the main process, no DataLoader worker
    assert decoder_threads(num_workers=4) == 4
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")  # 2 processes per node (torchrun / accelerate)
    assert decoder_threads(num_workers=4) == 2
    assert decoder_threads(num_workers=32) == 1


def test_bad_scaling_options_are_rejected(videos):
    for kwargs in ({"max_size": 0}, {"max_size": 12.5}, {"num_threads": -1}):
        with pytest.raises(ValueError, match=next(iter(kwargs))):
            read_clips(videos["small"], CLIPS, **kwargs)


def test_the_backend_is_chosen_per_call_or_per_process(videos, monkeypatch):
    decord_frames = read_clips(videos["landscape"], CLIPS, backend="decord")
    monkeypatch.setenv(video_io.BACKEND_ENV, "pyav")
    calls = []
    real = video_io._pyav_source
    monkeypatch.setattr(video_io, "_pyav_source", lambda *args: calls.append(args[0]) or real(*args))
    pyav_frames = read_clips(videos["landscape"], CLIPS)
    assert calls == [str(videos["landscape"])]
    assert np.abs(pyav_frames.astype(int) - decord_frames).mean() < 1
    monkeypatch.setenv(video_io.BACKEND_ENV, "ffmpeg")
    with pytest.raises(ValueError, match="unknown video backend 'ffmpeg'"):
        read_clips(videos["landscape"], CLIPS)


@pytest.mark.skipif(video_io._importable("torchcodec"), reason="torchcodec is importable here")
def test_asking_for_torchcodec_without_it_says_how_to_install_it(videos):
    with pytest.raises(ImportError, match=r"siasamrea\[torchcodec\]"):
        read_clips(videos["landscape"], CLIPS, backend="torchcodec")


@pytest.mark.skipif(not video_io._importable("torchcodec"), reason="torchcodec is not importable here")
@pytest.mark.parametrize("max_size", [None, 96])
def test_torchcodec_backend_keeps_the_read_clips_contract(videos, max_size):
    expected = read_clips(videos["landscape"], CLIPS, max_size=max_size, backend="decord")
    frames = read_clips(videos["landscape"], CLIPS, max_size=max_size, backend="torchcodec", num_threads=1)
    assert isinstance(frames, np.ndarray) and frames.dtype == np.uint8 and frames.shape == expected.shape
    assert np.abs(frames.astype(int) - expected).mean() < 3
    assert probe_video(videos["landscape"], backend="torchcodec").num_video_frames == 20


def test_video_bytes_are_named_in_messages_and_pickle_whole(videos):
    data = VideoBytes(videos["small"].read_bytes(), "videos/small.mp4")
    assert str(data) == "videos/small.mp4" and "videos/small.mp4" in repr(data) and len(repr(data)) < 60
    assert np.array_equal(read_clips(data, CLIPS, max_size=48), read_clips(videos["small"], CLIPS, max_size=48))
    again = pickle.loads(pickle.dumps(data))
    assert again == data and again.name == data.name
    with pytest.raises(VideoDecodeError, match="videos/broken.mp4"):
        read_clips(VideoBytes(b"\x00garbage" * 50, "videos/broken.mp4"), CLIPS)


def test_probe_video_gives_frame_count_and_rate(videos):
    assert probe_video(videos["landscape"]) == (20, pytest.approx(10))
    assert probe_video(videos["jpg_folder"]) == (20, None)
