"""On-the-fly sampling, decoding and processing of VideoQA examples, for ``Dataset.with_transform``.

    dataset = load_videoqa("msrvtt_qa", data_dir, "train")
    dataset = dataset.with_transform(VideoQATransform(processor, SiameseSampler(), train=True, task="open_ended"))

Each access samples fresh clip positions in training (the anchor and its siamese clips), or the deterministic
evaluation clip(s); decodes only those frames (only inside the How2QA ``[start, end]`` window when the example
has a ``start_frame``); and runs the processor. Examples are not padded to each other: the collator does that.
"""

from __future__ import annotations

import logging
import os
import zlib
from typing import Any

import numpy as np
import torch

from modeling_siasamrea.modeling_siasamrea import IGNORE_INDEX
from modeling_siasamrea.sampling import SiameseSampler
from modeling_siasamrea.video_io import VideoDecodeError, read_clips

from .builders import COUNT, MULTIPLE_CHOICE, TASKS

__all__ = ["VideoQATransform"]

logger = logging.getLogger(__name__)

TEXT_KEYS = ("input_ids", "attention_mask", "token_type_ids")


class VideoQATransform:
    """``__call__(batch) -> batch`` for ``datasets.Dataset.with_transform`` (works in DataLoader workers).

    Output per example: ``pixel_values`` float tensor (clips, frames, 3, S, S) -- in training 1 + the
    sampler's siamese clips with the anchor first, in evaluation ``num_eval_clips`` -- or None when the video
    could not be decoded (logged and counted in ``num_failed``; the collator drops the example);
    ``input_ids`` / ``attention_mask`` / ``token_type_ids`` LongTensors (L,) or, for multiple choice,
    (num_choices, L) padded only across the choices of that question; ``labels``: LongTensor() answer id
    (open-ended; -100, ignored by the loss, out of vocabulary) or index of the correct choice, FloatTensor() count for the count task;
    and the ``question_id`` / ``answer_type`` strings.

    Randomness: after ``set_epoch(epoch)`` (the training script's callback calls it at every epoch), each
    example's clips are a function of ``(seed, epoch, question_id)`` alone: fresh every epoch, and the same
    whatever the number of workers or processes, so a run resumed from a checkpoint sees the very clips of an
    uninterrupted one. Before any ``set_epoch``, a numpy Generator per process, seeded from ``seed`` (if given)
    and the DataLoader worker's torch seed (in a worker; it changes every epoch unless workers persist), else
    from ``torch.initial_seed()`` when ``seed`` is None: offsets are fresh at every access.

    If every one of the first ``min_failures_to_abort`` or more samples tried in a process failed, a
    RuntimeError is raised: the videos are most likely misconfigured, not a few corrupt files. The counters
    ``num_tried`` / ``num_failed`` are per process: each DataLoader worker counts on its own copy.
    """

    def __init__(
        self,
        processor: Any,
        sampler: SiameseSampler,
        train: bool,
        task: str,
        num_eval_clips: int = 1,
        max_length: int = 40,
        seed: int | None = None,
        min_failures_to_abort: int = 5,
    ) -> None:
        if task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {task!r}")
        if num_eval_clips < 1:
            raise ValueError(f"num_eval_clips must be >= 1, got {num_eval_clips}")
        self.processor = processor
        self.sampler = sampler
        self.train = train
        self.task = task
        self.num_eval_clips = num_eval_clips
        self.max_length = max_length
        self.seed = seed
        self.min_failures_to_abort = min_failures_to_abort
        self.num_tried = 0
        self.num_failed = 0
        self.epoch: int | None = None
        self._rng: np.random.Generator | None = None
        self._rng_key: tuple[int, int | None] | None = None

    def set_epoch(self, epoch: int) -> None:
        """Make training clips a function of (seed, epoch, question_id): reproducible and resume-exact."""
        self.epoch = epoch

    def _generator(self, question_id: str) -> np.random.Generator:
        """The example's keyed Generator once an epoch is set, else this process's (or worker's) stream."""
        if self.epoch is not None:
            return np.random.default_rng([self.seed or 0, self.epoch, zlib.crc32(question_id.encode())])
        worker = torch.utils.data.get_worker_info()
        key = (os.getpid(), None if worker is None else worker.seed)
        if self._rng is None or self._rng_key != key:
            entropy = [] if self.seed is None else [self.seed]
            if worker is not None:
                entropy.append(worker.seed)
            elif self.seed is None:
                entropy.append(torch.initial_seed())
            self._rng, self._rng_key = np.random.default_rng(entropy), key
        return self._rng

    def frame_indices(self, num_frames: int, start_frame: int = 0, question_id: str = "") -> np.ndarray:
        """(clips, frames) indices into the video file: siamese clips in training, evaluation clips otherwise."""
        if self.train:
            indices = self.sampler.sample(num_frames, self._generator(question_id))
        else:
            indices = self.sampler.sample_eval(num_frames, num_clips=self.num_eval_clips)
        return indices + start_frame

    def _pixel_values(self, video_path: str, indices: np.ndarray) -> torch.Tensor | None:
        """Decoded and processed clips, or None (logged, counted) if the video cannot be read."""
        self.num_tried += 1
        try:
            clips = read_clips(video_path, indices)
        except (VideoDecodeError, OSError) as error:
            self.num_failed += 1
            logger.warning("skipping an example of %s: %s (%d of %d videos failed so far in this process)",
                           video_path, error, self.num_failed, self.num_tried)
            if self.num_failed == self.num_tried >= self.min_failures_to_abort:
                raise RuntimeError(f"all {self.num_tried} videos tried so far failed to decode (last: "
                                   f"{video_path}: {error}); check the videos folder and the decoder") from error
            return None
        return self.processor(videos=[clips], return_tensors="pt")["pixel_values"][0]

    def _text(self, question: str, choices: list[str] | None) -> dict[str, torch.Tensor]:
        """Token ids of one question (or of its question-choice pairs), unpadded across examples."""
        encoding = self.processor(text=[question], choices=None if choices is None else [choices],
                                  max_length=self.max_length, padding="longest", return_tensors="pt")
        return {key: encoding[key][0].long() for key in TEXT_KEYS}

    def _label(self, example: dict[str, Any]) -> torch.Tensor:
        if self.task == COUNT:
            return torch.tensor(float(example["count"]), dtype=torch.float32)
        label = int(example["label"])  # -1: answer outside the vocabulary, ignored by the loss, counted wrong
        return torch.tensor(label if label >= 0 else IGNORE_INDEX, dtype=torch.long)

    def __call__(self, batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        """Transform a batch of examples (columns of lists) into model inputs (columns of lists)."""
        out: dict[str, list[Any]] = {key: [] for key in ("pixel_values", *TEXT_KEYS, "labels", "question_id",
                                                         "answer_type")}
        for i in range(len(batch["video_path"])):
            example = {key: values[i] for key, values in batch.items()}
            start_frame = int(example.get("start_frame") or 0)
            indices = self.frame_indices(int(example["num_frames"]), start_frame, str(example["question_id"]))
            out["pixel_values"].append(self._pixel_values(example["video_path"], indices))
            choices = example["choices"] if self.task == MULTIPLE_CHOICE else None
            for key, value in self._text(example["question"], choices).items():
                out[key].append(value)
            out["labels"].append(self._label(example))
            out["question_id"].append(example["question_id"])
            out["answer_type"].append(example["answer_type"])
        return out
