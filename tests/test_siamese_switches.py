"""The switches of the siamese objective (issue #13): each one's math, pinned on the model and on the functions."""

import json
import math
import re
from pathlib import Path

import pytest
import torch
from conftest import tiny_config, tiny_inputs
from transformers import TrainerControl, TrainerState, TrainingArguments

from modeling_siasamrea import SiaSamReaConfig, SiaSamReaForVideoQuestionAnswering
from modeling_siasamrea.configuration_siasamrea import DEFAULT_SIAMESE_PRESET, PRESET_FIELDS, SIAMESE_PRESETS
from modeling_siasamrea.siamese_reasoning import (
    ANCHOR_INIT_WEIGHT,
    anchor_soft_label,
    converged_soft_labels,
    propagate_siamese_knowledge,
    siamese_knowledge_generation,
    siamese_knowledge_reasoning,
)
from training.callbacks import SiameseLossWarmupCallback


def _forward(task: str = "open_ended", seed: int = 0, **switches):
    """A train-mode forward of a fresh model (same weights for a seed) with 3 clips; dropout off for comparability."""
    torch.manual_seed(seed)
    config = tiny_config(task, **switches)
    config.text_config.hidden_dropout_prob = config.text_config.attention_probs_dropout_prob = 0.0
    model = SiaSamReaForVideoQuestionAnswering(config).train()
    inputs = tiny_inputs(config, clips=3)
    return model, inputs, model(**inputs)


# ----------------------------------------------------------------------------------------- distillation temperature
def test_temperature_softens_teacher_and_student_and_scales_the_loss_by_t_squared():
    _, inputs, paper = _forward()
    model, _, out = _forward(siamese_distillation_temperature=4.0)
    scores = out.clip_logits.detach()
    knowledge = model.siamese_head.knowledge(out.pooler_output.detach())
    expected_q = model.siamese_head.soft_label(knowledge, (scores / 4).softmax(-1))
    torch.testing.assert_close(out.soft_labels, expected_q)
    cross_entropy = -(expected_q * (out.logits / 4).log_softmax(-1)).sum(-1).mean()
    torch.testing.assert_close(out.loss_siamese, 16 * cross_entropy)
    # the soft label is softer than the paper's (T = 1) one built from the same scores
    entropy = lambda q: -(q * q.log()).sum(-1)  # noqa: E731
    assert torch.all(entropy(out.soft_labels) > entropy(paper.soft_labels))


@pytest.mark.parametrize("temperature", [1.0, 4.0])
def test_siamese_loss_splits_into_kl_and_soft_label_entropy(temperature):
    _, _, out = _forward(siamese_distillation_temperature=temperature)
    q = out.soft_labels
    entropy = -(q * q.log()).sum(-1).mean()
    kl = (q * (q.log() - (out.logits / temperature).log_softmax(-1))).sum(-1).mean()
    torch.testing.assert_close(out.soft_label_entropy, entropy)
    torch.testing.assert_close(out.loss_siamese_kl, temperature**2 * kl)
    torch.testing.assert_close(out.loss_siamese, temperature**2 * (kl + entropy))
    assert out.loss_siamese_kl >= 0 and out.soft_label_entropy <= math.log(q.shape[-1])


def test_ground_truth_term_on_q_uses_the_unsoftened_teacher():
    _, _, paper = _forward()
    _, _, tempered = _forward(siamese_distillation_temperature=4.0)
    torch.testing.assert_close(tempered.loss_clip_weights, paper.loss_clip_weights)


def test_temperature_cancels_exactly_for_the_count_task():
    _, _, paper = _forward("count")
    _, _, tempered = _forward("count", siamese_distillation_temperature=4.0)
    torch.testing.assert_close(tempered.loss_siamese, paper.loss_siamese)
    torch.testing.assert_close(tempered.loss, paper.loss)
    assert tempered.soft_label_entropy is None and tempered.loss_siamese_kl is None


# ------------------------------------------------------------------------------------------------ soft-label source
def test_uniform_w1_washes_the_knowledge_out_of_eq5():
    """ω·W1 Â P = ω·Σ_j c_j p_j with c_j = Σ_i W1_i Â(i, j): uniform W1 weighs clip j by the column mean of Â."""
    knowledge = siamese_knowledge_generation(torch.randn(6, 16))
    probs = torch.randn(6, 5).softmax(-1)
    uniform = torch.full((6,), 1 / 6)
    q = siamese_knowledge_reasoning(knowledge, probs, uniform, uniform, omega=1.0)
    torch.testing.assert_close(q, knowledge.mean(0) @ probs)


