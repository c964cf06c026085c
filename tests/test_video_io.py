"""Spec of video_io: write_video, read_clips (union decode), count_frames and VideoDecodeError."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import decord
import numpy as np
import pytest
import torch
from PIL import Image

from modeling_siasamrea.sampling import SiameseSampler
from modeling_siasamrea.video_io import VideoDecodeError, count_frames, read_clips, write_video

NUM_FRAMES, HEIGHT, WIDTH, LEVEL = 48, 32, 64, 5  # frame i is flat grey with intensity LEVEL * i
VIDEO_IO_PY = Path(__file__).resolve().parents[1] / "modeling_siasamrea" / "video_io.py"
CLIPS = np.array([[0, 9, 18, 27], [3, 12, 21, 30], [47, 9, 9, 1]])  # unsorted, shared and repeated frames


def make_frames(num_frames: int = NUM_FRAMES) -> np.ndarray:
    frames = np.empty((num_frames, HEIGHT, WIDTH, 3), np.uint8)
    frames[:] = (LEVEL * np.arange(num_frames, dtype=np.uint8))[:, None, None, None]
    frames[:, :4, :4] = (0, 255, 0)  # a bit of structure so the encoder sees colour too
    return frames


def frame_ids(clips: np.ndarray) -> np.ndarray:
    """Recover which frame each decoded image is from its grey level (robust to H.264 loss)."""
    return np.rint(clips[..., 8:, 8:, :].mean(axis=(-3, -2, -1)) / LEVEL).astype(int)


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    write_video(path, make_frames(), fps=25)
    return path


@pytest.fixture(scope="module")
def frame_dir(tmp_path_factory) -> Path:
    """frame_1.png ... frame_12.png (unpadded numbers, so lexical order is wrong) plus a non-image file."""
    folder = tmp_path_factory.mktemp("frames")
    for i, frame in enumerate(make_frames(12)):
        Image.fromarray(frame).save(folder / f"frame_{i + 1}.png")
    (folder / "notes.txt").write_text("not a frame")
    return folder


def test_write_video_round_trips_content(video):
    decoded = read_clips(video, np.arange(NUM_FRAMES)[None])[0]
    assert decoded.shape == (NUM_FRAMES, HEIGHT, WIDTH, 3) and decoded.dtype == np.uint8
    assert np.abs(decoded.astype(int) - make_frames()).mean() < 3  # H.264 is lossy
    assert (frame_ids(decoded) == np.arange(NUM_FRAMES)).all()
    assert decord.VideoReader(str(video)).get_avg_fps() == pytest.approx(25)


@pytest.mark.parametrize(
    "frames, match",
    [
        (np.zeros((4, 31, 32, 3), np.uint8), "even"),
        (np.zeros((4, 32, 30, 1), np.uint8), r"\(T, H, W, 3\)"),
        (np.zeros((4, 32, 32, 3), np.float32), "uint8"),
        (np.zeros((0, 32, 32, 3), np.uint8), "non-empty"),
    ],
)
def test_write_video_rejects_bad_frames(tmp_path, frames, match):
    with pytest.raises(ValueError, match=match):
        write_video(tmp_path / "bad.mp4", frames)


@pytest.mark.parametrize("width", [16, 48, 72])
def test_narrow_widths_that_break_decord_get_batch_still_decode(tmp_path, width):
    frames = np.zeros((6, 24, width, 3), np.uint8)
    frames[..., 0] = np.linspace(0, 255, width, dtype=np.uint8)  # horizontal ramp: row padding would show
    frames[..., 1] = LEVEL * np.arange(6, dtype=np.uint8)[:, None, None]
    write_video(tmp_path / "narrow.mp4", frames)
    clips = read_clips(tmp_path / "narrow.mp4", np.array([[5, 0, 2]]))
    assert clips.shape == (1, 3, 24, width, 3)
    assert np.abs(clips[0].astype(int) - frames[[5, 0, 2]]).mean() < 4


def test_read_clips_returns_the_requested_frames(video):
    clips = read_clips(str(video), CLIPS)
    assert clips.shape == (*CLIPS.shape, HEIGHT, WIDTH, 3) and clips.dtype == np.uint8
    assert (frame_ids(clips) == CLIPS).all()


def test_union_decode_is_one_sorted_get_batch_and_equals_per_clip_decode(video, monkeypatch):
    per_clip = np.stack([read_clips(video, row[None])[0] for row in CLIPS])
    calls = []

    class RecordingReader(decord.VideoReader):
        def get_batch(self, indices):
            calls.append(list(indices))
            return super().get_batch(indices)

    monkeypatch.setattr(decord, "VideoReader", RecordingReader)
    union = read_clips(video, CLIPS)
    assert calls == [sorted(set(CLIPS.ravel().tolist()))]
    assert np.array_equal(union, per_clip)


def test_bytes_input_matches_path_input(video):
    data = video.read_bytes()
    assert count_frames(data) == NUM_FRAMES
    assert np.array_equal(read_clips(data, CLIPS), read_clips(video, CLIPS))
    assert np.array_equal(read_clips(bytearray(data), CLIPS), read_clips(video, CLIPS))


def test_frame_directory_in_natural_order(frame_dir):
    assert count_frames(frame_dir) == 12
    indices = np.array([[0, 1, 9, 11], [11, 10, 2, 2]])
    assert np.array_equal(read_clips(str(frame_dir), indices), make_frames(12)[indices])  # png is lossless


def test_frame_directory_reads_only_the_requested_frames(frame_dir, tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for image in frame_dir.glob("*.png"):
        (folder / image.name).write_bytes(image.read_bytes())
    (folder / "frame_5.png").write_bytes(b"corrupt")
    assert np.array_equal(read_clips(folder, np.array([[0, 3, 5]])), make_frames(12)[None, [0, 3, 5]])
    with pytest.raises(VideoDecodeError, match="frame_5.png"):
        read_clips(folder, np.array([[2, 4]]))


def test_jpg_frame_directory(tmp_path):
    for i, frame in enumerate(make_frames(6)):
        Image.fromarray(frame).save(tmp_path / f"{i:03d}.JPG", quality=95)
    clips = read_clips(tmp_path, np.array([[5, 0, 3]]))
    assert (frame_ids(clips) == [[5, 0, 3]]).all()


def test_in_memory_array_and_tensor(video):
    frames = make_frames()
    assert count_frames(frames) == NUM_FRAMES and count_frames(torch.from_numpy(frames)) == NUM_FRAMES
    assert np.array_equal(read_clips(frames, CLIPS), frames[CLIPS])
    out = read_clips(torch.from_numpy(frames), CLIPS)
    assert isinstance(out, np.ndarray) and np.array_equal(out, frames[CLIPS])


def test_count_frames_of_a_video_file(video):
    assert count_frames(video) == count_frames(str(video)) == NUM_FRAMES


def test_sampler_indices_decode_end_to_end(video):
    indices = SiameseSampler(num_siamese_clips=4).sample(count_frames(video), np.random.default_rng(0))
    assert (frame_ids(read_clips(video, indices)) == indices).all()


def make_broken(kind: str, tmp_path: Path, video: Path) -> tuple[object, str]:
    """A broken input of the given kind, and the name its error message must contain."""
    if kind == "bytes":
        return b"\x00garbage" * 50, "<bytes>"
    if kind == "array":
        return np.zeros((0, 8, 8, 3), np.uint8), "<in-memory array>"
    path = tmp_path / f"{kind}.mp4"
    if kind == "text":
        path.write_text("this is not a video\n" * 20)
    elif kind == "truncated":
        path.write_bytes(video.read_bytes()[: video.stat().st_size // 2])
    elif kind == "empty_file":
        path.write_bytes(b"")
    elif kind == "empty_dir":
        path.mkdir()
    return path, str(path)


@pytest.mark.parametrize("kind", ["missing", "text", "truncated", "empty_file", "empty_dir", "bytes", "array"])
def test_unreadable_or_empty_inputs_raise_naming_the_video(tmp_path, video, kind):
    bad, name = make_broken(kind, tmp_path, video)
    for call in (lambda: count_frames(bad), lambda: read_clips(bad, np.zeros((1, 2), int))):
        with pytest.raises(VideoDecodeError) as info:
            call()
        assert name in str(info.value)


@pytest.mark.parametrize("bad_index", [-1, NUM_FRAMES])
def test_out_of_range_indices_raise_naming_the_video(video, bad_index):
    for source, name in ((video, str(video)), (make_frames(), "<in-memory array>")):
        with pytest.raises(VideoDecodeError, match=str(NUM_FRAMES)) as info:
            read_clips(source, np.array([[0, bad_index]]))
        assert name in str(info.value)


def test_malformed_indices_and_inputs_are_rejected(video):
    with pytest.raises(ValueError, match="indices"):
        read_clips(video, np.array([1, 2, 3]))
    with pytest.raises(ValueError, match="indices"):
        read_clips(video, np.array([[0.0, 1.0]]))
    with pytest.raises(VideoDecodeError, match="uint8"):
        read_clips(np.zeros((4, 8, 8, 3), np.float32), np.array([[0]]))
    with pytest.raises(TypeError, match="int"):
        count_frames(42)


class _PathDataset(torch.utils.data.Dataset):
    """Stores only paths; every item opens and decodes its video inside the worker."""

    def __init__(self, paths: list[str]) -> None:
        self.paths = paths
        self.sampler = SiameseSampler(num_frames=4, num_siamese_clips=2)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        indices = self.sampler.sample(count_frames(self.paths[i]), np.random.default_rng(i))
        return indices, read_clips(self.paths[i], indices)


def test_reading_in_forked_dataloader_workers(video):
    read_clips(video, CLIPS)  # decode in the parent first: a cached reader would now deadlock the workers
    loader = torch.utils.data.DataLoader(
        _PathDataset([str(video)] * 6), batch_size=2, num_workers=2, multiprocessing_context="fork", timeout=60
    )
    batches = list(loader)
    assert len(batches) == 3
    for indices, clips in batches:
        assert clips.shape == (2, 3, 4, HEIGHT, WIDTH, 3)
        assert (frame_ids(clips.numpy()) == indices.numpy()).all()


def test_numpy_inputs_do_not_import_torch():
    code = (
        "import importlib.util, sys, numpy as np\n"
        f"spec = importlib.util.spec_from_file_location('video_io', {str(VIDEO_IO_PY)!r})\n"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
        "assert module.read_clips(np.zeros((3, 2, 2, 3), np.uint8), np.array([[0, 2]])).shape == (1, 2, 2, 2, 3)\n"
        "assert 'torch' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------- GIFs and other files decord refuses (PyAV)

GIF_DURATIONS = [20, 30, 40, 50, 60, 70, 80, 90, 100, 110]  # ms, one per frame


def gif_frames(num_frames: int = len(GIF_DURATIONS)) -> np.ndarray:
    """A square moving right on a still background, in a new colour every frame (a new palette entry per frame)."""
    frames = np.empty((num_frames, 24, 40, 3), np.uint8)
    frames[:] = (0, 0, 128)
    for i in range(num_frames):
        frames[i, 4:12, 2 + 3 * i:10 + 3 * i] = (255, 25 * i, 0)
    return frames


def write_gif(path: Path, frames: np.ndarray, **options) -> Path:
    """Save frames as an animated GIF with PIL; PIL writes only the changed rectangle of each frame."""
    images = [Image.fromarray(frame) for frame in frames]
    images[0].save(path, save_all=True, append_images=images[1:], loop=0, **options)
    return path


def av_decode(path) -> np.ndarray:
    """Reference: every frame of a plain sequential PyAV decode, as rgb24."""
    import av

    with av.open(str(path)) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])


@pytest.fixture(scope="module")
def gif(tmp_path_factory) -> Path:
    """Per-frame durations and disposal modes 0 (none), 1 (keep) and 2 (restore background)."""
    return write_gif(tmp_path_factory.mktemp("gif") / "clip.gif", gif_frames(), duration=GIF_DURATIONS,
                     disposal=[1, 2, 1, 2, 0, 2, 1, 1, 2, 1])


def test_decord_refuses_animated_gifs(gif):
    """Why GIFs take the PyAV path (if decord ever reads them, this test says the detour can be revisited)."""
    with pytest.raises(decord.DECORDError):
        decord.VideoReader(str(gif))


def test_gif_frames_equal_a_sequential_pyav_decode(gif):
    reference = av_decode(gif)
    assert count_frames(gif) == len(reference) == len(GIF_DURATIONS)
    indices = np.array([[0, 3, 6, 9], [9, 2, 2, 5]])
    clips = read_clips(gif, indices)
    assert clips.shape == (2, 4, 24, 40, 3) and clips.dtype == np.uint8
    assert np.array_equal(clips, reference[indices])
    assert np.array_equal(clips, gif_frames()[indices])  # a few colours per frame: GIF is lossless here


def test_gif_bytes_and_a_misnamed_gif_are_read_too(gif, tmp_path):
    indices = np.array([[1, 8, 4]])
    data = gif.read_bytes()
    assert count_frames(data) == len(GIF_DURATIONS)
    assert np.array_equal(read_clips(data, indices), read_clips(gif, indices))
    misnamed = tmp_path / "clip.mp4"  # recognised by its header, not its name
    misnamed.write_bytes(data)
    assert np.array_equal(read_clips(misnamed, indices), read_clips(gif, indices))


def test_gif_transparent_pixels_show_the_previous_frames(tmp_path):
    """Partial frames whose index 0 is transparent (disposal 1): each decoded frame is the full composited canvas,
    the trail of every square drawn so far, not the frame's own rectangle."""
    palette = [0, 0, 0, 0, 0, 128]  # index 0 transparent, index 1 the background
    images = []
    for i in range(6):
        pixels = np.zeros((24, 40), np.uint8) if i else np.ones((24, 40), np.uint8)
        pixels[4:12, 2 + 5 * i:10 + 5 * i] = 2
        image = Image.fromarray(pixels, "P")
        image.putpalette(palette + [255, 40 * i, 0])  # index 2: a new colour in every frame's palette
        images.append(image)
    path = tmp_path / "trail.gif"
    images[0].save(path, save_all=True, append_images=images[1:], duration=40, disposal=1, transparency=0,
                   optimize=False, loop=0)
    expected = np.empty((6, 24, 40, 3), np.uint8)
    canvas = np.zeros((24, 40, 3), np.uint8)
    canvas[:] = (0, 0, 128)
    for i in range(6):
        canvas[4:12, 2 + 5 * i:10 + 5 * i] = (255, 40 * i, 0)
        expected[i] = canvas
    clips = read_clips(path, np.array([[5, 0, 3]]))
    assert np.array_equal(clips[0], av_decode(path)[[5, 0, 3]])
    assert np.array_equal(clips[0], expected[[5, 0, 3]])


