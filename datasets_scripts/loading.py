"""One entry point for every VideoQA dataset: ``load_videoqa(name, data_dir, split, config)``.

Names: ``msrvtt_qa``, ``msvd_qa``, ``activitynet_qa``, ``how2qa``, ``tgif_qa`` (configs ``action``,
``transition``, ``frameqa``, ``count``, and ``all``: the four together) and ``synthetic`` (configs ``open_ended``
(default, read as MSRVTT-QA), ``frameqa``, ``action``, ``transition``, ``count`` and ``all`` (read as TGIF-QA);
generated into ``data_dir`` first if it is not there yet).

``config="all"`` gives the paper's joint TGIF-QA data: the four tasks' examples in one dataset with a ``task``
column (``action``, ``transition``, ``frameqa``, ``count``) and the union of their columns (``choices`` is empty and
``label`` -1 where a task has none, ``count`` is -1 outside the count task); ``dataset_tasks`` names each task's type.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import datasets

from modeling_siasamrea.tasks import get_task_type

from .builders import TGIF_TASKS
from .registry import JOINT, get_builder, resolve_builder
from .streaming import load_videoqa_shards

__all__ = [
    "VideoQATaskInfo",
    "align_answer_labels",
    "dataset_info",
    "dataset_task",
    "dataset_tasks",
    "drop_short_videos",
    "load_answer_vocab",
    "load_videoqa",
    "select_answer_types",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class VideoQATaskInfo:
    """What a model needs to know about a dataset: ``task``, its task type (open_ended, multiple_choice, count: the
    registry of :mod:`modeling_siasamrea.tasks`) and, for a type that takes choices, the number per question."""

    task: str
    num_choices: int | None = None


def dataset_info(name: str, config: str | None = None) -> VideoQATaskInfo:
    """Task type (and number of choices) of a dataset/config, without reading any file."""
    builder_cls, builder_config, _ = resolve_builder(name, config)
    by_name = {c.name: c for c in builder_cls.BUILDER_CONFIGS}
    task = by_name[builder_config or builder_cls.BUILDER_CONFIGS[0].name].task
    return VideoQATaskInfo(task, builder_cls.NUM_CHOICES if get_task_type(task).takes_choices else None)


def dataset_task(name: str, config: str | None = None) -> str:
    """``dataset_info(name, config).task``: "open_ended", "multiple_choice" or "count"."""
    if config == JOINT:
        raise ValueError(f"{name} config {JOINT!r} holds several tasks: see dataset_tasks()")
    return dataset_info(name, config).task


def dataset_tasks(name: str, config: str | None = None) -> dict[str, str] | None:
    """``{task name: task type}`` of a joint dataset (``config="all"``), None for a single-task one."""
    if config != JOINT:
        dataset_info(name, config)  # unknown dataset or config: ValueError
        return None
    if name not in ("tgif_qa", "synthetic"):
        raise ValueError(f"config {JOINT!r} (every TGIF-QA task at once) is for tgif_qa and synthetic, not {name}")
    return {task: dataset_info(name, task).task for task in TGIF_TASKS}


def _load_joint(name: str, data_dir: str | os.PathLike, split: str, **kwargs: Any) -> datasets.Dataset:
    """The four TGIF-QA tasks' examples of one split in one dataset, with a ``task`` column (see the module)."""
    parts = {task: load_videoqa(name, data_dir, split, config=task, **kwargs) for task in TGIF_TASKS}
    features = datasets.Features({"task": datasets.Value("string")})
    for part in parts.values():
        features.update(part.features)
    filler: dict[str, Any] = {}
    for task_type in {task: get_task_type(task) for task in dataset_tasks(name, JOINT).values()}.values():
        features.update(datasets.Features.from_dict(task_type.features()))  # an open-ended label: int64, no names
        filler.update(task_type.filler())

    def unify(task: str, part: datasets.Dataset) -> datasets.Dataset:
        missing = {column: value for column, value in filler.items() if column not in part.column_names}
        return part.map(lambda _: {"task": task, **missing}, features=features, desc=f"{task} into the joint set")

    return datasets.concatenate_datasets([unify(task, part) for task, part in parts.items()])


def load_videoqa(name: str, data_dir: str | os.PathLike, split: str, config: str | None = None,
                 cache_dir: str | os.PathLike | None = None, streaming: bool = False,
                 **options: Any) -> datasets.Dataset | datasets.IterableDataset:
    """Build (once, cached) and return one split of a VideoQA dataset as a ``datasets.Dataset``.

    Columns are described in :mod:`datasets_scripts.builders`; for open-ended datasets
    ``dataset.features["label"].names`` is the answer vocabulary (``id2label``). ``num_proc`` (an option) probes the
    videos in that many processes.

    ``streaming=True``: ``data_dir`` is a folder of tar shards written by ``siasamrea pack``, read as a
    ``datasets.IterableDataset`` of questions that carry their video's bytes (:mod:`datasets_scripts.streaming`);
    builder options were fixed when packing.
    """
    if streaming:
        if options:
            raise ValueError(f"builder options {sorted(options)} apply when packing (siasamrea pack), not when "
                             "streaming the shards")
        return load_videoqa_shards(data_dir, split, name=name, config=config)
    if config == JOINT:
        dataset_tasks(name, config)  # only TGIF-QA has tasks to join
        return _load_joint(name, data_dir, split, cache_dir=cache_dir, **options)
    builder = get_builder(name, data_dir, config=config, cache_dir=cache_dir, **options)
    builder.download_and_prepare()
    splits = list(builder.info.splits or {})
    if split not in splits:
        raise ValueError(f"{name}: no split {split!r} in {builder.config.data_dir}; available: {splits}")
    return builder.as_dataset(split=split)