def test_anchor_row_is_the_anchors_own_propagated_prediction_mixed_with_its_own():
    knowledge = siamese_knowledge_generation(torch.randn(2, 4, 8))
    probs = torch.randn(2, 4, 3).softmax(-1)
    q = anchor_soft_label(propagate_siamese_knowledge(knowledge, probs), probs, omega=0.3)
    expected = 0.3 * torch.einsum("bj,bjk->bk", knowledge[:, 0], probs) + 0.7 * probs[:, 0]
    torch.testing.assert_close(q, expected)
    torch.testing.assert_close(q.sum(-1), torch.ones(2))


def test_anchor_row_follows_the_anchors_knowledge_where_uniform_eq5_sees_only_column_means():
    probs = torch.tensor([[0.2, 0.8], [1.0, 0.0], [0.0, 1.0]])
    # two siamese knowledges with the same column means (1/3) whose anchor rows trust clip 1 or clip 2
    trusts_clip_1 = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    trusts_clip_2 = torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    anchor = [anchor_soft_label(propagate_siamese_knowledge(k, probs), probs, 0.5)
              for k in (trusts_clip_1, trusts_clip_2)]
    torch.testing.assert_close(anchor[0], torch.tensor([0.6, 0.4]))  # 0.5 * p_1 + 0.5 * p_anchor
    torch.testing.assert_close(anchor[1], torch.tensor([0.1, 0.9]))  # 0.5 * p_2 + 0.5 * p_anchor
    uniform = torch.full((3,), 1 / 3)
    eq5 = [siamese_knowledge_reasoning(k, probs, uniform, uniform, 0.5) for k in (trusts_clip_1, trusts_clip_2)]
    torch.testing.assert_close(eq5[0], eq5[1])  # Eq. 5 with uniform W1 cannot tell them apart
    torch.testing.assert_close(eq5[0], probs.mean(0))


def test_anchor_row_model_has_no_clip_weights_and_no_ground_truth_term():
    model, _, out = _forward(siamese_soft_label="anchor_row")
    assert not any("clip_weight" in name for name, _ in model.named_parameters())
    assert out.loss_clip_weights is None
    probs = out.clip_logits.detach().softmax(-1)
    omega = model.config.siamese_omega
    expected = omega * (out.siamese_knowledge[:, 0:1] @ probs)[:, 0] + (1 - omega) * probs[:, 0]
    torch.testing.assert_close(out.soft_labels, expected)


def test_anchor_row_with_projection_trains_the_projection_from_the_ground_truth():
    model, _, out = _forward(siamese_soft_label="anchor_row", siamese_projection=True)
    out.loss.backward()
    assert out.loss_clip_weights is not None and model.siamese_head.projection.weight.grad.abs().sum() > 0


def test_smoothed_label_with_projection_creates_no_projection_and_no_ground_truth_term():
    model, _, out = _forward(siamese_soft_label="smoothed_label", siamese_projection=True)
    assert model.siamese_head.projection is None and out.loss_clip_weights is None
    out.loss.backward()
    unused = [name for name, parameter in model.named_parameters() if name.startswith("siamese_head.")
              and parameter.requires_grad and parameter.grad is None]
    assert not unused
    torch.testing.assert_close(out.loss, out.loss_gt + model.config.siamese_loss_weight * out.loss_siamese)


def test_anchor_init_starts_w1_and_w2_on_the_anchor_and_learns_them():
    model, _, out = _forward(siamese_soft_label="eq5_anchor_init")
    w1, w2 = model.siamese_head.clip_weights()
    expected = torch.tensor([ANCHOR_INIT_WEIGHT, (1 - ANCHOR_INIT_WEIGHT) / 2, (1 - ANCHOR_INIT_WEIGHT) / 2])
    torch.testing.assert_close(w1, expected)
    torch.testing.assert_close(w2, expected)
    out.loss.backward()
    assert model.siamese_head.clip_weight_logits.grad.abs().sum() > 0


