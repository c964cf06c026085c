"""`datasets` builders for the SiaSamRea VideoQA benchmarks, read from the files their authors distribute.

datasets >= 4 no longer runs loading scripts, so the builders are plain classes, instantiated directly::

    builder = MSRVTTQA(data_dir="/data/msrvtt_qa", cache_dir="/tmp/hf")
    builder.download_and_prepare()
    train = builder.as_dataset("train")

or through :func:`datasets_scripts.load_videoqa`. Every builder shares :class:`VideoQABuilder`: it finds the
annotation files, resolves each video in the videos folder, probes its frame count once (``count_frames``),
drops examples whose video is missing or unreadable (reported; an error if none remain) or shorter than
``min_video_frames``, and builds the open-ended answer vocabulary from the train split.

Columns of every example: ``video_id``, ``video_path`` (str), ``num_frames`` (int32), ``question``,
``question_id``, ``answer`` (the answer text, for every task), ``answer_type`` (str), and per task:

* open-ended: ``label`` -- ``ClassLabel`` over the top-K train answers (``features["label"].names`` is the
  ``id2label`` list); -1 for an answer outside the vocabulary (kept in eval splits, counted wrong; dropped
  from train);
* multiple-choice: ``choices`` (list of str) and ``label`` (int64, index of the correct choice);
* count: ``count`` (float32).

How2QA adds ``start``/``end`` (float32 seconds) and ``start_frame`` (int32): ``num_frames`` then counts the
frames of that window, which starts at ``start_frame`` of the video.

Open-ended answers are whitespace-stripped and lower-cased. Options (builder kwargs):
``answer_vocab_size`` (K of the top-K answer vocabulary, default 1000 as the paper for MSRVTT-QA),
``min_video_frames`` (default 0; the paper uses 40 for its TGIF-QA pretraining) and ``video_dir`` (videos
folder, absolute or relative to ``data_dir``).
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
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

from modeling_siasamrea.video_io import VideoDecodeError, count_frames

__all__ = [
    "MSRVTTQA",
    "MSVDQA",
    "TASKS",
    "TGIFQA",
    "ActivityNetQA",
    "How2QA",
    "VideoQABuilder",
    "VideoQAConfig",
    "build_answer_vocab",
]

logger = logging.getLogger(__name__)

OPEN_ENDED, MULTIPLE_CHOICE, COUNT = "open_ended", "multiple_choice", "count"
TASKS = (OPEN_ENDED, MULTIPLE_CHOICE, COUNT)
_ANNOTATION_SUFFIXES = {".json", ".jsonl", ".csv", ".tsv"}
_REPORT_EXAMPLES = 5


def build_answer_vocab(answers: Iterable[str], top_k: int = 1000) -> dict[str, int]:
    """``{answer: id}`` of the ``top_k`` most frequent answers; ids by decreasing frequency, ties alphabetical."""
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    counts = Counter(answers)
    ranked = sorted(counts, key=lambda answer: (-counts[answer], answer))[:top_k]
    return {answer: i for i, answer in enumerate(ranked)}


def _normalize_answer(answer: Any) -> str:
    """Open-ended answer text as matched against the vocabulary."""
    return str(answer).strip().lower()


def _frames_or_error(path: str) -> int | str:
    """``count_frames(path)``, or the message of the VideoDecodeError it raised."""
    try:
        return count_frames(path)
    except VideoDecodeError as error:
        return str(error)


def _read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Objects of a JSON-lines file (blank lines skipped)."""
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


@dataclass
class VideoQAConfig(datasets.BuilderConfig):
    """Builder config: ``task`` is fixed per dataset/config; the other fields are user options."""

    task: str = OPEN_ENDED
    answer_vocab_size: int = 1000
    min_video_frames: int = 0
    video_dir: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")
        if self.min_video_frames < 0:
            raise ValueError(f"min_video_frames must be >= 0, got {self.min_video_frames}")


