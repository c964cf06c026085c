"""Shared fixtures: tiny SiaSamRea configs (a few-channel ResNet, a 2-layer 32-wide BERT, 32×32 frames)."""

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

# dynamic modules (trust_remote_code) go to a throwaway folder, not ~/.cache; set before transformers is imported
if "HF_MODULES_CACHE" not in os.environ:
    os.environ["HF_MODULES_CACHE"] = tempfile.mkdtemp(prefix="siasamrea-hf-modules-")
    atexit.register(shutil.rmtree, os.environ["HF_MODULES_CACHE"], ignore_errors=True)

import pytest  # noqa: E402
import torch  # noqa: E402

from modeling_siasamrea import SiaSamReaConfig  # noqa: E402

TINY_VISION = dict(depths=[1, 1], hidden_sizes=[8, 16], embedding_size=8)
TINY_TEXT = dict(
    vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
    max_position_embeddings=64,
)
# A tiny vision backbone of each supported type, for 32x32 frames and clips of 2 frames: each gives a 2x2 grid of
# visual tokens (the ViTs' 16-pixel patches or tubelets of 2 frames); ViTs also a class / pooled token
_VIT = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2)
TINY_BACKBONES = {
    "resnet": TINY_VISION,
    "clip": dict(model_type="clip_vision_model", image_size=32, patch_size=16, **_VIT),
    "siglip": dict(model_type="siglip_vision_model", image_size=32, patch_size=16, **_VIT),
    "siglip2": dict(model_type="siglip2_vision_model", num_patches=4, patch_size=16, **_VIT),
    "videomae": dict(model_type="videomae", image_size=32, patch_size=16, num_frames=2, tubelet_size=2, **_VIT),
    "timesformer": dict(model_type="timesformer", image_size=32, patch_size=16, num_frames=2, **_VIT),
    "vivit": dict(model_type="vivit", image_size=32, tubelet_size=[2, 16, 16], num_frames=2, **_VIT),
}
# the backbones tested through every path users take: one per family
FAMILY_BACKBONES = {"grid": "resnet", "frame": "siglip", "video": "videomae"}


def tiny_config(task: str = "open_ended", backbone: str = "resnet", **kwargs) -> SiaSamReaConfig:
    """A model small enough for CPU tests: 32×32 frames give a 2×2 grid of visual tokens."""
    kwargs.setdefault("num_siamese_clips", 2)
    if task == "open_ended":
        kwargs.setdefault("num_answers", 5)
    return SiaSamReaConfig(task=task, vision_config=dict(TINY_BACKBONES[backbone]), text_config=dict(TINY_TEXT),
                           **kwargs)


def tiny_inputs(config: SiaSamReaConfig, batch: int = 2, clips: int = 3, frames: int = 2, choices: int = 4,
                seed: int = 0) -> dict[str, torch.Tensor]:
    """Random inputs (and valid labels) shaped for `config.task`."""
    generator = torch.Generator().manual_seed(seed)
    text_shape = (batch, choices, 7) if config.task == "multiple_choice" else (batch, 7)
    input_ids = torch.randint(1, config.text_config.vocab_size, text_shape, generator=generator)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[..., -2:] = 0  # some padding
    if config.task == "open_ended":
        labels = torch.randint(0, config.num_answers, (batch,), generator=generator)
    elif config.task == "multiple_choice":
        labels = torch.randint(0, choices, (batch,), generator=generator)
    else:
        labels = torch.randint(0, 6, (batch,), generator=generator).float()
    return {
        "pixel_values": torch.randn(batch, clips, frames, 3, 32, 32, generator=generator),
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "labels": labels,
    }


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


# Two runs of 6 steps that save at step 3; the second resumes from the first's checkpoint-3 (mid-epoch).
RESUME_ARGS = ["--max_steps", "6", "--save_strategy", "steps", "--save_steps", "3", "--eval_strategy", "no",
               "--load_best_model_at_end", "false", "--do_eval", "false", "--save_total_limit", "3"]


def logged_losses(output_dir) -> dict[int, float]:
    """`{step: loss}` of a finished training run's log history."""
    history = json.loads((Path(output_dir) / "trainer_state.json").read_text())["log_history"]
    return {entry["step"]: entry["loss"] for entry in history if "loss" in entry}


def straight_and_resumed_losses(args, tmp_path) -> tuple[dict[int, float], dict[int, float]]:
    """Logged losses of a 6-step run (`RESUME_ARGS`) and of a run picking it up from its step-3 checkpoint (mid-epoch);
    `args(output_dir, *extra)` is the run's `run_videoqa` argument list."""
    from training import run_videoqa

    straight, continued = tmp_path / "straight", tmp_path / "continued"
    run_videoqa.main(args(straight, *RESUME_ARGS))
    run_videoqa.main(args(continued, *RESUME_ARGS, "--resume_from_checkpoint", str(straight / "checkpoint-3")))
    return logged_losses(straight), logged_losses(continued)


def run_without_the_package(body: str, tmp_path) -> dict:
    """Run `body` in a fresh Python process where `modeling_siasamrea` cannot be imported (as for a model shared on
    the Hub), offline; `body` fills a dict `results`, which comes back (JSON)."""
    script = "import json, sys\nsys.modules['modeling_siasamrea'] = None\nresults = {}\n" + textwrap.dedent(body)
    script += "\nprint('RESULTS=' + json.dumps(results))\n"
    env = dict(os.environ, HF_MODULES_CACHE=str(Path(tmp_path) / "modules"), HF_HUB_OFFLINE="1")
    completed = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True)
    lines = [line for line in completed.stdout.splitlines() if line.startswith("RESULTS=")]
    assert lines, completed.stderr[-3000:]
    return json.loads(lines[0].removeprefix("RESULTS="))