def test_anchor_init_survives_save_and_load(tmp_path):
    model, inputs, _ = _forward(siamese_soft_label="eq5_anchor_init")
    with torch.no_grad():
        model.siamese_head.clip_weight_logits.add_(torch.tensor([[0.5, -0.2, 0.1], [0.0, 0.3, 0.0]]))
    model.save_pretrained(tmp_path)
    loaded = SiaSamReaForVideoQuestionAnswering.from_pretrained(tmp_path)
    for before, after in zip(model.siamese_head.clip_weights(), loaded.siamese_head.clip_weights()):
        torch.testing.assert_close(after, before)


# ------------------------------------------------------------------------------------------------------ propagation
def test_closed_form_is_the_fixed_point_of_repeated_propagation():
    knowledge = siamese_knowledge_generation(torch.randn(3, 5, 8))
    probs = torch.randn(3, 5, 4).softmax(-1)
    converged = converged_soft_labels(knowledge, probs, omega=0.6)
    torch.testing.assert_close(converged, 0.6 * knowledge @ converged + 0.4 * probs)
    series = sum(0.4 * 0.6**t * torch.linalg.matrix_power(knowledge, t) @ probs for t in range(200))
    torch.testing.assert_close(converged, series)
    torch.testing.assert_close(converged.sum(-1), torch.ones(3, 5))
    assert not torch.allclose(converged, 0.6 * knowledge @ probs + 0.4 * probs)  # more than one step
    # BAKE's formula as its code writes it: (1 - ω) (I - ωÂ)^-1 P
    torch.testing.assert_close(converged, 0.4 * torch.linalg.inv(torch.eye(5) - 0.6 * knowledge) @ probs)


def test_closed_form_with_the_anchor_row_gives_bakes_soft_label():
    model, _, out = _forward(siamese_soft_label="anchor_row", siamese_propagation="closed_form")
    probs = out.clip_logits.detach().softmax(-1)
    expected = converged_soft_labels(out.siamese_knowledge, probs, model.config.siamese_omega)[:, 0]
    torch.testing.assert_close(out.soft_labels, expected)


def test_closed_form_with_eq5_propagates_the_fixed_point():
    model, _, out = _forward(siamese_propagation="closed_form")
    probs, knowledge, omega = out.clip_logits.detach().softmax(-1), out.siamese_knowledge, model.config.siamese_omega
    w1, w2 = model.siamese_head.clip_weights()
    propagated = knowledge @ converged_soft_labels(knowledge, probs, omega)
    expected = omega * torch.einsum("n,bnk->bk", w1, propagated) + (1 - omega) * torch.einsum("n,bnk->bk", w2, probs)
    torch.testing.assert_close(out.soft_labels, expected)


# -------------------------------------------------------------------------------------------------------- warm-up
def test_alpha_rises_linearly_over_the_warmup_then_stays():
    model, inputs, _ = _forward(siamese_preset="paper", siamese_loss_weight=2.0, siamese_loss_weight_warmup=0.2)
    head = model.siamese_head
    for progress, alpha in [(0.0, 0.0), (0.05, 0.5), (0.1, 1.0), (0.2, 2.0), (0.7, 2.0)]:
        head.training_progress = progress
        assert head.loss_weight() == pytest.approx(alpha)
    head.training_progress = 0.05
    out = model(**inputs)
    torch.testing.assert_close(out.loss, out.loss_gt + 0.5 * out.loss_siamese + out.loss_clip_weights)
    model.eval()
    assert head.loss_weight() == 2.0  # evaluation reports the full objective


def test_warmup_callback_tells_the_head_the_training_progress(tmp_path):
    model = SiaSamReaForVideoQuestionAnswering(tiny_config(siamese_loss_weight_warmup=0.5))
    state = TrainerState(global_step=30, max_steps=120)
    SiameseLossWarmupCallback().on_step_begin(TrainingArguments(str(tmp_path)), state, TrainerControl(), model=model)
    assert model.siamese_head.training_progress == 0.25


# ------------------------------------------------------------------------------------------------------ validation
@pytest.mark.parametrize(
    "field, value, message",
    [
        ("siamese_distillation_temperature", 0.0, "siamese_distillation_temperature"),
        ("siamese_soft_label", "eq6", "siamese_soft_label must be one of"),
        ("siamese_propagation", "two_steps", "siamese_propagation must be one of"),
        ("siamese_loss_weight_warmup", 1.5, "siamese_loss_weight_warmup"),
    ],
)
def test_new_switches_reject_values_outside_their_domain(field, value, message):
    with pytest.raises(ValueError, match=message):
        SiaSamReaConfig(**{field: value})


