"""Pairing by construction: a run with siamese clips and α = 0 is the baseline run of the same seed, bit for bit.

What must hold for that (docs/design.md, "Pairing"): the anchor clip is drawn independently of the number of siamese
clips; the teacher forward restores the random state (dropout) and leaves BatchNorm running statistics alone; and
nothing else learns from the siamese clips: `siamese_loss_weight` 0, no learnable W1/W2 or projection F (their
gradients would enter the global gradient-norm clipping) and `siamese_clips_supervised` off.
"""

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_config, tiny_inputs
from safetensors.torch import load_file

from datasets_scripts import make_synthetic_videoqa
from modeling_siasamrea import SiaSamReaForVideoQuestionAnswering
from modeling_siasamrea.sampling import SiameseSampler
from training import run_videoqa

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("num_frames", [2, 8, "auto"])
def test_anchor_clip_does_not_depend_on_the_number_of_siamese_clips(num_frames):
    for length in (1, 7, 48, 150):
        anchors = [SiameseSampler(num_frames=num_frames, num_siamese_clips=k).sample(length, np.random.default_rng(3))
                   for k in (0, 1, 4, 8)]
        anchors = [clips[0] for clips in anchors]
        for anchor in anchors[1:]:
            np.testing.assert_array_equal(anchor, anchors[0])


def test_teacher_forward_leaves_the_random_state_and_batchnorm_statistics_as_it_found_them():
    config = tiny_config(num_siamese_clips=2, vision_frozen_batchnorm=False, siamese_loss_weight=0.0,
                         learnable_clip_weights=False)
    siamese = SiaSamReaForVideoQuestionAnswering(config).train()
    baseline = copy.deepcopy(siamese)
    inputs = tiny_inputs(config, clips=3)
    anchor_only = {**inputs, "pixel_values": inputs["pixel_values"][:, :1].clone()}

    torch.manual_seed(7)
    reference = baseline(**anchor_only)
    state_after_baseline = torch.random.get_rng_state()
    torch.manual_seed(7)
    out = siamese(**inputs)
    torch.testing.assert_close(torch.random.get_rng_state(), state_after_baseline, rtol=0, atol=0)
    assert torch.equal(out.logits, reference.logits)  # the same dropout masks on the anchor
    assert torch.equal(out.loss, reference.loss)
    for name, statistic in baseline.state_dict().items():  # running means, variances and counters of BatchNorm
        assert torch.equal(siamese.state_dict()[name], statistic), name


@pytest.fixture(scope="module")
def synthetic_dir(tmp_path_factory) -> Path:
    return make_synthetic_videoqa(tmp_path_factory.mktemp("synthetic"), num_videos=24, seed=0, max_frames=64)


def _train(data_dir: Path, output_dir: Path, *switches: str) -> dict[str, torch.Tensor]:
    run_videoqa.main([
        str(REPO / "training" / "configs" / "synthetic.yaml"), "--data_dir", str(data_dir), "--output_dir",
        str(output_dir), "--max_steps", "4", "--num_frames", "2", "--max_train_samples", "8",
        "--per_device_train_batch_size", "2", "--eval_strategy", "no", "--save_strategy", "no", "--do_eval", "false",
        "--load_best_model_at_end", "false", "--logging_steps", "1", "--seed", "3", "--disable_tqdm", "true",
        *switches,
    ])
    return load_file(output_dir / "model.safetensors")


def test_siamese_clips_with_alpha_zero_train_the_baseline_bit_for_bit(synthetic_dir, tmp_path):
    """Through the shipped path: run_videoqa with the demo config (trainable BatchNorm, dropout 0.1, clipping)."""
    baseline = _train(synthetic_dir, tmp_path / "baseline", "--num_siamese_clips", "0")
    paired = _train(synthetic_dir, tmp_path / "paired", "--num_siamese_clips", "2", "--siamese_loss_weight", "0",
                    "--learnable_clip_weights", "false", "--siamese_projection", "false")
    assert baseline.keys() == paired.keys()
    different = [name for name, tensor in baseline.items() if not torch.equal(tensor, paired[name])]
    assert not different
    assert any("running_mean" in name for name in baseline)  # the BatchNorm statistics were compared too
