"""Video decoding helpers: read sampled clips, count frames, write synthetic videos.

Decoders (backends): decord (the default) for the video files it reads (mp4, webm, mkv, avi, ...); torchcodec
(optional, ``pip install siasamrea[torchcodec]``) instead of decord where decord has no wheel (linux-aarch64, macOS
arm64) or for GPU decoding; PyAV (FFmpeg) for animated GIFs (recognised by their header, whatever the file name;
decord 0.6 refuses them), for any file or bytes the backend fails to open, and for everything when neither decord
nor torchcodec is installed. Every backend gives the same contract: the union of requested frames decoded once,
uint8 RGB, optionally scaled by the decoder to the model's input size (``max_size``), errors naming the video.
Choose a backend per call (``read_clips(..., backend=...)``) or for a process with ``SIASAMREA_VIDEO_BACKEND``.

Videos stored as JPEG frames (:func:`transcode_video`: an AVI of one JPEG per frame, MJPEG, at the model's size; or a
folder of .jpg frames) are read without a video decoder: each requested frame's JPEG is found through the AVI index
and decoded on its own (:func:`decode_jpeg`: simplejpeg where installed, else PIL; both libjpeg-turbo), so a sample
costs exactly its unique frames. :func:`read_jpeg_frames` hands their bytes out undecoded, for decoding on the
accelerator.
"""

from __future__ import annotations

import functools
import importlib
import io
import os
import re
import sys
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NamedTuple, Union

import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = [
    "BACKENDS",
    "JPEG_DECODERS",
    "TranscodeResult",
    "VideoBytes",
    "VideoDecodeError",
    "VideoInput",
    "VideoProbe",
    "count_frames",
    "decode_jpeg",
    "decoder_threads",
    "frame_rate",
    "jpeg_decoder",
    "probe_video",
    "psnr",
    "read_clips",
    "read_jpeg_frames",
    "scaled_frame_size",
    "transcode_video",
    "write_video",
]

# A video file path, a folder of extracted frames, the raw bytes of a video file, or (L, H, W, 3) uint8 frames
# as a numpy array or torch tensor.
VideoInput = Union[str, os.PathLike, bytes, bytearray, memoryview, np.ndarray, "torch.Tensor"]

_FRAME_SUFFIXES = {".jpg", ".jpeg", ".png"}
_GIF_SIGNATURES = (b"GIF87a", b"GIF89a")
BACKENDS = ("decord", "torchcodec", "pyav")
BACKEND_ENV = "SIASAMREA_VIDEO_BACKEND"
JPEG_DECODERS = ("simplejpeg", "pil")
JPEG_DECODER_ENV = "SIASAMREA_JPEG_DECODER"
# what transcode_video writes into its AVIs' INFO (ICMT): only such AVIs are read frame by frame as JPEGs
JPEG_AVI_COMMENT = "siasamrea jpeg frames"


class VideoDecodeError(ValueError):
    """A video (file, frame folder, bytes or array) could not be read; the message names it."""


class VideoBytes(bytes):
    """The bytes of a video file with a name for messages (e.g. its path inside a dataset shard): ``str()`` and
    ``repr()`` give the name, never the bytes, so logs and errors stay short."""

    name: str

    def __new__(cls, data: bytes | bytearray | memoryview, name: str) -> VideoBytes:
        obj = super().__new__(cls, data)
        obj.name = name
        return obj

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"VideoBytes({self.name!r}, {len(self)} bytes)"

    def __reduce__(self) -> tuple[type, tuple[bytes, str]]:
        return type(self), (bytes(self), self.name)


class VideoProbe(NamedTuple):
    """What probing a video tells without decoding a frame: its length and, for a video file, its frame rate."""

    num_video_frames: int
    fps: float | None


class TranscodeResult(NamedTuple):
    """What :func:`transcode_video` wrote: the source's frame count and frame rate (the result's too), the frame size,
    and the mean PSNR (dB) of the checked frames against the source decoded at that size."""

    num_video_frames: int
    fps: float | None
    height: int
    width: int
    psnr_db: float


