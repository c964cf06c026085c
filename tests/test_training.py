"""The training entry point end to end on the synthetic set: loss, metrics, reload, push to a fake Hub, resume,
2-process CPU DDP, and fail-fast argument checks."""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import straight_and_resumed_losses
from fake_hub import FakeHub
from huggingface_hub import ModelCard

from datasets_scripts import make_synthetic_videoqa
from training import run_videoqa
from training.collator import SiaSamReaCollator
from training.trainer import SiaSamReaTrainer

REPO = Path(__file__).resolve().parents[1]
CONFIG = str(REPO / "training" / "configs" / "synthetic.yaml")


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory) -> Path:
    return make_synthetic_videoqa(tmp_path_factory.mktemp("synthetic"), num_videos=40, seed=0)


def tiny_run_args(data_dir: Path, output_dir: Path, *extra: str) -> list[str]:
    return [
        CONFIG, "--data_dir", str(data_dir), "--output_dir", str(output_dir), "--num_siamese_clips", "2",
        "--num_frames", "4", "--max_train_samples", "16", "--max_eval_samples", "12",
        "--per_device_train_batch_size", "4", "--logging_steps", "1", "--disable_tqdm", "true", *extra,
    ]


@pytest.fixture(scope="module")
def trained(synthetic_dir, tmp_path_factory, monkeypatch_module):
    """One short real run (overfitting 16 examples), pushed at the end to a local fake of the Hub API."""
    import huggingface_hub.constants

    hub = FakeHub(tmp_path_factory.mktemp("hub"))
    monkeypatch_module.setattr(huggingface_hub.constants, "ENDPOINT", hub.endpoint)
    monkeypatch_module.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    output_dir = tmp_path_factory.mktemp("run")
    metrics = run_videoqa.main(tiny_run_args(
        synthetic_dir, output_dir, "--num_train_epochs", "10", "--learning_rate", "5e-3",
        "--push_to_hub", "true", "--hub_model_id", "me/siasamrea-synthetic", "--hub_token", "hf_fake",
        "--report_to", "tensorboard",
    ))
    yield output_dir, metrics, hub
    hub.close()


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_training_loss_is_finite_and_falls_and_every_term_is_logged(trained):
    output_dir, _, _ = trained
    history = json.loads((output_dir / "trainer_state.json").read_text())["log_history"]
    steps = [entry for entry in history if "loss" in entry]
    losses = [entry["loss"] for entry in steps]
    assert all(torch.isfinite(torch.tensor(losses)))
    first, last = sum(losses[:4]) / 4, sum(losses[-4:]) / 4
    assert last < first - 0.1, losses  # step-to-step noise at the start is ~0.01
    config = json.loads((output_dir / "config.json").read_text())
    assert config["siamese_preset"] == "structured"  # the default objective: the anchor's row of Â, no W1, W2
    for name in ("loss_gt", "loss_siamese", "knowledge_entropy", "soft_label_entropy"):
        assert all(name in entry for entry in steps), name
    assert not any("loss_clip_weights" in entry for entry in steps)


def test_metrics_json_is_written_and_best_model_is_selected_on_accuracy(trained):
    output_dir, metrics, _ = trained
    saved = json.loads((output_dir / "eval_results.json").read_text())
    assert 0.0 <= saved["eval_accuracy"] <= 1.0
    assert saved["eval_accuracy"] == metrics["eval_accuracy"]
    # per answer type: synthetic.yaml keeps only the colour questions (answer_types: [color])
    assert {key for key in saved if key.startswith("eval_accuracy_")} == {"eval_accuracy_color"}
    state = json.loads((output_dir / "trainer_state.json").read_text())
    accuracies = [entry["eval_accuracy"] for entry in state["log_history"] if "eval_accuracy" in entry]
    assert state["best_metric"] == max(accuracies)  # the best epoch is chosen on accuracy, not on the eval loss


def test_count_task_keeps_the_epoch_with_the_lowest_mse(synthetic_dir, tmp_path):
    metrics = run_videoqa.main(tiny_run_args(synthetic_dir, tmp_path, "--dataset_config", "count",
                                             "--answer_types", "all", "--num_train_epochs", "2",
                                             "--max_train_samples", "8"))
    state = json.loads((tmp_path / "trainer_state.json").read_text())
    mse = [entry["eval_mse"] for entry in state["log_history"] if "eval_mse" in entry]
    assert "eval_accuracy" not in metrics and state["best_metric"] == min(mse)


def test_saved_model_reloads_and_evaluates_to_the_same_metrics(trained, synthetic_dir, tmp_path):
    output_dir, metrics, _ = trained
    again = run_videoqa.main([
        "--dataset_name", "synthetic", "--dataset_config", "frameqa", "--answer_types", "color",
        "--data_dir", str(synthetic_dir),
        "--output_dir", str(tmp_path), "--model_name_or_path", str(output_dir), "--do_train", "false",
        "--num_frames", "4", "--max_eval_samples", "12", "--use_cpu", "true", "--disable_tqdm", "true",
    ])
    assert again["eval_accuracy"] == metrics["eval_accuracy"]
    assert again["eval_loss"] == pytest.approx(metrics["eval_loss"], abs=1e-5)


