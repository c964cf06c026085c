"""Clip sampling (SiaSamRea §3.2): frame indices of the clips of a video, for training and for evaluation.

`ClipSampler` is the interface: `sample` (a training draw) and `sample_eval` (the deterministic evaluation clips,
uniform or dense). `SiameseSampler` draws an anchor clip and its nearby siamese clips (the paper's training);
`UniformClipSampler` is the evaluation sampler; `clip_sampler_from_config` picks one for a model or processor.
Pure numpy; returns indices only; decoding lives in ``video_io``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

__all__ = ["ClipSampler", "SiameseSampler", "UniformClipSampler", "check_num_frames", "clip_sampler_from_config"]


def _check_int(name: str, value: object, minimum: int, expected: str | None = None) -> int:
    """Return ``value`` as int if it is an integer (not a bool) >= ``minimum``, else raise ValueError (saying what
    was ``expected``, by default that integer)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be {expected or f'an integer >= {minimum}'}, got {value!r}")
    return int(value)


def check_num_frames(num_frames: object) -> int | str:
    """Frames per clip: ``"auto"`` or an integer >= 1 (as int), else a ValueError naming ``num_frames``."""
    if isinstance(num_frames, str) and num_frames == "auto":
        return num_frames
    return _check_int("num_frames", num_frames, 1, expected="'auto' or a positive integer")


def _check_length(num_video_frames: int) -> int:
    """Validate a video length L (number of frames) and return it as int."""
    if isinstance(num_video_frames, bool) or not isinstance(num_video_frames, (int, np.integer)):
        raise ValueError(f"num_video_frames must be an integer, got {num_video_frames!r}")
    if num_video_frames <= 0:
        raise ValueError(f"num_video_frames must be > 0 (a video needs at least one frame), got {num_video_frames}")
    return int(num_video_frames)


