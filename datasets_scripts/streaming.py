"""Tar shards of a prepared VideoQA dataset, for training that streams its data instead of reading a videos folder.

``siasamrea pack NAME DATA_DIR OUTPUT_DIR`` (:func:`pack_videoqa`) writes, per split, WebDataset tar shards::

    OUTPUT_DIR/siasamrea_shards.json             # dataset name and config, features, the shards of each split
    OUTPUT_DIR/<split>/<split>-00000.tar ...     # one sample per video: <key>.video + <key>.json

A sample holds a video once: ``<key>.video`` is the video file's bytes, ``<key>.json`` is ``{"video_path": its path
relative to the data dir, "examples": [its questions, with every column of the prepared dataset but video_path]}``.
Videos are put in shards in a seeded random order, so each shard is a random subset of the videos.

``load_videoqa(NAME, OUTPUT_DIR, split, streaming=True)`` (:func:`load_videoqa_shards`) reads them with the
``datasets`` WebDataset loader as an ``IterableDataset`` of questions: the prepared dataset's columns (``video_path``
relative) plus ``video``, the bytes of its video. Then, as for any ``IterableDataset``:

* ``split_dataset_by_node(stream, rank, world_size)`` gives each process its own shards (every process reads every
  shard and keeps 1 question in ``world_size`` when the shards do not divide evenly);
* a DataLoader's workers read disjoint shards (pack at least processes x workers shards), so every question is seen
  once per epoch;
* ``stream.state_dict()`` / ``load_state_dict()`` resume at the question where it stopped (re-reading only the video
  it was in); ``stream.shuffle(seed, buffer_size)`` shuffles the shards' order and a buffer of questions (a resumed
  run restarts with an empty buffer).

:class:`~datasets_scripts.transforms.VideoQATransform` reads each video of such a stream from its bytes (the ``video``
column): the same siamese sampling, decoding and tokenizing as from the folder, so with the same seed and epoch a
question from the shards gives the very inputs it gives from the folder::

    transform = VideoQATransform(processor, sampler, train=True, task="open_ended", seed=0)
    inputs = stream.map(transform, batched=True, batch_size=1, remove_columns=stream.column_names)
"""

from __future__ import annotations

import io
import json
import logging
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import datasets
import numpy as np
from datasets.utils.py_utils import convert_file_size_to_int


from .loading import get_builder

__all__ = ["INDEX_FILE", "load_videoqa_shards", "pack_split", "pack_videoqa", "read_shards_split"]

logger = logging.getLogger(__name__)

INDEX_FILE = "siasamrea_shards.json"
_FORMAT = 1


def _add_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    """Add ``data`` as file ``name`` (fixed mtime and owner: the same dataset packs to the same bytes)."""
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644
    tar.addfile(info, io.BytesIO(data))


def pack_split(dataset: datasets.Dataset, split_dir: str | os.PathLike, data_dir: str | os.PathLike,
               max_shard_size: int | str = "1GB", num_shards: int | None = None, seed: int | None = 0) -> list[dict]:
    """Write one split of a prepared dataset (absolute ``video_path``, as ``load_videoqa`` returns it) as tar shards in
    ``split_dir``: one sample per video, its questions beside it (see the module docstring).

    Shards hold at most ``max_shard_size`` bytes of videos (a video larger than that gets a shard of its own), or,
    with ``num_shards``, the videos are dealt round-robin into exactly that many. ``seed`` shuffles the videos before
    (None keeps the dataset's order). Returns ``[{"file", "num_videos", "num_examples", "num_bytes"}]`` per shard.
    """
    split_dir = Path(split_dir)
    by_video: dict[str, list[int]] = {}
    for row, path in enumerate(dataset["video_path"]):
        by_video.setdefault(path, []).append(row)
    videos = list(by_video)
    if seed is not None:
        videos = [videos[i] for i in np.random.default_rng(seed).permutation(len(videos))]
    for path in videos:
        if not os.path.isfile(path):
            kind = "a frame folder" if os.path.isdir(path) else "missing"
            raise ValueError(f"pack stores video files; {path} is {kind} (encode frame folders as videos first, e.g. "
                             "with modeling_siasamrea.video_io.write_video)")
    if num_shards is not None:
        if not 1 <= num_shards <= len(videos):
            raise ValueError(f"num_shards must be in [1, {len(videos)}] (the number of videos), got {num_shards}")
        groups = [videos[i::num_shards] for i in range(num_shards)]
    else:
        limit, groups, size = convert_file_size_to_int(max_shard_size), [[]], 0
        for path in videos:
            if groups[-1] and size + os.path.getsize(path) > limit:
                groups.append([])
                size = 0
            groups[-1].append(path)
            size += os.path.getsize(path)
    rows = dataset.select_columns([c for c in dataset.column_names if c != "video_path"]).to_list()
    split_dir.mkdir(parents=True, exist_ok=True)
    name = split_dir.name
    shards, key = [], 0
    for number, group in enumerate(groups):
        file = f"{name}-{number:05d}.tar"
        tmp = split_dir / f".{file}.tmp"
        num_examples = num_bytes = 0
        with tarfile.open(tmp, "w") as tar:
            for path in group:
                questions = [rows[row] for row in by_video[path]]
                relative = os.path.relpath(path, data_dir)
                data = Path(path).read_bytes()
                _add_member(tar, f"{key:07d}.video", data)
                meta = {"video_path": relative, "examples": questions}
                _add_member(tar, f"{key:07d}.json", json.dumps(meta).encode())
                key, num_examples, num_bytes = key + 1, num_examples + len(questions), num_bytes + len(data)
        os.replace(tmp, split_dir / file)
        shards.append({"file": f"{name}/{file}", "num_videos": len(group), "num_examples": num_examples,
                       "num_bytes": num_bytes})
    return shards