def select_answer_types(dataset: datasets.Dataset, answer_types: list[str] | tuple[str, ...]) -> datasets.Dataset:
    """The questions of ``dataset`` whose ``answer_type`` is one of ``answer_types`` (e.g. TGIF-QA FrameQA's
    object/number/color/location, MSRVTT-QA's what/who/how/when/where); ``["all"]`` keeps every question.
    Raises if none is left."""
    wanted = set(answer_types)
    if "all" in wanted:
        return dataset
    selected = dataset.filter(lambda types: [t in wanted for t in types], input_columns="answer_type", batched=True)
    if len(selected) == 0:
        raise ValueError(f"no question with answer_type in {sorted(wanted)}; this split has "
                         f"{sorted(set(dataset['answer_type']))} ('all' keeps every question)")
    return selected


def load_answer_vocab(name: str, data_dir: str | os.PathLike, config: str | None = None,
                      **options: Any) -> dict[str, int]:
    """Open-ended answer vocabulary ``{answer: id}`` (top-K train answers, K = ``answer_vocab_size``) of a dataset,
    read from its train annotations; ``{}`` for multiple-choice and count datasets. The same list is in
    ``load_videoqa(...).features["label"].names``."""
    if not get_task_type(dataset_info(name, config).task).has_vocabulary:
        return {}
    return dict(get_builder(name, data_dir, config=config, **options).answer_vocab)



def align_answer_labels(dataset: datasets.Dataset | datasets.IterableDataset, label2id: dict[str, int],
                        task: str | None = None) -> tuple[datasets.Dataset | datasets.IterableDataset, int | None]:
    """Open-ended ``label`` ids re-read from each example's ``answer`` text in a model's vocabulary ``label2id``.

    The dataset's own ids index its top-K train answers, which a saved model may order differently or not know:
    scoring those ids against the model's outputs would name answers wrongly. Answers outside ``label2id`` get -1
    (ignored by the loss, counted wrong). With ``task`` (a joint dataset) only that task's rows are re-read.
    Returns the dataset (for a single-task dataset ``features["label"].names`` is the model's vocabulary) and how
    many of the re-read answers the model does not know (None for a stream, which is not read here).
    """
    names = sorted(label2id, key=label2id.get)
    label_feature = dataset.features["label"]
    streamed = isinstance(dataset, datasets.IterableDataset)
    if task is None and getattr(label_feature, "names", None) == names:  # the dataset's vocabulary is the model's
        return dataset, None if streamed else sum(label < 0 for label in dataset["label"])
    features = dataset.features.copy()
    if task is None:
        features["label"] = datasets.ClassLabel(names=names)

    def read(batch: dict[str, list]) -> dict[str, list[int]]:
        tasks = batch["task"] if task is not None else [None] * len(batch["answer"])
        return {"label": [label2id.get(answer, -1) if row_task == task else label
                          for answer, label, row_task in zip(batch["answer"], batch["label"], tasks)]}

    if streamed:
        return dataset.map(read, batched=True, features=features), None
    aligned = dataset.map(read, batched=True, features=features, desc="answers -> the model's answer ids")
    tasks = aligned["task"] if task is not None else [None] * len(aligned)
    return aligned, sum(label < 0 for label, row_task in zip(aligned["label"], tasks) if row_task == task)


def drop_short_videos(dataset: datasets.Dataset, min_video_frames: int) -> datasets.Dataset:
    """The examples whose video (or How2QA window) has at least ``min_video_frames`` frames, with a log line of how
    many were dropped (the paper's TGIF-QA pretraining uses 40, on the training split only)."""
    if min_video_frames <= 0:
        return dataset
    kept = dataset.filter(lambda frames: [n >= min_video_frames for n in frames], input_columns="num_video_frames",
                          batched=True, desc=f"videos of >= {min_video_frames} frames")
    dropped_videos = len(set(dataset["video_path"])) - len(set(kept["video_path"]))
    logger.warning("min_video_frames=%d: dropped %d of %d examples (%d videos) with shorter videos", min_video_frames,
                   len(dataset) - len(kept), len(dataset), dropped_videos)
    if len(kept) == 0:
        raise ValueError(f"no example has a video of at least min_video_frames={min_video_frames} frames")
    return kept