class VideoQABuilder(datasets.GeneratorBasedBuilder):
    """Shared logic of the VideoQA builders; a subclass says where its files are and how to read one split.

    Subclasses set ``DATASET_NAME`` and ``BUILDER_CONFIGS`` and implement ``_split_files`` (split -> annotation
    file) and ``_read_split`` (records with ``video_id``, ``question``, ``question_id``, ``answer_type`` and
    ``answer`` (open-ended) / ``choices`` + ``label`` (multiple-choice) / ``count`` (count)).
    """

    BUILDER_CONFIG_CLASS = VideoQAConfig
    VERSION = datasets.Version("1.0.0")
    DATASET_NAME: ClassVar[str]
    NUM_CHOICES: ClassVar[int | None] = None
    ANNOTATION_SUBDIRS: ClassVar[tuple[str, ...]] = ("", "txt", "annotations")
    VIDEO_SUBDIRS: ClassVar[tuple[str, ...]] = ("videos", "video")
    VIDEO_EXTENSIONS: ClassVar[tuple[str, ...]] = (".mp4", ".webm", ".mkv", ".avi", ".mov", ".gif")
    config: VideoQAConfig

    def __init__(self, *args: Any, data_dir: str | os.PathLike | None = None, **kwargs: Any) -> None:
        if data_dir is None:
            raise ValueError(f"{type(self).__name__} needs data_dir: the folder with the annotation files "
                             f"and the videos (see its docstring for the layout)")
        data_dir = os.path.abspath(os.fspath(data_dir))
        if not os.path.isdir(data_dir):
            raise FileNotFoundError(f"{type(self).__name__}: data_dir {data_dir} does not exist")
        kwargs.setdefault("dataset_name", self.DATASET_NAME)
        kwargs.setdefault("hash", self._fingerprint(Path(data_dir), kwargs.get("video_dir")))
        self._probed: dict[tuple[str, str], Any] = {}
        super().__init__(*args, data_dir=data_dir, **kwargs)

    # ----- to implement per dataset -----
    def _split_files(self) -> dict[str, Path]:
        """Annotation file of each available split."""
        raise NotImplementedError

    def _read_split(self, split: str) -> Iterator[dict[str, Any]]:
        """Raw records of one split (see the class docstring)."""
        raise NotImplementedError

    def _video_names(self, video_id: str) -> tuple[str, ...]:
        """File names (without extension) a video may have in the videos folder."""
        return (video_id,)

    def _window(self, record: dict[str, Any], video_path: str, total_frames: int) -> dict[str, Any]:
        """Frame-window columns of an example; by default the whole video."""
        return {"num_frames": total_frames}

    def _extra_features(self) -> dict[str, datasets.Value]:
        """Columns a dataset adds to the shared ones."""
        return {}

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
                    if path.suffix in _ANNOTATION_SUFFIXES and path.is_file():
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

    @cached_property
    def answer_vocab(self) -> dict[str, int]:
        """Open-ended answer vocabulary ``{answer: id}`` (top-K train answers); empty for other tasks."""
        if self.config.task != OPEN_ENDED:
            return {}
        if "train" not in self._split_files():
            raise FileNotFoundError(f"{self.DATASET_NAME}: no train annotations in {self.data_path}; the "
                                    f"open-ended answer vocabulary is built from them")
        answers = (_normalize_answer(r["answer"]) for r in self._read_split("train"))
        return build_answer_vocab(answers, self.config.answer_vocab_size)

    def _info(self) -> datasets.DatasetInfo:
        features: dict[str, Any] = {
            "video_id": datasets.Value("string"),
            "video_path": datasets.Value("string"),
            "num_frames": datasets.Value("int32"),
            "question": datasets.Value("string"),
            "question_id": datasets.Value("string"),
            "answer": datasets.Value("string"),
            "answer_type": datasets.Value("string"),
        }
        if self.config.task == OPEN_ENDED:
            features["label"] = datasets.ClassLabel(names=list(self.answer_vocab))
        elif self.config.task == MULTIPLE_CHOICE:
            features["choices"] = datasets.List(datasets.Value("string"))
            features["label"] = datasets.Value("int64")
        else:
            features["count"] = datasets.Value("float32")
        features.update(self._extra_features())
        return datasets.DatasetInfo(description=(type(self).__doc__ or "").strip(),
                                    features=datasets.Features(features))

    def download_and_prepare(self, *args: Any, **kwargs: Any) -> None:
        """As in ``datasets``, but a data problem (no example left, a malformed file) surfaces as itself
        rather than wrapped in a generic ``DatasetGenerationError``."""
        try:
            super().download_and_prepare(*args, **kwargs)
        except datasets.exceptions.DatasetGenerationError as error:
            if isinstance(error.__cause__, (ValueError, OSError)):
                raise error.__cause__ from None
            raise

    def _split_generators(self, dl_manager: Any) -> list[datasets.SplitGenerator]:
        files = self._split_files()
        if not files:
            raise FileNotFoundError(f"{self.DATASET_NAME}: no annotation files found in {self.data_path}; "
                                    f"see the docstring of {type(self).__name__} for the expected layout")
        return [datasets.SplitGenerator(name=split, gen_kwargs={"split": split}) for split in files]

    def _generate_examples(self, split: str) -> Iterator[tuple[int, dict[str, Any]]]:
        missing, unreadable, short, oov = [], [], [], []
        kept = 0
        for index, record in enumerate(self._read_split(split)):
            path = self.find_video(record["video_id"])
            if path is None:
                missing.append(record["video_id"])
                continue
            total = self._probe(path)
            if isinstance(total, str):
                unreadable.append(total)
                continue
            example = {"video_path": path, **self._window(record, path, total), **record}
            if example["num_frames"] < self.config.min_video_frames:
                short.append(record["video_id"])
                continue
            if self.config.task == OPEN_ENDED:
                example["answer"] = _normalize_answer(example["answer"])
                example["label"] = self.answer_vocab.get(example["answer"], -1)
                if example["label"] == -1 and split == "train":
                    oov.append(example["answer"])
                    continue
            kept += 1
            yield index, example
        dropped = {"a missing video": missing, "an unreadable video": unreadable,
                   f"fewer than {self.config.min_video_frames} frames": short,
                   "an answer outside the vocabulary": oov}
        report = "; ".join(f"{len(items)} with {reason} (e.g. {sorted(set(items))[:_REPORT_EXAMPLES]})"
                           for reason, items in dropped.items() if items)
        if report:
            logger.warning("%s/%s: kept %d examples, dropped %s", self.DATASET_NAME, split, kept, report)
        if kept == 0:
            raise ValueError(f"{self.DATASET_NAME}/{split}: no example left (videos looked up in "
                             f"{self.video_dir}); dropped {report or 'nothing: the annotation file is empty'}")


