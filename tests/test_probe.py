"""Probing at scale: parallel probing with a progress bar, the `siasamrea probe` manifest, relative video paths."""

import json
import shutil

import datasets
import numpy as np
import pytest
from test_datasets import VIDEO_LENGTHS, all_videos, how2qa_rows, make_data_dir, msrvtt_files, video_files, write_csv

import datasets_scripts.builders as builders
from datasets_scripts import MSRVTTQA, How2QA, load_videoqa
from datasets_scripts.builders import MANIFEST_FILE, read_video_manifest, resolve_video_paths
from modeling_siasamrea.video_io import read_clips
from training.cli import main

__all__ = ["video_files"]  # the fixture, shared with test_datasets


@pytest.fixture
def msrvtt_dir(tmp_path, video_files):
    return make_data_dir(tmp_path / "msrvtt", msrvtt_files(["dog", "cat", "dog"]), all_videos(video_files))


@pytest.fixture
def probes(monkeypatch):
    """The paths ``probe_video`` is called on (in this process)."""
    calls = []
    real = builders.probe_video
    monkeypatch.setattr(builders, "probe_video", lambda path: calls.append(path) or real(path))
    return calls


def no_probing(monkeypatch):
    """Make any attempt to open a video while building fail."""
    def fail(path, *args):
        raise AssertionError(f"{path} was opened")

    for name in ("probe_video", "count_frames", "frame_rate"):
        monkeypatch.setattr(builders, name, fail)


def build(data_dir, tmp_path, builder_cls=MSRVTTQA, **options):
    builder = builder_cls(data_dir=str(data_dir), cache_dir=str(tmp_path / "cache"), **options)
    builder.download_and_prepare()
    return builder


def test_videos_are_probed_in_parallel_with_a_progress_bar_over_all_of_them(msrvtt_dir, tmp_path, monkeypatch):
    bars, pools = [], []

    class RecordingBar(builders.hf_tqdm):
        def close(self):
            bars.append((self.desc, self.total, self.n))
            super().close()

    class RecordingContext:
        def Pool(self, processes):  # noqa: N802 (multiprocessing's name)
            pools.append(processes)
            return real_context.Pool(processes)

    real_context = builders.multiprocessing.get_context()
    monkeypatch.setattr(builders, "hf_tqdm", RecordingBar)
    monkeypatch.setattr(builders.multiprocessing, "get_context", lambda *args: RecordingContext())
    parallel = build(msrvtt_dir, tmp_path / "parallel", num_proc=2).as_dataset("train")
    assert pools == [2]  # train: 3 videos in 2 processes; val and test then only need videos probed already
    assert ("probing msrvtt_qa/train videos", 3, 3) in bars
    sequential = build(msrvtt_dir, tmp_path / "sequential").as_dataset("train")
    assert pools == [2]
    assert (parallel["num_video_frames"] == sequential["num_video_frames"]
            == [VIDEO_LENGTHS[v] for v in parallel["video_id"]])


def test_probe_writes_a_manifest_that_builders_read_instead_of_opening_videos(msrvtt_dir, tmp_path, monkeypatch,
                                                                              capsys):
    (msrvtt_dir / "videos" / "broken.mp4").write_bytes(b"not a video")
    main(["probe", str(msrvtt_dir), "--num_proc", "2"])
    assert str(msrvtt_dir / MANIFEST_FILE) in capsys.readouterr().out
    manifest = read_video_manifest(msrvtt_dir)
    assert {key: entry.get("num_video_frames") for key, entry in manifest.items()} == {
        "videos/long.mp4": 60, "videos/mid.mp4": 30, "videos/short.mp4": 12, "videos/broken.mp4": None}
    assert manifest["videos/long.mp4"]["fps"] == pytest.approx(10)
    assert "broken.mp4" in manifest["videos/broken.mp4"]["error"]
    no_probing(monkeypatch)
    train = build(msrvtt_dir, tmp_path).as_dataset("train")
    assert train["num_video_frames"] == [VIDEO_LENGTHS[v] for v in train["video_id"]]


def test_the_manifest_gives_how2qa_its_frame_rates(tmp_path, video_files, monkeypatch):
    files = {"how2QA_train_release.csv": write_csv(how2qa_rows())}
    data_dir = make_data_dir(tmp_path / "how2qa", files, all_videos(video_files))
    expected = build(data_dir, tmp_path / "probed", How2QA).as_dataset("train")
    main(["probe", str(data_dir)])
    no_probing(monkeypatch)
    from_manifest = build(data_dir, tmp_path / "manifest", How2QA).as_dataset("train")
    assert from_manifest["start_frame"] == expected["start_frame"]
    assert from_manifest["num_video_frames"] == expected["num_video_frames"]


def test_a_video_changed_after_probing_is_probed_again(msrvtt_dir, tmp_path, video_files, probes):
    main(["probe", str(msrvtt_dir)])
    assert len(probes) == 3
    shutil.copy(video_files["long"], msrvtt_dir / "videos" / "mid.mp4")  # another size and mtime
    train = build(msrvtt_dir, tmp_path).as_dataset("train")
    assert probes[3:] == [str(msrvtt_dir / "videos" / "mid.mp4")]
    assert dict(zip(train["video_id"], train["num_video_frames"])) == {"long": 60, "mid": 60, "short": 12}
    main(["probe", str(msrvtt_dir)])  # a rerun probes only what changed
    assert probes[4:] == [str(msrvtt_dir / "videos" / "mid.mp4")]
    assert read_video_manifest(msrvtt_dir)["videos/mid.mp4"]["num_video_frames"] == 60


def test_a_prepared_dataset_stores_relative_paths_and_moves_with_its_data_dir(msrvtt_dir, tmp_path, monkeypatch):
    builder = build(msrvtt_dir, tmp_path)
    stored = datasets.DatasetBuilder.as_dataset(builder, "train")  # the prepared table itself
    assert sorted(set(stored["video_path"])) == ["videos/long.mp4", "videos/mid.mp4", "videos/short.mp4"]
    main(["probe", str(msrvtt_dir)])
    moved = shutil.move(msrvtt_dir, tmp_path / "elsewhere" / "msrvtt")  # keeps the files' mtimes
    no_probing(monkeypatch)
    train = load_videoqa("msrvtt_qa", moved, "train", cache_dir=tmp_path / "cache")
    assert all(path.startswith(str(moved)) for path in train["video_path"])
    assert read_clips(train[0]["video_path"], np.array([[0, 5]])).shape[:2] == (1, 2)
    # a copy of the prepared table (save_to_disk) resolves against wherever the videos now are
    stored.save_to_disk(tmp_path / "saved")
    resolved = resolve_video_paths(datasets.load_from_disk(tmp_path / "saved"), moved)
    assert resolved["video_path"] == [str(moved / path) for path in stored["video_path"]]


def test_the_manifest_is_json_keyed_by_relative_path_and_not_part_of_the_cache_key(msrvtt_dir, tmp_path):
    before = build(msrvtt_dir, tmp_path).cache_dir
    main(["probe", str(msrvtt_dir)])
    assert set(json.loads((msrvtt_dir / MANIFEST_FILE).read_text())["videos"]) == {
        "videos/long.mp4", "videos/mid.mp4", "videos/short.mp4"}
    assert build(msrvtt_dir, tmp_path).cache_dir == before  # writing the manifest does not invalidate the build
