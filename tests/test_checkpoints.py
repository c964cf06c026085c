"""Checkpoints fail safe: a checkpoint that does not read (truncated weights or trainer state, a save that did not
finish) is named and passed over for the previous one, or, when none reads, one error says how to start afresh;
evaluation follows the save strategy unless set. The whole path through run_videoqa is in test_training.py."""

import json
import logging

import pytest
import torch
from safetensors.torch import save_file

from training.checkpoints import check_checkpoint, checkpoint_problem, finished_run, resumable_checkpoint
from training.run_videoqa import SiaSamReaTrainingArguments, prepare_output_dir


def write_checkpoint(output_dir, step: int):
    """A checkpoint folder as the Trainer writes one: weights, optimizer, RNG state, trainer state last."""
    folder = output_dir / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    save_file({"weight": torch.full((64,), float(step))}, folder / "model.safetensors")
    (folder / "config.json").write_text(json.dumps({"model_type": "siasamrea"}))
    torch.save({"state": {0: torch.zeros(64)}}, folder / "optimizer.pt")
    torch.save({"python": 1}, folder / "rng_state.pth")
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": step, "log_history": []}, indent=2))
    return folder


def truncate(path, keep: float = 0.5):
    path.write_bytes(path.read_bytes()[: int(path.stat().st_size * keep)])


@pytest.mark.parametrize("broken, problem", [
    ("model.safetensors", "model.safetensors does not read (SafetensorError"),
    ("trainer_state.json", "trainer_state.json does not read (JSONDecodeError"),
    ("optimizer.pt", "optimizer.pt does not read (BadZipFile"),
    ("config.json", "config.json does not read"),
])
def test_a_truncated_newest_checkpoint_is_named_and_the_previous_one_resumed(tmp_path, caplog, broken, problem):
    write_checkpoint(tmp_path, 2)
    newest = write_checkpoint(tmp_path, 4)
    truncate(newest / broken)
    with caplog.at_level(logging.WARNING):
        assert resumable_checkpoint(tmp_path) == str(tmp_path / "checkpoint-2")
    assert f"not resuming from checkpoint-4 ({problem}" in caplog.text
    assert "the newest checkpoint that reads is checkpoint-2" in caplog.text


def test_a_save_that_did_not_finish_leaves_a_checkpoint_that_is_not_resumed(tmp_path, caplog):
    write_checkpoint(tmp_path, 2)
    (write_checkpoint(tmp_path, 4) / "trainer_state.json").unlink()  # the Trainer writes it last
    with caplog.at_level(logging.WARNING):
        assert resumable_checkpoint(tmp_path) == str(tmp_path / "checkpoint-2")
    assert "checkpoint-4 (no trainer_state.json (the save did not finish))" in caplog.text


def test_the_newest_of_several_good_checkpoints_is_resumed_without_a_word(tmp_path, caplog):
    for step in (2, 10, 4):
        write_checkpoint(tmp_path, step)
    with caplog.at_level(logging.WARNING):
        assert resumable_checkpoint(tmp_path) == str(tmp_path / "checkpoint-10")
    assert caplog.text == "" and resumable_checkpoint(tmp_path / "absent") is None


def test_when_no_checkpoint_reads_one_error_names_them_and_how_to_start_afresh(tmp_path):
    truncate(write_checkpoint(tmp_path, 2) / "model.safetensors")
    (write_checkpoint(tmp_path, 4) / "model.safetensors").unlink()
    with pytest.raises(ValueError, match=r"no checkpoint in .* can be resumed from: checkpoint-4: no model weights; "
                                         r"checkpoint-2: model.safetensors does not read .*"
                                         r"--overwrite_output_dir true"):
        resumable_checkpoint(tmp_path)


def test_a_checkpoint_named_on_the_command_line_is_checked(tmp_path):
    truncate(write_checkpoint(tmp_path, 2) / "trainer_state.json", keep=0.9)
    assert "trainer_state.json does not read" in checkpoint_problem(tmp_path / "checkpoint-2")
    with pytest.raises(ValueError, match=r"--resume_from_checkpoint .*checkpoint-2: trainer_state.json does not read"):
        check_checkpoint(tmp_path / "checkpoint-2")
    with pytest.raises(ValueError, match="checkpoint-7: not a folder"):
        check_checkpoint(tmp_path / "checkpoint-7")