class MSRVTTQA(VideoQABuilder):
    """MSRVTT-QA (open-ended), in the jsonl format shipped by ClipBERT and ALPRO.

    Files: the annotations of Xu et al. (2017) as converted by ClipBERT (``txt_db/msrvtt_qa``) or ALPRO
    (``data/msrvtt_qa/txt``); the MSR-VTT videos from the MSR-VTT release. Layout::

        data_dir/{train,val,test}.jsonl     # or data_dir/txt/ or data_dir/annotations/
        data_dir/videos/video0.mp4 ...      # <video_id>.<ext>, or a folder of frames <video_id>/

    One line: ``{"video_id": "video6513", "question": "what are three people sitting on?", "answer": "couch",
    "answer_type": "what"}`` (``question_id`` is used when present, else ``"<split>-<line>"``).
    """

    DATASET_NAME = "msrvtt_qa"
    BUILDER_CONFIGS: ClassVar[list[VideoQAConfig]] = [VideoQAConfig(name="default", task=OPEN_ENDED)]
    SPLITS: ClassVar[tuple[str, ...]] = ("train", "val", "test")

    def _split_files(self) -> dict[str, Path]:
        found = {split: self._find_annotation(f"{split}.jsonl") for split in self.SPLITS}
        return {split: path for split, path in found.items() if path is not None}

    def _read_split(self, split: str) -> Iterator[dict[str, Any]]:
        for i, raw in enumerate(_read_jsonl(self._split_files()[split])):
            yield {"video_id": str(raw["video_id"]), "question": raw["question"], "answer": str(raw["answer"]),
                   "answer_type": str(raw.get("answer_type", "")),
                   "question_id": str(raw.get("question_id", f"{split}-{i}"))}


