"""`datasets` builders for the SiaSamRea VideoQA benchmarks, read from the files their authors distribute.

datasets >= 4 no longer runs loading scripts, so the builders are plain classes, instantiated directly::

    builder = MSRVTTQA(data_dir="/data/msrvtt_qa", cache_dir="/tmp/hf")
    builder.download_and_prepare()
    train = builder.as_dataset("train")

or through :func:`datasets_scripts.load_videoqa`. Every builder shares :class:`VideoQABuilder`: it finds the
annotation files, resolves each video in the videos folder, probes its frame count once (``count_frames``:
decord, or PyAV for GIFs; in ``num_proc`` processes, with a progress bar; read from ``video_manifest.json`` for the
videos ``siasamrea probe DATA_DIR`` recorded and that have not changed since), drops examples whose video is missing
or unreadable (reported; an error if none remain) or shorter than ``min_video_frames``, and builds the open-ended
answer vocabulary from the train split. Annotation files are read by :mod:`datasets_scripts.annotations`: a row that
does not parse is a ``ValueError`` naming the file, line and field; a row without question or answer is dropped and
logged.

Columns of every example: ``video_id``, ``video_path`` (str: stored relative to ``data_dir`` in the prepared
dataset, so that ``data_dir`` can move with it, and absolute in what ``as_dataset`` returns; see
:func:`resolve_video_paths`), ``num_video_frames`` (int32), ``question``,
``question_id`` (the release's own id where it has one, else ``"<split>-<line>"``; unique per split: a repeated
release id is renamed ``<id>#<k>``, with a warning), ``answer`` (the answer text, for every task),
``answer_type`` (str), and those of the config's task type (``TaskType.features`` in
:mod:`modeling_siasamrea.tasks`, which also reads each record's label: ``TaskType.read_label``):

* open-ended: ``label`` -- ``ClassLabel`` over the top-K train answers (``features["label"].names`` is the
  ``id2label`` list); -1 for an answer outside the vocabulary (kept in eval splits, counted wrong; dropped
  from train);
* multiple-choice: ``choices`` (list of str) and ``label`` (int64, index of the correct choice; -1 for a
  question its video cannot answer, kept in eval splits and counted wrong, dropped from train);
* count: ``count`` (float32).

How2QA adds ``start``/``end`` (float32 seconds), ``start_frame`` (int32) and ``window_past_end`` (bool):
``num_video_frames`` then counts the frames of that window, which starts at ``start_frame`` of the video.

Open-ended answers are whitespace-stripped and lower-cased. Options (builder kwargs):
``answer_vocab_size`` (K of the top-K answer vocabulary, default 1000 as the paper for MSRVTT-QA),
``min_video_frames`` (default 0; the paper uses 40 for its TGIF-QA pretraining) and ``video_dir`` (videos
folder, absolute or relative to ``data_dir``); ``num_proc`` (processes that probe videos; not part of the config,
so it does not change the cache) is a builder argument or one of ``download_and_prepare``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import multiprocessing
import os
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

import datasets
import numpy as np
from datasets.utils.tqdm import tqdm as hf_tqdm

from modeling_siasamrea.tasks import Count, MultipleChoice, OpenEnded, TaskType, get_task_type, normalize_answer
from modeling_siasamrea.video_io import VideoDecodeError, count_frames, frame_rate, probe_video

from .annotations import AnnotationRow, read_records, read_rows

__all__ = [
    "MSRVTTQA",
    "MSVDQA",
    "TGIFQA",
    "TGIF_TASKS",
    "TGIFTask",
    "ActivityNetQA",
    "How2QA",
    "MANIFEST_FILE",
    "VideoQABuilder",
    "VideoQAConfig",
    "build_answer_vocab",
    "probe_videos",
    "read_video_manifest",
    "resolve_video_paths",
    "write_video_manifest",
]

logger = logging.getLogger(__name__)

_ANNOTATION_SUFFIXES = {".json", ".jsonl", ".csv", ".tsv"}
_REPORT_EXAMPLES = 5
MANIFEST_FILE = "video_manifest.json"  # written by `siasamrea probe DATA_DIR` into DATA_DIR
_MANIFEST_FORMAT = 2  # 2: num_video_frames
_VIDEO_SUBDIRS = ("videos", "video", "gifs")  # every builder's videos folder names, for `siasamrea probe`


def build_answer_vocab(answers: Iterable[str], top_k: int = 1000) -> dict[str, int]:
    """``{answer: id}`` of the ``top_k`` most frequent answers; ids by decreasing frequency, ties alphabetical."""
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    counts = Counter(answers)
    ranked = sorted(counts, key=lambda answer: (-counts[answer], answer))[:top_k]
    return {answer: i for i, answer in enumerate(ranked)}


def _frames_or_error(path: str) -> int | str:
    """``count_frames(path)``, or the message of the VideoDecodeError it raised."""
    try:
        return count_frames(path)
    except VideoDecodeError as error:
        return str(error)


def _probe_entry(path: str) -> tuple[str, dict[str, Any]]:
    """``(path, {"num_video_frames", "fps"})`` of one video, or ``(path, {"error": message})``, with the file's size and
    mtime (what a manifest entry is checked against). Runs in the probing processes."""
    stat = os.stat(path)
    try:
        probe = probe_video(path)
        entry: dict[str, Any] = {"num_video_frames": probe.num_video_frames, "fps": probe.fps}
    except VideoDecodeError as error:
        entry = {"error": str(error)}
    return path, {**entry, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def probe_videos(paths: Iterable[str], num_proc: int | None = None, desc: str = "probing videos") -> dict[str, dict]:
    """Probe each video once: ``{path: {"num_video_frames", "fps", "size", "mtime_ns"}}`` (``{"error", ...}`` for one
    that cannot be read), in ``num_proc`` processes (default: this one), with a progress bar over all of them."""
    paths = sorted(set(paths))
    results: dict[str, dict] = {}
    with hf_tqdm(total=len(paths), desc=desc, unit=" videos") as bar:
        if num_proc is not None and num_proc > 1 and len(paths) > 1:
            chunksize = max(1, min(64, len(paths) // (4 * num_proc)))
            with multiprocessing.get_context().Pool(min(num_proc, len(paths))) as pool:
                for path, entry in pool.imap_unordered(_probe_entry, paths, chunksize=chunksize):
                    results[path] = entry
                    bar.update()
        else:
            for path in paths:
                results[path] = _probe_entry(path)[1]
                bar.update()
    return results


def _stored_video_path(path: str, data_dir: Path, video_dir: str | None) -> str:
    """How the prepared dataset and the manifest store a video's path: relative to ``data_dir``, so that both move
    with it, or absolute when the videos folder was given as an absolute ``video_dir`` (videos that stay put)."""
    if video_dir is not None and os.path.isabs(video_dir):
        return os.path.abspath(path)
    return os.path.relpath(path, data_dir)


def _is_fresh(entry: dict[str, Any], path: str) -> bool:
    """Whether a manifest entry still describes the file at ``path`` (same size and modification time)."""
    try:
        stat = os.stat(path)
    except OSError:
        return False
    return entry.get("size") == stat.st_size and entry.get("mtime_ns") == stat.st_mtime_ns


def read_video_manifest(data_dir: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """The videos recorded in ``data_dir/video_manifest.json`` (``{path relative to data_dir: entry}``), or ``{}``."""
    path = Path(data_dir) / MANIFEST_FILE
    if not path.is_file():
        return {}
    manifest = json.loads(path.read_text(encoding="utf-8"))
    if manifest.get("format") != _MANIFEST_FORMAT:
        logger.warning("%s: unknown manifest format %r, ignored (run `siasamrea probe %s` again)", path,
                       manifest.get("format"), data_dir)
        return {}
    return manifest["videos"]


def write_video_manifest(data_dir: str | os.PathLike, video_dir: str | None = None,
                         num_proc: int | None = None) -> Path:
    """Probe every video of ``data_dir``'s videos folder(s) (``video_dir``, absolute or relative to ``data_dir``, else
    each of ``videos/``, ``video/``, ``gifs/`` present) and write ``data_dir/video_manifest.json``: per video (key: its
    path relative to ``data_dir``) ``num_video_frames``, ``fps`` (null for frame folders), ``size`` and ``mtime_ns``, or
    ``error`` for one that cannot be read. Entries of an earlier manifest whose file has not changed are kept
    without probing again. Builders then read frame counts from it instead of opening every video."""
    data_dir = Path(os.path.abspath(data_dir))
    folders = [data_dir / video_dir] if video_dir else [data_dir / s for s in _VIDEO_SUBDIRS if (data_dir / s).is_dir()]
    if not folders or not all(folder.is_dir() for folder in folders):
        raise FileNotFoundError(f"{data_dir}: no videos folder ({video_dir or ', '.join(_VIDEO_SUBDIRS)}); pass "
                                f"video_dir")
    extensions = set(VideoQABuilder.VIDEO_EXTENSIONS)
    paths = [entry.path for folder in folders for entry in os.scandir(folder)
             if entry.is_dir() or os.path.splitext(entry.name)[1].lower() in extensions]
    old = read_video_manifest(data_dir)
    keys = {path: _stored_video_path(path, data_dir, video_dir) for path in paths}
    videos = {keys[path]: old[keys[path]] for path in paths if keys[path] in old and _is_fresh(old[keys[path]], path)}
    probed = probe_videos([path for path in paths if keys[path] not in videos], num_proc)
    videos.update({keys[path]: entry for path, entry in probed.items()})
    manifest = {"format": _MANIFEST_FORMAT, "videos": dict(sorted(videos.items()))}
    target = data_dir / MANIFEST_FILE
    tmp = target.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(manifest, indent=0) + "\n", encoding="utf-8")
    os.replace(tmp, target)
    unreadable = sum("error" in entry for entry in videos.values())
    logger.warning("%s: %d videos (%d probed now, %d unchanged since the last probe), %d unreadable", target,
                   len(videos), len(probed), len(videos) - len(probed), unreadable)
    return target


def resolve_video_paths(dataset: datasets.Dataset | datasets.DatasetDict,
                        data_dir: str | os.PathLike) -> datasets.Dataset | datasets.DatasetDict:
    """``dataset`` with its ``video_path`` column joined to ``data_dir`` (absolute paths are kept): what
    ``as_dataset`` returns, and what a prepared dataset saved elsewhere (``save_to_disk``) needs once its videos
    are in ``data_dir``."""
    return dataset.map(_join_video_paths, input_columns="video_path", batched=True,
                       fn_kwargs={"data_dir": os.path.abspath(data_dir)}, desc="video paths")


def _join_video_paths(paths: list[str], data_dir: str) -> dict[str, list[str]]:
    return {"video_path": [os.path.join(data_dir, path) for path in paths]}


@dataclass
class VideoQAConfig(datasets.BuilderConfig):
    """Builder config: ``task`` is fixed per dataset/config; the other fields are user options."""

    task: str = OpenEnded.name
    answer_vocab_size: int = 1000
    min_video_frames: int = 0
    video_dir: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        get_task_type(self.task)  # an unknown task type: ValueError
        if self.min_video_frames < 0:
            raise ValueError(f"min_video_frames must be >= 0, got {self.min_video_frames}")


class VideoQABuilder(datasets.GeneratorBasedBuilder):
    """Shared logic of the VideoQA builders; a subclass says where its files are and how to read one split.

    Subclasses set ``DATASET_NAME`` and ``BUILDER_CONFIGS`` and implement ``_split_files`` (split -> annotation
    file) and ``_read_split`` (records with ``video_id``, ``question``, ``question_id``, ``answer_type`` and
    ``answer`` (open-ended) / ``choices`` + ``label`` (multiple-choice) / ``count`` (count)), reading the file with
    :func:`~datasets_scripts.annotations.read_records` so that a bad row is an error that names its file, line
    and field, and a row without question or answer a logged drop.
    """

    BUILDER_CONFIG_CLASS = VideoQAConfig
    # 1.1.0: release question ids kept, How2QA window_past_end, TGIF-QA ClipBERT val read as test
    # 1.2.0: video_path stored relative to data_dir
    VERSION = datasets.Version("1.3.0")  # 1.3: num_video_frames
    DATASET_NAME: ClassVar[str]
    NUM_CHOICES: ClassVar[int | None] = None
    ANNOTATION_SUBDIRS: ClassVar[tuple[str, ...]] = ("", "txt", "annotations")
    VIDEO_SUBDIRS: ClassVar[tuple[str, ...]] = ("videos", "video")
    VIDEO_EXTENSIONS: ClassVar[tuple[str, ...]] = (".mp4", ".webm", ".mkv", ".avi", ".mov", ".gif")
    config: VideoQAConfig

    def __init__(self, *args: Any, data_dir: str | os.PathLike | None = None, num_proc: int | None = None,
                 **kwargs: Any) -> None:
        if data_dir is None:
            raise ValueError(f"{type(self).__name__} needs data_dir: the folder with the annotation files "
                             f"and the videos (see its docstring for the layout)")
        data_dir = os.path.abspath(os.fspath(data_dir))
        if not os.path.isdir(data_dir):
            raise FileNotFoundError(f"{type(self).__name__}: data_dir {data_dir} does not exist")
        kwargs.setdefault("dataset_name", self.DATASET_NAME)
        kwargs.setdefault("hash", self._fingerprint(Path(data_dir), kwargs.get("video_dir")))
        self._probed: dict[tuple[str, str], Any] = {}
        self._records: dict[str, list[dict[str, Any]]] = {}
        self.num_proc = num_proc
        super().__init__(*args, data_dir=data_dir, **kwargs)

    # ----- to implement per dataset -----
    def _split_files(self) -> dict[str, Path]:
        """Annotation file of each available split."""
        raise NotImplementedError

    def _read_split(self, split: str) -> list[dict[str, Any]]:
        """Records of one split (see the class docstring)."""
        raise NotImplementedError

    def _video_names(self, video_id: str) -> tuple[str, ...]:
        """File names (without extension) a video may have in the videos folder."""
        return (video_id,)

    def _window(self, record: dict[str, Any], video_path: str, total_frames: int) -> dict[str, Any]:
        """Frame-window columns of an example; by default the whole video."""
        return {"num_video_frames": total_frames}

    def _extra_features(self) -> dict[str, datasets.Value]:
        """Columns a dataset adds to the shared ones."""
        return {}

    def _unanswerable(self, example: dict[str, Any]) -> str | None:
        """Why ``example``'s video cannot show its answer (dropped from train; kept in eval with label -1,
        counted wrong), or None."""
        return None

    # ----- shared -----
    @classmethod
    def _fingerprint(cls, data_dir: Path, video_dir: str | None) -> str:
        """Hash of the annotation files (names, sizes, mtimes) and of the videos folders' mtimes (which change
        when videos are added or removed): edited annotations or newly downloaded videos get a fresh cache."""
        digest = hashlib.sha1(str(cls.VERSION).encode())
        for sub in cls.ANNOTATION_SUBDIRS:
            folder = data_dir / sub
            if folder.is_dir():
                for path in sorted(folder.iterdir()):
                    if path.suffix in _ANNOTATION_SUFFIXES and path.name != MANIFEST_FILE and path.is_file():
                        stat = path.stat()
                        digest.update(f"{sub}/{path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
        for sub in (*cls.VIDEO_SUBDIRS, *([video_dir] if video_dir else [])):
            if (data_dir / sub).is_dir():
                digest.update(f"{sub}:{(data_dir / sub).stat().st_mtime_ns}".encode())
        return digest.hexdigest()[:16]

    @property
    def data_path(self) -> Path:
        """The dataset folder (``data_dir``)."""
        return Path(self.config.data_dir)

    def _find_annotation(self, name: str) -> Path | None:
        """``name`` in ``data_dir`` or one of its annotation subfolders, if present."""
        for sub in self.ANNOTATION_SUBDIRS:
            path = self.data_path / sub / name
            if path.is_file():
                return path
        return None

    def read_annotations(self, split: str) -> list[dict[str, Any]]:
        """The records of a split's annotation file(s), read once per builder (copies: callers may change them).

        Raises :class:`~datasets_scripts.annotations.AnnotationError` (a ``ValueError`` naming the file, line and
        field) for a malformed row; rows whose question or answer is null or empty are dropped, with a warning."""
        if split not in self._records:
            self._records[split] = self._read_split(split)
        return [dict(record) for record in self._records[split]]

    @cached_property
    def video_dir(self) -> Path:
        """The videos folder: ``video_dir`` if given, else the first of ``VIDEO_SUBDIRS`` found, else data_dir."""
        if self.config.video_dir is not None:
            path = self.data_path / self.config.video_dir
            if not path.is_dir():
                raise FileNotFoundError(f"{self.DATASET_NAME}: video_dir {path} does not exist")
            return path
        return next((self.data_path / s for s in self.VIDEO_SUBDIRS if (self.data_path / s).is_dir()),
                    self.data_path)

    @cached_property
    def _video_index(self) -> dict[str, str]:
        """Names in the videos folder -> their paths (one directory listing instead of a stat per example)."""
        with os.scandir(self.video_dir) as entries:
            return {entry.name: os.path.join(self.video_dir, entry.name) for entry in entries}

    def find_video(self, video_id: str) -> str | None:
        """Path of a video file (or frame folder) for ``video_id``, or None if it is not in the videos folder."""
        for name in self._video_names(video_id):
            for ext in ("", *self.VIDEO_EXTENSIONS):
                path = self._video_index.get(name + ext)
                if path is not None and (ext or os.path.isdir(path)):
                    return path
        return None

    def _probe_once(self, kind: str, path: str, probe: Callable[[str], Any]) -> Any:
        """``probe(path)``, computed once per video and build (many questions share a video)."""
        if (kind, path) not in self._probed:
            self._probed[kind, path] = probe(path)
        return self._probed[kind, path]

    def _probe(self, path: str) -> int | str:
        """Frame count of a video, or the decode error message (which names the file)."""
        return self._probe_once("frames", path, _frames_or_error)

    def _probe_all(self, paths: Iterable[str], split: str) -> None:
        """Probe the videos of a split once, before its examples are built: from the manifest where it has an
        unchanged entry, the others in ``num_proc`` processes with a progress bar."""
        todo = sorted({path for path in paths if ("frames", path) not in self._probed})
        manifest = read_video_manifest(self.data_path) if todo else {}
        entries = {}
        for path in todo:
            entry = manifest.get(_stored_video_path(path, self.data_path, self.config.video_dir))
            if entry is not None and _is_fresh(entry, path):
                entries[path] = entry
        if manifest:
            logger.info("%s/%s: %d of %d videos read from %s", self.DATASET_NAME, split, len(entries), len(todo),
                        MANIFEST_FILE)
        entries.update(probe_videos([p for p in todo if p not in entries], self.num_proc,
                                    desc=f"probing {self.DATASET_NAME}/{split} videos"))
        for path, entry in entries.items():
            self._probed["frames", path] = entry["error"] if "error" in entry else entry["num_video_frames"]
            if entry.get("fps"):
                self._probed["fps", path] = entry["fps"]

    @property
    def task_type(self) -> TaskType:
        """The task type of this config's questions."""
        return get_task_type(self.config.task)

    @cached_property
    def answer_vocab(self) -> dict[str, int]:
        """Answer vocabulary ``{answer: id}`` (top-K train answers) of a task type that has one; else empty."""
        if not self.task_type.has_vocabulary:
            return {}
        if "train" not in self._split_files():
            raise FileNotFoundError(f"{self.DATASET_NAME}: no train annotations in {self.data_path}; the "
                                    f"{self.config.task} answer vocabulary is built from them")
        answers = (normalize_answer(r["answer"]) for r in self.read_annotations("train"))
        return build_answer_vocab(answers, self.config.answer_vocab_size)

    def _info(self) -> datasets.DatasetInfo:
        features: dict[str, Any] = {
            "video_id": datasets.Value("string"),
            "video_path": datasets.Value("string"),
            "num_video_frames": datasets.Value("int32"),
            "question": datasets.Value("string"),
            "question_id": datasets.Value("string"),
            "answer": datasets.Value("string"),
            "answer_type": datasets.Value("string"),
        }
        answers = list(self.answer_vocab) if self.task_type.has_vocabulary else None
        features.update(datasets.Features.from_dict(self.task_type.features(answers)))
        features.update(self._extra_features())
        return datasets.DatasetInfo(description=(type(self).__doc__ or "").strip(),
                                    features=datasets.Features(features))

    def download_and_prepare(self, *args: Any, num_proc: int | None = None, **kwargs: Any) -> None:
        """As in ``datasets``, but a data problem (no example left, a malformed file) surfaces as itself
        rather than wrapped in a generic ``DatasetGenerationError``; ``num_proc`` processes probe the videos."""
        if num_proc is not None:
            self.num_proc = num_proc
        try:
            super().download_and_prepare(*args, **kwargs)
        except datasets.exceptions.DatasetGenerationError as error:
            if isinstance(error.__cause__, (ValueError, OSError)):
                raise error.__cause__ from None
            raise

    def as_dataset(self, split: Any = None, **kwargs: Any) -> datasets.Dataset | datasets.DatasetDict:
        """As in ``datasets``, with ``video_path`` resolved against this builder's ``data_dir``."""
        return resolve_video_paths(super().as_dataset(split=split, **kwargs), self.data_path)

    def _split_generators(self, dl_manager: Any) -> list[datasets.SplitGenerator]:
        files = self._split_files()
        if not files:
            raise FileNotFoundError(f"{self.DATASET_NAME}: no annotation files found in {self.data_path}; "
                                    f"see the docstring of {type(self).__name__} for the expected layout")
        return [datasets.SplitGenerator(name=split, gen_kwargs={"split": split}) for split in files]

    def _generate_examples(self, split: str) -> Iterator[tuple[int, dict[str, Any]]]:
        missing, unreadable, short, oov = [], [], [], []
        unanswerable: dict[str, list[str]] = {}
        seen_ids: Counter[str] = Counter()
        renamed = []
        kept = 0
        records = self.read_annotations(split)
        self._probe_all((path for r in records if (path := self.find_video(r["video_id"])) is not None), split)
        for index, record in enumerate(records):
            seen_ids[record["question_id"]] += 1
            if seen_ids[record["question_id"]] > 1:  # ids must be unique to join predictions back
                renamed.append(record["question_id"])
                record["question_id"] = f"{record['question_id']}#{seen_ids[record['question_id']] - 1}"
            path = self.find_video(record["video_id"])
            if path is None:
                missing.append(record["video_id"])
                continue
            total = self._probe(path)
            if isinstance(total, str):
                unreadable.append(total)
                continue
            stored = _stored_video_path(path, self.data_path, self.config.video_dir)
            example = {"video_path": stored, **self._window(record, path, total), **record}
            if example["num_video_frames"] < self.config.min_video_frames:
                short.append(record["video_id"])
                continue
            example.update(self.task_type.read_label(example, self.answer_vocab))
            if example[self.task_type.label_column] == -1 and split == "train":
                oov.append(example["answer"])
                continue
            reason = self._unanswerable(example)
            if reason is not None:
                unanswerable.setdefault(reason, []).append(record["question_id"])
                if split == "train":
                    continue
                example[self.task_type.label_column] = -1
            kept += 1
            yield index, example
        if renamed:
            logger.warning("%s/%s: %d question ids repeat in the annotation file; the repeats were renamed "
                           "<id>#<k> (e.g. %s)", self.DATASET_NAME, split, len(renamed),
                           sorted(set(renamed))[:_REPORT_EXAMPLES])
        dropped = {"a missing video": missing, "an unreadable video": unreadable,
                   f"fewer than {self.config.min_video_frames} frames": short,
                   "an answer outside the vocabulary": oov,
                   **(unanswerable if split == "train" else {})}
        report = _report(dropped)
        if report:
            logger.warning("%s/%s: kept %d examples, dropped %s", self.DATASET_NAME, split, kept, report)
        if unanswerable and split != "train":
            logger.warning("%s/%s: kept %s, with label -1: counted wrong, so the accuracy stays over the "
                           "official question set", self.DATASET_NAME, split, _report(unanswerable))
        if kept == 0:
            raise ValueError(f"{self.DATASET_NAME}/{split}: no example left (videos looked up in "
                             f"{self.video_dir}); dropped {report or 'nothing: the annotation file is empty'}")


