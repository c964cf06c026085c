"""Every combination of the siamese switches trains under DDP without `find_unused_parameters`.

The Trainer wraps DDP with `find_unused_parameters=False` when activation checkpointing is on (the shipped GPU
configs): a parameter that a switch leaves without gradient then crashes the second step. The single-process test
pins the cause for every combination (each trainable parameter gets a gradient from one training step); the
2-process tests run the shipped path (accelerate config + run_videoqa) for the switch sets that remove a term.
"""

import itertools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import tiny_config, tiny_inputs

from datasets_scripts import make_synthetic_videoqa
from modeling_siasamrea import SiaSamReaForVideoQuestionAnswering
from training import run_videoqa

REPO = Path(__file__).resolve().parents[1]

# every switch that changes which terms or parameters take part in the loss; with no siamese clip none of them
# applies, so that case is tried once, with every switch on
SWITCHES = {
    "siamese_knowledge": ("similarity", "average"),
    "siamese_projection": (False, True),
    "learnable_clip_weights": (False, True),
    "siamese_clips_supervised": (False, True),
    "siamese_loss_weight": (0.0, 1.0),
    "siamese_soft_label": ("eq5", "anchor_row", "eq5_anchor_init"),
    "siamese_propagation": ("one_step", "closed_form"),
}
# switches that change only numbers, not which terms or parameters exist: not in the full product (to keep the test
# short), but each value is tried with every value of every switch above: the value's index is the parity of the sum
# of the other switches' value indices (shifted per numeric switch)
NUMERIC_SWITCHES = {
    "siamese_distillation_temperature": (1.0, 4.0),
    "siamese_loss_weight_warmup": (0.0, 0.5),
}
COMBINATIONS = [
    {"num_siamese_clips": 2, **{name: values[i] for name, values, i in zip(SWITCHES, SWITCHES.values(), indices)},
     **{name: numeric[(sum(indices) + j) % 2] for j, (name, numeric) in enumerate(NUMERIC_SWITCHES.items())}}
    for indices in itertools.product(*(range(len(values)) for values in SWITCHES.values()))
]
COMBINATIONS.append({"num_siamese_clips": 0,
                     **{name: values[-1] for name, values in {**SWITCHES, **NUMERIC_SWITCHES}.items()}})


def _without_gradient(task: str, switches: dict) -> list[str]:
    config = tiny_config(task, **switches)
    model = SiaSamReaForVideoQuestionAnswering(config).train()
    model.activation_checkpointing_enable()
    inputs = tiny_inputs(config, batch=1, clips=config.num_clips, frames=1, choices=2)
    model(**inputs).loss.backward()
    return [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None]


@pytest.mark.parametrize("task", ["open_ended", "multiple_choice", "count"])
def test_every_switch_combination_gives_every_trainable_parameter_a_gradient(task):
    failures = {}
    for switches in COMBINATIONS:
        missing = _without_gradient(task, switches)
        if missing:
            failures[json.dumps(switches)] = missing
    assert not failures, failures


def test_projection_is_not_built_where_no_similarity_is_computed(caplog):
    model = SiaSamReaForVideoQuestionAnswering(tiny_config(siamese_knowledge="average", siamese_projection=True))
    assert model.siamese_head.projection is None
    assert not any("siamese_head.projection" in name for name, _ in model.named_parameters())


@pytest.fixture(scope="module")
def synthetic_dir(tmp_path_factory) -> Path:
    return make_synthetic_videoqa(tmp_path_factory.mktemp("synthetic"), num_videos=40, seed=0)


@pytest.mark.parametrize(
    "switches",
    [
        # the baseline row of every ablation: W1, W2 get no gradient; the paper's batch of 16 from 1 x 2 processes
        ["--num_siamese_clips", "0", "--effective_batch_size", "4"],
        ["--num_siamese_clips", "2", "--siamese_knowledge", "average", "--siamese_projection", "true"],
    ],
    ids=["no-siamese-clips", "average-with-projection"],
)
def test_two_process_ddp_with_activation_checkpointing_survives_switches_and_a_bad_video(switches, synthetic_dir,
                                                                                          tmp_path):
    data_dir = Path(shutil.copytree(synthetic_dir, tmp_path / "data", symlinks=True))
    data_args = run_videoqa.DataArguments(dataset_config="frameqa", data_dir=str(data_dir), answer_types=["color"],
                                          max_train_samples=6)
    train, _ = run_videoqa.load_data(data_args, training=True, evaluating=False)
    (data_dir / "videos" / Path(train[0]["video_path"]).name).write_bytes(b"truncated download")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    result = subprocess.run(
        [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
         str(REPO / "training" / "accelerate" / "cpu_2proc.yaml"), "--main_process_port", "29547",
         str(REPO / "training" / "run_videoqa.py"), str(REPO / "training" / "configs" / "synthetic.yaml"),
         "--data_dir", str(data_dir), "--output_dir", str(tmp_path / "run"), *switches,
         "--activation_checkpointing", "true", "--max_steps", "3", "--num_frames", "2", "--max_train_samples", "6",
         "--per_device_train_batch_size", "1", "--eval_strategy", "no", "--save_strategy", "no", "--logging_steps", "1",
         "--load_best_model_at_end", "false", "--do_eval", "false", "--disable_tqdm", "true"],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    state = json.loads((tmp_path / "run" / "trainer_state.json").read_text())
    assert state["global_step"] == 3
    assert [e["replaced_videos"] for e in state["log_history"] if "replaced_videos" in e][-1] >= 1
    if "--effective_batch_size" in switches:
        assert "1 per device x 2 processes x 2 gradient accumulation steps" in result.stderr
