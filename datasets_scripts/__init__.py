"""Dataset builders for the SiaSamRea benchmarks and the synthetic VideoQA generator."""

from .builders import (
    TASKS,
    ActivityNetQA,
    How2QA,
    MSRVTTQA,
    MSVDQA,
    TGIFQA,
    VideoQABuilder,
    VideoQAConfig,
    build_answer_vocab,
)
from .loading import (
    BUILDERS,
    DATASETS,
    VideoQATaskInfo,
    dataset_info,
    dataset_task,
    get_builder,
    load_answer_vocab,
    load_videoqa,
)
from .synthetic import make_synthetic_videoqa
from .transforms import VideoQATransform

__all__ = [
    "BUILDERS",
    "DATASETS",
    "TASKS",
    "ActivityNetQA",
    "How2QA",
    "MSRVTTQA",
    "MSVDQA",
    "TGIFQA",
    "VideoQABuilder",
    "VideoQAConfig",
    "VideoQATaskInfo",
    "VideoQATransform",
    "build_answer_vocab",
    "dataset_info",
    "dataset_task",
    "get_builder",
    "load_answer_vocab",
    "load_videoqa",
    "make_synthetic_videoqa",
]
