"""On-the-fly sampling, decoding and processing of VideoQA examples, for ``Dataset.with_transform``.

    dataset = load_videoqa("msrvtt_qa", data_dir, "train")
    dataset = dataset.with_transform(VideoQATransform(processor, SiameseSampler(), train=True, task="open_ended"))

Each access samples fresh clip positions in training (the anchor and its siamese clips), or the deterministic
evaluation clip(s); decodes only those frames (only inside the How2QA ``[start, end]`` window when the example
has a ``start_frame``), already scaled to the model's size by the decoder; and tokenizes the text. Frames stay
uint8 (a quarter of float32, and unpadded): the collator pads a batch and the model's device normalises it
(``SiaSamReaImageProcessor.pixel_values_from_frames``, which the trainer calls), as ClipBERT did on the GPU.
Rows of a streamed dataset (``datasets_scripts.streaming``) carry their video's bytes in ``video``.
"""

from __future__ import annotations

import io
import logging
import os
import zlib
from collections import defaultdict, deque
from typing import Any

import numpy as np
import torch

from modeling_siasamrea.image_processing_siasamrea import JpegFrames
from modeling_siasamrea.sampling import ClipSampler
from modeling_siasamrea.tasks import TaskType, get_task_type
from modeling_siasamrea.video_io import VideoBytes, VideoDecodeError, read_clips, read_jpeg_frames

__all__ = ["ReplaceUnreadableVideos", "SharedEpoch", "VideoQATransform"]

logger = logging.getLogger(__name__)

TEXT_KEYS = ("input_ids", "attention_mask", "token_type_ids")
_REPORT_FILES = 5


class SharedEpoch:
    """An epoch number that DataLoader workers read from shared memory: ``set_epoch`` in the main process reaches the
    copies of persistent workers too (as ``datasets`` shares an ``IterableDataset``'s epoch). ``value`` is None until
    the first ``set_epoch``."""

    def __init__(self) -> None:
        self._value = torch.tensor(-1).share_memory_()

    @property
    def value(self) -> int | None:
        value = int(self._value)
        return None if value < 0 else value

    def set_epoch(self, epoch: int) -> None:
        self._value.fill_(epoch)