def _report(groups: dict[str, list[str]]) -> str:
    """"3 with <reason> (e.g. [...]); ..." for the non-empty groups."""
    return "; ".join(f"{len(items)} with {reason} (e.g. {sorted(set(items))[:_REPORT_EXAMPLES]})"
                     for reason, items in groups.items() if items)


def _release_id(row: AnnotationRow, fallback: str) -> str:
    """The release's own question id (``question_id``; ``id`` in ALPRO's MSVD-QA; ``vid_id`` in TGIF-QA's csv),
    else ``fallback``."""
    key = next((key for key in ("question_id", "id", "vid_id") if key in row.values), None)
    return fallback if key is None else row.identifier(key)


def _seconds(text: str) -> float | None:
    """A time in seconds (a finite number >= 0), or None."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def _is_how2qa_header(fields: list[str]) -> bool:
    """Whether the first row of a How2QA csv is a header (some copies add one): every column is named, and the window
    column holds no number, bracket or colon."""
    return all(field.strip() for field in fields) and not any(c.isdigit() or c in "[:" for c in fields[1])


class MSRVTTQA(VideoQABuilder):
    """MSRVTT-QA (open-ended), in the jsonl format shipped by ClipBERT and ALPRO.

    Files: the annotations of Xu et al. (2017) as converted by ClipBERT (``txt_db/msrvtt_qa``) or ALPRO
    (``data/msrvtt_qa/txt``); the MSR-VTT videos from the MSR-VTT release. Layout::

        data_dir/{train,val,test}.jsonl     # or data_dir/txt/ or data_dir/annotations/
        data_dir/videos/video0.mp4 ...      # <video_id>.<ext>, or a folder of frames <video_id>/

    One line: ``{"video_id": "video6513", "question": "what are three people sitting on?", "answer": "couch",
    "answer_type": "what"}``. ``question_id`` is the line's ``question_id`` or ``id`` (ALPRO's MSVD-QA) when it
    has one, else ``"<split>-<line>"`` (ClipBERT's files carry none).
    """

    DATASET_NAME = "msrvtt_qa"
    BUILDER_CONFIGS: ClassVar[list[VideoQAConfig]] = [VideoQAConfig(name="default", task=OpenEnded.name)]
    SPLITS: ClassVar[tuple[str, ...]] = ("train", "val", "test")

    def _split_files(self) -> dict[str, Path]:
        found = {split: self._find_annotation(f"{split}.jsonl") for split in self.SPLITS}
        return {split: path for split, path in found.items() if path is not None}

    def _read_split(self, split: str) -> list[dict[str, Any]]:
        def record(row: AnnotationRow) -> dict[str, Any]:
            return {"video_id": row.identifier("video_id"), "question": row.text("question"),
                    "answer": row.text("answer"), "answer_type": row.optional_text("answer_type"),
                    "question_id": _release_id(row, f"{split}-{row.index}")}

        return read_records(self.DATASET_NAME, self._split_files()[split], record)


class MSVDQA(MSRVTTQA):
    """MSVD-QA (open-ended), in the jsonl format shipped by ALPRO (``data/msvd_qa/txt``).

    Layout as :class:`MSRVTTQA` (ALPRO's ``data/msvd_qa/{txt,videos}``): ``data_dir/{train,val,test}.jsonl``
    (or under ``txt/``) and the MSVD clips (YouTubeClips) as ``data_dir/videos/<video_id>.avi``. ALPRO's lines
    carry an ``id``, kept as ``question_id``.
    """

    DATASET_NAME = "msvd_qa"


class ActivityNetQA(VideoQABuilder):
    """ActivityNet-QA (open-ended), official files from github.com/MILVLG/activitynet-qa (``dataset/``).

    Layout::

        data_dir/{train,val,test}_q.json    # [{"video_name", "question", "question_id"}, ...]
        data_dir/{train,val,test}_a.json    # [{"answer", "type", "question_id"}, ...]
        data_dir/videos/v_<video_name>.mp4  # ActivityNet videos (with or without the "v_" prefix)

    ``answer_type`` is the official ``type`` id spelled out (motion, spatial_relation, temporal_relation,
    yes_no, color, object, location, number, other).
    """

    DATASET_NAME = "activitynet_qa"
    BUILDER_CONFIGS: ClassVar[list[VideoQAConfig]] = [VideoQAConfig(name="default", task=OpenEnded.name)]
    ANSWER_TYPES: ClassVar[tuple[str, ...]] = ("motion", "spatial_relation", "temporal_relation", "yes_no",
                                               "color", "object", "location", "number", "other")

    def _split_files(self) -> dict[str, Path]:
        files = {}
        for split in ("train", "val", "test"):
            questions, answers = self._find_annotation(f"{split}_q.json"), self._find_annotation(f"{split}_a.json")
            if (questions is None) != (answers is None):
                present, absent = (questions, f"{split}_a.json") if answers is None else (answers, f"{split}_q.json")
                raise FileNotFoundError(f"{self.DATASET_NAME}: {present} has no {absent} beside it (split {split} "
                                        f"needs both the questions and the answers file)")
            if questions is not None:
                files[split] = questions
        return files

    def _read_split(self, split: str) -> list[dict[str, Any]]:
        answers: dict[str, AnnotationRow] = {}
        answers_file = self._find_annotation(f"{split}_a.json")
        for row in read_rows(self.DATASET_NAME, answers_file):
            answers.setdefault(row.identifier("question_id"), row)

        def record(row: AnnotationRow) -> dict[str, Any]:
            question_id = row.identifier("question_id")
            answer = answers.get(question_id)
            if answer is None:
                raise row.error("question_id", f"{question_id!r} has no answer in {answers_file}")
            answer_type = answer.integer("type", 0, len(self.ANSWER_TYPES) - 1, ", ".join(self.ANSWER_TYPES))
            return {"video_id": row.identifier("video_name"), "question": row.text("question"),
                    "answer": answer.text("answer"), "answer_type": self.ANSWER_TYPES[answer_type],
                    "question_id": question_id}

        return read_records(self.DATASET_NAME, self._split_files()[split], record)

    def _video_names(self, video_id: str) -> tuple[str, ...]:
        return (video_id, f"v_{video_id}")


class How2QA(VideoQABuilder):
    """How2QA (multiple-choice, 4 options), official csv files from github.com/ych133/How2R-and-How2QA.

    Layout::

        data_dir/how2QA_train_release.csv          # train
        data_dir/how2QA_val_release.csv            # val (the paper's "public val set")
        data_dir/how2QA_test_public_release.csv    # test
        data_dir/videos/<vid_id>.mp4               # the full HowTo100M videos (or .webm ...)

    Each csv row (no header): ``vid_id,[start:end],wrong1,wrong2,wrong3,question,correct``; the release has no
    question id, so ``question_id`` is ``<vid_id>_<line>``. The four answers are put in a fixed pseudo-random
    order per question (seeded by its id) so the correct one is not always first. ``num_video_frames`` counts the
    frames of the [start, end] window (at least one), which starts at frame ``start_frame`` = floor(start * fps)
    of the video; the video's fps is probed once at build time. A window ending after the video is cut at its
    last frame.

    Odd rows of the release, counted in a warning at build time:

    * a window that starts after the video ends (e.g. 134-181 s on a 30 s file; ``window_past_end`` True):
      dropped from train; kept in val/test with ``label`` -1, counted wrong, so the accuracy stays over the
      official question set; such a row decodes the whole video;
    * a correct answer that is also listed as a wrong one (two identical choices): scored by answer text,
      ``label`` is the first of the two, and identical (question, choice) inputs get identical scores, of which
      the first wins the argmax, so choosing that text counts as right.
    """

    DATASET_NAME = "how2qa"
    NUM_CHOICES = 4
    BUILDER_CONFIGS: ClassVar[list[VideoQAConfig]] = [VideoQAConfig(name="default", task=MultipleChoice.name)]
    FILES: ClassVar[dict[str, str]] = {"train": "how2QA_train_release.csv", "val": "how2QA_val_release.csv",
                                       "test": "how2QA_test_public_release.csv"}
    COLUMNS: ClassVar[tuple[str, ...]] = ("vid_id", "window", "wrong1", "wrong2", "wrong3", "question", "correct")

    def _split_files(self) -> dict[str, Path]:
        found = {split: self._find_annotation(name) for split, name in self.FILES.items()}
        return {split: path for split, path in found.items() if path is not None}

    def _read_split(self, split: str) -> list[dict[str, Any]]:
        records = read_records(self.DATASET_NAME, self._split_files()[split], self._record, columns=self.COLUMNS,
                               header=_is_how2qa_header)
        repeated = [record["question_id"] for record in records if record["choices"].count(record["answer"]) > 1]
        if repeated:
            logger.warning("how2qa/%s: %d questions list their correct answer also as a wrong one (e.g. %s); "
                           "scored by answer text: the label is its first copy, which wins a tie", split,
                           len(repeated), repeated[:_REPORT_EXAMPLES])
        return records

    def _record(self, row: AnnotationRow) -> dict[str, Any]:
        """One question; its id is ``<vid_id>_<its line in the file, from 0>`` (the release has none)."""
        vid_id, window = row.identifier("vid_id"), row.values["window"]
        wrong = [row.text(f"wrong{k}") for k in (1, 2, 3)]
        question, correct = row.text("question"), row.text("correct")
        text = window.strip()
        times = [_seconds(bound) for bound in text[1:-1].split(":")] if text[:1] + text[-1:] == "[]" else []
        if len(times) != 2 or None in times or times[1] < times[0]:
            raise row.error("window", f"expected [start:end] in seconds with start <= end, e.g. [1.0:5.0], got "
                                      f"{window!r}")
        question_id = f"{vid_id}_{row.line - 1}"
        order = np.random.default_rng(zlib.crc32(question_id.encode())).permutation(1 + len(wrong))
        choices = [[correct, *wrong][j] for j in order]
        return {"video_id": vid_id, "question": question, "answer": correct, "answer_type": "how2qa",
                "question_id": question_id, "choices": choices, "label": choices.index(correct),
                "start": times[0], "end": times[1]}

    def _window(self, record: dict[str, Any], video_path: str, total_frames: int) -> dict[str, Any]:
        fps = self._probe_once("fps", video_path, frame_rate)
        start_frame = int(record["start"] * fps)
        if start_frame >= total_frames:  # no frame of the window exists: the whole video (the row counts wrong)
            return {"num_video_frames": total_frames, "start_frame": 0, "window_past_end": True}
        end_frame = min(max(math.ceil(record["end"] * fps), start_frame + 1), total_frames)
        return {"num_video_frames": end_frame - start_frame, "start_frame": start_frame, "window_past_end": False}

    def _unanswerable(self, example: dict[str, Any]) -> str | None:
        return "a window past the end of its video" if example["window_past_end"] else None

    def _extra_features(self) -> dict[str, datasets.Value]:
        return {"start": datasets.Value("float32"), "end": datasets.Value("float32"),
                "start_frame": datasets.Value("int32"), "window_past_end": datasets.Value("bool")}


def _tgif_choices(row: AnnotationRow) -> dict[str, Any]:
    """Action, Transition: the options (``options`` in ClipBERT's jsonl, ``a1``..``a5`` in the tsv) and the index of
    the correct one."""
    num_choices = TGIFQA.NUM_CHOICES
    if "options" in row.values:
        choices = row.texts("options", num_choices)
    else:
        choices = [row.text(f"a{k}") for k in range(1, num_choices + 1)]
    label = row.integer("answer", 0, num_choices - 1, "the index of the correct option", answer=True)
    return {"choices": choices, "label": label, "answer": choices[label]}


def _tgif_count(row: AnnotationRow) -> dict[str, Any]:
    """Count: the count, an integer >= 0."""
    count = row.integer("answer", 0, meaning="the count", answer=True)
    return {"count": float(count), "answer": str(count)}


def _tgif_frameqa(row: AnnotationRow) -> dict[str, Any]:
    """FrameQA: the answer text and its type (``answer_type`` in ClipBERT's jsonl, a ``type`` id in the tsv)."""
    if "answer_type" in row.values:
        answer_type = row.optional_text("answer_type")
    else:
        types = TGIFQA.FRAMEQA_TYPES
        answer_type = types[row.integer("type", 0, len(types) - 1, ", ".join(types))]
    return {"answer": row.text("answer"), "answer_type": answer_type}


@dataclass(frozen=True)
class TGIFTask:
    """One TGIF-QA task, a config of :class:`TGIFQA`: its task type (``modeling_siasamrea.tasks``), the columns its
    original tsv must have (its header names them; others are ignored) and how a row's answer is read."""

    task_type: str
    tsv_columns: tuple[str, ...]
    read_answer: Callable[[AnnotationRow], dict[str, Any]]


_TGIF_CHOICE_COLUMNS = ("gif_name", "question", "a1", "a2", "a3", "a4", "a5", "answer")
# TGIF-QA's tasks (its config names, not task types), each with its task type: the one table that maps them
TGIF_TASKS: dict[str, TGIFTask] = {
    "action": TGIFTask(MultipleChoice.name, _TGIF_CHOICE_COLUMNS, _tgif_choices),
    "transition": TGIFTask(MultipleChoice.name, _TGIF_CHOICE_COLUMNS, _tgif_choices),
    "frameqa": TGIFTask(OpenEnded.name, ("gif_name", "question", "answer", "type"), _tgif_frameqa),
    "count": TGIFTask(Count.name, ("gif_name", "question", "answer"), _tgif_count),
}


class TGIFQA(VideoQABuilder):
    """TGIF-QA: configs ``action``, ``transition`` (multiple-choice, 5 options), ``frameqa`` (open-ended) and
    ``count`` (repetition count, regression).

    Annotations in either format (the ClipBERT jsonl files win when both are present):

    * original, github.com/YunseokJANG/tgif-qa ``dataset/``: tab-separated ``Train_<config>_question.csv`` and
      ``Test_<config>_question.csv`` (splits train and test) with a header row: ``gif_name question a1..a5
      answer vid_id key`` (action, transition), ``gif_name question answer type vid_id key description``
      (frameqa; type 0/1/2/3 = object/number/color/location), ``gif_name question answer vid_id key`` (count);
      ``vid_id`` becomes ``question_id``;
    * ClipBERT (``txt_db/tgif_qa``): ``<config>_{train,val}.jsonl`` with ``{"gif_name", "question", "options",
      "answer": index}`` (action, transition) or ``{"gif_name", "question", "answer", "answer_type"}``
      (frameqa); no question id, so ``question_id`` is ``"<file split>-<line>"`` (e.g. ``val-0``). ClipBERT's
      val file holds TGIF-QA's Test questions and it has no test file, so split ``test`` reads the val file
      too (said once in the log; a ``<config>_test.jsonl``, if present, is read instead).

    The count config: ClipBERT ships no count file, so it reads the original ``{Train,Test}_count_question.csv``,
    or ``count_{train,val,test}.jsonl`` lines ``{"gif_name", "question", "answer": count}`` (as the synthetic
    data writes them).

    Videos: the TGIF GIFs (decoded with PyAV) or converted mp4s as ``data_dir/gifs/<gif_name>.gif`` (or
    ``videos/``). Frames are indexed in GIF order whatever each frame's duration.
    """

    DATASET_NAME = "tgif_qa"
    NUM_CHOICES = 5
    BUILDER_CONFIGS: ClassVar[list[VideoQAConfig]] = [
        VideoQAConfig(name=name, task=task.task_type) for name, task in TGIF_TASKS.items()
    ]
    VIDEO_SUBDIRS = ("gifs", "videos", "video")
    FRAMEQA_TYPES: ClassVar[tuple[str, ...]] = ("object", "number", "color", "location")

    def _split_files(self) -> dict[str, Path]:
        task = self.config.name
        jsonl = {split: self._find_annotation(f"{task}_{split}.jsonl") for split in ("train", "val", "test")}
        if any(jsonl.values()):
            if jsonl["test"] is None:
                jsonl["test"] = jsonl["val"]  # ClipBERT's val file: TGIF-QA's Test questions
            return {split: path for split, path in jsonl.items() if path is not None}
        tsv = {split: self._find_annotation(f"{split.title()}_{task}_question.csv") for split in ("train", "test")}
        return {split: path for split, path in tsv.items() if path is not None}

    def _split_generators(self, dl_manager: Any) -> list[datasets.SplitGenerator]:
        files = self._split_files()
        if "val" in files and files.get("test") == files["val"]:
            logger.warning("tgif_qa/%s: split 'test' reads %s (ClipBERT's val file, which holds TGIF-QA's Test "
                           "questions; ClipBERT ships no test file)", self.config.name, files["val"].name)
        return super()._split_generators(dl_manager)

    def _read_split(self, split: str) -> list[dict[str, Any]]:
        path = self._split_files()[split]
        # ids "<file split>-<row>": "val" for action_val.jsonl, also when it is read as test
        file_split = path.stem.rsplit("_", 1)[-1] if path.suffix == ".jsonl" else split
        return read_records(self.DATASET_NAME, path, lambda row: self._record(row, file_split), delimiter="\t",
                            columns=TGIF_TASKS[self.config.name].tsv_columns)

    def _record(self, row: AnnotationRow, file_split: str) -> dict[str, Any]:
        """One example from an original tsv row or a ClipBERT jsonl object."""
        task = self.config.name
        record = {"video_id": row.identifier("gif_name"), "question": row.text("question"),
                  "question_id": _release_id(row, f"{file_split}-{row.index}"), "answer_type": task}
        return {**record, **TGIF_TASKS[task].read_answer(row)}
