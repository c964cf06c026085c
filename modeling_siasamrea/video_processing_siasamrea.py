"""Video processor for SiaSamRea: siamese sampling of a video's clips, decoding of the sampled frames only, and the
per-frame resize, pad and normalisation of `SiaSamReaImageProcessor`, behind transformers' `BaseVideoProcessor`."""

import os
from typing import Any, Literal

import numpy as np
import torch
from transformers import AutoConfig
from transformers.image_processing_utils import BatchFeature, ImageProcessingMixin
from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, ChannelDimension, PILImageResampling
from transformers.processing_utils import Unpack, VideosKwargs
from transformers.video_processing_utils import BaseVideoProcessor
from transformers.video_utils import VideoMetadata, is_valid_video

from .configuration_siasamrea import VISION_FAMILIES, VISION_TOWERS
from .image_processing_siasamrea import SiaSamReaImageProcessor, resize_and_normalize
from .sampling import ClipSampler, clip_sampler_from_config
from .video_io import count_frames, read_clips

# ClipBERT's frame size (its ResNet-50 at 448 pixels), for backbones that do not fix one
DEFAULT_IMAGE_SIZE = 448
# what a video may be: a file path, a folder of frames, the bytes of a file, (T, H, W, 3) uint8 frames
SINGLE_VIDEO_TYPES = (str, os.PathLike, bytes, bytearray, memoryview)
# the settings of the frame transform, shared with `SiaSamReaImageProcessor`
FRAME_SETTINGS = (
    "resample", "do_rescale", "rescale_factor", "do_normalize", "image_mean", "image_std", "channel_order",
)


def longest_edge(size: Any) -> int:
    """`size["longest_edge"]` of a size dict (or `SizeDict`) that holds only it."""
    size = dict(size)
    if set(size) != {"longest_edge"}:
        raise ValueError("SiaSamReaVideoProcessor resizes the longer side of a frame to size['longest_edge'] and pads "
                         f"it to a square; got size={size}")
    return size["longest_edge"]


class SiaSamReaVideoProcessorKwargs(VideosKwargs, total=False):
    r"""
    num_frames (`int` or `"auto"`, *optional*, defaults to `self.num_frames`):
        Frames per clip; `"auto"` (or None) grows them with the video length within `[min_frames, max_frames]`.
    num_siamese_clips (`int`, *optional*, defaults to `self.num_siamese_clips`):
        Siamese clips sampled next to the anchor in training (the model's `num_siamese_clips`).
    min_frames, max_frames (`int`, *optional*):
        The range of `num_frames="auto"` (the paper's 5-16).
    pace (`int`, *optional*):
        Offset step between siamese clips; None: the stride divided by the number of clips (`SiameseSampler`).
    training (`bool`, *optional*, defaults to `False`):
        Sample the anchor clip and its siamese clips at random (training) instead of the evaluation clip(s).
    num_eval_clips (`int`, *optional*, defaults to `self.num_eval_clips`):
        Evaluation clips: 1 is the anchor clip spread over the whole video (the paper's inference), more are
        ClipBERT-style dense clips.
    generator (`np.random.Generator`, *optional*):
        The random draws of training sampling (a fresh generator when not given).
    channel_order (`str`, *optional*, defaults to `self.channel_order`):
        `"RGB"` or `"BGR"` channel order of `pixel_values` (`image_mean` / `image_std` are always in RGB order).
    """

    num_frames: int | str | None
    num_siamese_clips: int
    min_frames: int
    max_frames: int
    pace: int | None
    training: bool
    num_eval_clips: int
    generator: np.random.Generator | None
    channel_order: Literal["RGB", "BGR"]