class MSVDQA(MSRVTTQA):
    """MSVD-QA (open-ended), in the jsonl format shipped by ALPRO (``data/msvd_qa/txt``).

    Layout as :class:`MSRVTTQA` (ALPRO's ``data/msvd_qa/{txt,videos}``): ``data_dir/{train,val,test}.jsonl``
    (or under ``txt/``) and the MSVD clips (YouTubeClips) as ``data_dir/videos/<video_id>.avi``.
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
    BUILDER_CONFIGS: ClassVar[list[VideoQAConfig]] = [VideoQAConfig(name="default", task=OPEN_ENDED)]
    ANSWER_TYPES: ClassVar[tuple[str, ...]] = ("motion", "spatial_relation", "temporal_relation", "yes_no",
                                               "color", "object", "location", "number", "other")

    def _split_files(self) -> dict[str, Path]:
        files = {}
        for split in ("train", "val", "test"):
            questions, answers = self._find_annotation(f"{split}_q.json"), self._find_annotation(f"{split}_a.json")
            if questions is not None and answers is not None:
                files[split] = questions
        return files

    def _read_split(self, split: str) -> Iterator[dict[str, Any]]:
        questions = json.loads(self._split_files()[split].read_text(encoding="utf-8"))
        answers = json.loads(self._find_annotation(f"{split}_a.json").read_text(encoding="utf-8"))
        by_id = {str(a["question_id"]): a for a in answers}
        for q in questions:
            answer = by_id.get(str(q["question_id"]))
            if answer is None:
                raise ValueError(f"activitynet_qa/{split}: question {q['question_id']} has no answer in "
                                 f"{split}_a.json")
            yield {"video_id": str(q["video_name"]), "question": q["question"], "answer": str(answer["answer"]),
                   "answer_type": self.ANSWER_TYPES[int(answer["type"])], "question_id": str(q["question_id"])}

    def _video_names(self, video_id: str) -> tuple[str, ...]:
        return (video_id, f"v_{video_id}")


class How2QA(VideoQABuilder):
    """How2QA (multiple-choice, 4 options), official csv files from github.com/ych133/How2R-and-How2QA.

    Layout::

        data_dir/how2QA_train_release.csv          # train
        data_dir/how2QA_val_release.csv            # val (the paper's "public val set")
        data_dir/how2QA_test_public_release.csv    # test
        data_dir/videos/<vid_id>.mp4               # the full HowTo100M videos (or .webm ...)

    Each csv row (no header): ``vid_id,[start:end],wrong1,wrong2,wrong3,question,correct``. The four answers
    are put in a fixed pseudo-random order per question (seeded by its id) so the correct one is not always
    first. ``num_frames`` counts the frames of the [start, end] window (at least one), which starts at frame
    ``start_frame`` = floor(start * fps) of the video; the video's fps is probed once at build time.
    """

    DATASET_NAME = "how2qa"
    NUM_CHOICES = 4
    BUILDER_CONFIGS: ClassVar[list[VideoQAConfig]] = [VideoQAConfig(name="default", task=MULTIPLE_CHOICE)]
    FILES: ClassVar[dict[str, str]] = {"train": "how2QA_train_release.csv", "val": "how2QA_val_release.csv",
                                       "test": "how2QA_test_public_release.csv"}

    def _split_files(self) -> dict[str, Path]:
        found = {split: self._find_annotation(name) for split, name in self.FILES.items()}
        return {split: path for split, path in found.items() if path is not None}

    def _read_split(self, split: str) -> Iterator[dict[str, Any]]:
        with self._split_files()[split].open(encoding="utf-8", newline="") as f:
            for i, row in enumerate(csv.reader(f)):
                if len(row) < 2 or not row[1].startswith("["):  # blank line or a header some copies add
                    continue
                if len(row) != 7:
                    raise ValueError(f"how2qa/{split}: line {i + 1} has {len(row)} fields, expected 7 "
                                     f"(vid_id, [start:end], 3 wrong answers, question, correct answer)")
                vid_id, window, *wrong, question, correct = row
                start, end = (float(t) for t in window.strip("[]").split(":"))
                question_id = f"{vid_id}_{i}"
                order = np.random.default_rng(zlib.crc32(question_id.encode())).permutation(1 + len(wrong))
                choices = [[correct, *wrong][j] for j in order]
                yield {"video_id": vid_id, "question": question, "answer": correct, "answer_type": "how2qa",
                       "question_id": question_id, "choices": choices, "label": int(np.argmin(order)),
                       "start": start, "end": end}

    def _window(self, record: dict[str, Any], video_path: str, total_frames: int) -> dict[str, Any]:
        fps = self._probe_once("fps", video_path, _probe_fps)
        start_frame = min(int(record["start"] * fps), total_frames - 1)
        end_frame = min(max(math.ceil(record["end"] * fps), start_frame + 1), total_frames)
        return {"num_frames": end_frame - start_frame, "start_frame": start_frame}

    def _extra_features(self) -> dict[str, datasets.Value]:
        return {"start": datasets.Value("float32"), "end": datasets.Value("float32"),
                "start_frame": datasets.Value("int32")}


def _probe_fps(path: str) -> float:
    """Average frame rate of a video file (decord, as used for decoding)."""
    import decord

    return float(decord.VideoReader(path, ctx=decord.cpu(0)).get_avg_fps())


class TGIFQA(VideoQABuilder):
    """TGIF-QA: configs ``action``, ``transition`` (multiple-choice, 5 options), ``frameqa`` (open-ended) and
    ``count`` (repetition count, regression).

    Annotations in either format (the ClipBERT jsonl files win when both are present):

    * original, github.com/YunseokJANG/tgif-qa ``dataset/``: tab-separated ``Train_<config>_question.csv`` and
      ``Test_<config>_question.csv`` (splits train and test) with a header row: ``gif_name question a1..a5
      answer vid_id key`` (action, transition), ``gif_name question answer type vid_id key description``
      (frameqa; type 0/1/2/3 = object/number/color/location), ``gif_name question answer vid_id key`` (count);
      ``vid_id`` becomes ``question_id``;
    * ClipBERT (``txt_db/tgif_qa``): ``<config>_{train,val,test}.jsonl`` with ``{"gif_name", "question",
      "options", "answer": index}`` (action, transition), ``{"gif_name", "question", "answer", "answer_type"}``
      (frameqa), ``{"gif_name", "question", "answer": count}`` (count).

    Videos: the TGIF GIFs (or converted mp4s) as ``data_dir/gifs/<gif_name>.gif`` (or ``videos/``).
    """

    DATASET_NAME = "tgif_qa"
    NUM_CHOICES = 5
    BUILDER_CONFIGS: ClassVar[list[VideoQAConfig]] = [
        VideoQAConfig(name="action", task=MULTIPLE_CHOICE),
        VideoQAConfig(name="transition", task=MULTIPLE_CHOICE),
        VideoQAConfig(name="frameqa", task=OPEN_ENDED),
        VideoQAConfig(name="count", task=COUNT),
    ]
    VIDEO_SUBDIRS = ("gifs", "videos", "video")
    FRAMEQA_TYPES: ClassVar[tuple[str, ...]] = ("object", "number", "color", "location")

    def _split_files(self) -> dict[str, Path]:
        task = self.config.name
        jsonl = {split: self._find_annotation(f"{task}_{split}.jsonl") for split in ("train", "val", "test")}
        if any(jsonl.values()):
            return {split: path for split, path in jsonl.items() if path is not None}
        tsv = {split: self._find_annotation(f"{split.title()}_{task}_question.csv") for split in ("train", "test")}
        return {split: path for split, path in tsv.items() if path is not None}

    def _read_split(self, split: str) -> Iterator[dict[str, Any]]:
        path = self._split_files()[split]
        if path.suffix == ".jsonl":
            rows: Iterable[dict[str, Any]] = _read_jsonl(path)
        else:
            with path.open(encoding="utf-8", newline="") as f:
                rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
        for i, row in enumerate(rows):
            yield self._record(row, question_id=str(row.get("question_id", row.get("vid_id", f"{split}-{i}"))))

    def _record(self, row: dict[str, Any], question_id: str) -> dict[str, Any]:
        """One example from an original tsv row or a ClipBERT jsonl object."""
        task = self.config.name
        record = {"video_id": str(row["gif_name"]), "question": row["question"], "question_id": question_id,
                  "answer_type": task}
        if self.config.task == MULTIPLE_CHOICE:
            choices = row["options"] if "options" in row else [row[f"a{k}"] for k in range(1, 6)]
            label = int(row["answer"])
            return {**record, "choices": [str(c) for c in choices], "label": label, "answer": str(choices[label])}
        if self.config.task == COUNT:
            return {**record, "count": float(row["answer"]), "answer": str(row["answer"])}
        answer_type = row.get("answer_type") or self.FRAMEQA_TYPES[int(row["type"])]
        return {**record, "answer": str(row["answer"]), "answer_type": answer_type}