def test_closed_form_needs_omega_below_one():
    with pytest.raises(ValueError, match="siamese_omega < 1"):
        SiaSamReaConfig(siamese_propagation="closed_form", siamese_omega=1.0)


# ---------------------------------------------------------------------------------------------------------- presets
OLD_CONFIG = Path(__file__).parent / "fixtures" / "saved_v0_1" / "open_ended"


def _preset_values(config: SiaSamReaConfig) -> dict:
    return {name: getattr(config, name) for name in PRESET_FIELDS}


def test_a_new_config_takes_the_default_preset_and_explicit_fields_win():
    assert _preset_values(SiaSamReaConfig()) == SIAMESE_PRESETS[DEFAULT_SIAMESE_PRESET]
    config = SiaSamReaConfig(siamese_preset="paper", siamese_distillation_temperature=4.0)
    assert config.siamese_distillation_temperature == 4.0 and config.siamese_soft_label == "eq5"
    with pytest.raises(ValueError, match="siamese_preset must be one of"):
        SiaSamReaConfig(siamese_preset="bake")


def test_the_default_objective_is_the_structured_preset_without_clip_weights():
    config = SiaSamReaConfig()
    assert config.siamese_preset == "structured"
    assert (config.siamese_soft_label, config.siamese_feature_centering, config.siamese_temperature) == (
        "anchor_row", True, 0.3)
    model = SiaSamReaForVideoQuestionAnswering(tiny_config())
    assert not any("clip_weight" in name for name, _ in model.named_parameters())  # no W1, W2 to learn


def test_the_config_docstring_points_at_documents_of_the_repository():
    repository = Path(__file__).parents[1]
    documents = re.findall(r"`([\w/.-]+\.md)`", SiaSamReaConfig.__doc__)
    assert documents and all((repository / document).is_file() for document in documents), documents
    assert '"Presets"' in SiaSamReaConfig.__doc__ and "\n## Presets" in (repository / "docs" / "design.md").read_text()


def test_a_config_saved_before_presets_keeps_the_papers_objective():
    saved = json.loads((OLD_CONFIG / "config.json").read_text())
    assert "siamese_preset" not in saved and "siamese_soft_label" not in saved
    config = SiaSamReaConfig.from_dict(saved)
    assert config.siamese_preset == "paper" and _preset_values(config) == SIAMESE_PRESETS["paper"]
    assert _preset_values(SiaSamReaConfig.from_pretrained(OLD_CONFIG)) == SIAMESE_PRESETS["paper"]


def test_saving_writes_the_preset_and_every_setting_so_a_reload_is_the_same(tmp_path):
    config = SiaSamReaConfig(siamese_soft_label="anchor_row", siamese_distillation_temperature=4.0)
    config.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert {"siamese_preset", *PRESET_FIELDS} <= saved.keys()
    reloaded = SiaSamReaConfig.from_pretrained(tmp_path)
    assert _preset_values(reloaded) == _preset_values(config) and reloaded.siamese_preset == config.siamese_preset


def test_loading_with_another_preset_replaces_every_setting_the_saved_one_gave(tmp_path):
    SiaSamReaConfig(siamese_distillation_temperature=4.0, siamese_loss_weight=0.5).save_pretrained(tmp_path)
    paper = SiaSamReaConfig.from_pretrained(tmp_path, siamese_preset="paper")
    assert _preset_values(paper) == SIAMESE_PRESETS["paper"]
    tempered = SiaSamReaConfig.from_pretrained(tmp_path, siamese_preset="paper", siamese_distillation_temperature=2.0)
    assert tempered.siamese_distillation_temperature == 2.0 and tempered.siamese_loss_weight == 1.0
    kept = SiaSamReaConfig.from_pretrained(tmp_path, siamese_soft_label="anchor_row")
    assert kept.siamese_loss_weight == 0.5 and kept.siamese_soft_label == "anchor_row"
    with pytest.raises(ValueError, match="siamese_distillation_temperature"):  # overrides are checked too
        SiaSamReaConfig.from_pretrained(tmp_path, siamese_distillation_temperature=0.0)