def test_tensorboard_receives_the_siamese_loss_terms(trained):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    output_dir, _, _ = trained
    events = sorted((output_dir / "runs").rglob("events.out.tfevents.*"))
    assert events
    tags = set()
    for path in events:
        accumulator = EventAccumulator(str(path))
        accumulator.Reload()
        tags |= set(accumulator.Tags()["scalars"])
    assert {"train/loss", "train/loss_gt", "train/loss_siamese", "train/loss_siamese_kl", "train/soft_label_entropy",
            "train/knowledge_entropy", "eval/accuracy"} <= tags


def test_dense_evaluation_aggregates_several_clips(trained, synthetic_dir, tmp_path):
    output_dir, metrics, _ = trained
    dense = run_videoqa.main([
        "--dataset_name", "synthetic", "--data_dir", str(synthetic_dir), "--output_dir", str(tmp_path),
        "--model_name_or_path", str(output_dir), "--do_train", "false", "--num_eval_clips", "3",
        "--dense_aggregation", "mean", "--max_eval_samples", "12", "--use_cpu", "true", "--disable_tqdm", "true",
    ])
    assert 0.0 <= dense["eval_accuracy"] <= 1.0
    assert "eval_loss" not in dense  # several clips: logits are aggregated, no siamese objective runs


def test_push_to_hub_uploads_a_complete_folder_that_reloads(trained, tmp_path):
    _, _, hub = trained
    repo = hub.root / "me" / "siasamrea-synthetic"
    names = {p.name for p in repo.iterdir()}
    for required in ("config.json", "model.safetensors", "modeling_siasamrea.py", "configuration_siasamrea.py",
                     "pipeline_siasamrea.py", "processor_config.json", "tokenizer.json", "README.md"):
        assert required in names, required
    assert not any(name.startswith("checkpoint-") for name in names)
    card = ModelCard.load(repo / "README.md")
    assert card.data.pipeline_tag == "visual-question-answering" and "video-question-answering" in card.data.tags
    (result,) = card.data.eval_results
    assert (result.metric_type, result.dataset_name, result.dataset_split) == ("accuracy", "synthetic", "val")
    assert result.metric_value == pytest.approx(trained[1]["eval_accuracy"])
    assert "siamese_omega" in card.text and "runtime" not in card.content
    assert any(request.endswith("/commit/main") for request in hub.requests)

    from transformers import pipeline

    from modeling_siasamrea import write_video

    video = tmp_path / "v.mp4"
    write_video(video, (torch.rand(40, 64, 64, 3) * 255).to(torch.uint8).numpy())
    vqa = pipeline("video-question-answering", model=str(repo), trust_remote_code=True)
    answers = vqa(video=str(video), question="what color is the circle ?", top_k=3)
    assert len(answers) == 3 and answers[0]["answer"] in vqa.model.config.label2id


def test_resume_from_checkpoint_continues_with_the_same_losses(synthetic_dir, tmp_path):
    # a fresh process-like run that picks the same 6-step run up from its step-3 checkpoint (mid-epoch)
    expected, got = straight_and_resumed_losses(lambda out, *extra: tiny_run_args(synthetic_dir, out, *extra),
                                                tmp_path)
    assert [4, 5, 6] == [step for step in sorted(got) if step > 3]
    for step in (4, 5, 6):
        assert got[step] == pytest.approx(expected[step], abs=1e-4), (step, got, expected)


class Crash(Exception):
    """The process dies while it writes a checkpoint."""


def test_a_crash_mid_save_resumes_from_the_last_whole_checkpoint_and_a_finished_run_is_not_trained_again(
        synthetic_dir, tmp_path, monkeypatch, caplog):
    run = tmp_path / "run"
    args = tiny_run_args(synthetic_dir, run, "--max_steps", "4", "--save_strategy", "steps", "--save_steps", "2",
                         "--per_device_train_batch_size", "2", "--max_eval_samples", "4")
    save_rng_state = SiaSamReaTrainer._save_rng_state

    def crash_at_step_4(self, output_dir):  # after the weights and the optimizer, before the trainer state
        if self.state.global_step == 4:
            raise Crash(output_dir)
        return save_rng_state(self, output_dir)

    with monkeypatch.context() as patch:
        patch.setattr(SiaSamReaTrainer, "_save_rng_state", crash_at_step_4)
        with pytest.raises(Crash):
            run_videoqa.main(args)
    assert (run / "checkpoint-4" / "model.safetensors").is_file()
    with caplog.at_level(logging.WARNING):
        metrics = run_videoqa.main(args)  # the same command again
    assert "not resuming from checkpoint-4 (no trainer_state.json (the save did not finish))" in caplog.text
    assert f"resuming from {run / 'checkpoint-2'} at step 2" in caplog.text
    state = json.loads((run / "trainer_state.json").read_text())
    assert state["global_step"] == 4
    # --save_strategy steps --save_steps 2 alone: evaluated with every checkpoint, the best one kept
    assert [entry["step"] for entry in state["log_history"] if "eval_accuracy" in entry] == [2, 4, 4]
    assert state["best_model_checkpoint"] == str(run / f"checkpoint-{state['best_global_step']}")

    weights = (run / "model.safetensors").stat().st_mtime_ns
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert run_videoqa.main(args) == metrics  # and once more: nothing to train
    assert f"{run} holds a finished run (4 steps; its model is there): nothing to train" in caplog.text
    assert "--overwrite_output_dir true or another --output_dir" in caplog.text
    assert (run / "model.safetensors").stat().st_mtime_ns == weights