class _Source(NamedTuple):
    """An opened video: its name for messages, its length, a reader of sorted unique frame indices and, for a
    video file, its average frame rate; for a video stored as JPEG frames, a reader of their bytes; for PyAV, a
    sequential reader of every frame in chunks."""

    name: str
    num_video_frames: int
    get_frames: Callable[[np.ndarray], np.ndarray]
    fps: float | None = None
    get_jpegs: Callable[[np.ndarray], list[bytes]] | None = None
    iter_chunks: Callable[[int], Iterator[np.ndarray]] | None = None


def scaled_frame_size(height: int, width: int, max_size: int) -> tuple[int, int]:
    """(height, width) of a frame scaled so its longer side is ``max_size``, aspect ratio kept, the shorter side
    truncated: ClipBERT's ``get_resize_size``, the geometry of ``SiaSamReaImageProcessor``'s resize (which uses this
    function). Here so that decoding needs no torch."""
    if height >= width:
        return max_size, max(1, int(max_size * (width / height)))
    return max(1, int(max_size * (height / width))), max_size


def decoder_threads(num_workers: int | None = None) -> int:
    """Decoder threads for one video reader, so that the processes of a node x their DataLoader workers x the threads
    of each fill the cores without oversubscribing them: the cores this process may run on // (``LOCAL_WORLD_SIZE``,
    set by torchrun and accelerate, x ``num_workers``), at least 1. ``num_workers`` defaults to the number of workers
    of the DataLoader this runs in (1 outside a worker)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cores = os.cpu_count() or 1
    if num_workers is None:
        torch = sys.modules.get("torch")  # a DataLoader worker has torch imported; numpy-only callers never do
        data = getattr(getattr(torch, "utils", None), "data", None)
        info = data.get_worker_info() if data is not None else None
        num_workers = info.num_workers if info is not None else 1
    processes = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
    return max(1, cores // (max(1, num_workers) * max(1, processes)))


def _backend(backend: str | None) -> str:
    """The decoder asked for, else ``$SIASAMREA_VIDEO_BACKEND``, else decord if installed, else torchcodec if it
    imports, else PyAV."""
    backend = backend or os.environ.get(BACKEND_ENV) or None
    if backend is None:
        return next(name for name in BACKENDS if _importable(name))
    if backend not in BACKENDS:
        raise ValueError(f"unknown video backend {backend!r} (from {BACKEND_ENV} or backend=); known: {BACKENDS}")
    if not _importable(backend):
        raise ImportError(f"video backend {backend!r} is not importable here"
                          + (": pip install 'siasamrea[torchcodec]'" if backend == "torchcodec" else ""))
    return backend


def _optional(module: str) -> Any:
    """An optional decoder's module, imported by name: a model shared on the Hub loads this file as remote code, and
    transformers then requires every package an import statement names, so only PyAV (the fallback) is one."""
    return importlib.import_module(module)


@functools.cache
def _importable(backend: str) -> bool:
    """Whether a backend's module imports (a torchcodec wheel may be installed but miss its FFmpeg or CUDA libs)."""
    try:
        importlib.import_module({"pyav": "av", "torchcodec": "torchcodec.decoders"}.get(backend, backend))
    except Exception:  # ImportError, or OSError / RuntimeError from a shared library that does not load
        return False
    return True


def _stream_size(target: str | bytes) -> tuple[int, int]:
    """(height, width) of a video's first video stream, from its header (PyAV; no frame is decoded)."""
    import av

    with av.open(io.BytesIO(target) if isinstance(target, bytes) else target) as container:
        if not container.streams.video:
            raise ValueError("no video stream")
        codec = container.streams.video[0].codec_context
        return codec.height, codec.width