class _RecordingContainer:
    """Wraps a PyAV container, counting the frames its decode() yields."""

    decoded: list[int] = []

    def __init__(self, container) -> None:
        self.container = container
        self.streams = container.streams

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.container.close()

    def demux(self, *args):
        return self.container.demux(*args)

    def decode(self, *args):
        self.decoded.append(0)
        for frame in self.container.decode(*args):
            self.decoded[-1] += 1
            yield frame


def test_gif_union_is_decoded_in_one_pass_that_stops_after_the_last_needed_frame(gif, monkeypatch):
    import av

    real_open = av.open
    _RecordingContainer.decoded = []
    monkeypatch.setattr(av, "open", lambda *args, **kwargs: _RecordingContainer(real_open(*args, **kwargs)))
    clips = read_clips(gif, np.array([[6, 1, 4], [4, 2, 1]]))
    assert _RecordingContainer.decoded == [7]  # one decode, frames 0..6, and counting decoded nothing
    assert np.array_equal(clips, gif_frames()[[[6, 1, 4], [4, 2, 1]]])


def test_a_file_decord_refuses_is_read_with_pyav(tmp_path):
    """A raw H.264 stream (no container metadata): decord cannot open it, FFmpeg can."""
    import av

    path = tmp_path / "clip.h264"
    with av.open(str(path), "w", format="h264") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for frame in make_frames(20):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    with pytest.raises(decord.DECORDError):
        decord.VideoReader(str(path))
    assert count_frames(path) == 20
    clips = read_clips(path, CLIPS % 20)
    assert np.array_equal(clips, av_decode(path)[CLIPS % 20])
    assert (frame_ids(clips) == CLIPS % 20).all()


def test_a_broken_gif_raises_naming_it(gif, tmp_path):
    data = gif.read_bytes()
    truncated = tmp_path / "truncated.gif"
    truncated.write_bytes(data[:20])  # the header and a bit: no frame
    header_only = tmp_path / "header.gif"
    header_only.write_bytes(b"GIF89a")
    for path in (truncated, header_only):
        with pytest.raises(VideoDecodeError, match=str(path)):
            read_clips(path, np.array([[0]]))
