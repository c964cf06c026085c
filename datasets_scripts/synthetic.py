"""Synthetic VideoQA: small H.264 videos whose questions need a brief event that sparse sampling can miss.

Used as the embedded default for the demo, the tests and the ablations: no download, a few hundred videos
in seconds, read through the *real* MSRVTT-QA and TGIF-QA builders (the files are written in their formats).

What a video shows (generator version 2)
    * a moving background: a drifting sinusoidal texture (amplitude 8) plus per-frame Gaussian noise (std 3) on a
      random grey tint -- no answer colour anywhere outside the flashes;
    * the **target** (a large coloured circle, triangle, diamond or cross, radius 0.3 x image size) that *flashes*
      ``count`` times (1-5), each flash lasting only ``flash_length`` frames, with gaps of 1-2 flash lengths;
    * after the target's last flash, a smaller **second object** (radius 0.6 x the target's; another shape and
      never the target's colour) flashes once;
    * optional always-visible distractor squares (``DISTRACTOR_COLORS``, none by default).

Why it is temporal (event length vs sampling)
    ``flash_length = max(2, δ // 2)`` where δ is the stride of the default
    :class:`~modeling_siasamrea.sampling.SiameseSampler` for that video length (auto B = L // 8 in [5, 16];
    δ is 5-7 frames for L in [48, 150], so a flash lasts 2-3 frames, under 7% of the video). A sparse anchor
    clip (frames s, s+δ, ...) therefore sees one given flash less than half of the time, while the 8 siamese
    clips (offsets ±1..±4 = the default pace) tile the gap between two anchor frames and see it whenever it
    lies inside the anchor's span (~85% of the time). The single evaluation clip (B frames spread over the
    whole video, spacing ≈ 9 frames) sees one given flash about a third of the time, so dense multi-clip
    inference helps too. ``synthetic_meta.jsonl`` records every
    flash (start frames, length, reference stride) so tests can check this. With the demo's 8 frames per clip,
    over all 1-5 flashes of a video: the training anchor sees at least one flash in ~61% of draws, the anchor +
    8 siamese clips in ~95%, the evaluation clip in ~51% of videos -- so an anchor-only model cannot answer more
    than ~59% of the colour questions (benchmarks/results/ablation.md).

Learnability (why version 2; numbers in benchmarks/results/ablation.md)
    Version 1 drew one small always-visible distractor square of *every* palette colour, a 0.14 x size target and
    heavier noise (std 10, texture 22), and asked "what shape appears first ?". The tiny CPU model then stayed at
    the question-type prior (~0.21), even with the target *always visible*: the failure was not only temporal.
    Baseline runs on the colour questions (the former ``benchmarks/ablation.py --learnability``, 15 epochs, 250 train
    questions, test accuracy, chance 0.17): version 2 0.36 (target always visible: 1.00); version-1 visuals 0.17
    (always visible: 0.50); version 2 with the version-1 model (64-wide BERT, ResNet [16, 32]) 0.17. So two things
    made version 1 unlearnable in CPU minutes: a model too narrow, and -- because ClipBERT averages a clip's frames,
    diluting a 1-frame flash to 1/8 of the visual tokens -- six always-present squares of the answer colours that
    swamp that diluted signal. Also, "what shape appears first ?" cannot be answered by a model that averages a
    clip's frames (order is lost). Version 2 keeps the temporal design (brief flashes, same lengths and schedule) and
    removes what was not temporal: palette-coloured distractors, small targets, heavy noise, and the order question
    (now "what shape flashes in {colour} ?").

Questions (answers balanced per split; never recoverable from the question text)
    * open-ended (MSRVTT-QA jsonl, TGIF FrameQA): "what color is the {shape} ?" -> its colour (6 colours,
      independent of the shape); "what shape flashes in {colour} ?" -> the target shape (the second object has
      another colour). Answer vocabulary: 6 colours + 4 shapes.
    * multiple choice, 5 options of "colour shape" (TGIF action/transition): "what flashes {count} times ?"
      -> the target; "what appears after the {colour} {shape} ?" -> the second object. The options are a
      3 colours x 2 shapes grid around the answer with one non-answer cell dropped: every option is equally
      likely to be the answer given the options, and neither colour nor shape alone decides it.
    * count (TGIF count): "how many times does the {shape} flash ?" -> 1..5.

The "families" variant (``variant="families"``, ``label_noise``): soft labels that know more than the labels
    Written before any study row was run (benchmarks/siamese_study.py). On the default variant the six
    colours share nothing and every label is right, so a soft label can only repeat the label or smooth it. Here:
    * 9 answer colours in 3 families of similar hue (``COLOR_FAMILIES``: red/orange/yellow, green/teal/cyan,
      blue/purple/magenta); members of a family differ along one channel, families differ in hue;
    * the family is visible in every frame: an achromatic square in the corner that belongs to the family
      (``FAMILY_MARKER_CORNERS``), so a clip that misses the flashes still knows 3 candidates, not 9, while only the
      brief flashes tell the member (the temporal design above is unchanged);
    * within-family label noise: ``label_noise`` of the *training* colour questions are annotated with another
      member of the target's family (annotators confusing similar colours, as in MSRVTT-QA's generated answers);
      val and test are clean, and ``synthetic_meta.jsonl`` keeps the true colour and the annotated one.
    So the siamese clips' soft label can carry what the label does not: on a training clip whose label is wrong, a
    teacher that sees a flash (the union of 9 clips does ~97% of the time, the anchor ~70%, with 8-frame clips of
    48-96-frame videos) points at the true member, and at T > 1 it spreads its mass over the family rather than
    over unrelated colours. **What would show the mechanism works:** on this variant, rows whose Q follows the
    siamese clips (the anchor's row, T = 4, their combination) beat the no-siamese baseline, paired by seed, with a
    95% confidence interval above 0 -- and by more than on the default variant (the control, where the same rows are
    expected to do nothing or harm); the teacher Q of the warm-started model agrees with the true colour on the
    training clips more often than the noisy labels do. Anchor-only ceiling: the evaluation clip sees a target flash
    in ~61% of test videos (48-96 frames, 8 frames per clip), and otherwise the family leaves 3 candidates:
    0.61 + 0.39 / 3 ~ 0.74 (default variant: 0.61 + 0.39 / 6 ~ 0.675).

Output layout (``OUT``)::

    OUT/videos/synth_00000.mp4 ...                      # H.264, image_size x image_size, fps
    OUT/msrvtt_qa/{train,val,test}.jsonl + videos -> ../videos      # MSRVTT-QA (ClipBERT) format
    OUT/tgif_qa/{action,transition,count,frameqa}_{split}.jsonl + videos -> ../videos   # ClipBERT TGIF-QA
    OUT/tgif_qa_original/{Train,Test}_{task}_question.csv + videos -> ../videos   # original TGIF-QA tsv
                                                                                   # (train and test only)
    OUT/synthetic_meta.jsonl                             # per-video event script
    OUT/.synthetic_complete.json                         # marker: generation parameters

Generation is deterministic by seed (byte-identical annotations; the videos too with the same PyAV/x264) and
idempotent: a complete folder with the same parameters is left as it is.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import shutil
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock

from modeling_siasamrea.sampling import SiameseSampler
from modeling_siasamrea.video_io import write_video

from .builders import TGIF_TASKS

__all__ = [
    "COLORS",
    "COLOR_FAMILIES",
    "DEFAULT_SPLITS",
    "MARKER_FILE",
    "META_FILE",
    "TARGET_SHAPES",
    "VARIANTS",
    "VideoScript",
    "flash_length",
    "main",
    "make_synthetic_videoqa",
]

logger = logging.getLogger(__name__)

GENERATOR_VERSION = 2
MARKER_FILE = ".synthetic_complete.json"
META_FILE = "synthetic_meta.jsonl"
DEFAULT_SPLITS: dict[str, float] = {"train": 0.7, "val": 0.15, "test": 0.15}
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (225, 35, 35),
    "green": (35, 195, 55),
    "blue": (45, 85, 245),
    "yellow": (240, 220, 35),
    "cyan": (35, 215, 225),
    "magenta": (220, 45, 215),
}
# The "families" variant (see ``make_synthetic_videoqa``): 9 answer colours in 3 families of similar hue; within a
# family the members differ along one channel by ~90 levels. Six are the colours above, with the same RGB.
COLOR_FAMILIES: dict[str, dict[str, tuple[int, int, int]]] = {
    "reds": {"red": COLORS["red"], "orange": (245, 130, 20), "yellow": COLORS["yellow"]},
    "greens": {"green": COLORS["green"], "teal": (20, 150, 120), "cyan": COLORS["cyan"]},
    "blues": {"blue": COLORS["blue"], "purple": (130, 50, 220), "magenta": COLORS["magenta"]},
}
FAMILY_OF: dict[str, str] = {color: family for family, members in COLOR_FAMILIES.items() for color in members}
PALETTES: dict[str, dict[str, tuple[int, int, int]]] = {
    "flash": COLORS,
    "families": {color: rgb for members in COLOR_FAMILIES.values() for color, rgb in members.items()},
}
VARIANTS = tuple(PALETTES)
# "families": an achromatic square, always visible, whose corner tells the family (its colour tells nothing)
FAMILY_MARKER_CORNERS = {"reds": (0, 0), "greens": (0, 1), "blues": (1, 0)}  # (bottom?, right?)
FAMILY_MARKER_SIZE = 0.2  # of image_size
FAMILY_MARKER_RGB = (210, 210, 210)
TARGET_SHAPES: tuple[str, ...] = ("circle", "triangle", "diamond", "cross")
# RGB colours of always-visible, bouncing distractor squares. None by default: version 1 had one square of every
# palette colour (``tuple(COLORS.values())``), which made the task unlearnable for the tiny CPU model (module
# docstring); achromatic ones, e.g. ((30, 30, 30), (200, 200, 200)), make a harder variant that shows no answer.
DISTRACTOR_COLORS: tuple[tuple[int, int, int], ...] = ()
TARGET_RADIUS = 0.3  # of image_size (version 1: 0.14)
SECOND_RADIUS = 0.6  # of the target radius
NOISE_STD = 3.0  # per-frame Gaussian pixel noise (version 1: 10)
TEXTURE_AMPLITUDE = 8.0  # drifting sinusoidal background (version 1: 22)
MAX_COUNT = 5
NUM_CHOICES = 5
# TGIF-QA FrameQA "type" column: 0 object, 1 number, 2 color, 3 location.
_FRAMEQA_TYPE = {"object": 0, "color": 2}
_REFERENCE_SAMPLER = SiameseSampler()


def flash_length(num_frames: int) -> int:
    """Frames one flash lasts in a video of ``num_frames``: about half the default sampler's stride δ, and short
    enough for 5 flashes and the second object with minimal gaps (which 47 frames, δ // 2 = 4, would not hold)."""
    fits = (num_frames - 2 * _margin(num_frames)) // (2 * (MAX_COUNT + 1) - 1)
    return max(2, min(_REFERENCE_SAMPLER.stride(num_frames) // 2, fits))


def _margin(num_frames: int) -> int:
    """Frames kept free of events at each end of the video."""
    return max(1, num_frames // 16)


@dataclass
class VideoScript:
    """Everything that happens in one synthetic video (one line of ``synthetic_meta.jsonl``)."""

    video_id: str
    split: str
    num_frames: int
    reference_stride: int
    flash_length: int
    target_color: str
    target_shape: str
    target_center: tuple[int, int]
    count: int
    flash_starts: list[int]
    second_color: str
    second_shape: str
    second_center: tuple[int, int]
    second_start: int
    radius: int
    second_radius: int
    action_choices: list[str]
    action_answer: int
    transition_choices: list[str]
    transition_answer: int
    # "families" variant: the target colour's family, shown by the marker; label noise: the colour the training
    # annotation gives (None: the true target colour)
    color_family: str | None = None
    annotated_color: str | None = None

    def flash_frames(self) -> list[int]:
        """Frame indices where the target is visible."""
        return [t for s in self.flash_starts for t in range(s, s + self.flash_length)]


def _balanced(rng: np.random.Generator, values: list[Any] | tuple[Any, ...], n: int) -> list[Any]:
    """``n`` values cycling through ``values`` (marginals equal up to one), shuffled."""
    order = rng.permutation(n)
    return [values[i % len(values)] for i in order]


def _choice_grid(
    rng: np.random.Generator, answer: tuple[str, str], shape_pool: list[str], position: int, palette: list[str]
) -> list[str]:
    """5 "colour shape" options: a 3 colours x 2 shapes grid around ``answer`` minus one non-answer cell.

    The grid is built symmetrically, so given the options every one is equally likely to be the answer.
    """
    color, shape = answer
    other_colors = [c for c in palette if c != color]
    colors = [color, *rng.choice(other_colors, size=2, replace=False).tolist()]
    other_shape = str(rng.choice([s for s in shape_pool if s != shape]))
    cells = [(c, s) for c in colors for s in (shape, other_shape) if (c, s) != answer]
    keep = rng.permutation(len(cells))[: NUM_CHOICES - 1]
    distractors = [f"{cells[i][0]} {cells[i][1]}" for i in keep]
    return distractors[:position] + [f"{color} {shape}"] + distractors[position:]


def _schedule(rng: np.random.Generator, num_frames: int, length: int, count: int) -> tuple[list[int], int]:
    """Start frames of the target's ``count`` flashes and of the second object's single flash."""
    gaps = rng.integers(length, 2 * length + 1, size=count)  # count - 1 between flashes + 1 before the second
    available = num_frames - 2 * _margin(num_frames)
    if (count + 1) * length + int(gaps.sum()) > available:
        gaps[:] = length
    span = (count + 1) * length + int(gaps.sum())
    start = int(rng.integers(_margin(num_frames), num_frames - _margin(num_frames) - span + 1))
    starts = [start]
    for gap in gaps:
        starts.append(starts[-1] + length + int(gap))
    return starts[:-1], starts[-1]


def _check_min_frames(min_frames: int) -> None:
    """Raise if the shortest allowed video cannot hold 5 flashes + the second object with minimal gaps."""
    length = flash_length(min_frames)
    needed = (2 * (MAX_COUNT + 1) - 1) * length + 2 * _margin(min_frames)
    if needed > min_frames:
        raise ValueError(f"min_frames={min_frames} is too short for {MAX_COUNT} flashes of {length} frames "
                         f"(needs {needed}); use min_frames >= 40")


def _scripts(num_videos: int, seed: int, image_size: int, min_frames: int, max_frames: int,
             splits: Mapping[str, float], variant: str = "flash", label_noise: float = 0.0) -> list[VideoScript]:
    """Draw the event script of every video; answer attributes are balanced within each split."""
    sizes = _split_sizes(num_videos, splits)
    scripts: list[VideoScript] = []
    radius = max(3, round(TARGET_RADIUS * image_size))
    second_radius = max(2, round(SECOND_RADIUS * radius))
    palette = list(PALETTES[variant])
    for split_index, (split, size) in enumerate(sizes.items()):
        rng = np.random.default_rng([seed, split_index])
        colors = _balanced(rng, palette, size)
        shapes = _balanced(rng, TARGET_SHAPES, size)
        counts = _balanced(rng, list(range(1, MAX_COUNT + 1)), size)
        action_positions = _balanced(rng, list(range(NUM_CHOICES)), size)
        transition_positions = _balanced(rng, list(range(NUM_CHOICES)), size)
        for i in range(size):
            num_frames = int(rng.integers(min_frames, max_frames + 1))
            length = flash_length(num_frames)
            flash_starts, second_start = _schedule(rng, num_frames, length, counts[i])
            action = _choice_grid(rng, (colors[i], shapes[i]), list(TARGET_SHAPES), action_positions[i], palette)
            # The second object's shape is outside the action grid, so "what flashes k times" stays unambiguous.
            action_shapes = {choice.split()[1] for choice in action}
            second_shape = str(rng.choice([s for s in TARGET_SHAPES if s not in action_shapes]))
            second_color = str(rng.choice([c for c in palette if c != colors[i]]))  # never the answer colour
            transition_pool = [s for s in TARGET_SHAPES if s != shapes[i]]
            transition = _choice_grid(rng, (second_color, second_shape), transition_pool, transition_positions[i],
                                      palette)
            centers = rng.integers(radius + 1, image_size - radius - 1, size=(2, 2)).tolist()
            scripts.append(VideoScript(
                video_id=f"synth_{len(scripts):05d}", split=split, num_frames=num_frames,
                reference_stride=_REFERENCE_SAMPLER.stride(num_frames), flash_length=length,
                target_color=colors[i], target_shape=shapes[i], target_center=tuple(centers[0]),
                count=counts[i], flash_starts=flash_starts, second_color=second_color,
                second_shape=second_shape, second_center=tuple(centers[1]), second_start=second_start,
                radius=radius, second_radius=second_radius, action_choices=action, action_answer=action_positions[i],
                transition_choices=transition, transition_answer=transition_positions[i],
                color_family=FAMILY_OF[colors[i]] if variant == "families" else None,
            ))
        if split == "train" and label_noise > 0:
            _add_label_noise(scripts[-size:], np.random.default_rng([seed, split_index, 17]), label_noise, palette)
    return scripts


def _add_label_noise(scripts: list[VideoScript], rng: np.random.Generator, fraction: float, palette: list[str]) -> None:
    """Give ``fraction`` of the scripts' colour questions a wrong annotated colour: another member of the target's
    family (the "families" variant: annotators confuse similar colours), else any other palette colour."""
    for i in rng.permutation(len(scripts))[: round(fraction * len(scripts))]:
        script = scripts[i]
        pool = COLOR_FAMILIES[script.color_family] if script.color_family else palette
        script.annotated_color = str(rng.choice([c for c in pool if c != script.target_color]))


def _split_sizes(num_videos: int, splits: Mapping[str, float]) -> dict[str, int]:
    """Videos per split from fractions (largest remainder), at least one per split."""
    if not splits or any(f <= 0 for f in splits.values()):
        raise ValueError(f"splits must map split names to positive fractions, got {dict(splits)}")
    if num_videos < len(splits):
        raise ValueError(f"num_videos={num_videos} is fewer than the {len(splits)} splits")
    total = sum(splits.values())
    exact = {name: num_videos * f / total for name, f in splits.items()}
    sizes = {name: int(x) for name, x in exact.items()}
    by_remainder = sorted(splits, key=lambda name: exact[name] - int(exact[name]), reverse=True)
    for name in by_remainder[: num_videos - sum(sizes.values())]:
        sizes[name] += 1
    for name in (n for n in splits if sizes[n] == 0):
        sizes[max(sizes, key=sizes.get)] -= 1
        sizes[name] = 1
    return sizes


def _shape_mask(shape: str, center: tuple[int, int], radius: int, size: int) -> np.ndarray:
    """Boolean (size, size) mask of a filled shape."""
    y, x = np.mgrid[0:size, 0:size]
    dy, dx = y - center[0], x - center[1]
    if shape == "circle":
        return dy**2 + dx**2 <= radius**2
    if shape == "diamond":
        return np.abs(dy) + np.abs(dx) <= radius
    if shape == "cross":
        arm = max(1, radius // 3)
        inside = (np.abs(dy) <= radius) & (np.abs(dx) <= radius)
        return inside & ((np.abs(dy) <= arm) | (np.abs(dx) <= arm))
    if shape == "triangle":  # apex up, base at the bottom of the bounding box
        return (dy <= radius) & (dy >= -radius) & (2 * np.abs(dx) <= dy + radius)
    raise ValueError(f"unknown shape {shape!r}")


def _render(script: VideoScript, seed: int, image_size: int) -> np.ndarray:
    """(T, H, W, 3) uint8 frames of one video."""
    rng = np.random.default_rng([seed, 1_000_003, int(script.video_id.split("_")[1])])
    t_len, size = script.num_frames, image_size
    t = np.arange(t_len, dtype=np.float32)[:, None, None]
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    freq = rng.uniform(0.08, 0.25, size=2)
    texture = TEXTURE_AMPLITUDE * np.sin(freq[0] * x + freq[1] * y + rng.uniform(0.15, 0.4) * t
                                         + rng.uniform(0, 2 * np.pi))
    tint = rng.uniform(70, 130) + rng.uniform(-15, 15, size=3)
    frames = tint + texture[..., None] + rng.normal(0.0, NOISE_STD, size=(t_len, size, size, 3))
    # Distractor squares (none by default), bouncing for the whole video.
    half = max(1, round(0.06 * size))
    pos = rng.uniform(half, size - half - 1, size=(len(DISTRACTOR_COLORS), 2))
    vel = rng.uniform(-1.5, 1.5, size=(len(DISTRACTOR_COLORS), 2))
    for frame in frames:
        for (cy, cx), rgb in zip(pos.astype(int), DISTRACTOR_COLORS):
            frame[cy - half:cy + half + 1, cx - half:cx + half + 1] = rgb
        pos += vel
        bounce = (pos < half) | (pos > size - half - 1)
        vel[bounce] *= -1
        pos = np.clip(pos, half, size - half - 1)
    if script.color_family is not None:  # the family's marker, in every frame
        side = max(2, round(FAMILY_MARKER_SIZE * size))
        bottom, right = FAMILY_MARKER_CORNERS[script.color_family]
        rows = slice(size - side, size) if bottom else slice(0, side)
        cols = slice(size - side, size) if right else slice(0, side)
        frames[:, rows, cols] = FAMILY_MARKER_RGB
    palette = {**COLORS, **PALETTES["families"]}
    target = _shape_mask(script.target_shape, script.target_center, script.radius, size)
    for t in script.flash_frames():
        frames[t][target] = palette[script.target_color]
    second = _shape_mask(script.second_shape, script.second_center, script.second_radius, size)
    for t in range(script.second_start, script.second_start + script.flash_length):
        frames[t][second] = palette[script.second_color]
    return np.clip(frames, 0, 255).astype(np.uint8)


def _write_one(args: tuple[VideoScript, int, int, int, str]) -> None:
    """Render and encode one video (a process-pool task)."""
    script, seed, image_size, fps, path = args
    write_video(path, _render(script, seed, image_size), fps=fps)


def _questions(script: VideoScript) -> Iterator[tuple[str, dict[str, Any]]]:
    """(kind, fields) of every question about one video; kind is a TGIF task name or "open_ended"."""
    color_q = {"question": f"what color is the {script.target_shape} ?",
               "answer": script.annotated_color or script.target_color, "type": "color"}
    shape_q = {"question": f"what shape flashes in {script.target_color} ?", "answer": script.target_shape,
               "type": "object"}
    yield "frameqa", color_q
    yield "frameqa", shape_q
    yield "action", {"question": f"what flashes {script.count} times ?", "options": script.action_choices,
                     "answer": script.action_answer}
    yield "transition", {"question": f"what appears after the {script.target_color} {script.target_shape} ?",
                         "options": script.transition_choices, "answer": script.transition_answer}
    yield "count", {"question": f"how many times does the {script.target_shape} flash ?", "answer": script.count}


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    """One JSON object per line, keys in the given order."""
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def _write_annotations(out: Path, scripts: list[VideoScript], splits: list[str]) -> None:
    """MSRVTT-QA jsonl, ClipBERT TGIF-QA jsonl and original TGIF-QA tsv files (+ videos links)."""
    for sub in ("msrvtt_qa", "tgif_qa", "tgif_qa_original"):
        (out / sub).mkdir(exist_ok=True)
        link = out / sub / "videos"
        if not link.is_symlink():
            link.symlink_to(Path("..") / "videos", target_is_directory=True)
    for split in splits:
        msrvtt: list[dict[str, Any]] = []
        tgif: dict[str, list[dict[str, Any]]] = {task: [] for task in TGIF_TASKS}
        for script in (s for s in scripts if s.split == split):
            for task, q in _questions(script):
                if task == "frameqa":
                    msrvtt.append({"video_id": script.video_id, "question": q["question"], "answer": q["answer"],
                                   "answer_type": "what"})
                    tgif[task].append({"gif_name": script.video_id, "question": q["question"],
                                       "answer": q["answer"], "answer_type": q["type"]})
                else:
                    tgif[task].append({"gif_name": script.video_id, **q})
        _write_jsonl(out / "msrvtt_qa" / f"{split}.jsonl", msrvtt)
        for task, rows in tgif.items():
            _write_jsonl(out / "tgif_qa" / f"{task}_{split}.jsonl", rows)
            if split in ("train", "test"):
                _write_tgif_tsv(out / "tgif_qa_original" / f"{split.title()}_{task}_question.csv", task, rows)


# per TGIF-QA task: the official release's tsv header and its question id prefix
_TGIF_RELEASE: dict[str, tuple[tuple[str, ...], str]] = {
    "action": (("gif_name", "question", "a1", "a2", "a3", "a4", "a5", "answer", "vid_id", "key"), "ACTION"),
    "transition": (("gif_name", "question", "a1", "a2", "a3", "a4", "a5", "answer", "vid_id", "key"), "TRANS"),
    "frameqa": (("gif_name", "question", "answer", "type", "vid_id", "key", "description"), "FRAMEQA"),
    "count": (("gif_name", "question", "answer", "vid_id", "key"), "COUNT"),
}


def _write_tgif_tsv(path: Path, task: str, rows: list[dict[str, Any]]) -> None:
    """Original TGIF-QA tab-separated file with its header (columns as in the official release)."""
    header, prefix = _TGIF_RELEASE[task]
    with path.open("w", newline="") as f:
        writer = csv.writer(f, delimiter="\t", lineterminator="\n")
        writer.writerow(header)
        for i, row in enumerate(rows):
            values = {"gif_name": row["gif_name"], "question": row["question"], "answer": row["answer"],
                      "vid_id": f"{prefix}{i + 1}", "key": int(row["gif_name"].split("_")[1]),
                      "description": "synthetic video", "type": _FRAMEQA_TYPE.get(row.get("answer_type")),
                      **{f"a{k}": option for k, option in enumerate(row.get("options", ()), start=1)}}
            writer.writerow([values[column] for column in header])


def make_synthetic_videoqa(
    output_dir: str | os.PathLike,
    num_videos: int = 300,
    seed: int = 0,
    image_size: int = 64,
    min_frames: int = 48,
    max_frames: int = 150,
    fps: int = 10,
    splits: Mapping[str, float] | None = None,
    num_workers: int | None = None,
    overwrite: bool = False,
    variant: str = "flash",
    label_noise: float = 0.0,
) -> Path:
    """Write the synthetic VideoQA dataset into ``output_dir`` (layout in the module docstring); return its path.

    ``splits`` maps split names to fractions of ``num_videos`` (default 70/15/15 train/val/test). ``variant``:
    ``"flash"`` (6 unrelated colours, the default and the study's control) or ``"families"`` (9 colours in 3
    families, the family visible throughout; module docstring). ``label_noise``: the fraction of training colour
    questions annotated with a wrong colour (within the family for ``"families"``). Skips the work
    if ``output_dir`` already holds a complete dataset generated with the same parameters; raises ValueError if
    it holds one with other parameters (unless ``overwrite``). ``num_workers`` processes encode the videos
    (default: up to 2).
    """
    splits = dict(DEFAULT_SPLITS if splits is None else splits)
    if image_size % 2 or image_size < 16:
        raise ValueError(f"image_size must be even and >= 16, got {image_size}")
    if not 0 < min_frames <= max_frames:
        raise ValueError(f"need 0 < min_frames <= max_frames, got {min_frames}, {max_frames}")
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    if not 0.0 <= label_noise < 1.0:
        raise ValueError(f"label_noise must be a fraction in [0, 1), got {label_noise}")
    _check_min_frames(min_frames)
    params = {"version": GENERATOR_VERSION, "num_videos": num_videos, "seed": seed, "image_size": image_size,
              "min_frames": min_frames, "max_frames": max_frames, "fps": fps, "splits": splits}
    # only when not the defaults, so folders generated before these options stay valid
    params.update({key: value for key, value in (("variant", variant), ("label_noise", label_noise))
                   if value != {"variant": "flash", "label_noise": 0.0}[key]})
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    marker = out / MARKER_FILE
    with FileLock(str(out / ".synthetic.lock")):  # several processes may ask for the same folder at once
        if marker.is_file():
            if json.loads(marker.read_text()) == params:
                return out
            if not overwrite:
                raise ValueError(f"{out} holds a synthetic dataset generated with other parameters "
                                 f"({marker.read_text().strip()}); use another folder or overwrite=True")
            marker.unlink()
            shutil.rmtree(out / "videos", ignore_errors=True)
        logger.warning("generating the synthetic VideoQA dataset in %s: %d videos (%d x %d px, %d-%d frames, seed %d)",
                       out.resolve(), num_videos, image_size, image_size, min_frames, max_frames, seed)
        started = time.monotonic()
        scripts = _scripts(num_videos, seed, image_size, min_frames, max_frames, splits, variant, label_noise)
        _write_videos(out / "videos", scripts, seed, image_size, fps, num_workers)
        _write_annotations(out, scripts, list(splits))
        _write_jsonl(out / META_FILE, [asdict(s) for s in scripts])
        marker.write_text(json.dumps(params) + "\n")
        logger.warning("wrote %d videos (%.1f MB; %s) and their questions to %s in %.0f s", num_videos,
                       sum(f.stat().st_size for f in (out / "videos").iterdir()) / 1e6,
                       ", ".join(f"{split} {sum(s.split == split for s in scripts)}" for split in splits),
                       out.resolve(), time.monotonic() - started)
    return out


def _write_videos(folder: Path, scripts: list[VideoScript], seed: int, image_size: int, fps: int,
                  num_workers: int | None) -> None:
    """Render and encode every video, in ``num_workers`` processes (default: up to 2)."""
    folder.mkdir(parents=True, exist_ok=True)
    tasks = [(s, seed, image_size, fps, str(folder / f"{s.video_id}.mp4")) for s in scripts]
    workers = num_workers if num_workers is not None else min(2, os.cpu_count() or 1)
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            list(pool.map(_write_one, tasks, chunksize=8))
    else:
        for task in tasks:
            _write_one(task)


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m datasets_scripts.synthetic OUT_DIR [--num-videos N] ...``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output_dir")
    parser.add_argument("--num-videos", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--min-frames", type=int, default=48)
    parser.add_argument("--max-frames", type=int, default=150)
    parser.add_argument("--fps", type=int, default=10)
    parser.add_argument("--num-workers", type=int, default=None)
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--variant", choices=VARIANTS, default="flash")
    parser.add_argument("--label-noise", type=float, default=0.0)
    args = parser.parse_args(argv)
    path = make_synthetic_videoqa(args.output_dir, num_videos=args.num_videos, seed=args.seed,
                                  image_size=args.image_size, min_frames=args.min_frames,
                                  max_frames=args.max_frames, fps=args.fps, num_workers=args.num_workers,
                                  overwrite=args.overwrite, variant=args.variant, label_noise=args.label_noise)
    print(f"synthetic VideoQA dataset ready in {path}")


if __name__ == "__main__":
    main()