def _natural_key(path: Path) -> list[int | str]:
    """Sort key in natural order: ``frame_2`` before ``frame_10``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def jpeg_decoder(decoder: str | None = None) -> str:
    """The JPEG decoder asked for, else ``$SIASAMREA_JPEG_DECODER``, else simplejpeg if installed (``pip install
    'siasamrea[jpeg]'``; it decodes a 448 px frame ~1.5x faster), else PIL."""
    decoder = decoder or os.environ.get(JPEG_DECODER_ENV) or None
    if decoder is None:
        return "simplejpeg" if _importable("simplejpeg") else "pil"
    if decoder not in JPEG_DECODERS:
        raise ValueError(f"unknown JPEG decoder {decoder!r} (from {JPEG_DECODER_ENV} or decoder=); known: "
                         f"{JPEG_DECODERS}")
    if decoder == "simplejpeg" and not _importable("simplejpeg"):
        raise ImportError("JPEG decoder 'simplejpeg' is not importable here: pip install 'siasamrea[jpeg]'")
    return decoder


def _pil_frame(image: Any, max_size: int | None) -> np.ndarray:
    """An opened PIL image as uint8 RGB, scaled to ``scaled_frame_size`` (a JPEG scaled while it is decoded)."""
    from PIL import Image

    if max_size is None:
        return np.asarray(image.convert("RGB"))
    height, width = scaled_frame_size(image.height, image.width, max_size)
    image.draft("RGB", (width, height))  # JPEG: decode at the smallest 1/2^k scale >= the target size
    return np.asarray(image.convert("RGB").resize((width, height), Image.Resampling.BILINEAR))


def decode_jpeg(data: bytes, max_size: int | None = None, decoder: str | None = None) -> np.ndarray:
    """One JPEG image as uint8 RGB ``(H, W, 3)``, scaled to ``scaled_frame_size(H, W, max_size)`` when that differs
    from its size (PIL: decoded at the smallest DCT scale above it, then bilinear). ``decoder``: see
    :func:`jpeg_decoder`; both use libjpeg-turbo's accurate integer IDCT and fancy upsampling."""
    if jpeg_decoder(decoder) == "simplejpeg":
        simplejpeg = _optional("simplejpeg")
        try:
            height, width = simplejpeg.decode_jpeg_header(data)[:2]
            if max_size is None or scaled_frame_size(height, width, max_size) == (height, width):
                return simplejpeg.decode_jpeg(data, colorspace="RGB")
        except ValueError:  # a JPEG simplejpeg does not take (e.g. CMYK): PIL reads it
            pass
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return _pil_frame(image, max_size)


def _read_images(paths: list[Path], max_size: int | None) -> tuple[Callable[[np.ndarray], np.ndarray],
                                                                   Callable[[np.ndarray], list[bytes]] | None]:
    """Frame reader for a folder, and for a folder of JPEGs a reader of their bytes: opens only the requested
    images (JPEGs with :func:`decode_jpeg`, others with PIL)."""
    from PIL import Image

    jpegs = all(path.suffix.lower() in (".jpg", ".jpeg") for path in paths)

    def get_frames(indices: np.ndarray) -> np.ndarray:
        if jpegs:
            return np.stack([decode_jpeg(paths[i].read_bytes(), max_size) for i in indices])
        frames = []
        for i in indices:
            with Image.open(paths[i]) as image:
                frames.append(_pil_frame(image, max_size))
        return np.stack(frames)

    def get_jpegs(indices: np.ndarray) -> list[bytes]:
        return [paths[i].read_bytes() for i in indices]

    return get_frames, get_jpegs if jpegs else None


def _resize_frames(frames: np.ndarray, max_size: int) -> np.ndarray:
    """(N, H, W, 3) uint8 frames scaled to ``scaled_frame_size`` (PIL bilinear, antialiased like FFmpeg's)."""
    from PIL import Image

    height, width = scaled_frame_size(*frames.shape[1:3], max_size)
    if (height, width) == frames.shape[1:3]:
        return frames
    return np.stack([np.asarray(Image.fromarray(frame).resize((width, height), Image.Resampling.BILINEAR))
                     for frame in frames])


