"""The synthetic VideoQA generator: deterministic, idempotent, balanced, leak-free, and temporally hard."""

import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest

from datasets_scripts import synthetic
from datasets_scripts.synthetic import MARKER_FILE, META_FILE, make_synthetic_videoqa
from modeling_siasamrea.sampling import SiameseSampler
from modeling_siasamrea.video_io import read_clips

SMALL = {"num_videos": 20, "min_frames": 48, "max_frames": 72, "num_workers": 1}


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory) -> Path:
    return make_synthetic_videoqa(tmp_path_factory.mktemp("synthetic") / "data", seed=0, **SMALL)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _scripts(num_videos: int, seed: int) -> list[synthetic.VideoScript]:
    """Event scripts only (no rendering), for statistics over many videos."""
    return synthetic._scripts(num_videos, seed, 64, 48, 150, {"train": 1.0})


def test_same_seed_gives_identical_files_and_other_seed_differs(small_dataset, tmp_path):
    again = _files(make_synthetic_videoqa(tmp_path / "again", seed=0, **SMALL))
    first = _files(small_dataset)
    annotations = [name for name in first if name.endswith((".jsonl", ".csv"))]
    assert len(annotations) == 3 + 12 + 8 + 1  # msrvtt splits, tgif jsonl, tgif tsv, meta
    assert {name: first[name] for name in annotations} == {name: again[name] for name in annotations}
    assert first == again  # videos too: PyAV/x264 encode deterministically here
    other = _files(make_synthetic_videoqa(tmp_path / "other", seed=1, **SMALL))
    assert other[META_FILE] != first[META_FILE]


def test_rerun_skips_a_complete_folder_and_refuses_other_parameters(small_dataset):
    video = small_dataset / "videos" / "synth_00000.mp4"
    mtime = video.stat().st_mtime_ns
    assert make_synthetic_videoqa(small_dataset, seed=0, **SMALL) == small_dataset
    assert video.stat().st_mtime_ns == mtime
    with pytest.raises(ValueError, match="other parameters"):
        make_synthetic_videoqa(small_dataset, seed=5, **SMALL)


def test_overwrite_regenerates_with_new_parameters(tmp_path):
    tiny = {"min_frames": 48, "max_frames": 50, "num_workers": 1}
    make_synthetic_videoqa(tmp_path, num_videos=4, **tiny)
    make_synthetic_videoqa(tmp_path, num_videos=3, seed=7, overwrite=True, **tiny)
    assert json.loads((tmp_path / MARKER_FILE).read_text())["seed"] == 7
    assert len(list((tmp_path / "videos").glob("*.mp4"))) == 3


def test_layout_matches_what_the_real_builders_read(small_dataset):
    assert (small_dataset / MARKER_FILE).is_file()
    for sub in ("msrvtt_qa", "tgif_qa", "tgif_qa_original"):
        assert (small_dataset / sub / "videos" / "synth_00000.mp4").is_file()
    line = json.loads((small_dataset / "msrvtt_qa" / "train.jsonl").read_text().splitlines()[0])
    assert set(line) == {"video_id", "question", "answer", "answer_type"}
    header = (small_dataset / "tgif_qa_original" / "Train_action_question.csv").read_text().splitlines()[0]
    assert header.split("\t") == ["gif_name", "question", "a1", "a2", "a3", "a4", "a5", "answer", "vid_id", "key"]


def test_answers_are_balanced_within_each_split(small_dataset):
    meta = [json.loads(line) for line in (small_dataset / META_FILE).read_text().splitlines()]
    for split in ("train", "val", "test"):
        videos = [m for m in meta if m["split"] == split]
        for key in ("target_color", "target_shape", "count", "action_answer", "transition_answer"):
            counts = Counter(m[key] for m in videos)
            assert max(counts.values()) - min(counts.values()) <= 1, (split, key, counts)
            if len(videos) >= 6:
                assert len(counts) >= min(len(videos), 4), (split, key, counts)


def test_answer_cannot_be_guessed_from_the_question_text():
    train, test = _scripts(3000, seed=0), _scripts(3000, seed=1)

    def majority_accuracy(question, answer) -> float:
        by_question = defaultdict(Counter)
        for s in train:
            by_question[question(s)][answer(s)] += 1
        guesses = {q: c.most_common(1)[0][0] for q, c in by_question.items()}
        return float(np.mean([guesses.get(question(s)) == answer(s) for s in test]))

    # colour given "what color is the {shape} ?": chance 1/6; count given the shape: chance 1/5
    assert majority_accuracy(lambda s: s.target_shape, lambda s: s.target_color) < 1 / 6 + 0.05
    assert majority_accuracy(lambda s: s.target_shape, lambda s: s.count) < 1 / 5 + 0.05
    # multiple choice: neither the position nor the most frequent colour/shape among the options gives it away
    for choices, answer in (("action_choices", "action_answer"), ("transition_choices", "transition_answer")):
        positions = Counter(getattr(s, answer) for s in train)
        assert max(positions.values()) / len(train) < 0.2 + 0.01

        def mode_guess(options: list[str]) -> int:
            colors = Counter(o.split()[0] for o in options)
            shapes = Counter(o.split()[1] for o in options)
            return int(np.argmax([colors[o.split()[0]] + shapes[o.split()[1]] for o in options]))

        accuracy = np.mean([mode_guess(getattr(s, choices)) == getattr(s, answer) for s in test])
        assert accuracy < 0.2 + 0.05, (choices, accuracy)