def test_two_process_cpu_ddp_trains_disjoint_data_to_identical_parameters(synthetic_dir, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO / "tests"), OMP_NUM_THREADS="1")
    result = subprocess.run(  # the shipped 2-process CPU config: MULTI_GPU + use_cpu (plain --cpu starts one)
        [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
         str(REPO / "training" / "accelerate" / "cpu_2proc.yaml"), "--main_process_port", "29533",
         str(REPO / "tests" / "ddp_worker.py"), str(synthetic_dir), str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    seen = [set(rank["question_ids"]) for rank in ranks]
    assert seen[0] and seen[1] and not seen[0] & seen[1]
    assert len(seen[0] | seen[1]) == ranks[0]["num_examples"]
    assert ranks[0]["world_size"] == 2
    assert ranks[0]["checksum"] == ranks[1]["checksum"]
    assert ranks[0]["checksum"] != ranks[0]["initial_checksum"]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--dataset_name", "kinetics_qa"], "unknown"),
        (["--dataset_name", "msrvtt_qa", "--data_dir", "/nonexistent/msrvtt"], "does not exist"),
        (["--dataset_name", "msrvtt_qa", "--data_dir", ""], "needs --data_dir"),
        (["--siamese_loss_weight", "-0.5"], "alpha"),
        (["--siamese_omega", "1.5"], "omega"),
        (["--num_frames", "many"], "num_frames"),
        (["--model_name_or_path", "some/model"], "exactly one starting point"),
        (["--vision_temporal_pooling", "max"], "vision_temporal_pooling must be one of"),
    ],
)
def test_bad_arguments_fail_fast_before_any_model_is_built(extra, message, monkeypatch, tmp_path):
    def no_model(*args, **kwargs):
        raise AssertionError("a model was built")

    monkeypatch.setattr(run_videoqa, "build_model", no_model)
    monkeypatch.setattr(run_videoqa, "load_videoqa", no_model)
    with pytest.raises(ValueError, match=message):
        run_videoqa.main(["--model_config", "{}", "--output_dir", str(tmp_path), *extra])


def test_unknown_config_key_is_rejected(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("dataset_name: synthetic\nsiamese_omegaa: 0.5\n")
    with pytest.raises(ValueError, match="siamese_omegaa"):
        run_videoqa.main([str(bad), "--output_dir", str(tmp_path)])


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "training" / "configs").glob("*.yaml")))
def test_every_shipped_config_parses(name):
    # this machine has no GPU: bf16 off, everything else as shipped
    model_args, data_args, training_args = run_videoqa.parse_args(
        [str(REPO / "training" / "configs" / name), "--bf16", "false", "--use_cpu", "true"]
    )
    assert data_args.dataset_name
    assert training_args.learning_rate > 0


def test_collator_pads_text_drops_failed_videos_and_maps_answer_types():
    def example(length, failed=False, answer_type="what"):
        return {"pixel_values": None if failed else torch.zeros(2, 3, 3, 8, 8),
                "input_ids": torch.arange(1, length + 1), "attention_mask": torch.ones(length, dtype=torch.long),
                "token_type_ids": torch.zeros(length, dtype=torch.long), "labels": torch.tensor(1),
                "answer_type": answer_type}

    batch = SiaSamReaCollator(pad_token_id=0, answer_types=["what", "who"])(
        [example(3), example(5, failed=True), example(4, answer_type="who")]
    )
    assert batch["pixel_values"].shape == (2, 2, 3, 3, 8, 8)
    assert batch["input_ids"].tolist() == [[1, 2, 3, 0], [1, 2, 3, 4]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0], [1, 1, 1, 1]]
    assert batch["answer_type_ids"].tolist() == [0, 1]
    with pytest.raises(RuntimeError, match="every example of this batch"):
        SiaSamReaCollator()([example(3, failed=True)])