def _decord_source(name: str, target: str | bytes, max_size: int | None, num_threads: int) -> _Source:
    """Open ``target`` with a fresh ``decord.VideoReader`` (never cached: readers do not survive a fork); with
    ``max_size`` its FFmpeg scaler (bilinear) outputs frames of ``scaled_frame_size``."""
    decord = _optional("decord")

    height = width = -1  # decord: unchanged
    if max_size is not None:
        native = _stream_size(target)
        if scaled_frame_size(*native, max_size) != native:
            height, width = scaled_frame_size(*native, max_size)
    reader = decord.VideoReader(io.BytesIO(target) if isinstance(target, bytes) else target, ctx=decord.cpu(0),
                                width=width, height=height, num_threads=num_threads)

    def get_frames(indices: np.ndarray) -> np.ndarray:
        try:
            return _to_numpy(reader.get_batch(indices.tolist()))
        except decord.DECORDError:
            # decord 0.6 bug: for a few narrow widths (e.g. 16, 24, 48, 72 px) it takes the padded RGB row
            # stride for the pixel size, returns (H, W, C != 3) frames and get_batch fails. Repair per frame.
            return np.stack([_unpad_rows(_to_numpy(reader[int(i)])) for i in indices])

    return _Source(name, len(reader), get_frames, float(reader.get_avg_fps()))


def _pyav_source(name: str, target: str | bytes, max_size: int | None, num_threads: int) -> _Source:
    """Open ``target`` with PyAV (FFmpeg): animated GIFs, and containers decord refuses.

    Frames are counted by demuxing (one packet per frame; nothing is decoded). ``get_frames`` decodes sequentially
    from the first frame and stops after the last requested one: each frame is FFmpeg's full picture (for a GIF,
    composited with the previous ones by its disposal mode, local palette and transparency), as rgb24, scaled to
    ``scaled_frame_size`` by FFmpeg's bilinear scaler when ``max_size`` is given. A fresh container is opened per
    call, so nothing opened in a parent process is used by a forked DataLoader worker.
    """
    import av

    def open_video() -> Any:
        return av.open(io.BytesIO(target) if isinstance(target, bytes) else target)

    with open_video() as container:
        if not container.streams.video:
            raise VideoDecodeError(f"{name}: no video stream")
        stream = container.streams.video[0]
        num_video_frames = sum(1 for packet in container.demux(stream) if packet.size)
        fps = float(stream.average_rate) if stream.average_rate else None

    def decoded() -> Iterator[Any]:
        """Every frame in order, as a PyAV VideoFrame."""
        with open_video() as container:
            stream = container.streams.video[0]
            stream.thread_type, stream.thread_count = "AUTO", num_threads
            yield from container.decode(stream)

    def converter() -> Callable[[Any], np.ndarray]:
        """A frame -> rgb24 array conversion with a scaler of its own. ``frame.to_ndarray`` would use the scaler PyAV
        keeps per thread: a forked DataLoader worker inherits the parent's, without its slice threads, and hangs."""
        from av.video.reformatter import VideoReformatter

        reformatter = VideoReformatter()

        def to_array(frame: Any) -> np.ndarray:
            scale = {} if max_size is None else dict(
                zip(("height", "width"), scaled_frame_size(frame.height, frame.width, max_size)),
                interpolation="BILINEAR")
            return reformatter.reformat(frame, format="rgb24", **scale).to_ndarray()

        return to_array

    def get_frames(indices: np.ndarray) -> np.ndarray:
        wanted = indices.tolist()  # sorted, unique
        frames: list[np.ndarray] = []
        frames_in_order, to_array = decoded(), converter()
        for index, frame in enumerate(frames_in_order):
            if index == wanted[len(frames)]:
                frames.append(to_array(frame))
                if len(frames) == len(wanted):
                    break
        frames_in_order.close()
        if len(frames) < len(wanted):
            raise VideoDecodeError(f"{name}: the decoder stopped before frame {wanted[len(frames)]} although "
                                   f"{num_video_frames} frames were counted (a damaged stream?)")
        return np.stack(frames)

    def iter_chunks(chunk_size: int) -> Iterator[np.ndarray]:
        chunk: list[np.ndarray] = []
        to_array = converter()
        for frame in decoded():
            chunk.append(to_array(frame))
            if len(chunk) == chunk_size:
                yield np.stack(chunk)
                chunk = []
        if chunk:
            yield np.stack(chunk)

    return _Source(name, num_video_frames, get_frames, fps, iter_chunks=iter_chunks)


