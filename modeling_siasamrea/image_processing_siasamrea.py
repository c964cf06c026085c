"""Image processor for SiaSamRea: ClipBERT's per-frame resize, pad and normalisation for sampled video clips; and
the decoding of JPEG frames on the accelerator."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from transformers.image_processing_backends import PilBackend
from transformers.image_processing_utils import BatchFeature
from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, PILImageResampling
from transformers.processing_utils import ImagesKwargs, Unpack
from transformers.utils import TensorType, logging

from .video_io import _optional, decode_jpeg, scaled_frame_size

logger = logging.get_logger(__name__)

VIDEO_LAYOUT = "(num_clips, num_frames, height, width, 3)"

# `resample` filters that have an exact `torch.nn.functional.interpolate` counterpart.
INTERPOLATION_MODES = {
    PILImageResampling.NEAREST: "nearest",
    PILImageResampling.BILINEAR: "bilinear",
    PILImageResampling.BICUBIC: "bicubic",
}


class SiaSamReaImageProcessorKwargs(ImagesKwargs, total=False):
    r"""
    max_image_size (`int`, *optional*, defaults to `self.max_image_size`):
        Every frame is resized so its longer side equals this value (aspect ratio kept), then zero-padded at the
        bottom/right to a `max_image_size` square.
    channel_order (`str`, *optional*, defaults to `self.channel_order`):
        `"RGB"` or `"BGR"` channel order of `pixel_values`. `image_mean`/`image_std` are always given in RGB order.
    """

    max_image_size: int
    channel_order: Literal["RGB", "BGR"]


def to_video_list(videos: Any) -> list[torch.Tensor]:
    """Split one video, a list of videos or a 6-D batch into a list of validated 5-D uint8 CPU tensors."""
    if isinstance(videos, (np.ndarray, torch.Tensor)) and videos.ndim == 6:
        videos = list(videos)
    elif not isinstance(videos, (list, tuple)):
        videos = [videos]
    if not videos:
        raise ValueError(f"Expected at least one video of shape {VIDEO_LAYOUT}; got an empty batch.")
    return [validate_video(video) for video in videos]


def validate_video(video: Any) -> torch.Tensor:
    """Check one video is a uint8 array of shape `VIDEO_LAYOUT` and return it as a CPU tensor."""
    if isinstance(video, torch.Tensor):
        video = video.detach().cpu().numpy()
    if not isinstance(video, np.ndarray):
        raise TypeError(f"Expected each video as a numpy array or torch tensor; got {type(video).__name__}.")
    if video.ndim != 5:
        raise ValueError(
            f"Expected each video as a 5-D array {VIDEO_LAYOUT} (or a 6-D batch of them); "
            f"got a {video.ndim}-D array of shape {tuple(video.shape)}."
        )
    if video.shape[-1] != 3:
        raise ValueError(
            f"Expected 3 RGB channels in the last axis of {VIDEO_LAYOUT}; got {video.shape[-1]} "
            f"(shape {tuple(video.shape)})."
        )
    if 0 in video.shape:
        raise ValueError(f"Expected a non-empty video {VIDEO_LAYOUT}; got shape {tuple(video.shape)}.")
    if video.dtype != np.uint8:
        raise ValueError(f"Expected uint8 pixels in [0, 255]; got dtype {video.dtype}.")
    # torch.from_numpy needs non-negative strides (e.g. after `[..., ::-1]`) and warns on read-only arrays
    return torch.from_numpy(np.require(video, requirements=("C_CONTIGUOUS", "WRITEABLE")))


def per_channel(values: float | tuple[float, ...], name: str) -> np.ndarray:
    """Broadcast a scalar or 3 per-channel statistics to a float32 array of shape (3,)."""
    array = np.asarray(values, dtype=np.float32).reshape(-1)
    if array.size not in (1, 3):
        raise ValueError(f"`{name}` needs 1 or 3 values (one per RGB channel); got {array.size}: {values}.")
    return np.broadcast_to(array, (3,))


class SiaSamReaImageProcessor(PilBackend):
    r"""
    Turns sampled video clips into ClipBERT-style `pixel_values`.

    Each example is a uint8 RGB array (or tensor) of shape `(num_clips, num_frames, height, width, 3)`. Every frame is
    resized so its longer side equals `max_image_size` (aspect ratio kept; bilinear on float pixels, exactly as
    ClipBERT's `ImageResize`), zero-padded at the bottom/right to a `max_image_size` square (ClipBERT's `ImagePad`),
    then rescaled and normalised: `(pixel * rescale_factor - image_mean) / image_std`, so padding holds the normalised
    value of 0. With `channel_order="BGR"` the output channels are flipped (after normalising with the RGB-ordered
    statistics), as ClipBERT's detectron2 ResNet expects: `do_rescale=False`, `image_mean=[123.675, 116.28, 103.53]`,
    `image_std=[1, 1, 1]`, `channel_order="BGR"`.

    Built on v5's `PilBackend` ("slow", CPU) rather than `TorchvisionBackend` ("fast"), which requires torchvision.
    Frames are still processed in batch: one `torch.nn.functional.interpolate` call resizes all frames of a video.

    Output: `pixel_values` of shape `(batch, num_clips, num_frames, 3, max_image_size, max_image_size)`, float32.
    """

    valid_kwargs = SiaSamReaImageProcessorKwargs
    model_input_names = ["pixel_values"]

    max_image_size = 448
    channel_order = "RGB"
    resample = PILImageResampling.BILINEAR
    do_rescale = True
    rescale_factor = 1 / 255
    do_normalize = True
    image_mean = IMAGENET_DEFAULT_MEAN
    image_std = IMAGENET_DEFAULT_STD

    def __init__(self, **kwargs: Unpack[SiaSamReaImageProcessorKwargs]) -> None:
        super().__init__(**kwargs)
        self._validate_preprocess_kwargs(**{name: getattr(self, name) for name in self._valid_kwargs_names})

    def __call__(self, videos: Any, **kwargs: Unpack[SiaSamReaImageProcessorKwargs]) -> BatchFeature:
        """Preprocess one video, a list of videos or a 6-D batch (see the class docstring)."""
        return self.preprocess(videos, **kwargs)

    def _validate_preprocess_kwargs(
        self,
        max_image_size: int | None = None,
        channel_order: str | None = None,
        resample: PILImageResampling | int | None = None,
        do_normalize: bool | None = None,
        image_mean: float | tuple[float, ...] | None = None,
        image_std: float | tuple[float, ...] | None = None,
        **kwargs: Any,
    ) -> None:
        """Check the SiaSamRea options on top of the generic v5 checks."""
        super()._validate_preprocess_kwargs(
            do_normalize=do_normalize, image_mean=image_mean, image_std=image_std, **kwargs
        )
        if not isinstance(max_image_size, int) or isinstance(max_image_size, bool) or max_image_size < 1:
            raise ValueError(f"`max_image_size` must be a positive int; got {max_image_size!r}.")
        if channel_order not in ("RGB", "BGR"):
            raise ValueError(f"`channel_order` must be 'RGB' or 'BGR'; got {channel_order!r}.")
        if resample not in INTERPOLATION_MODES:
            raise ValueError(
                f"`resample` must be one of {[int(mode) for mode in INTERPOLATION_MODES]} "
                f"(nearest, bilinear, bicubic); got {resample!r}."
            )
        if do_normalize:
            per_channel(image_mean, "image_mean")
            if np.any(per_channel(image_std, "image_std") == 0):
                raise ValueError(f"`image_std` must not contain zeros; got {image_std}.")

    def _prepare_image_like_inputs(self, images: Any, *args: Any, **kwargs: Any) -> list[torch.Tensor]:
        """Validate the videos (no per-image conversion: frames stay in their native uint8 layout)."""
        return to_video_list(images)

    def _preprocess(
        self,
        images: list[torch.Tensor],
        max_image_size: int,
        channel_order: str,
        resample: PILImageResampling | int,
        do_rescale: bool,
        rescale_factor: float,
        do_normalize: bool,
        image_mean: float | tuple[float, ...],
        image_std: float | tuple[float, ...],
        return_tensors: str | TensorType | None = None,
        **kwargs: Any,
    ) -> BatchFeature:
        """Resize every frame of every video, then pad, rescale, normalise and (optionally) flip to BGR."""
        clip_shapes = {video.shape[:2] for video in images}
        if len(clip_shapes) > 1:
            raise ValueError(
                "All videos of a batch need the same (num_clips, num_frames); "
                f"got {[tuple(video.shape[:2]) for video in images]}."
            )
        scale = rescale_factor if do_rescale else 1.0
        mean, std = (image_mean, image_std) if do_normalize else (None, None)
        # (clips, frames, H, W, 3) -> (clips * frames, 3, H, W) -> (clips * frames, 3, S, S) -> (clips, frames, ...)
        resized = [
            resize_and_normalize(video.permute(0, 1, 4, 2, 3).flatten(0, 1), max_image_size, resample, channel_order,
                                 scale, mean, std).unflatten(0, video.shape[:2])
            for video in images
        ]
        return BatchFeature(data={"pixel_values": torch.stack(resized).numpy()}, tensor_type=return_tensors)

    def pixel_values_from_frames(self, frames: torch.Tensor) -> torch.Tensor:
        """The model's `pixel_values` from uint8 frames already at its size, on their own device (e.g. the GPU).

        `frames`: `(..., 3, H, W)` uint8 RGB with the longer side `max_image_size` (as `read_clips(..., max_size=...)`
        decodes them; padded at the bottom/right, as the collator pads a batch). The same padding, rescaling,
        normalisation and channel order as `__call__`, without its resize: training workers ship uint8 frames and
        the accelerator does this arithmetic.
        """
        return pad_and_normalize(frames, self.max_image_size, self.channel_order,
                                 self.rescale_factor if self.do_rescale else 1.0,
                                 self.image_mean if self.do_normalize else None,
                                 self.image_std if self.do_normalize else None)

    def pixel_values_from_jpeg(self, frames: "JpegFrames", device: torch.device | str | None = None,
                               decoder: "JpegDecoder | None" = None) -> torch.Tensor:
        """The model's `pixel_values` `(batch, clips, frames, 3, size, size)` from a batch of undecoded JPEG frames
        (`JpegFrames`, what the data workers ship when the accelerator decodes): its images are decoded in one batch on
        `device` by `decoder` (default: `jpeg_decoder_for(device)`), gathered into each video's clips, then padded and
        normalised as by `pixel_values_from_frames`. The frames must have been stored at `max_image_size`."""
        decoder = decoder or jpeg_decoder_for(device)
        images = decoder(frames.data, device)  # each (3, h, w) uint8 on the device
        videos = []
        for index in frames.index:  # (clips, frames) positions in `images`, one video
            video = torch.stack([images[i] for i in index.flatten().tolist()])  # (clips * frames, 3, h, w)
            if max(video.shape[-2:]) != self.max_image_size:
                raise ValueError(f"JPEG frames of {video.shape[-2]}x{video.shape[-1]} were stored for another size "
                                 f"than max_image_size={self.max_image_size}: decoding them on the accelerator needs "
                                 "frames stored at the model's size (transcode at that size)")
            videos.append(self.pixel_values_from_frames(video.unflatten(0, index.shape)))
        return torch.stack(videos)


def resize_and_normalize(
    frames: torch.Tensor,
    size: int,
    resample: PILImageResampling | int,
    channel_order: str,
    scale: float,
    mean: float | tuple[float, ...] | None,
    std: float | tuple[float, ...] | None,
) -> torch.Tensor:
    """`(n, 3, H, W)` RGB frames (any dtype) → float32 `(n, 3, size, size)`: resized (one `interpolate` call for all)
    so that the longer side is `size`, aspect ratio kept, then `pad_and_normalize`."""
    height, width = frames.shape[-2:]
    new_height, new_width = scaled_frame_size(height, width, size)
    frames = frames.float()
    if (new_height, new_width) != (height, width):
        mode = INTERPOLATION_MODES[resample]
        frames = F.interpolate(frames, size=(new_height, new_width), mode=mode,
                               align_corners=None if mode == "nearest" else False)
    return pad_and_normalize(frames, size, channel_order, scale, mean, std)


def pad_and_normalize(
    frames: torch.Tensor,
    size: int,
    channel_order: str,
    scale: float,
    mean: float | tuple[float, ...] | None,
    std: float | tuple[float, ...] | None,
) -> torch.Tensor:
    """`(..., 3, h, w)` RGB frames (h, w <= size, any dtype) → float32 `(..., 3, size, size)`: zero-padded at the
    bottom/right (ClipBERT's ImagePad: the padding is pixel value 0, normalised with the content), then
    `(pixel * scale - mean) / std` (no mean/std: only the scale), channels in `channel_order`."""
    height, width = frames.shape[-2:]
    if height > size or width > size:
        raise ValueError(f"frames of {height}x{width} are larger than max_image_size={size}: resize them first")
    channels = [2, 1, 0] if channel_order == "BGR" else [0, 1, 2]
    padded = frames.new_zeros((*frames.shape[:-3], 3, size, size), dtype=torch.float32)
    padded[..., :height, :width] = frames[..., channels, :, :].float()  # (..., 3, h, w) -> (..., 3, size, size)
    if mean is None:
        return padded.mul_(scale) if scale != 1 else padded
    mean = torch.as_tensor(per_channel(mean, "image_mean")[channels], device=frames.device).view(3, 1, 1)
    std = torch.as_tensor(per_channel(std, "image_std")[channels], device=frames.device).view(3, 1, 1)
    return padded.mul_(scale / std).sub_(mean / std)


@dataclass
class JpegFrames:
    """Sampled frames of one video, or of a batch of videos, as undecoded JPEG images, for decoding on the
    accelerator: `data` holds each distinct frame once, `index` `(clips, frames)` (one video) or `(batch, clips,
    frames)` gives the position in `data` of every sampled frame."""

    data: list[bytes]
    index: torch.Tensor

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of `index`: `(clips, frames)` of one video, as the leading dimensions of its decoded frames."""
        return tuple(self.index.shape)

    @classmethod
    def collate(cls, videos: Sequence["JpegFrames"]) -> "JpegFrames":
        """One batch of videos that share `(clips, frames)`: their images in one list, `index` `(batch, clips,
        frames)`."""
        offsets = np.cumsum([0] + [len(video.data) for video in videos[:-1]])
        return cls([image for video in videos for image in video.data],
                   torch.stack([video.index + int(offset) for video, offset in zip(videos, offsets)]))


class JpegDecoder:
    """Decodes a batch of JPEG images to uint8 RGB `(3, H, W)` tensors on a device: `decoder(images, device)`.

    This implementation decodes on the CPU with `decode_jpeg` (simplejpeg or PIL), exactly as the data workers do,
    then moves the frames to `device`; `TorchvisionJpegDecoder` decodes on a CUDA device (nvJPEG)."""

    name = "cpu"

    def __call__(self, images: Sequence[bytes], device: torch.device | str | None = None) -> list[torch.Tensor]:
        return [torch.tensor(decode_jpeg(image), device=device).permute(2, 0, 1) for image in images]


class TorchvisionJpegDecoder(JpegDecoder):
    """`torchvision.io.decode_jpeg(..., device="cuda")`: nvJPEG decodes the whole batch on the GPU. torchvision is
    imported by name (an optional dependency; its wheels are CUDA builds that need a CUDA torch)."""

    name = "torchvision"

    def __init__(self) -> None:
        self.io = _optional("torchvision.io")

    def __call__(self, images: Sequence[bytes], device: torch.device | str | None = None) -> list[torch.Tensor]:
        data = torch.frombuffer(bytearray(b"".join(images)), dtype=torch.uint8)
        encoded = list(torch.split(data, [len(image) for image in images]))
        return self.io.decode_jpeg(encoded, mode=self.io.ImageReadMode.RGB, device=device)


def jpeg_decoder_for(device: torch.device | str | None) -> JpegDecoder:
    """The GPU decoder on a CUDA device where torchvision imports, else the CPU one."""
    if device is not None and torch.device(device).type == "cuda":
        try:
            return TorchvisionJpegDecoder()
        except Exception as error:  # ImportError, or a torchvision build that does not match this torch
            logger.warning("torchvision.io does not import (%s): JPEG frames are decoded on the CPU of the training "
                           "process, not on %s", error, device)
    return JpegDecoder()


__all__ = ["JpegDecoder", "JpegFrames", "SiaSamReaImageProcessor", "TorchvisionJpegDecoder", "jpeg_decoder_for",
           "pad_and_normalize", "resize_and_normalize"]