class SiaSamReaVideoProcessor(BaseVideoProcessor):
    r"""
    Turns videos into SiaSamRea's `pixel_values` `(batch, clips, frames, 3, S, S)`.

    A video is a file path, a folder of frames, the bytes of a file or `(T, H, W, 3)` uint8 RGB frames (a list of them
    is a batch). `sample_frames` picks the frame indices of its clips with the clip sampler of its settings
    (`sampling.clip_sampler_from_config`): with `training=True` a `SiameseSampler` draws a random anchor clip and
    `num_siamese_clips` nearby siamese clips (the anchor first), else the `UniformClipSampler` gives `num_eval_clips`
    deterministic evaluation clips (one: the anchor clip spread over the whole video). They are
    recorded in the video's `VideoMetadata.frames_indices` `(clips, frames)`, and only those frames are decoded
    (`video_io.read_clips`). Every frame is then resized so that its longer side is `size["longest_edge"]` (aspect
    ratio kept), zero-padded at the bottom/right to a square (ClipBERT's resize and pad: nothing of the frame is lost
    to a crop), rescaled and normalised, exactly as `SiaSamReaImageProcessor` does (see there for `channel_order`).
    With `do_sample_frames=False` every frame of a video makes one clip.

    `from_backbone` takes the frame size and normalisation of a vision backbone from its own processor config.
    Needs no torchvision: the frames are resized with `torch.nn.functional.interpolate`.
    """

    valid_kwargs = SiaSamReaVideoProcessorKwargs
    model_input_names = ["pixel_values"]

    size = {"longest_edge": DEFAULT_IMAGE_SIZE}
    resample = PILImageResampling.BILINEAR
    do_resize = True
    do_rescale = True
    rescale_factor = 1 / 255
    do_normalize = True
    image_mean = IMAGENET_DEFAULT_MEAN
    image_std = IMAGENET_DEFAULT_STD
    channel_order = "RGB"
    do_convert_rgb = False  # decoded frames are RGB already
    input_data_format = ChannelDimension.LAST  # decoded frames are (T, H, W, 3)
    do_sample_frames = True
    num_frames = "auto"
    num_siamese_clips = 8
    min_frames = 5
    max_frames = 16
    pace = None
    training = False
    num_eval_clips = 1
    generator = None

    def __init__(self, **kwargs: Unpack[SiaSamReaVideoProcessorKwargs]) -> None:
        super().__init__(**kwargs)
        SiaSamReaImageProcessor(**self.frame_settings())  # checks the frame settings, naming a bad one
        self.sampler(training=True)  # ... and the sampling ones

    @property
    def max_image_size(self) -> int:
        """S: the longer side of a resized frame, the side of the padded square."""
        return longest_edge(self.size)

    def frame_settings(self) -> dict[str, Any]:
        """The settings of `SiaSamReaImageProcessor` that give the same frames (the processor's `image_processor`)."""
        return {"max_image_size": self.max_image_size, **{name: getattr(self, name) for name in FRAME_SETTINGS}}

    @classmethod
    def from_image_processor(cls, image_processor: SiaSamReaImageProcessor, **kwargs: Any) -> "SiaSamReaVideoProcessor":
        """The video processor whose frames are `image_processor`'s (a folder saved before the video processor)."""
        settings = {name: getattr(image_processor, name) for name in FRAME_SETTINGS}
        return cls(size={"longest_edge": image_processor.max_image_size}, **settings, **kwargs)

    @classmethod
    def from_backbone(
        cls, vision_model_name_or_path: str | os.PathLike, max_image_size: int | None = None, **kwargs: Any
    ) -> "SiaSamReaVideoProcessor":
        """A video processor with a vision backbone's normalisation (`image_mean`, `image_std`, rescaling, resampling)
        from its own processor config, and frames of the size it is built for (its `image_size`; ClipBERT's 448 for a
        CNN), unless `max_image_size` says otherwise. `kwargs` set the other fields (e.g. `num_frames`)."""
        config = AutoConfig.from_pretrained(vision_model_name_or_path)
        if config.model_type in VISION_TOWERS:
            config = config.vision_config
        try:
            saved, _ = ImageProcessingMixin.get_image_processor_dict(vision_model_name_or_path)
        except OSError:  # a checkpoint with a video processor config only
            saved, _ = BaseVideoProcessor.get_video_processor_dict(vision_model_name_or_path)
        settings = {name: saved[name] for name in ("image_mean", "image_std", "do_rescale", "rescale_factor",
                                                    "do_normalize", "resample") if saved.get(name) is not None}
        size = max_image_size or getattr(config, "image_size", None) or DEFAULT_IMAGE_SIZE
        if VISION_FAMILIES.get(config.model_type) == "video" and "num_frames" not in kwargs:
            kwargs["num_frames"] = config.num_frames  # a video transformer's clip length
        return cls(size={"longest_edge": size}, **{**settings, **kwargs})

    def sampler(self, training: bool | None = None, num_frames: int | str | None = None,
                num_siamese_clips: int | None = None, min_frames: int | None = None, max_frames: int | None = None,
                pace: int | None = None, **kwargs: Any) -> ClipSampler:
        """The clip sampler of these settings (the processor's own where not given): training's `SiameseSampler` or
        evaluation's `UniformClipSampler` (`clip_sampler_from_config`)."""
        return clip_sampler_from_config(
            self, train=self.training if training is None else training, num_frames=num_frames,
            num_siamese_clips=num_siamese_clips, min_frames=min_frames or self.min_frames,
            max_frames=max_frames or self.max_frames, pace=pace if pace is not None else self.pace,
        )

    def sample_frames(
        self,
        metadata: VideoMetadata,
        num_frames: int | str | None = None,
        fps: int | float | None = None,
        training: bool | None = None,
        num_eval_clips: int | None = None,
        generator: np.random.Generator | None = None,
        **kwargs: Any,
    ) -> np.ndarray:
        """Frame indices `(clips, frames)` of a video of `metadata.total_num_frames` frames: in training the anchor
        clip and its siamese clips (`SiameseSampler.sample`, drawn from `generator`), else the evaluation clips
        (`ClipSampler.sample_eval`). `kwargs` may set the sampler's other fields."""
        if fps is not None:
            raise ValueError("SiaSamRea samples a number of frames per clip (num_frames), not frames per second (fps)")
        training = self.training if training is None else training
        sampler = self.sampler(training, num_frames, **kwargs)
        if training:
            return sampler.sample(metadata.total_num_frames, generator or np.random.default_rng())
        return sampler.sample_eval(metadata.total_num_frames, num_eval_clips or self.num_eval_clips)

    def _decode_and_sample_videos(
        self, videos: Any, video_metadata: Any, do_sample_frames: bool | None = None, sample_indices_fn: Any = None
    ) -> tuple[list[np.ndarray], list[VideoMetadata]]:
        """Each video → the frames of its clips in a row `(clips * frames, H, W, 3)`, decoding only those, and its
        metadata with `frames_indices` `(clips, frames)`; without sampling, all its frames as one clip."""
        if isinstance(videos, SINGLE_VIDEO_TYPES) or is_valid_video(videos):
            videos = [videos]
        elif isinstance(videos, (np.ndarray, torch.Tensor)) and videos.ndim == 5:  # (batch, T, H, W, 3)
            videos = list(videos)
        if video_metadata is not None and not isinstance(video_metadata, (list, tuple)):
            video_metadata = [video_metadata]
        if video_metadata is not None and len(video_metadata) != len(videos):
            raise ValueError(f"got {len(videos)} videos but {len(video_metadata)} video_metadata entries")
        frames, metadata = [], []
        for i, video in enumerate(videos):
            if isinstance(video, (list, tuple)):  # a list of (H, W, 3) frames
                video = np.stack([np.asarray(frame) for frame in video])
            meta = video_metadata[i] if video_metadata is not None else None
            if meta is None:
                meta = VideoMetadata(total_num_frames=count_frames(video))
            elif isinstance(meta, dict):
                meta = VideoMetadata(**meta)
            if do_sample_frames:
                indices = np.asarray(sample_indices_fn(metadata=meta))
            else:
                indices = np.arange(meta.total_num_frames)[None]
            meta.frames_indices = indices
            clips = read_clips(video, indices)  # (clips, frames, H, W, 3)
            frames.append(clips.reshape(-1, *clips.shape[2:]))  # -> (clips * frames, H, W, 3)
            metadata.append(meta)
        return frames, metadata

    def _preprocess(
        self,
        videos: list[torch.Tensor],
        size: Any,
        resample: PILImageResampling | int,
        do_rescale: bool,
        rescale_factor: float,
        do_normalize: bool,
        image_mean: float | tuple[float, ...],
        image_std: float | tuple[float, ...],
        channel_order: str,
        return_tensors: str | None = None,
        **kwargs: Any,
    ) -> BatchFeature:
        """Every video's frames `(n, 3, H, W)` → `(n, 3, S, S)` (`resize_and_normalize`)."""
        side = longest_edge(size)
        SiaSamReaImageProcessor(  # checks the settings of this call, naming a bad one
            max_image_size=side, channel_order=channel_order, resample=resample, do_rescale=do_rescale,
            rescale_factor=rescale_factor, do_normalize=do_normalize, image_mean=image_mean, image_std=image_std,
        )
        scale = rescale_factor if do_rescale else 1.0
        mean, std = (image_mean, image_std) if do_normalize else (None, None)
        processed = [resize_and_normalize(video, side, resample, channel_order, scale, mean, std)
                     for video in videos]
        return BatchFeature(data={"pixel_values_videos": processed})

    def preprocess(self, videos: Any, **kwargs: Unpack[SiaSamReaVideoProcessorKwargs]) -> BatchFeature:
        """`pixel_values` `(batch, clips, frames, 3, S, S)` of one video or a list of them (see the class docstring),
        and `video_metadata` with `return_metadata=True`. Videos whose clips differ in shape come as a list."""
        return_metadata = kwargs.pop("return_metadata", None) or self.return_metadata
        return_tensors = kwargs.pop("return_tensors", None)
        batch = super().preprocess(videos, return_metadata=True, **kwargs)
        clips = [frames.unflatten(0, np.shape(meta.frames_indices))  # (clips * frames, ...) -> (clips, frames, ...)
                 for frames, meta in zip(batch["pixel_values_videos"], batch["video_metadata"])]
        same_shape = len({tuple(video.shape) for video in clips}) == 1
        data = {"pixel_values": torch.stack(clips) if same_shape else clips}
        if return_metadata:
            data["video_metadata"] = batch["video_metadata"]
        return BatchFeature(data=data, tensor_type=return_tensors if same_shape else None)


__all__ = ["SiaSamReaVideoProcessor"]