def _jpeg_avi_source(name: str, target: str | bytes, max_size: int | None) -> _Source | None:
    """An AVI of JPEG frames that :func:`transcode_video` wrote (None for any other AVI): frame i is the packet of
    pts i, found by a seek in the AVI index (nothing else is read) and decoded on its own by :func:`decode_jpeg`."""
    import av

    def open_video() -> Any:
        return av.open(io.BytesIO(target) if isinstance(target, bytes) else target)

    with open_video() as container:
        if container.metadata.get("comment") != JPEG_AVI_COMMENT or not container.streams.video:
            return None
        stream = container.streams.video[0]
        num_video_frames = stream.frames
        fps = float(stream.average_rate) if stream.average_rate else None

    def get_jpegs(indices: np.ndarray) -> list[bytes]:
        jpegs = []
        with open_video() as container:
            stream = container.streams.video[0]
            for index in indices.tolist():
                container.seek(index, stream=stream, any_frame=True, backward=True)
                packet = next(container.demux(stream), None)
                if packet is None or packet.pts != index:
                    raise VideoDecodeError(f"{name}: frame {index} is missing from the AVI index (a truncated file?)")
                jpegs.append(bytes(packet))
        return jpegs

    def get_frames(indices: np.ndarray) -> np.ndarray:
        return np.stack([decode_jpeg(jpeg, max_size) for jpeg in get_jpegs(indices)])

    return _Source(name, num_video_frames, get_frames, fps, get_jpegs)


def _to_numpy(frames: Any) -> np.ndarray:
    """A decord NDArray (or a torch tensor, if the user set decord's bridge to torch) as numpy."""
    return frames.asnumpy() if hasattr(frames, "asnumpy") else np.asarray(frames)


def _unpad_rows(frame: np.ndarray) -> np.ndarray:
    """Drop the row padding from a frame decord shaped (H, W, row_stride // W): keep W * 3 bytes per row."""
    height, width = frame.shape[:2]
    return frame.reshape(height, -1)[:, : width * 3].reshape(height, width, 3)


def _torchcodec_source(name: str, target: str | bytes, max_size: int | None, num_threads: int,
                       device: str | None = None) -> _Source:
    """Open ``target`` with a fresh ``torchcodec.decoders.VideoDecoder`` (exact seeking: frame i is frame i); with
    ``max_size`` its decoder-native ``Resize`` (bilinear, antialiased) outputs frames of ``scaled_frame_size``. With a
    CUDA ``device`` (torchcodec's CUDA build) frames are decoded on that GPU and stay there as a torch tensor."""
    transforms = None
    if max_size is not None:
        native = _stream_size(target)
        if scaled_frame_size(*native, max_size) != native:  # decoder-native transforms: torchcodec >= 0.9
            transforms = [_optional("torchcodec.transforms").Resize(scaled_frame_size(*native, max_size))]
    decoder = _optional("torchcodec.decoders").VideoDecoder(
        target, dimension_order="NHWC", num_ffmpeg_threads=num_threads, device=device, seek_mode="exact",
        transforms=transforms,
    )
    on_cpu = device is None or str(device) == "cpu"

    def get_frames(indices: np.ndarray) -> Any:
        frames = decoder.get_frames_at(indices.tolist()).data  # (N, H, W, 3) uint8
        return frames.numpy() if on_cpu else frames

    return _Source(name, len(decoder), get_frames, decoder.metadata.average_fps)


def _array_source(video: Any, max_size: int | None) -> _Source | None:
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
    if max_size is None:
        return _Source(name, len(video), lambda indices: video[indices])
    return _Source(name, len(video), lambda indices: _resize_frames(video[indices], max_size))


def _open(video: VideoInput, max_size: int | None = None, num_threads: int | None = None, backend: str | None = None,
          device: str | None = None) -> _Source:
    """Dispatch on the input kind and return an opened source with at least one frame."""
    if max_size is not None and (not isinstance(max_size, int) or max_size < 1):
        raise ValueError(f"max_size must be a positive int or None, got {max_size!r}")
    if num_threads is not None and (not isinstance(num_threads, int) or num_threads < 0):
        raise ValueError(f"num_threads must be an int >= 0 (0: the decoder decides) or None, got {num_threads!r}")
    source = _array_source(video, max_size)
    if source is None:
        threads = decoder_threads() if num_threads is None else num_threads
        source = _file_source(video, max_size, threads, backend, device)
    if source.num_video_frames == 0:
        raise VideoDecodeError(f"{source.name}: video has no frames")
    return source


