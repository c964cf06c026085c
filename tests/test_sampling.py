"""Spec of SiameseSampler (paper §3.2, design notes "Siamese sampling")."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from modeling_siasamrea.sampling import SiameseSampler

SAMPLING_PY = Path(__file__).resolve().parents[1] / "modeling_siasamrea" / "sampling.py"


def first_third(length: int) -> int:
    """Number of allowed anchor starts: {0, ..., max(1, L // 3) - 1}."""
    return max(1, length // 3)


def expected_offsets(num_siamese_clips: int, pace: int) -> list[int]:
    """+p, -p, +2p, -2p, ... written out the slow way."""
    offsets = []
    for k in range(1, num_siamese_clips + 1):
        step = (k + 1) // 2 * pace
        offsets.append(step if k % 2 == 1 else -step)
    return offsets


def random_configs(rng: np.random.Generator, count: int):
    """Random (L, sampler) pairs, plus every short length 1..40 with the default sampler."""
    for length in range(1, 41):
        yield length, SiameseSampler()
    for _ in range(count):
        sampler = SiameseSampler(
            num_frames=int(rng.choice([1, 2, 4, 8, 16])) if rng.random() < 0.7 else "auto",
            num_siamese_clips=int(rng.integers(0, 12)),
            pace=None if rng.random() < 0.7 else int(rng.integers(1, 20)),
        )
        yield int(rng.integers(1, 601)), sampler


def test_sample_invariants_over_many_lengths_and_settings():
    rng = np.random.default_rng(0)
    for length, sampler in random_configs(rng, 1500):
        clips = sampler.sample(length, rng)
        b = sampler.frames_per_clip(length)
        n = 1 + sampler.num_siamese_clips
        context = f"L={length} {sampler}"

        assert clips.shape == (n, b), context
        assert clips.dtype == np.int64, context
        assert clips.min() >= 0 and clips.max() < length, context
        assert clips[0, 0] < first_third(length), context  # anchor start in the first third

        if length < b:  # shorter than a clip: consecutive frames, the tail repeats the last frame
            assert (clips == np.minimum(np.arange(b), length - 1)).all(), context
            continue

        steps = np.diff(clips, axis=1)
        stride = int(steps[0, 0]) if b > 1 else sampler.stride(length)
        assert (steps == stride).all(), context  # one stride for every clip of the video
        assert stride >= 1
        if length - first_third(length) >= b - 1:
            # a clip starting at the end of the first third still fits, and the stride is the largest that does
            assert first_third(length) - 1 + (b - 1) * stride <= length - 1, context
            assert b == 1 or first_third(length) - 1 + (b - 1) * (stride + 1) > length - 1, context
        else:  # the first third is too long for this clip: densest stride, anchor start lowered to fit
            assert stride == 1, context

        pace = sampler.pace if sampler.pace is not None else max(1, stride // n)
        last_start = length - 1 - (b - 1) * stride
        anchor = clips[0, 0]
        expected = [min(max(anchor + o, 0), last_start) for o in expected_offsets(n - 1, pace)]
        assert clips[1:, 0].tolist() == expected, context


def test_docstring_worked_example():
    sampler = SiameseSampler(num_frames=4, num_siamese_clips=4)
    assert (sampler.stride(100), sampler.siamese_offsets(100).tolist()) == (22, [4, -4, 8, -8])
    by_anchor = {}
    for seed in range(400):
        clips = sampler.sample(100, np.random.default_rng(seed))
        by_anchor[int(clips[0, 0])] = clips
    assert by_anchor[10].tolist() == [
        [10, 32, 54, 76], [14, 36, 58, 80], [6, 28, 50, 72], [18, 40, 62, 84], [2, 24, 46, 68],
    ]
    assert by_anchor[2].tolist()[2] == by_anchor[2].tolist()[4] == [0, 22, 44, 66]  # clamped


def test_anchor_start_is_uniform_over_the_first_third():
    sampler = SiameseSampler(num_frames=8, num_siamese_clips=2)
    rng = np.random.default_rng(1)
    starts = np.array([sampler.sample(90, rng)[0, 0] for _ in range(3000)])
    counts = np.bincount(starts, minlength=30)
    assert len(counts) == 30  # never past frame 29
    assert counts.min() > 50  # every start in 0..29 is drawn (expected 100 each)


def test_default_pace_tiles_the_gap_between_anchor_frames():
    sampler = SiameseSampler(num_frames=8, num_siamese_clips=8)  # N = 9
    stride = sampler.stride(900)
    assert stride == (900 - 300) // 7
    assert sampler.siamese_offsets(900).tolist() == expected_offsets(8, stride // 9)
    assert SiameseSampler(num_frames=8, num_siamese_clips=3, pace=5).siamese_offsets(900).tolist() == [5, -5, 10]


def test_anchor_only_when_no_siamese_clips():
    clips = SiameseSampler(num_frames=6, num_siamese_clips=0).sample(120, np.random.default_rng(0))
    assert clips.shape == (1, 6)


def test_short_videos_repeat_frames_instead_of_failing():
    sampler = SiameseSampler(num_frames=8, num_siamese_clips=8)
    assert sampler.sample(1, np.random.default_rng(0)).tolist() == [[0] * 8] * 9
    assert sampler.sample(3, np.random.default_rng(0)).tolist() == [[0, 1, 2, 2, 2, 2, 2, 2]] * 9
    # long enough for one clip but not for distinct offsets: clips coincide, still valid
    clips = sampler.sample(10, np.random.default_rng(0))
    assert clips.shape == (9, 8) and clips.max() < 10 and len({tuple(row) for row in clips}) < 9
    assert sampler.sample_eval(3).tolist() == [[0, 0, 1, 1, 1, 1, 2, 2]]


def test_different_rngs_give_different_samples_and_same_seed_reproduces():
    sampler = SiameseSampler()
    draws = [sampler.sample(300, np.random.default_rng(seed)) for seed in range(5)]
    assert len({d.tobytes() for d in draws}) > 1
    assert (sampler.sample(300, np.random.default_rng(3)) == draws[3]).all()


@pytest.mark.parametrize("length", [1, 2, 7, 16, 17, 100, 301, 1000])
@pytest.mark.parametrize("num_frames", [1, 5, 16, "auto"])
def test_eval_single_clip_is_deterministic_and_spans_the_whole_video(length, num_frames):
    sampler = SiameseSampler(num_frames=num_frames)
    clip = sampler.sample_eval(length)
    b = sampler.frames_per_clip(length)
    assert clip.shape == (1, b) and clip.dtype == np.int64
    assert (clip == sampler.sample_eval(length)).all()
    assert clip[0, 0] == 0 and (b == 1 or clip[0, -1] == length - 1)
    steps = np.diff(clip[0])
    assert (steps >= 0).all() and (b == 1 or steps.max() - steps.min() <= 1)  # uniform up to rounding


@pytest.mark.parametrize("length", [3, 40, 100, 599])
def test_eval_dense_clips_are_uniformly_placed_with_the_training_stride(length):
    sampler = SiameseSampler(num_frames=5, num_siamese_clips=8)
    clips = sampler.sample_eval(length, num_eval_clips=4)
    assert clips.shape == (4, 5) and (clips == sampler.sample_eval(length, num_eval_clips=4)).all()
    assert clips.min() >= 0 and clips.max() < length
    if length >= 5:
        assert (np.diff(clips, axis=1) == sampler.stride(length)).all()
        assert clips[0, 0] == 0 and clips[-1, -1] >= length - sampler.stride(length)
        starts = np.diff(clips[:, 0])
        assert (starts >= 0).all() and starts.max() - starts.min() <= 1


def test_auto_frames_per_clip_is_monotone_within_bounds():
    sampler = SiameseSampler("auto")
    counts = [sampler.frames_per_clip(length) for length in range(1, 2001)]
    assert min(counts) == 5 and max(counts) == 16
    assert all(a <= b for a, b in zip(counts, counts[1:]))
    assert sampler.frames_per_clip(80) == 10  # L // 8
    assert [SiameseSampler("auto", min_frames=2, max_frames=3).frames_per_clip(n) for n in (1, 20, 900)] == [2, 2, 3]
    assert SiameseSampler(num_frames=7).frames_per_clip(10_000) == 7


@pytest.mark.parametrize("length", [0, -3])
def test_non_positive_length_raises_naming_the_value(length):
    sampler = SiameseSampler()
    for call in (lambda: sampler.sample(length, np.random.default_rng(0)), lambda: sampler.sample_eval(length),
                 lambda: sampler.frames_per_clip(length)):
        with pytest.raises(ValueError, match=f"got {length}"):
            call()


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"num_frames": 0}, "num_frames"),
        ({"num_frames": "many"}, "num_frames"),
        ({"num_frames": 2.5}, "num_frames"),
        ({"num_siamese_clips": -1}, "num_siamese_clips"),
        ({"num_siamese_clips": True}, "num_siamese_clips"),
        ({"min_frames": 0}, "min_frames"),
        ({"min_frames": 8, "max_frames": 4}, "max_frames"),
        ({"pace": 0}, "pace"),
    ],
)
def test_constructor_rejects_bad_arguments(kwargs, field):
    with pytest.raises(ValueError, match=field):
        SiameseSampler(**kwargs)


def test_sample_eval_rejects_bad_num_eval_clips():
    with pytest.raises(ValueError, match="num_eval_clips"):
        SiameseSampler().sample_eval(100, num_eval_clips=0)


def test_sampling_module_is_pure_numpy():
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('sampling', {str(SAMPLING_PY)!r})\n"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
        "module.SiameseSampler().sample(100, __import__('numpy').random.default_rng(0))\n"
        "assert 'torch' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
