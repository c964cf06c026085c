"""The datasets ``load_videoqa`` knows, by name, and their builders: what loading and streaming (packing) share.

Names: ``msrvtt_qa``, ``msvd_qa``, ``activitynet_qa``, ``how2qa``, ``tgif_qa`` (one config per TGIF-QA task) and
``synthetic`` (configs ``open_ended``, the default, read as MSRVTT-QA, and one per TGIF-QA task, read as TGIF-QA;
generated into ``data_dir`` first if it is not there yet).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .builders import MSRVTTQA, MSVDQA, TGIF_TASKS, TGIFQA, ActivityNetQA, How2QA, VideoQABuilder
from .synthetic import MARKER_FILE, make_synthetic_videoqa

__all__ = ["BUILDERS", "DATASETS", "JOINT", "get_builder", "resolve_builder"]

BUILDERS: dict[str, type[VideoQABuilder]] = {
    "msrvtt_qa": MSRVTTQA,
    "msvd_qa": MSVDQA,
    "activitynet_qa": ActivityNetQA,
    "how2qa": How2QA,
    "tgif_qa": TGIFQA,
}
# synthetic config -> (builder, subfolder of the synthetic dataset, builder config)
_SYNTHETIC: dict[str, tuple[type[VideoQABuilder], str, str | None]] = {
    "open_ended": (MSRVTTQA, "msrvtt_qa", None),
    **{task: (TGIFQA, "tgif_qa", task) for task in TGIF_TASKS},
}
DATASETS: tuple[str, ...] = (*BUILDERS, "synthetic")  # every name load_videoqa knows
JOINT = "all"  # the config that gives every TGIF-QA task at once


def resolve_builder(name: str, config: str | None) -> tuple[type[VideoQABuilder], str | None, str]:
    """(builder class, builder config name, synthetic subfolder or "") for a dataset name and config."""
    if name == "synthetic":
        key = config or "open_ended"
        if key not in _SYNTHETIC:
            raise ValueError(f"unknown config {config!r} for synthetic; known: {sorted(_SYNTHETIC)}")
        builder_cls, subdir, builder_config = _SYNTHETIC[key]
        return builder_cls, builder_config, subdir
    if name not in BUILDERS:
        raise ValueError(f"unknown VideoQA dataset {name!r}; known: {', '.join(DATASETS)}")
    builder_cls = BUILDERS[name]
    configs = [c.name for c in builder_cls.BUILDER_CONFIGS]
    if config is None and len(configs) > 1:
        raise ValueError(f"{name} needs a config, one of {configs}")
    if config is not None and config not in configs:
        raise ValueError(f"unknown config {config!r} for {name}; known: {configs}")
    return builder_cls, config, ""


def get_builder(name: str, data_dir: str | os.PathLike, config: str | None = None,
                cache_dir: str | os.PathLike | None = None, **options: Any) -> VideoQABuilder:
    """The (unprepared) builder of a dataset; ``options`` are builder options (``answer_vocab_size``,
    ``min_video_frames``, ``video_dir``). For ``synthetic`` the data is generated first if missing."""
    builder_cls, builder_config, subdir = resolve_builder(name, config)
    data_dir = Path(data_dir)
    if name == "synthetic":
        if not (data_dir / MARKER_FILE).is_file():
            make_synthetic_videoqa(data_dir)
        data_dir = data_dir / subdir
    elif not data_dir.is_dir():
        raise FileNotFoundError(f"{name}: data_dir {data_dir} does not exist; see the docstring of "
                                f"datasets_scripts.builders.{builder_cls.__name__} for what to put there")
    return builder_cls(data_dir=str(data_dir), cache_dir=None if cache_dir is None else str(cache_dir),
                       config_name=builder_config, **options)