def _file_source(video: VideoInput, max_size: int | None, num_threads: int, backend: str | None,
                 device: str | None) -> _Source:
    """List a folder of frames, or open a video file / raw video bytes: GIFs with PyAV, others with the backend
    (decord by default), falling back to PyAV when it cannot open them."""
    if isinstance(video, (bytes, bytearray, memoryview)):
        name = video.name if isinstance(video, VideoBytes) else "<bytes>"
        target: str | bytes = bytes(video)
        head = target[:12]
    elif isinstance(video, (str, os.PathLike)):
        name = target = os.fspath(video)
        if os.path.isdir(target):
            images = (p for p in Path(target).iterdir() if p.suffix.lower() in _FRAME_SUFFIXES)
            frames = sorted(images, key=_natural_key)
            get_frames, get_jpegs = _read_images(frames, max_size)
            return _Source(name, len(frames), get_frames, get_jpegs=get_jpegs)
        if not os.path.isfile(target):
            raise VideoDecodeError(f"{name}: no such video file or frame folder")
        with open(target, "rb") as f:
            head = f.read(12)
    else:
        raise TypeError(f"unsupported video input of type {type(video).__name__}")
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        source = _guarded(name, lambda: _jpeg_avi_source(name, target, max_size))
        if source is not None:
            return source
    backend = _backend(backend)
    if head[:6] in _GIF_SIGNATURES or backend == "pyav":
        return _guarded(name, lambda: _pyav_source(name, target, max_size, num_threads))
    if backend == "decord":
        open_video = _decord_source
    else:
        open_video = functools.partial(_torchcodec_source, device=device)
    try:
        return _guarded(name, lambda: open_video(name, target, max_size, num_threads))
    except VideoDecodeError as backend_error:
        try:
            return _guarded(name, lambda: _pyav_source(name, target, max_size, num_threads))
        except VideoDecodeError as pyav_error:
            raise VideoDecodeError(f"{name}: neither {backend} nor PyAV could read it ({backend}: "
                                   f"{backend_error.__cause__ or backend_error}; PyAV: "
                                   f"{pyav_error.__cause__ or pyav_error})") from pyav_error


@functools.cache
def _decoder_errors() -> tuple[type[BaseException], ...]:
    """The exceptions a decoder raises for a bad video (decord's DECORDError is not a RuntimeError), of the decoders
    installed here."""
    errors: list[type[BaseException]] = [RuntimeError, OSError, ValueError, IndexError]
    for module, error in (("av", "FFmpegError"), ("decord", "DECORDError")):
        try:
            errors.append(getattr(importlib.import_module(module), error))
        except ImportError:
            pass
    return tuple(errors)


def _guarded(name: str, fn: Callable[[], Any]) -> Any:
    """Call ``fn``, turning decoder/PIL failures into a VideoDecodeError that names the video."""
    try:
        return fn()
    except VideoDecodeError:
        raise
    except _decoder_errors() as error:
        raise VideoDecodeError(f"{name}: could not decode video ({type(error).__name__}: {error})") from error


def probe_video(video: VideoInput, backend: str | None = None) -> VideoProbe:
    """Frame count and frame rate (None for frame folders and arrays) of ``video``, without decoding any frame."""
    source = _open(video, backend=backend)
    return VideoProbe(source.num_video_frames, source.fps if source.fps is not None and source.fps > 0 else None)


def count_frames(video: VideoInput, backend: str | None = None) -> int:
    """Number of frames L of ``video`` (any input kind of :func:`read_clips`) without decoding any frame."""
    return _open(video, backend=backend).num_video_frames


