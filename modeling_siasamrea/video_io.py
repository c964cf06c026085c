"""Video decoding helpers: read sampled clips, count frames, write synthetic videos.

Decoders: decord for the video files it reads (mp4, webm, mkv, avi, ...); PyAV (FFmpeg) for animated GIFs (recognised
by their header, whatever the file name; decord 0.6 refuses them) and for any file or bytes decord fails to open.
Both give the same contract: the union of requested frames decoded once, uint8 RGB, errors naming the video.
"""

from __future__ import annotations

import io
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Union

import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = ["VideoDecodeError", "VideoInput", "count_frames", "frame_rate", "read_clips", "write_video"]

# A video file path, a folder of extracted frames, the raw bytes of a video file, or (L, H, W, 3) uint8 frames
# as a numpy array or torch tensor.
VideoInput = Union[str, os.PathLike, bytes, bytearray, memoryview, np.ndarray, "torch.Tensor"]

_FRAME_SUFFIXES = {".jpg", ".jpeg", ".png"}
_GIF_SIGNATURES = (b"GIF87a", b"GIF89a")


class VideoDecodeError(ValueError):
    """A video (file, frame folder, bytes or array) could not be read; the message names it."""


class _Source(NamedTuple):
    """An opened video: its name for messages, its length, a reader of sorted unique frame indices and, for a
    video file, its average frame rate."""

    name: str
    num_frames: int
    get_frames: Callable[[np.ndarray], np.ndarray]
    fps: float | None = None