def test_multiple_choice_is_unambiguous():
    for s in _scripts(500, seed=2):
        target, second = f"{s.target_color} {s.target_shape}", f"{s.second_color} {s.second_shape}"
        assert s.action_choices[s.action_answer] == target and second not in s.action_choices
        assert s.transition_choices[s.transition_answer] == second and target not in s.transition_choices
        assert len(set(s.action_choices)) == len(set(s.transition_choices)) == 5
        assert s.second_shape != s.target_shape


def test_flashes_are_brief_so_a_sparse_anchor_misses_what_siamese_clips_catch():
    scripts = _scripts(200, seed=3)
    sampler, rng = SiameseSampler(), np.random.default_rng(0)
    for s in scripts:
        assert 2 <= s.flash_length < s.reference_stride == sampler.stride(s.num_frames)
        assert s.flash_length <= 0.07 * s.num_frames and len(s.flash_frames()) <= 0.35 * s.num_frames
        assert s.flash_starts[-1] + s.flash_length <= s.second_start
        assert s.second_start + s.flash_length <= s.num_frames
    anchor_hits, union_hits = [], []
    for s in scripts:
        first_flash = set(range(s.flash_starts[0], s.flash_starts[0] + s.flash_length))
        for _ in range(10):
            indices = sampler.sample(s.num_frames, rng)
            anchor_hits.append(bool(first_flash & set(indices[0].tolist())))
            union_hits.append(bool(first_flash & set(indices.ravel().tolist())))
    assert np.mean(anchor_hits) < 0.6 and np.mean(union_hits) > 0.8


def test_every_video_length_from_min_frames_holds_five_flashes_and_the_second_object():
    scripts = synthetic._scripts(300, 0, 32, 40, 56, {"train": 1.0})  # 47 frames once drew flashes of 4: no room
    assert {s.num_frames for s in scripts} == set(range(40, 57))
    for s in scripts:
        assert s.second_start + s.flash_length <= s.num_frames - synthetic._margin(s.num_frames)


def test_target_is_visible_only_during_its_flashes(small_dataset):
    meta = json.loads((small_dataset / META_FILE).read_text().splitlines()[0])
    frames = read_clips(small_dataset / "videos" / f"{meta['video_id']}.mp4",
                        np.arange(meta["num_frames"])[None])[0]
    cy, cx = meta["target_center"]
    rgb = np.array(synthetic.COLORS[meta["target_color"]], dtype=float)
    close = np.abs(frames[:, cy, cx].astype(float) - rgb).max(axis=1) < 40
    flash = np.zeros(meta["num_frames"], dtype=bool)
    flash[[t for s in meta["flash_starts"] for t in range(s, s + meta["flash_length"])]] = True
    assert close[flash].all()
    assert close[~flash].mean() < 0.2


def test_answer_colours_appear_only_during_flashes(small_dataset):
    """No palette colour outside the target's and the second object's flashes (no coloured distractors)."""
    for line in (small_dataset / META_FILE).read_text().splitlines()[:3]:
        meta = json.loads(line)
        frames = read_clips(small_dataset / "videos" / f"{meta['video_id']}.mp4",
                            np.arange(meta["num_frames"])[None])[0].astype(int)
        events = {t for s in [*meta["flash_starts"], meta["second_start"]] for t in range(s, s + meta["flash_length"])}
        quiet = [t for t in range(meta["num_frames"]) if t not in events and t - 1 not in events]
        saturation = frames[quiet].max(axis=-1) - frames[quiet].min(axis=-1)  # palette colours: >= 150
        assert np.percentile(saturation, 99.9) < 80, meta["video_id"]
        flash = frames[meta["flash_starts"][0]]
        assert (flash.max(axis=-1) - flash.min(axis=-1) > 120).sum() > 0.05 * flash[..., 0].size  # a large target


def test_second_object_never_has_the_answer_colour_and_questions_name_no_order():
    scripts = _scripts(300, seed=4)
    assert all(s.second_color != s.target_color for s in scripts)
    assert all(s.second_radius < s.radius for s in scripts)
    questions = [q for task, q in synthetic._questions(scripts[0]) if task == "frameqa"]
    assert questions[1] == {"question": f"what shape flashes in {scripts[0].target_color} ?",
                            "answer": scripts[0].target_shape, "type": "object"}