def frame_rate(video: str | os.PathLike | bytes | bytearray | memoryview, backend: str | None = None) -> float:
    """Average frame rate of a video file (or its bytes) as the decoder that reads it reports it (decord's, or for
    GIFs and files decord refuses FFmpeg's ``average_rate``). Raises VideoDecodeError for frame folders and arrays."""
    source = _open(video, backend=backend)
    if source.fps is None or source.fps <= 0:
        raise VideoDecodeError(f"{source.name}: no frame rate (a frame folder, an array or a video without timing)")
    return source.fps


def read_clips(video: VideoInput, indices: np.ndarray, max_size: int | None = None, num_threads: int | None = None,
               backend: str | None = None, device: str | None = None) -> np.ndarray:
    """Decode the frames ``indices`` (num_clips, frames) of ``video`` as uint8 RGB (num_clips, frames, H, W, 3).

    ``video``: a video file path, a folder of jpg/png frames (natural order), the raw bytes of a video file
    (:class:`VideoBytes` to name them in errors), or an (L, H, W, 3) uint8 numpy array / torch tensor. The union of
    all requested indices is decoded once (one decord ``get_batch`` call on sorted unique indices, or for GIFs and
    files decord refuses one sequential PyAV decode up to the last of them) and gathered per clip.

    ``max_size``: frames come out of the decoder scaled so their longer side is ``max_size`` (aspect ratio kept;
    (H, W) = :func:`scaled_frame_size`, the image processor's geometry; bilinear, antialiased, by FFmpeg's scaler,
    torchcodec's resize or PIL): full-resolution frames are never materialised. ``num_threads``: decoder threads
    (0: the decoder decides; default :func:`decoder_threads`, which keeps DataLoader workers x threads within the
    cores). ``backend``: "decord", "torchcodec" or "pyav" (default ``$SIASAMREA_VIDEO_BACKEND``, else the first of
    them installed); GIFs are always read with PyAV. ``device``: torchcodec only, e.g. "cuda": decode on that GPU
    and return a torch uint8 tensor on it.
    Raises VideoDecodeError (naming the video) for missing, unreadable or empty videos and out-of-range indices.
    """
    indices = _check_indices(indices)
    source = _open(video, max_size=max_size, num_threads=num_threads, backend=backend, device=device)
    unique, inverse = _unique_indices(source, indices)
    frames = _guarded(source.name, lambda: source.get_frames(unique))
    return frames[inverse]


def _check_indices(indices: Any) -> np.ndarray:
    indices = np.asarray(indices)
    if indices.ndim != 2 or indices.size == 0 or not np.issubdtype(indices.dtype, np.integer):
        raise ValueError(f"indices must be a non-empty (num_clips, frames) integer array, got shape "
                         f"{indices.shape} dtype {indices.dtype}")
    return indices