def test_a_finished_run_is_known_by_its_final_trainer_state(tmp_path):
    assert finished_run(tmp_path) is None
    (tmp_path / "trainer_state.json").write_text('{"global_step": 12, "log_his')  # cut short: not finished
    assert finished_run(tmp_path) is None
    (tmp_path / "trainer_state.json").write_text('{"global_step": 12}')
    assert finished_run(tmp_path) == {"global_step": 12}


def test_overwrite_output_dir_clears_the_checkpoints_and_the_finished_state_it_would_resume(tmp_path, caplog):
    for step in (2, 4):
        write_checkpoint(tmp_path, step)
    (tmp_path / "trainer_state.json").write_text('{"global_step": 4}')
    (tmp_path / "eval_results.json").write_text('{"eval_accuracy": 0.5}')
    args = SiaSamReaTrainingArguments(output_dir=str(tmp_path), use_cpu=True)
    with caplog.at_level(logging.WARNING):
        assert prepare_output_dir(args) == {"eval_accuracy": 0.5}  # finished: nothing to train
    assert "holds a finished run (4 steps" in caplog.text
    args = SiaSamReaTrainingArguments(output_dir=str(tmp_path), use_cpu=True, overwrite_output_dir=True)
    with caplog.at_level(logging.WARNING):
        assert prepare_output_dir(args) is None
    assert "overwrite_output_dir: removed checkpoint-2, checkpoint-4, trainer_state.json" in caplog.text
    assert sorted(path.name for path in tmp_path.iterdir()) == ["eval_results.json"]


def test_overwrite_output_dir_with_a_checkpoint_inside_it_to_resume_is_refused_before_anything_is_removed(tmp_path):
    checkpoint = write_checkpoint(tmp_path, 2)
    args = SiaSamReaTrainingArguments(output_dir=str(tmp_path), use_cpu=True, overwrite_output_dir=True,
                                      resume_from_checkpoint=str(checkpoint))
    with pytest.raises(ValueError, match=r"^--resume_from_checkpoint .*checkpoint-2 is inside --output_dir .*, which "
                                         r"--overwrite_output_dir true clears first; pass one of the two$"):
        prepare_output_dir(args)
    check_checkpoint(checkpoint)  # still there, whole


# ---------------------------------------------------------------- strategy defaults


def test_save_steps_alone_makes_evaluation_follow_and_keeps_the_best_checkpoint(tmp_path):
    args = SiaSamReaTrainingArguments(output_dir=str(tmp_path), use_cpu=True, save_strategy="steps", save_steps=2)
    assert (args.eval_strategy, args.eval_steps, args.load_best_model_at_end) == ("steps", 2, True)
    default = SiaSamReaTrainingArguments(output_dir=str(tmp_path), use_cpu=True)
    assert (default.eval_strategy, default.save_strategy, default.load_best_model_at_end) == ("epoch", "epoch", True)
    unsaved = SiaSamReaTrainingArguments(output_dir=str(tmp_path), use_cpu=True, save_strategy="no")
    assert (unsaved.eval_strategy, unsaved.load_best_model_at_end) == ("no", False)


def test_an_evaluation_strategy_set_apart_from_saving_turns_load_best_off_with_a_log_line(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        args = SiaSamReaTrainingArguments(output_dir=str(tmp_path), use_cpu=True, save_strategy="steps",
                                          save_steps=4, eval_strategy="steps", eval_steps=3)
    assert args.load_best_model_at_end is False
    assert ("load_best_model_at_end is off: evaluation (every 3 steps) does not meet the checkpoints (every 4 steps)"
            in caplog.text)
    with pytest.raises(ValueError, match="load_best_model_at_end requires the save and eval strategy to match"):
        SiaSamReaTrainingArguments(output_dir=str(tmp_path), use_cpu=True, save_strategy="steps",
                                   eval_strategy="epoch", load_best_model_at_end=True)  # asked for: the Trainer's error