def test_command_line_writes_a_dataset(tmp_path, capsys):
    synthetic.main([str(tmp_path / "cli"), "--num-videos", "3", "--min-frames", "48", "--max-frames", "50",
                    "--num-workers", "1"])
    assert (tmp_path / "cli" / MARKER_FILE).is_file()
    assert len(list((tmp_path / "cli" / "videos").glob("*.mp4"))) == 3
    assert "ready" in capsys.readouterr().out


def test_too_short_videos_are_refused(tmp_path):
    with pytest.raises(ValueError, match="min_frames"):
        make_synthetic_videoqa(tmp_path, num_videos=3, min_frames=20, max_frames=30)


FAMILIES = {**SMALL, "num_videos": 30, "variant": "families", "label_noise": 0.4}


@pytest.fixture(scope="module")
def families_dataset(tmp_path_factory) -> Path:
    return make_synthetic_videoqa(tmp_path_factory.mktemp("families") / "data", seed=0, image_size=32, **FAMILIES)


def test_default_variant_keeps_the_parameters_of_folders_generated_before_variants(small_dataset):
    assert set(json.loads((small_dataset / MARKER_FILE).read_text())) == {
        "version", "num_videos", "seed", "image_size", "min_frames", "max_frames", "fps", "splits"}


def test_families_variant_uses_nine_colours_in_three_families_balanced_per_split():
    scripts = synthetic._scripts(90, 0, 32, 48, 96, {"train": 1.0}, "families")
    counts = Counter(s.target_color for s in scripts)
    assert set(counts) == set(synthetic.FAMILY_OF) and len(counts) == 9 and set(counts.values()) == {10}
    assert all(synthetic.FAMILY_OF[s.target_color] == s.color_family for s in scripts)
    assert all(s.second_color in synthetic.FAMILY_OF for s in scripts)


def test_family_marker_is_visible_in_every_frame_in_the_familys_corner(families_dataset):
    side = round(synthetic.FAMILY_MARKER_SIZE * 32)
    for line in (families_dataset / META_FILE).read_text().splitlines()[:6]:
        meta = json.loads(line)
        frames = read_clips(families_dataset / "videos" / f"{meta['video_id']}.mp4",
                            np.arange(meta["num_frames"])[None])[0].astype(int)
        corners = {(0, 0): frames[:, 1:side - 1, 1:side - 1], (0, 1): frames[:, 1:side - 1, -side + 1:-1],
                   (1, 0): frames[:, -side + 1:-1, 1:side - 1], (1, 1): frames[:, -side + 1:-1, -side + 1:-1]}
        marked = synthetic.FAMILY_MARKER_CORNERS[meta["color_family"]]
        for corner, pixels in corners.items():
            # the target may flash over the marker: look at the frames without events
            quiet = np.median(pixels, axis=(0, 1, 2))
            assert (np.abs(quiet - synthetic.FAMILY_MARKER_RGB).max() < 30) == (corner == marked), (meta, corner)


def test_label_noise_changes_that_fraction_of_training_colours_within_the_family_and_nothing_else(families_dataset):
    meta = [json.loads(line) for line in (families_dataset / META_FILE).read_text().splitlines()]
    train = [m for m in meta if m["split"] == "train"]
    noisy = [m for m in train if m["annotated_color"] is not None]
    assert len(noisy) == round(FAMILIES["label_noise"] * len(train))
    assert all(m["annotated_color"] != m["target_color"] for m in noisy)
    assert all(synthetic.FAMILY_OF[m["annotated_color"]] == m["color_family"] for m in noisy)
    assert all(m["annotated_color"] is None for m in meta if m["split"] != "train")
    annotations = {split: [json.loads(line) for line in (families_dataset / "tgif_qa" / f"frameqa_{split}.jsonl")
                           .read_text().splitlines() if "color" in line.split('"answer_type"')[1]]
                   for split in ("train", "test")}
    truth = {m["video_id"]: m for m in meta}
    for split, rows in annotations.items():
        for row in rows:
            m = truth[row["gif_name"]]
            assert row["answer"] == (m["annotated_color"] or m["target_color"]), (split, row)
    shape_rows = [json.loads(line) for line in (families_dataset / "tgif_qa" / "frameqa_train.jsonl").read_text()
                  .splitlines()]
    assert all(row["answer"] == truth[row["gif_name"]]["target_shape"] for row in shape_rows
               if row["answer_type"] == "object")  # shape questions stay clean


def test_unknown_variant_and_bad_noise_are_refused(tmp_path):
    with pytest.raises(ValueError, match="variant must be one of"):
        make_synthetic_videoqa(tmp_path, num_videos=3, variant="stripes")
    with pytest.raises(ValueError, match="label_noise"):
        make_synthetic_videoqa(tmp_path, num_videos=3, label_noise=1.0)
