"""The paper's TGIF-QA protocol: one model trained on the four tasks at once (`dataset_config: all`), per-task losses
and metrics, exact resume with task-grouped batches, 2-process DDP, and a saved folder that answers all four tasks."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import run_without_the_package, straight_and_resumed_losses

from datasets_scripts import load_videoqa, make_synthetic_videoqa
from training import run_videoqa

REPO = Path(__file__).resolve().parents[1]
CONFIG = str(REPO / "training" / "configs" / "synthetic.yaml")
TASKS = ("action", "transition", "frameqa", "count")


@pytest.fixture(scope="module")
def synthetic_dir(tmp_path_factory) -> Path:
    return make_synthetic_videoqa(tmp_path_factory.mktemp("synthetic"), num_videos=12, seed=3)


def joint_args(data_dir: Path, output_dir: Path, *extra: str) -> list[str]:
    return [CONFIG, "--data_dir", str(data_dir), "--output_dir", str(output_dir), "--dataset_config", "all",
            "--answer_types", "all", "--num_siamese_clips", "2", "--num_frames", "2", "--per_device_train_batch_size",
            "4", "--per_device_eval_batch_size", "6", "--logging_steps", "1", "--disable_tqdm", "true",
            "--task_loss_weights", '{"count": 0.5}', *extra]


@pytest.fixture(scope="module")
def joint_run(synthetic_dir, tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("joint")
    metrics = run_videoqa.main(joint_args(synthetic_dir, output_dir, "--num_train_epochs", "2", "--learning_rate",
                                          "1e-3", "--eval_strategy", "epoch", "--save_strategy", "epoch"))
    return output_dir, metrics


def test_one_model_trains_on_the_four_tasks_and_logs_each_tasks_loss(joint_run, synthetic_dir):
    output_dir, _ = joint_run
    config = json.loads((output_dir / "config.json").read_text())
    assert {name: spec["type"] for name, spec in config["tasks"].items()} == {
        "action": "multiple_choice", "transition": "multiple_choice", "frameqa": "open_ended", "count": "count"}
    assert config["tasks"]["count"]["loss_weight"] == 0.5
    history = json.loads((output_dir / "trainer_state.json").read_text())["log_history"]
    logged = {key for entry in history for key in entry}
    assert {f"loss_{task}" for task in TASKS} <= logged
    # every training batch held one task: each step logged exactly one task's loss
    steps = [entry for entry in history if "loss" in entry and "eval_loss" not in entry]
    assert all(sum(f"loss_{task}" in entry for task in TASKS) == 1 for entry in steps)


def test_one_evaluation_reports_every_task_and_a_combined_score(joint_run):
    _, metrics = joint_run
    for key in ("eval_action_accuracy", "eval_transition_accuracy", "eval_frameqa_accuracy",
                "eval_frameqa_accuracy_color", "eval_count_mse", "eval_score"):
        assert key in metrics, key
    accuracies = [metrics[f"eval_{task}_accuracy"] for task in ("action", "transition", "frameqa")]
    expected = (sum(accuracies) + 1 / (1 + metrics["eval_count_mse"])) / 4
    assert metrics["eval_score"] == pytest.approx(expected)
    state = json.loads((joint_run[0] / "trainer_state.json").read_text())
    assert state["best_metric"] is not None  # picked by eval_score
    card = (joint_run[0] / "README.md").read_text()
    assert "eval_count_mse" not in card and "count_mse" in card and "frameqa_accuracy" in card


def test_resume_mid_epoch_with_task_grouped_batches_is_exact(synthetic_dir, tmp_path):
    expected, got = straight_and_resumed_losses(lambda out, *extra: joint_args(synthetic_dir, out, *extra), tmp_path)
    for step in (4, 5, 6):
        assert got[step] == pytest.approx(expected[step], abs=1e-4), (step, got, expected)


def test_the_saved_joint_model_answers_each_task_in_a_fresh_process(joint_run, synthetic_dir, tmp_path):
    output_dir, _ = joint_run
    rows = {task: load_videoqa("synthetic", synthetic_dir, "test", config=task)[0] for task in TASKS}
    calls = {
        task: {"video": row["video_path"], "question": row["question"], "task": task,
               **({"choices": row["choices"]} if task in ("action", "transition") else {})}
        for task, row in rows.items()
    }
    calls["inferred"] = {**calls["action"], "task": None}  # choices given, but the joint model has two MC tasks
    (checkpoint,) = sorted(output_dir.glob("checkpoint-*"))
    results = run_without_the_package(f"""
        from transformers import pipeline
        vqa = pipeline("video-question-answering", model={str(output_dir)!r}, trust_remote_code=True)
        for name, call in {calls!r}.items():
            try:
                results[name] = vqa(**call)
            except ValueError as error:
                results[name] = str(error)
        # a checkpoint written during training is a whole pipeline folder too
        checkpoint = pipeline("video-question-answering", model={str(checkpoint)!r}, trust_remote_code=True)
        results["checkpoint"] = checkpoint(**{calls["count"]!r})
        """, tmp_path)
    assert {answer["choice"] for answer in results["action"]} == set(rows["action"]["choices"])
    assert {answer["choice"] for answer in results["transition"]} == set(rows["transition"]["choices"])
    assert results["frameqa"][0]["answer"] in json.loads((output_dir / "config.json").read_text())["tasks"][
        "frameqa"]["answers"]
    assert set(results["count"]) == set(results["checkpoint"]) == {"count", "rounded"}
    # two multiple-choice tasks: choices alone do not say which one, so the pipeline asks
    assert "name one with task=" in results["inferred"] and "action" in results["inferred"]


def test_two_process_ddp_trains_the_joint_model_to_identical_parameters(synthetic_dir, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO / "tests"), OMP_NUM_THREADS="1")
    result = subprocess.run(
        [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
         str(REPO / "training" / "accelerate" / "cpu_2proc.yaml"), "--main_process_port", "29561",
         str(REPO / "tests" / "ddp_worker.py"), str(synthetic_dir), str(tmp_path), "--dataset_config", "all",
         "--answer_types", "all", "--max_train_samples", "0", "--per_device_train_batch_size", "2"],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert ranks[0]["checksum"] == ranks[1]["checksum"] != ranks[0]["initial_checksum"]
    seen = [set(zip(rank["tasks"], rank["question_ids"])) for rank in ranks]
    # disjoint, but for the batch one rank may repeat so that both take the same number of steps
    assert len(seen[0] & seen[1]) <= 2 and {task for task, _ in seen[0] | seen[1]} == set(TASKS)
    assert len(seen[0] | seen[1]) == ranks[0]["num_examples"]


def test_the_command_line_evaluates_and_asks_one_task_of_the_joint_model(joint_run, synthetic_dir, tmp_path, capsys):
    from training.cli import main

    output_dir, _ = joint_run
    main(["eval", "--model", str(output_dir), "--data_dir", str(synthetic_dir), "--dataset_config", "count",
          "--task", "count", "--answer_types", "all", "--output_dir", str(tmp_path), "--use_cpu", "true",
          "--disable_tqdm", "true", "--predictions", str(tmp_path / "count.jsonl")])
    printed = capsys.readouterr().out
    metrics = json.loads(printed[printed.rindex("{\n"):])
    assert "eval_mse" in metrics and "eval_action_accuracy" not in metrics  # a single-task count model now
    lines = [json.loads(line) for line in (tmp_path / "count.jsonl").read_text().splitlines()]
    assert lines and all(isinstance(line["prediction"], int) for line in lines)
    row = load_videoqa("synthetic", synthetic_dir, "test", config="count")[0]
    main(["predict", row["video_path"], row["question"], "--model", str(output_dir), "--task", "count"])
    assert set(json.loads(capsys.readouterr().out)) == {"count", "rounded"}


def test_a_task_of_the_joint_model_becomes_a_single_task_model_with_the_same_answers(joint_run, synthetic_dir):
    from modeling_siasamrea import SiaSamReaForVideoQuestionAnswering

    joint = SiaSamReaForVideoQuestionAnswering.from_pretrained(joint_run[0]).eval()
    frameqa = joint.single_task("frameqa").eval()
    assert frameqa.config.task == "open_ended" and frameqa.config.tasks is None
    assert frameqa.config.id2label == joint.config.answers("frameqa")
    inputs = {"pixel_values": torch.rand(1, 1, 2, 3, 32, 32), "input_ids": torch.tensor([[101, 2054, 3609, 102]])}
    with torch.no_grad():
        torch.testing.assert_close(frameqa(**inputs).logits, joint(**inputs, task="frameqa").logits)


def test_a_few_examples_of_joint_data_hold_every_task(synthetic_dir):
    data_args = run_videoqa.DataArguments(dataset_config="all", data_dir=str(synthetic_dir), answer_types=["all"],
                                          max_train_samples=8, max_eval_samples=4)
    train, evaluation = run_videoqa.load_data(data_args, training=True, evaluating=True)
    assert sorted(train["task"]) == sorted(TASKS * 2) and sorted(evaluation["task"]) == sorted(TASKS)