class ClipSampler(ABC):
    """Frame indices of the clips of B frames of a video of L frames: a training draw (`sample`, by the subclass's
    rule) and the evaluation clips (`sample_eval`, the same for every sampler).

    ``num_frames="auto"`` picks ``B = clip(L // 8, min_frames, max_frames)``: one more frame per 8 video
    frames, monotone non-decreasing in L (L < 48 -> 5 frames, L >= 128 -> 16 frames with the defaults).
    Every clip of a video uses the same stride ``δ = max(1, (L - T) // max(1, B - 1))`` with ``T = max(1, L // 3)``,
    so a clip starting anywhere in the first third ends inside the video (``T - 1 + (B - 1)δ <= L - 1``).
    Short videos (``L < B``) repeat frames instead of failing: indices past the end are clipped to ``L - 1``.
    """

    def __init__(self, num_frames: int | str = "auto", min_frames: int = 5, max_frames: int = 16) -> None:
        self.min_frames = _check_int("min_frames", min_frames, 1)
        self.max_frames = _check_int("max_frames", max_frames, self.min_frames)
        self.num_frames = check_num_frames(num_frames)

    def _settings(self) -> dict[str, Any]:
        """The constructor arguments, for `__repr__`."""
        return {"num_frames": self.num_frames, "min_frames": self.min_frames, "max_frames": self.max_frames}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self._settings().items())})"

    def frames_per_clip(self, num_video_frames: int) -> int:
        """B: the fixed ``num_frames``, or for "auto" ``clip(L // 8, min_frames, max_frames)``."""
        length = _check_length(num_video_frames)
        if self.num_frames == "auto":
            return int(np.clip(length // 8, self.min_frames, self.max_frames))
        return self.num_frames

    def stride(self, num_video_frames: int) -> int:
        """δ = max(1, (L - T) // max(1, B - 1)) with T = max(1, L // 3): shared by every clip of the video."""
        length = _check_length(num_video_frames)
        third = max(1, length // 3)
        return max(1, (length - third) // max(1, self.frames_per_clip(length) - 1))

    def _last_start(self, length: int, stride: int) -> int:
        """Largest start at which a clip with this stride still ends inside the video (0 if none does)."""
        return max(0, length - 1 - (self.frames_per_clip(length) - 1) * stride)

    def _clips(self, length: int, starts: np.ndarray, stride: int) -> np.ndarray:
        """(len(starts), B) indices: clamp each start so the clip fits, then clip indices into [0, L)."""
        starts = np.clip(np.asarray(starts, dtype=np.int64), 0, self._last_start(length, stride))
        indices = starts[:, None] + stride * np.arange(self.frames_per_clip(length), dtype=np.int64)
        return np.minimum(indices, length - 1)

    @abstractmethod
    def sample(self, num_video_frames: int, rng: np.random.Generator) -> np.ndarray:
        """Training indices, int64 of shape (clips, B), drawn from ``rng``."""

    def sample_eval(self, num_video_frames: int, num_eval_clips: int = 1) -> np.ndarray:
        """Deterministic evaluation indices, int64 of shape (num_eval_clips, B).

        One clip: B frames spread uniformly over the whole video, ``round(linspace(0, L - 1, B))``
        (first and last frame included). Several clips (ClipBERT-style dense inference): clips with the
        training stride δ whose starts are ``round(linspace(0, L - 1 - (B - 1)δ, num_eval_clips))``, so the first
        clip starts at frame 0 and the last one ends at the end of the video.
        E.g. L = 100, B = 4: one clip -> ``[[0, 33, 66, 99]]``; two clips (δ = 22) -> ``[[0, 22, 44, 66],
        [33, 55, 77, 99]]``.
        """
        length = _check_length(num_video_frames)
        num_eval_clips = _check_int("num_eval_clips", num_eval_clips, 1)
        if num_eval_clips == 1:
            grid = np.linspace(0, length - 1, self.frames_per_clip(length))
            return np.floor(grid + 0.5).astype(np.int64)[None, :]
        stride = self.stride(length)
        starts = np.floor(np.linspace(0, self._last_start(length, stride), num_eval_clips) + 0.5)
        return self._clips(length, starts, stride)


class SiameseSampler(ClipSampler):
    """Sample one anchor clip and ``num_siamese_clips`` nearby siamese clips of B frames from a video of L frames.

    Rules (design notes, "Siamese sampling"), with N = 1 + num_siamese_clips clips in total:

    * first third: the anchor start s is drawn uniformly from ``{0, ..., T - 1}`` with ``T = max(1, L // 3)``
      (lowered to the last valid start, defined below, in videos too short for a full clip from there);
    * stride: every clip of a video uses the same stride δ (`ClipSampler`), so a clip starting anywhere in the first
      third ends inside the video;
    * pace: ``p = pace`` if given, else ``max(1, δ // N)`` (the N clips tile the gap between two anchor frames);
    * siamese clip k = 1..N-1 starts at ``s + o_k`` with offsets ``+p, -p, +2p, -2p, ...``
      (``o_k = ceil(k / 2) * p``, positive for odd k), clamped to ``[0, max(0, L - 1 - (B - 1)δ)]``
      so the whole clip stays inside the video with the same stride;
    * short videos (``L < B``, or too short for distinct offsets) repeat frames instead of failing:
      indices past the end are clipped to ``L - 1`` and clamped clips may coincide.

    ``num_frames="auto"`` grows B with L (`ClipSampler`); `sample_eval` gives the evaluation clips.

    Worked example: L = 100, B = 4, num_siamese_clips = 4 (N = 5). Then T = 33, δ = (100 - 33) // 3 = 22,
    p = 22 // 5 = 4, offsets = [+4, -4, +8, -8] and the last valid start is 99 - 66 = 33.
    With anchor start s = 10, ``sample`` returns::

        [[10, 32, 54, 76],   # anchor
         [14, 36, 58, 80],   # +p
         [ 6, 28, 50, 72],   # -p
         [18, 40, 62, 84],   # +2p
         [ 2, 24, 46, 68]]   # -2p

    With s = 2 the -p and -2p clips (starts -2 and -6) are clamped to start 0: ``[0, 22, 44, 66]``.
    """

    def __init__(
        self,
        num_frames: int | str = "auto",
        num_siamese_clips: int = 8,
        min_frames: int = 5,
        max_frames: int = 16,
        pace: int | None = None,
    ) -> None:
        super().__init__(num_frames, min_frames, max_frames)
        self.num_siamese_clips = _check_int("num_siamese_clips", num_siamese_clips, 0)
        self.pace = None if pace is None else _check_int("pace (or None)", pace, 1)

    def _settings(self) -> dict[str, Any]:
        return {"num_frames": self.num_frames, "num_siamese_clips": self.num_siamese_clips,
                "min_frames": self.min_frames, "max_frames": self.max_frames, "pace": self.pace}

    def siamese_offsets(self, num_video_frames: int) -> np.ndarray:
        """Start offsets of the siamese clips relative to the anchor, before clamping: +p, -p, +2p, -2p, ..."""
        num_clips = 1 + self.num_siamese_clips
        pace = self.pace if self.pace is not None else max(1, self.stride(num_video_frames) // num_clips)
        k = np.arange(1, num_clips, dtype=np.int64)
        return (k + 1) // 2 * pace * np.where(k % 2 == 1, 1, -1)

    def sample(self, num_video_frames: int, rng: np.random.Generator) -> np.ndarray:
        """Training indices, int64 of shape (1 + num_siamese_clips, B); row 0 is the anchor clip."""
        length = _check_length(num_video_frames)
        stride = self.stride(length)
        anchor_start = min(int(rng.integers(0, max(1, length // 3))), self._last_start(length, stride))
        starts = np.concatenate([[anchor_start], anchor_start + self.siamese_offsets(length)])
        return self._clips(length, starts, stride)


class UniformClipSampler(ClipSampler):
    """The evaluation sampler: no random draw, no siamese clips. `sample` gives the ``num_clips`` evaluation clips
    of `sample_eval` (one: B frames spread uniformly over the video; more: dense clips), whatever ``rng``."""

    def __init__(self, num_frames: int | str = "auto", num_clips: int = 1, min_frames: int = 5,
                 max_frames: int = 16) -> None:
        super().__init__(num_frames, min_frames, max_frames)
        self.num_clips = _check_int("num_clips", num_clips, 1)

    def _settings(self) -> dict[str, Any]:
        return {"num_frames": self.num_frames, "num_clips": self.num_clips, "min_frames": self.min_frames,
                "max_frames": self.max_frames}

    def sample(self, num_video_frames: int, rng: np.random.Generator | None = None) -> np.ndarray:
        """The evaluation clips, int64 of shape (num_clips, B); ``rng`` is not used."""
        return self.sample_eval(num_video_frames, self.num_clips)


def clip_sampler_from_config(config: Any, train: bool, **overrides: Any) -> ClipSampler:
    """The clip sampler of a model or a video processor: in training a `SiameseSampler` (the anchor and
    ``num_siamese_clips`` siamese clips), else the `UniformClipSampler` of evaluation.

    ``config`` is anything with ``num_frames`` (None: "auto") and ``num_siamese_clips``: a ``SiaSamReaConfig`` (whose
    unset ``num_frames`` is its video transformer backbone's clip length, ``clip_num_frames``) or a
    ``SiaSamReaVideoProcessor``. ``overrides`` that are not None replace those two and may set ``min_frames``,
    ``max_frames`` and (training only) ``pace``.
    """
    num_frames = config.clip_num_frames() if hasattr(config, "clip_num_frames") else config.num_frames
    settings = {"num_frames": num_frames, "num_siamese_clips": config.num_siamese_clips}
    settings.update({name: value for name, value in overrides.items() if value is not None})
    num_frames, num_siamese_clips = settings.pop("num_frames"), settings.pop("num_siamese_clips")
    num_frames = "auto" if num_frames is None else num_frames
    if train:
        return SiameseSampler(num_frames, num_siamese_clips, **settings)
    settings.pop("pace", None)
    return UniformClipSampler(num_frames, **settings)
