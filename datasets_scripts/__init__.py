"""Dataset builders for the SiaSamRea benchmarks and the synthetic VideoQA generator."""

from .builders import (
    MSRVTTQA,
    MSVDQA,
    TGIF_TASKS,
    TGIFQA,
    ActivityNetQA,
    How2QA,
    VideoQABuilder,
    VideoQAConfig,
    build_answer_vocab,
)
from .loading import (
    VideoQATaskInfo,
    align_answer_labels,
    dataset_info,
    dataset_task,
    dataset_tasks,
    drop_short_videos,
    load_answer_vocab,
    load_videoqa,
    select_answer_types,
)
from .registry import BUILDERS, DATASETS, JOINT, get_builder
from .synthetic import make_synthetic_videoqa
from .transforms import ReplaceUnreadableVideos, VideoQATransform

__all__ = [
    "BUILDERS",
    "DATASETS",
    "JOINT",
    "MSRVTTQA",
    "MSVDQA",
    "TGIFQA",
    "TGIF_TASKS",
    "ActivityNetQA",
    "How2QA",
    "ReplaceUnreadableVideos",
    "VideoQABuilder",
    "VideoQAConfig",
    "VideoQATaskInfo",
    "VideoQATransform",
    "align_answer_labels",
    "build_answer_vocab",
    "dataset_info",
    "dataset_task",
    "dataset_tasks",
    "drop_short_videos",
    "get_builder",
    "load_answer_vocab",
    "load_videoqa",
    "make_synthetic_videoqa",
    "select_answer_types",
]