def _natural_key(path: Path) -> list[int | str]:
    """Sort key in natural order: ``frame_2`` before ``frame_10``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def _read_images(paths: list[Path]) -> Callable[[np.ndarray], np.ndarray]:
    """Frame reader for a folder: opens only the requested images with PIL."""
    from PIL import Image

    def get_frames(indices: np.ndarray) -> np.ndarray:
        frames = []
        for i in indices:
            with Image.open(paths[i]) as image:
                frames.append(np.asarray(image.convert("RGB")))
        return np.stack(frames)

    return get_frames


def _decord_source(name: str, target: str | io.BytesIO) -> _Source:
    """Open ``target`` with a fresh ``decord.VideoReader`` (never cached: readers do not survive a fork)."""
    import decord

    reader = decord.VideoReader(target, ctx=decord.cpu(0))

    def get_frames(indices: np.ndarray) -> np.ndarray:
        try:
            return _to_numpy(reader.get_batch(indices.tolist()))
        except decord.DECORDError:
            # decord 0.6 bug: for a few narrow widths (e.g. 16, 24, 48, 72 px) it takes the padded RGB row
            # stride for the pixel size, returns (H, W, C != 3) frames and get_batch fails. Repair per frame.
            return np.stack([_unpad_rows(_to_numpy(reader[int(i)])) for i in indices])

    return _Source(name, len(reader), get_frames, float(reader.get_avg_fps()))


def _pyav_source(name: str, target: str | bytes) -> _Source:
    """Open ``target`` with PyAV (FFmpeg): animated GIFs, and containers decord refuses.

    Frames are counted by demuxing (one packet per frame; nothing is decoded). ``get_frames`` decodes sequentially
    from the first frame and stops after the last requested one: each frame is FFmpeg's full picture (for a GIF,
    composited with the previous ones by its disposal mode, local palette and transparency), as rgb24. A fresh
    container is opened per call, so nothing opened in a parent process is used by a forked DataLoader worker.
    """
    import av

    def open_video() -> Any:
        return av.open(io.BytesIO(target) if isinstance(target, bytes) else target)

    with open_video() as container:
        if not container.streams.video:
            raise VideoDecodeError(f"{name}: no video stream")
        stream = container.streams.video[0]
        num_frames = sum(1 for packet in container.demux(stream) if packet.size)
        fps = float(stream.average_rate) if stream.average_rate else None

    def get_frames(indices: np.ndarray) -> np.ndarray:
        wanted = indices.tolist()  # sorted, unique
        frames: list[np.ndarray] = []
        with open_video() as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for index, frame in enumerate(container.decode(stream)):
                if index == wanted[len(frames)]:
                    frames.append(frame.to_ndarray(format="rgb24"))
                    if len(frames) == len(wanted):
                        break
        if len(frames) < len(wanted):
            raise VideoDecodeError(f"{name}: the decoder stopped before frame {wanted[len(frames)]} although "
                                   f"{num_frames} frames were counted (a damaged stream?)")
        return np.stack(frames)

    return _Source(name, num_frames, get_frames, fps)


def _to_numpy(frames: Any) -> np.ndarray:
    """A decord NDArray (or a torch tensor, if the user set decord's bridge to torch) as numpy."""
    return frames.asnumpy() if hasattr(frames, "asnumpy") else np.asarray(frames)


def _unpad_rows(frame: np.ndarray) -> np.ndarray:
    """Drop the row padding from a frame decord shaped (H, W, row_stride // W): keep W * 3 bytes per row."""
    height, width = frame.shape[:2]
    return frame.reshape(height, -1)[:, : width * 3].reshape(height, width, 3)


def _array_source(video: Any) -> _Source | None:
    """Wrap an in-memory numpy array / torch tensor, or return None if ``video`` is neither."""
    torch = sys.modules.get("torch")  # a tensor can only exist if torch is already imported
    if torch is not None and isinstance(video, torch.Tensor):
        video = video.detach().cpu().numpy()
    if not isinstance(video, np.ndarray):
        return None
    name = "<in-memory array>"
    if video.ndim != 4 or video.shape[-1] != 3 or video.dtype != np.uint8:
        raise VideoDecodeError(
            f"{name}: expected (L, H, W, 3) uint8 frames, got shape {video.shape} dtype {video.dtype}"
        )
    return _Source(name, len(video), lambda indices: video[indices])


def _open(video: VideoInput) -> _Source:
    """Dispatch on the input kind and return an opened source with at least one frame."""
    source = _array_source(video)
    if source is None:
        source = _file_source(video)
    if source.num_frames == 0:
        raise VideoDecodeError(f"{source.name}: video has no frames")
    return source


def _file_source(video: VideoInput) -> _Source:
    """List a folder of frames, or open a video file / raw video bytes: GIFs with PyAV, others with decord, falling
    back to PyAV when decord cannot open them."""
    if isinstance(video, (bytes, bytearray, memoryview)):
        name = "<bytes>"
        target: str | bytes = bytes(video)
        head = target[:6]
    elif isinstance(video, (str, os.PathLike)):
        name = target = os.fspath(video)
        if os.path.isdir(target):
            images = (p for p in Path(target).iterdir() if p.suffix.lower() in _FRAME_SUFFIXES)
            frames = sorted(images, key=_natural_key)
            return _Source(name, len(frames), _read_images(frames))
        if not os.path.isfile(target):
            raise VideoDecodeError(f"{name}: no such video file or frame folder")
        with open(target, "rb") as f:
            head = f.read(6)
    else:
        raise TypeError(f"unsupported video input of type {type(video).__name__}")
    if head in _GIF_SIGNATURES:
        return _guarded(name, lambda: _pyav_source(name, target))
    try:
        return _guarded(name, lambda: _decord_source(name, io.BytesIO(target) if isinstance(target, bytes) else target))
    except VideoDecodeError as decord_error:
        try:
            return _guarded(name, lambda: _pyav_source(name, target))
        except VideoDecodeError as pyav_error:
            raise VideoDecodeError(f"{name}: neither decord nor PyAV could read it (decord: {decord_error.__cause__}; "
                                   f"PyAV: {pyav_error.__cause__ or pyav_error})") from pyav_error


def _guarded(name: str, fn: Callable[[], Any]) -> Any:
    """Call ``fn``, turning decoder/PIL failures into a VideoDecodeError that names the video."""
    from av import FFmpegError
    from decord import DECORDError  # not a RuntimeError subclass

    try:
        return fn()
    except VideoDecodeError:
        raise
    except (DECORDError, FFmpegError, RuntimeError, OSError, ValueError, IndexError) as error:
        raise VideoDecodeError(f"{name}: could not decode video ({type(error).__name__}: {error})") from error


def count_frames(video: VideoInput) -> int:
    """Number of frames L of ``video`` (any input kind of :func:`read_clips`) without decoding any frame."""
    return _open(video).num_frames


def frame_rate(video: str | os.PathLike | bytes | bytearray | memoryview) -> float:
    """Average frame rate of a video file (or its bytes) as the decoder that reads it reports it (decord's, or for
    GIFs and files decord refuses FFmpeg's ``average_rate``). Raises VideoDecodeError for frame folders and arrays."""
    source = _open(video)
    if source.fps is None or source.fps <= 0:
        raise VideoDecodeError(f"{source.name}: no frame rate (a frame folder, an array or a video without timing)")
    return source.fps


def read_clips(video: VideoInput, indices: np.ndarray) -> np.ndarray:
    """Decode the frames ``indices`` (num_clips, frames) of ``video`` as uint8 RGB (num_clips, frames, H, W, 3).

    ``video``: a video file path, a folder of jpg/png frames (natural order), the raw bytes of a video file,
    or an (L, H, W, 3) uint8 numpy array / torch tensor. The union of all requested indices is decoded once
    (one decord ``get_batch`` call on sorted unique indices, or for GIFs and files decord refuses one sequential
    PyAV decode up to the last of them) and gathered per clip.
    Raises VideoDecodeError (naming the video) for missing, unreadable or empty videos and out-of-range indices.
    """
    indices = np.asarray(indices)
    if indices.ndim != 2 or indices.size == 0 or not np.issubdtype(indices.dtype, np.integer):
        raise ValueError(f"indices must be a non-empty (num_clips, frames) integer array, got shape "
                         f"{indices.shape} dtype {indices.dtype}")
    source = _open(video)
    if indices.min() < 0 or indices.max() >= source.num_frames:
        raise VideoDecodeError(f"{source.name}: frame indices must lie in [0, {source.num_frames}), got "
                               f"[{indices.min()}, {indices.max()}]")
    unique, inverse = np.unique(indices, return_inverse=True)
    frames = _guarded(source.name, lambda: source.get_frames(unique))
    return frames[inverse.reshape(indices.shape)]


def write_video(path: str | os.PathLike, frames: np.ndarray, fps: int = 30) -> None:
    """Write ``frames`` (T, H, W, 3) uint8 RGB as an H.264 (yuv420p) mp4 with PyAV.

    H and W must be even (a yuv420p requirement). Used to generate synthetic test data.
    """
    import av

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise ValueError(
            f"write_video expects non-empty (T, H, W, 3) uint8 frames, got shape "
            f"{frames.shape} dtype {frames.dtype}"
        )
    height, width = frames.shape[1:3]
    if height % 2 or width % 2:
        raise ValueError(f"write_video needs even height and width for yuv420p, got {height}x{width}")
    with av.open(os.fspath(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "18", "preset": "ultrafast"}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")))
        container.mux(stream.encode())
