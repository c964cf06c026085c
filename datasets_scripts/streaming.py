"""Tar shards of a prepared VideoQA dataset, for training that streams its data instead of reading a videos folder.

``siasamrea pack NAME DATA_DIR OUTPUT_DIR`` (:func:`pack_videoqa`) writes, per split, WebDataset tar shards::

    OUTPUT_DIR/siasamrea_shards.json             # dataset name and config, features, the shards of each split
    OUTPUT_DIR/<split>/<split>-00000.tar ...     # one sample per video: <key>.video + <key>.json

A sample holds a video once: ``<key>.video`` is the video file's bytes, ``<key>.json`` is ``{"video_path": its path
relative to the data dir, "examples": [its questions, with every column of the prepared dataset but video_path]}``.
Videos are put in shards in a seeded random order, so each shard is a random subset of the videos.

``--frames jpeg --max_image_size 448`` stores each video once at the model's size instead, as an AVI of one JPEG per
frame (:func:`~modeling_siasamrea.video_io.transcode_video`: every frame at its index, the source's frame count and
rate, JPEG ``--quality``): a training sample then decodes only its sampled frames, each on its own, ~10x less CPU
than decoding H.264 at 480p or 720p (``benchmarks/bench_dataloader.py``), and they can be decoded on the accelerator.
``--frames source`` (the default) stores the video files' bytes as they are. The index records the frame size: a
run whose ``max_image_size`` is larger is refused (:func:`check_frame_size`).

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
import multiprocessing
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import datasets
import numpy as np
from datasets.utils.py_utils import convert_file_size_to_int
from datasets.utils.tqdm import tqdm as hf_tqdm

from modeling_siasamrea.video_io import VideoDecodeError, decoder_threads, transcode_video

from .registry import get_builder
from .transcode import FRAMES_FILE, read_frames_record

__all__ = ["FRAMES", "INDEX_FILE", "check_frame_size", "load_videoqa_shards", "pack_split", "pack_videoqa",
           "read_shards_split", "stored_frame_size"]

logger = logging.getLogger(__name__)

INDEX_FILE = "siasamrea_shards.json"
_FORMAT = 1
FRAMES = ("source", "jpeg")  # what a sample's <key>.video holds: the video file, or its frames as JPEGs (an AVI)
_DEFAULT_QUALITY = 90  # JPEG quality of --frames jpeg


def _add_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    """Add ``data`` as file ``name`` (fixed mtime and owner: the same dataset packs to the same bytes)."""
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644
    tar.addfile(info, io.BytesIO(data))


def _video_bytes(task: tuple[str, str, int | None, int, int]) -> bytes | str:
    """A video's bytes as a sample stores them (in a worker process): the file's, or its JPEG-frame AVI; the error
    message for a video that cannot be transcoded."""
    path, frames, max_image_size, quality, threads = task
    if frames == "source":
        return Path(path).read_bytes()
    buffer = io.BytesIO()
    try:
        transcode_video(path, buffer, max_image_size, quality=quality, num_threads=threads)
    except VideoDecodeError as error:
        return str(error)
    return buffer.getvalue()


def pack_split(dataset: datasets.Dataset, split_dir: str | os.PathLike, data_dir: str | os.PathLike,
               max_shard_size: int | str = "1GB", num_shards: int | None = None, seed: int | None = 0,
               frames: str = "source", max_image_size: int | None = None, quality: int = _DEFAULT_QUALITY,
               num_proc: int | None = None) -> list[dict]:
    """Write one split of a prepared dataset (absolute ``video_path``, as ``load_videoqa`` returns it) as tar shards in
    ``split_dir``: one sample per video, its questions beside it (see the module docstring).

    ``frames``: ``"source"`` stores each video file's bytes; ``"jpeg"`` its frames at ``max_image_size`` as JPEGs of
    ``quality`` (an AVI, :func:`~modeling_siasamrea.video_io.transcode_video`; frame folders too), transcoded in
    ``num_proc`` processes. A video that cannot be transcoded is left out with its questions (logged, and listed in
    the returned shards' ``unreadable``). Shards hold at most ``max_shard_size`` bytes of videos (a video larger than
    that gets a shard of its own), or, with ``num_shards``, the videos are dealt round-robin into exactly that many.
    ``seed`` shuffles the videos before (None keeps the dataset's order). Returns ``[{"file", "num_videos",
    "num_examples", "num_bytes", "unreadable"}]`` per shard.
    """
    _check_frames_options(frames, max_image_size, quality if frames == "jpeg" else None)
    split_dir = Path(split_dir)
    by_video: dict[str, list[int]] = {}
    for row, path in enumerate(dataset["video_path"]):
        by_video.setdefault(path, []).append(row)
    videos = list(by_video)
    if seed is not None:
        videos = [videos[i] for i in np.random.default_rng(seed).permutation(len(videos))]
    for path in videos:
        if frames == "source" and not os.path.isfile(path):
            kind = "a frame folder" if os.path.isdir(path) else "missing"
            raise ValueError(f"pack stores video files; {path} is {kind} (pack with --frames jpeg, or encode frame "
                             "folders as videos first, e.g. with modeling_siasamrea.video_io.write_video)")
    starts = None  # with num_shards: the positions in `videos` where a shard begins
    if num_shards is not None:
        if not 1 <= num_shards <= len(videos):
            raise ValueError(f"num_shards must be in [1, {len(videos)}] (the number of videos), got {num_shards}")
        groups = [videos[i::num_shards] for i in range(num_shards)]
        videos = [path for group in groups for path in group]
        starts = set(np.cumsum([0] + [len(group) for group in groups[:-1]]).tolist())
    limit = convert_file_size_to_int(max_shard_size)
    rows = dataset.select_columns([c for c in dataset.column_names if c != "video_path"]).to_list()
    split_dir.mkdir(parents=True, exist_ok=True)
    name = split_dir.name
    shards: list[dict] = []
    tar = None
    processes = max(1, num_proc or 1)
    tasks = [(path, frames, max_image_size, quality, decoder_threads(processes)) for path in videos]
    pool = multiprocessing.get_context().Pool(processes) if processes > 1 and frames == "jpeg" else None
    try:
        stored = pool.imap(_video_bytes, tasks) if pool else map(_video_bytes, tasks)
        for position, (path, data) in enumerate(zip(videos, hf_tqdm(stored, total=len(videos), unit=" videos",
                                                                    desc=f"packing {name}"))):
            shard = shards[-1] if shards else None
            if starts is not None and position in starts or starts is None and (
                    shard is None or shard["num_bytes"] and shard["num_bytes"] + len(data) > limit):
                if tar is not None:
                    _close_shard(tar, split_dir, shard)
                shard = {"file": f"{name}/{name}-{len(shards):05d}.tar", "num_videos": 0, "num_examples": 0,
                         "num_bytes": 0, "unreadable": {}}
                shards.append(shard)
                tar = tarfile.open(split_dir / f".{Path(shard['file']).name}.tmp", "w")
            relative = os.path.relpath(path, data_dir)
            if isinstance(data, str):
                logger.warning("left out of the pack with its %d questions: %s", len(by_video[path]), data)
                shard["unreadable"][relative] = data
                continue
            questions = [rows[row] for row in by_video[path]]
            key = sum(s["num_videos"] for s in shards)
            _add_member(tar, f"{key:07d}.video", data)
            _add_member(tar, f"{key:07d}.json", json.dumps({"video_path": relative, "examples": questions}).encode())
            shard["num_videos"] += 1
            shard["num_examples"] += len(questions)
            shard["num_bytes"] += len(data)
    finally:
        if pool is not None:
            pool.terminate()
    if tar is not None:
        _close_shard(tar, split_dir, shards[-1])
    return shards


def _close_shard(tar: tarfile.TarFile, split_dir: Path, shard: dict) -> None:
    tar.close()
    file = Path(shard["file"]).name
    os.replace(split_dir / f".{file}.tmp", split_dir / file)


def _check_frames_options(frames: str, max_image_size: int | None, quality: int | None) -> None:
    """``frames`` is one of :data:`FRAMES`; ``"jpeg"`` needs ``max_image_size``; ``max_image_size`` and ``quality``
    apply to ``"jpeg"`` only (``"source"`` stores the video files as they are)."""
    if frames not in FRAMES:
        raise ValueError(f"frames must be one of {FRAMES}, got {frames!r}")
    if frames == "jpeg" and max_image_size is None:
        raise ValueError("--frames jpeg stores the frames at the model's size: give --max_image_size (e.g. 448)")
    given = [f"--{name}" for name, value in (("max_image_size", max_image_size), ("quality", quality))
             if value is not None]
    if frames == "source" and given:
        raise ValueError(f"{' and '.join(given)} {'apply' if len(given) > 1 else 'applies'} to --frames jpeg; "
                         "--frames source stores the video files as they are (drop it, or pass --frames jpeg)")


def pack_videoqa(name: str, data_dir: str | os.PathLike, output_dir: str | os.PathLike, config: str | None = None,
                 splits: list[str] | None = None, max_shard_size: int | str = "1GB", num_shards: int | None = None,
                 seed: int | None = 0, cache_dir: str | os.PathLike | None = None, num_proc: int | None = None,
                 frames: str = "source", max_image_size: int | None = None, quality: int | None = None,
                 **options: Any) -> Path:
    """Build a dataset from its folder (as ``load_videoqa``; ``options`` are builder options) and write ``splits``
    (default: all) as tar shards with their index into ``output_dir`` (see :func:`pack_split`; ``num_proc`` processes
    probe and transcode the videos); return the index. The index's ``frames`` records what the samples hold: with
    ``frames="jpeg"`` the frame size and quality (default 90), and likewise with ``"source"`` from a folder ``siasamrea
    transcode`` wrote. The frame options are checked before any work."""
    _check_frames_options(frames, max_image_size, quality)
    quality = _DEFAULT_QUALITY if quality is None else quality
    builder = get_builder(name, data_dir, config=config, cache_dir=cache_dir, **options)
    builder.download_and_prepare(num_proc=num_proc)
    available = list(builder.info.splits or {})
    unknown = sorted(set(splits or ()) - set(available))
    if unknown:
        raise ValueError(f"{name}: no split {unknown} in {builder.config.data_dir}; available: {available}")
    output_dir = Path(output_dir)
    if frames == "jpeg":
        stored = {"frames": "jpeg", "max_image_size": max_image_size, "jpeg_quality": quality}
    else:
        record = read_frames_record(Path(data_dir)) or read_frames_record(builder.data_path) or {}
        stored = {"frames": "source", "max_image_size": record.get("max_image_size"),
                  "jpeg_quality": record.get("jpeg_quality")}
    index: dict[str, Any] = {"format": _FORMAT, "dataset_name": name, "config": config, "features": None,
                             "frames": stored, "splits": {}}
    for split in splits or available:
        dataset = builder.as_dataset(split=split)
        index["features"] = dataset.features.to_dict()
        shards = pack_split(dataset, output_dir / split, builder.data_path, max_shard_size, num_shards, seed,
                            frames=frames, max_image_size=max_image_size, quality=quality, num_proc=num_proc)
        index["splits"][split] = {"shards": shards, "num_examples": sum(shard["num_examples"] for shard in shards),
                                  "num_videos": sum(shard["num_videos"] for shard in shards)}
        logger.warning("%s/%s: %d questions, %d videos (%.1f MB) in %d shards under %s", name, split,
                       index["splits"][split]["num_examples"], index["splits"][split]["num_videos"],
                       sum(shard["num_bytes"] for shard in shards) / 1e6, len(shards), output_dir / split)
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


def stored_frame_size(data_dir: str | os.PathLike) -> int | None:
    """The longer frame side ``siasamrea pack --frames jpeg`` or ``siasamrea transcode`` stored ``data_dir``'s
    frames at (its shard index or its ``siasamrea_frames.json``), or None for videos stored as they came."""
    data_dir = Path(data_dir)
    if (data_dir / INDEX_FILE).is_file():
        return _read_index(data_dir).get("frames", {}).get("max_image_size")
    record = read_frames_record(data_dir)
    return None if record is None else record["max_image_size"]


def check_frame_size(data_dir: str | os.PathLike, max_image_size: int) -> None:
    """Raise if ``data_dir`` stores its frames smaller than ``max_image_size``: they would be scaled up, blurred."""
    stored = stored_frame_size(data_dir)
    if stored is not None and max_image_size > stored:
        source = INDEX_FILE if (Path(data_dir) / INDEX_FILE).is_file() else FRAMES_FILE
        raise ValueError(f"{data_dir} stores frames at max_image_size {stored} (its {source}), but this run's "
                         f"max_image_size is {max_image_size}: train at max_image_size <= {stored}, or transcode "
                         f"(pack) the dataset again with --max_image_size {max_image_size}")


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