def _unique_indices(source: _Source, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The sorted unique frames of ``indices`` (checked against the video's length), and where each entry of
    ``indices`` is among them (same shape)."""
    if indices.min() < 0 or indices.max() >= source.num_video_frames:
        raise VideoDecodeError(f"{source.name}: frame indices must lie in [0, {source.num_video_frames}), got "
                               f"[{indices.min()}, {indices.max()}]")
    unique, inverse = np.unique(indices, return_inverse=True)
    return unique, inverse.reshape(indices.shape)


def read_jpeg_frames(video: VideoInput, indices: np.ndarray) -> tuple[list[bytes], np.ndarray]:
    """The undecoded JPEG bytes of the unique frames of ``indices`` (num_clips, frames), and the position of each
    (clip, frame) among them (an int64 array shaped like ``indices``), of a video stored as JPEG frames (an AVI of
    :func:`transcode_video`, or a folder of .jpg frames): what a DataLoader worker ships when the accelerator decodes
    (``SiaSamReaImageProcessor.pixel_values_from_jpeg``). Raises VideoDecodeError for any other video."""
    indices = _check_indices(indices)
    source = _open(video)
    if source.get_jpegs is None:
        raise VideoDecodeError(f"{source.name}: its frames are not stored as JPEGs, so they cannot be decoded on the "
                               "accelerator; `siasamrea transcode` (or `siasamrea pack --frames jpeg`) stores them so")
    unique, inverse = _unique_indices(source, indices)
    return _guarded(source.name, lambda: source.get_jpegs(unique)), inverse.astype(np.int64)


def _chunks(source: _Source, chunk_size: int = 64) -> Iterator[np.ndarray]:
    """Every frame of an opened source in order, as uint8 RGB chunks ``(<= chunk_size, H, W, 3)``, decoded once in
    one sequential pass: frame i is frame i of :func:`read_clips` (the same decoder and scaler)."""
    if source.iter_chunks is not None:
        chunks = source.iter_chunks(chunk_size)
        while (chunk := _guarded(source.name, lambda: next(chunks, None))) is not None:
            yield chunk
        return
    for start in range(0, source.num_video_frames, chunk_size):
        indices = np.arange(start, min(start + chunk_size, source.num_video_frames))
        yield _guarded(source.name, lambda: source.get_frames(indices))


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

def psnr(reference: np.ndarray, frames: np.ndarray) -> float:
    """Peak signal-to-noise ratio (dB) of uint8 ``frames`` against ``reference`` (same shape); 100 when equal."""
    mse = float(np.mean((reference.astype(np.float64) - frames.astype(np.float64)) ** 2))
    return 100.0 if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def _encode_jpeg(frame: np.ndarray, quality: int) -> bytes:
    """One uint8 RGB frame as a baseline JFIF JPEG (PIL / libjpeg-turbo, 4:2:0 chroma)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="JPEG", quality=quality, subsampling="4:2:0")
    return buffer.getvalue()


def transcode_video(video: VideoInput, output: str | os.PathLike | IO[bytes], max_size: int, quality: int = 90,
                    check_every: int = 8, num_threads: int | None = None,
                    backend: str | None = None) -> TranscodeResult:
    """Store ``video`` once at the model's size, as frames that decode on their own: an AVI (MJPEG) of one JPEG per
    frame, written to ``output`` (a path or a binary file object).

    Frame i of the result is frame i of ``read_clips(video, ..., max_size=max_size)`` (the same decoder and scaler;
    for a GIF, FFmpeg's composited frames), JPEG-encoded by PIL at ``quality`` (4:2:0 chroma): the frame count and
    order are the source's, and so is the frame rate (its exact fraction where the source has one; 25 for a frame
    folder, which has none). Every ``check_every``-th frame is decoded again and compared with the source frame:
    the result's ``psnr_db`` is their mean PSNR. Raises VideoDecodeError if the source cannot be decoded, or decodes
    to another number of frames than it counts.
    """
    import av

    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be in [1, 100], got {quality}")
    if isinstance(check_every, bool) or not isinstance(check_every, int) or check_every < 1:
        raise ValueError(f"check_every must be a positive int (check every check_every-th frame), got {check_every!r}")
    source = _open(video, max_size=max_size, num_threads=num_threads, backend=backend)
    rate = Fraction(source.fps).limit_denominator(1 << 16) if source.fps else Fraction(25)
    count, checked, size = 0, [], (0, 0)
    with av.open(output if not isinstance(output, (str, os.PathLike)) else os.fspath(output), mode="w",
                 format="avi") as container:
        container.metadata["comment"] = JPEG_AVI_COMMENT
        stream = container.add_stream("mjpeg", rate=rate)
        for chunk in _chunks(source):
            if count == 0:
                size = chunk.shape[1:3]
                stream.height, stream.width, stream.pix_fmt = *size, "yuvj420p"
            for frame in chunk:
                packet = av.Packet(_encode_jpeg(frame, quality))
                if count % check_every == 0:
                    checked.append(psnr(frame, decode_jpeg(bytes(packet))))
                packet.stream, packet.pts, packet.dts, packet.time_base = stream, count, count, 1 / rate
                container.mux(packet)
                count += 1
    if count != source.num_video_frames:
        raise VideoDecodeError(f"{source.name}: decoded {count} frames but counted {source.num_video_frames} (a "
                               "damaged stream?); it cannot be stored frame for frame")
    return TranscodeResult(count, source.fps, *size, float(np.mean(checked)))
