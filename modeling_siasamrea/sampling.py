"""Siamese sampling (SiaSamRea §3.2): frame indices of an anchor clip and its nearby siamese clips.

Pure numpy; returns indices only; decoding lives in ``video_io``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SiameseSampler"]


def _check_int(name: str, value: object, minimum: int) -> int:
    """Return ``value`` as int if it is an integer (not a bool) >= ``minimum``, else raise ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_length(num_video_frames: int) -> int:
    """Validate a video length L (number of frames) and return it as int."""
    if isinstance(num_video_frames, bool) or not isinstance(num_video_frames, (int, np.integer)):
        raise ValueError(f"num_video_frames must be an integer, got {num_video_frames!r}")
    if num_video_frames <= 0:
        raise ValueError(f"num_video_frames must be > 0 (a video needs at least one frame), got {num_video_frames}")
    return int(num_video_frames)


class SiameseSampler:
    """Sample one anchor clip and ``num_siamese_clips`` nearby siamese clips of B frames from a video of L frames.

    Rules (design notes, "Siamese sampling"), with N = 1 + num_siamese_clips clips in total:

    * first third: the anchor start s is drawn uniformly from ``{0, ..., T - 1}`` with ``T = max(1, L // 3)``
      (lowered to the last valid start, defined below, in videos too short for a full clip from there);
    * stride: every clip of a video uses the same stride ``δ = max(1, (L - T) // max(1, B - 1))``,
      so a clip starting anywhere in the first third ends inside the video (``T - 1 + (B - 1)δ <= L - 1``);
    * pace: ``p = pace`` if given, else ``max(1, δ // N)`` (the N clips tile the gap between two anchor frames);
    * siamese clip k = 1..N-1 starts at ``s + o_k`` with offsets ``+p, -p, +2p, -2p, ...``
      (``o_k = ceil(k / 2) * p``, positive for odd k), clamped to ``[0, max(0, L - 1 - (B - 1)δ)]``
      so the whole clip stays inside the video with the same stride;
    * short videos (``L < B``, or too short for distinct offsets) repeat frames instead of failing:
      indices past the end are clipped to ``L - 1`` and clamped clips may coincide.

    ``num_frames="auto"`` picks ``B = clip(L // 8, min_frames, max_frames)``: one more frame per 8 video
    frames, monotone non-decreasing in L (L < 48 -> 5 frames, L >= 128 -> 16 frames with the defaults).

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
        self.min_frames = _check_int("min_frames", min_frames, 1)
        self.max_frames = _check_int("max_frames", max_frames, self.min_frames)
        if num_frames != "auto":
            num_frames = _check_int('num_frames (or "auto")', num_frames, 1)
        self.num_frames = num_frames
        self.num_siamese_clips = _check_int("num_siamese_clips", num_siamese_clips, 0)
        self.pace = None if pace is None else _check_int("pace (or None)", pace, 1)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(num_frames={self.num_frames!r}, num_siamese_clips={self.num_siamese_clips}, "
            f"min_frames={self.min_frames}, max_frames={self.max_frames}, pace={self.pace})"
        )

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

    def siamese_offsets(self, num_video_frames: int) -> np.ndarray:
        """Start offsets of the siamese clips relative to the anchor, before clamping: +p, -p, +2p, -2p, ..."""
        num_clips = 1 + self.num_siamese_clips
        pace = self.pace if self.pace is not None else max(1, self.stride(num_video_frames) // num_clips)
        k = np.arange(1, num_clips, dtype=np.int64)
        return (k + 1) // 2 * pace * np.where(k % 2 == 1, 1, -1)

    def _last_start(self, length: int, stride: int) -> int:
        """Largest start at which a clip with this stride still ends inside the video (0 if none does)."""
        return max(0, length - 1 - (self.frames_per_clip(length) - 1) * stride)

    def _clips(self, length: int, starts: np.ndarray, stride: int) -> np.ndarray:
        """(len(starts), B) indices: clamp each start so the clip fits, then clip indices into [0, L)."""
        starts = np.clip(np.asarray(starts, dtype=np.int64), 0, self._last_start(length, stride))
        indices = starts[:, None] + stride * np.arange(self.frames_per_clip(length), dtype=np.int64)
        return np.minimum(indices, length - 1)

    def sample(self, num_video_frames: int, rng: np.random.Generator) -> np.ndarray:
        """Training indices, int64 of shape (1 + num_siamese_clips, B); row 0 is the anchor clip."""
        length = _check_length(num_video_frames)
        stride = self.stride(length)
        anchor_start = min(int(rng.integers(0, max(1, length // 3))), self._last_start(length, stride))
        starts = np.concatenate([[anchor_start], anchor_start + self.siamese_offsets(length)])
        return self._clips(length, starts, stride)

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