def pack_videoqa(name: str, data_dir: str | os.PathLike, output_dir: str | os.PathLike, config: str | None = None,
                 splits: list[str] | None = None, max_shard_size: int | str = "1GB", num_shards: int | None = None,
                 seed: int | None = 0, cache_dir: str | os.PathLike | None = None, num_proc: int | None = None,
                 **options: Any) -> Path:
    """Build a dataset from its folder (as ``load_videoqa``; ``options`` are builder options) and write ``splits``
    (default: all) as tar shards with their index into ``output_dir`` (see :func:`pack_split`); return the index."""
    builder = get_builder(name, data_dir, config=config, cache_dir=cache_dir, **options)
    builder.download_and_prepare(num_proc=num_proc)
    available = list(builder.info.splits or {})
    unknown = sorted(set(splits or ()) - set(available))
    if unknown:
        raise ValueError(f"{name}: no split {unknown} in {builder.config.data_dir}; available: {available}")
    output_dir = Path(output_dir)
    index: dict[str, Any] = {"format": _FORMAT, "dataset_name": name, "config": config, "features": None, "splits": {}}
    for split in splits or available:
        dataset = builder.as_dataset(split=split)
        index["features"] = dataset.features.to_dict()
        shards = pack_split(dataset, output_dir / split, builder.data_path, max_shard_size, num_shards, seed)
        index["splits"][split] = {"shards": shards, "num_examples": len(dataset),
                                  "num_videos": sum(shard["num_videos"] for shard in shards)}
        logger.warning("%s/%s: %d questions, %d videos in %d shards under %s", name, split, len(dataset),
                       index["splits"][split]["num_videos"], len(shards), output_dir / split)
    path = output_dir / INDEX_FILE
    path.write_text(json.dumps(index, indent=1) + "\n", encoding="utf-8")
    return path


def _read_index(shards_dir: Path) -> dict[str, Any]:
    path = shards_dir / INDEX_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{shards_dir} has no {INDEX_FILE}: write the shards with `siasamrea pack NAME "
                                f"DATA_DIR {shards_dir}` (streaming=True reads shards, not a videos folder)")
    index = json.loads(path.read_text(encoding="utf-8"))
    if index.get("format") != _FORMAT:
        raise ValueError(f"{path}: unknown shard index format {index.get('format')!r}; pack the dataset again")
    return index


def _explode(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """One row per question from rows of one video: the video's bytes and relative path beside each question."""
    out: dict[str, list[Any]] = {}
    for video, sample in zip(batch["video"], batch["json"], strict=True):
        for example in sample["examples"]:
            row = {**example, "video_path": sample["video_path"], "video": video}
            for column, value in row.items():
                out.setdefault(column, []).append(value)
    return out


def load_videoqa_shards(shards_dir: str | os.PathLike, split: str, name: str | None = None,
                        config: str | None = None) -> datasets.IterableDataset:
    """The questions of one split of the shards ``siasamrea pack`` wrote into ``shards_dir``, as an
    ``IterableDataset`` with the prepared dataset's features plus ``video`` (the video file's bytes); ``name`` and
    ``config``, if given, must be those the shards were packed from."""
    shards_dir = Path(shards_dir)
    index = _read_index(shards_dir)
    packed = (index["dataset_name"], index["config"])
    if (name is not None and name != packed[0]) or (config is not None and config != packed[1]):
        raise ValueError(f"{shards_dir} holds {packed[0]} (config {packed[1]}), not {name} (config {config})")
    if split not in index["splits"]:
        raise ValueError(f"{shards_dir}: no split {split!r} was packed; available: {sorted(index['splits'])}")
    features = datasets.Features.from_dict(index["features"])
    examples = datasets.Features({column: f for column, f in features.items() if column != "video_path"})
    raw = datasets.Features({"video": datasets.Value("binary"),
                             "json": {"video_path": datasets.Value("string"), "examples": datasets.List(examples)},
                             "__key__": datasets.Value("string"), "__url__": datasets.Value("string")})
    files = [str(shards_dir / shard["file"]) for shard in index["splits"][split]["shards"]]
    stream = datasets.load_dataset("webdataset", data_files={split: files}, split=split, streaming=True, features=raw)
    return stream.map(_explode, batched=True, batch_size=1, remove_columns=list(raw),
                      features=datasets.Features({**features, "video": datasets.Value("binary")}))


def _questions(shards_dir: str, split: str) -> Iterator[dict[str, Any]]:
    yield from load_videoqa_shards(shards_dir, split)


def read_shards_split(shards_dir: str | os.PathLike, split: str, name: str | None = None,
                      config: str | None = None) -> datasets.Dataset:
    """One split of the shards as a map-style ``datasets.Dataset`` (its questions with their video's bytes), written
    once into the datasets cache: evaluation wants every question once, in a fixed order, on any number of
    processes."""
    stream = load_videoqa_shards(shards_dir, split, name=name, config=config)
    return datasets.Dataset.from_generator(_questions, gen_kwargs={"shards_dir": str(shards_dir), "split": split},
                                           features=stream.features)