class VideoQATransform:
    """``__call__(batch) -> batch`` for ``datasets.Dataset.with_transform`` (works in DataLoader workers).

    Output per example: ``pixel_values`` uint8 tensor (clips, frames, 3, h, w), the longer side of (h, w) the
    processor's ``max_image_size`` -- in training 1 + the sampler's siamese clips with the anchor first, in
    evaluation ``num_eval_clips``; with ``decode_on_device``, the clips' frames undecoded instead
    (:class:`~modeling_siasamrea.image_processing_siasamrea.JpegFrames`: each distinct frame's JPEG once, for videos
    stored as JPEG frames), which the trainer decodes on the accelerator. A video that cannot be
    decoded is logged and counted in ``num_failed``; in training its ``pixel_values`` is None
    (:class:`ReplaceUnreadableVideos` draws another example in its place), in evaluation it is a blank clip and
    the label is -100, so the question stays in the evaluated set and counts as wrong (``unreadable`` is True);
    ``input_ids`` / ``attention_mask`` / ``token_type_ids`` LongTensors (L,) or, for multiple choice,
    (num_choices, L) padded only across the choices of that question; ``labels``: LongTensor() answer id
    (open-ended; -100, ignored by the loss, out of vocabulary) or index of the correct choice, FloatTensor() count for
    the count task (the task type's ``label``); the ``question_id`` / ``answer_type`` / ``video_path`` strings, the
    ``unreadable`` flag and ``task`` (the row's task in a joint dataset, else None).

    ``task`` is the task type of every row (``"open_ended"``, ``"multiple_choice"``, ``"count"``), or, for a joint
    dataset (``load_videoqa(..., config="all")``), ``{task name: task type}`` read through each row's ``task``.

    Randomness: after ``set_epoch(epoch)`` (the training script's callback calls it at every epoch), each
    example's clips are a function of ``(seed, epoch, question_id)`` alone: fresh every epoch, and the same
    whatever the number of workers or processes, so a run resumed from a checkpoint sees the very clips of an
    uninterrupted one. The epoch lives in shared memory (:class:`SharedEpoch`), so it reaches persistent DataLoader
    workers too. Before any ``set_epoch``, a numpy Generator per process, seeded from ``seed`` (if given)
    and the DataLoader worker's torch seed (in a worker; it changes every epoch unless workers persist), else
    from ``torch.initial_seed()`` when ``seed`` is None: offsets are fresh at every access.

    A RuntimeError naming the last failed files is raised when the failures say the data is misconfigured
    rather than a few corrupt files: every one of the first ``min_failures_to_abort`` (or more) videos tried in a
    process failed, or more than ``max_failure_rate`` of the last ``failure_window`` did. The counters
    ``num_tried`` / ``num_failed`` are per process: each DataLoader worker counts on its own copy.
    """

    def __init__(
        self,
        processor: Any,
        sampler: ClipSampler,
        train: bool,
        task: str | dict[str, str],
        num_eval_clips: int = 1,
        max_length: int = 40,
        seed: int | None = None,
        min_failures_to_abort: int = 5,
        max_failure_rate: float = 0.5,
        failure_window: int = 200,
        decode_on_device: bool = False,
    ) -> None:
        self.task_types = {name: get_task_type(kind) for name, kind in task.items()} if isinstance(task, dict) else None
        self.task_type = get_task_type(task) if isinstance(task, str) else None
        if num_eval_clips < 1:
            raise ValueError(f"num_eval_clips must be >= 1, got {num_eval_clips}")
        self.processor = processor
        self.sampler = sampler
        self.train = train
        self.num_eval_clips = num_eval_clips
        self.max_length = max_length
        self.seed = seed
        self.min_failures_to_abort = min_failures_to_abort
        self.max_failure_rate = max_failure_rate
        self.decode_on_device = decode_on_device
        self.num_tried = 0
        self.num_failed = 0
        self._recent: deque[str | None] = deque(maxlen=failure_window)  # failed path, or None for a success
        self._epoch = SharedEpoch()
        self._rng: np.random.Generator | None = None
        self._rng_key: tuple[int, int | None] | None = None

    @property
    def epoch(self) -> int | None:
        return self._epoch.value

    def set_epoch(self, epoch: int) -> None:
        """Make training clips a function of (seed, epoch, question_id): reproducible and resume-exact."""
        self._epoch.set_epoch(epoch)

    def _generator(self, question_id: str) -> np.random.Generator:
        """The example's keyed Generator once an epoch is set, else this process's (or worker's) stream."""
        epoch = self.epoch
        if epoch is not None:
            return np.random.default_rng([self.seed or 0, epoch, zlib.crc32(question_id.encode())])
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

    def frame_indices(self, num_video_frames: int, start_frame: int = 0, question_id: str = "") -> np.ndarray:
        """(clips, frames) indices into the video file: siamese clips in training, evaluation clips otherwise."""
        if self.train:
            indices = self.sampler.sample(num_video_frames, self._generator(question_id))
        else:
            indices = self.sampler.sample_eval(num_video_frames, num_eval_clips=self.num_eval_clips)
        return indices + start_frame

    def _pixel_values(self, video: str | VideoBytes, indices: np.ndarray) -> torch.Tensor | JpegFrames | None:
        """The clips' frames, decoded at the model's size, as uint8 `(clips, frames, 3, h, w)` (with
        ``decode_on_device``: undecoded, as JpegFrames); or None (logged, counted) if the video cannot be read."""
        video_path = str(video)
        self.num_tried += 1
        try:
            if self.decode_on_device:
                jpegs, positions = read_jpeg_frames(video, indices)
            else:
                clips = read_clips(video, indices, max_size=self.processor.image_processor.max_image_size)
        except (VideoDecodeError, OSError) as error:
            self.num_failed += 1
            self._recent.append(video_path)
            logger.warning("could not decode %s: %s (%d of %d videos failed so far in this process)",
                           video_path, error, self.num_failed, self.num_tried)
            self._check_failure_rate(error)
            return None
        self._recent.append(None)
        if self.decode_on_device:
            return JpegFrames(jpegs, torch.from_numpy(positions))
        # (clips, frames, h, w, 3) -> (clips, frames, 3, h, w)
        return torch.from_numpy(clips).permute(0, 1, 4, 2, 3).contiguous()

    def _check_failure_rate(self, error: Exception) -> None:
        """Raise when the failures point at misconfigured data rather than a few corrupt files."""
        failed = [path for path in self._recent if path is not None]
        if self.num_failed == self.num_tried >= self.min_failures_to_abort:
            reason = f"all {self.num_tried} videos tried so far failed to decode"
        elif len(self._recent) == self._recent.maxlen and len(failed) > self.max_failure_rate * len(self._recent):
            reason = (f"{len(failed)} of the last {len(self._recent)} videos failed to decode (more than "
                      f"max_failure_rate={self.max_failure_rate})")
        else:
            return
        raise RuntimeError(f"{reason}; last failures: {failed[-_REPORT_FILES:]} (last error: {error}); check the "
                           "videos folder and the decoder") from error

    def _blank_clips(self, num_video_frames: int) -> torch.Tensor | JpegFrames:
        """Stand-in `pixel_values` of an unreadable evaluation video: zeros shaped like its clips would be (with
        ``decode_on_device``, one black JPEG frame in every place)."""
        size = self.processor.image_processor.max_image_size
        shape = (self.num_eval_clips, self.sampler.frames_per_clip(num_video_frames))
        if self.decode_on_device:
            return JpegFrames([_black_jpeg(size)], torch.zeros(shape, dtype=torch.long))
        return torch.zeros(*shape, 3, size, size, dtype=torch.uint8)

    def _text(self, question: str, choices: list[str] | None) -> dict[str, torch.Tensor]:
        """Token ids of one question (or of its question-choice pairs), unpadded across examples."""
        encoding = self.processor(text=[question], choices=None if choices is None else [choices],
                                  max_length=self.max_length, padding="longest", return_tensors="pt")
        return {key: encoding[key][0].long() for key in TEXT_KEYS}

    def _task_type(self, example: dict[str, Any]) -> TaskType:
        """The task type of a row: the transform's, or that of the row's task in a joint dataset."""
        if self.task_types is None:
            return self.task_type
        if example.get("task") not in self.task_types:
            raise ValueError(f"a row of task {example.get('task')!r}, "
                             f"but this transform knows {sorted(self.task_types)}")
        return self.task_types[example["task"]]

    def __call__(self, batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        """Transform a batch of examples (columns of lists) into model inputs (columns of lists)."""
        out: dict[str, list[Any]] = {key: [] for key in ("pixel_values", *TEXT_KEYS, "labels", "question_id",
                                                         "answer_type", "video_path", "unreadable", "task")}
        for i in range(len(batch["video_path"])):
            example = {key: values[i] for key, values in batch.items()}
            start_frame = int(example.get("start_frame") or 0)
            indices = self.frame_indices(int(example["num_video_frames"]), start_frame, str(example["question_id"]))
            video = VideoBytes(example["video"], example["video_path"]) if "video" in example else example["video_path"]
            pixel_values = self._pixel_values(video, indices)
            task_type = self._task_type(example)
            label = task_type.label(example)  # -1 in the data: an unknown answer, ignored by the loss, counted wrong
            unreadable = pixel_values is None
            if unreadable and not self.train:  # kept, and counted wrong: the evaluated question set never shrinks
                pixel_values = self._blank_clips(int(example["num_video_frames"]))
                label = task_type.unanswerable(label)
            out["pixel_values"].append(pixel_values)
            choices = example["choices"] if task_type.takes_choices else None
            for key, value in self._text(example["question"], choices).items():
                out[key].append(value)
            out["labels"].append(label)
            out["unreadable"].append(unreadable)
            out["task"].append(example.get("task"))
            for key in ("question_id", "answer_type", "video_path"):
                out[key].append(example[key])
        return out


def _black_jpeg(size: int) -> bytes:
    """A black `size` x `size` JPEG (it decodes to zeros)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (size, size)).save(buffer, format="JPEG")
    return buffer.getvalue()


class ReplaceUnreadableVideos(torch.utils.data.Dataset):
    """Training examples whose video fails to decode are replaced by another example, never dropped.

    A batch keeps its size and every process takes the same number of steps (DDP cannot hang on a short rank). The
    replacement of index i is drawn from ``(seed, epoch, i, attempt)`` alone, so a resumed run replaces exactly as an
    uninterrupted one, and among the examples that share i's ``group_keys`` entry (its task, its clip length) when
    batches are grouped. Each example carries ``num_replaced``, the number of unreadable videos it stands in for (the
    trainer sums and logs them). Whether to abort is the transform's call (its failure-rate rule); as a last guard,
    ``max_attempts`` failures in a row for one index raise, naming the files.

    Args:
        dataset: a ``datasets.Dataset`` with a training :class:`VideoQATransform` (or anything whose items have
            ``pixel_values`` None when their video failed, and a ``video_path``).
        seed: seed of the replacement draws.
        group_keys: one key per example; a replacement has its example's key.
    """

    def __init__(self, dataset: Any, seed: int = 0, max_attempts: int = 20, group_keys: list | None = None) -> None:
        self.dataset = dataset
        self.seed = seed
        self.max_attempts = max_attempts
        self.group_keys = group_keys
        self.members = None  # key -> the sorted indices of its examples, found once
        if group_keys is not None:
            groups: dict[Any, list[int]] = defaultdict(list)
            for i, key in enumerate(group_keys):
                groups[key].append(i)
            self.members = {key: np.asarray(indices) for key, indices in groups.items()}
        self._epoch = SharedEpoch()  # reaches persistent DataLoader workers

    @property
    def epoch(self) -> int:
        return self._epoch.value or 0

    def set_epoch(self, epoch: int) -> None:
        self._epoch.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.dataset)

    def replacement_index(self, index: int, attempt: int) -> int:
        """The example drawn in place of ``index`` after ``attempt`` failures: another one of its group if there is."""
        members = None if self.members is None else self.members[self.group_keys[index]]
        size = len(self.dataset) if members is None else len(members)
        if size == 1:
            return index
        position = index if members is None else int(np.searchsorted(members, index))
        draw = int(np.random.default_rng([self.seed, self.epoch, index, attempt]).integers(size - 1))
        draw += draw >= position  # skip the example itself
        return draw if members is None else int(members[draw])

    def __getitem__(self, index: int) -> dict[str, Any]:
        example, failed = self.dataset[index], []
        while example["pixel_values"] is None:
            failed.append(example["video_path"])
            if len(failed) >= self.max_attempts:
                raise RuntimeError(f"{len(failed)} videos in a row failed to decode while replacing training example "
                                   f"{index}: {failed[:_REPORT_FILES]}; check the videos folder and the decoder")
            example = self.dataset[self.replacement_index(index, len(failed))]
        return {**example, "num_replaced": len(failed)}
