"""SiaSamReaForVideoQuestionAnswering: shapes, losses, gradient flow, switches, HF save/load and bad input."""

import os
import pathlib
import subprocess
import sys
import textwrap

import pytest
import torch
from conftest import FAMILY_BACKBONES, TINY_TEXT, TINY_VISION, tiny_config, tiny_inputs
from transformers import AutoModel, BertConfig, BertModel, ResNetConfig, ResNetModel
from transformers.modeling_layers import GradientCheckpointingLayer

from modeling_siasamrea import (
    SiaSamReaConfig,
    SiaSamReaForVideoQuestionAnswering,
    SiaSamReaModel,
    multiple_choice_hinge_loss,
)

TASKS = ["open_ended", "multiple_choice", "count"]
SAVED_V0_1 = pathlib.Path(__file__).parent / "fixtures" / "saved_v0_1"
OUTPUT_WIDTH = {"open_ended": 5, "multiple_choice": 4, "count": 1}


def model_for(task: str, **config_kwargs) -> SiaSamReaForVideoQuestionAnswering:
    return SiaSamReaForVideoQuestionAnswering(tiny_config(task, **config_kwargs))


@pytest.mark.parametrize("task", TASKS)
def test_one_clip_forward_gives_anchor_logits_and_ground_truth_loss_only(task):
    model = model_for(task).eval()
    inputs = tiny_inputs(model.config, clips=1)
    out = model(**inputs)
    assert out.logits.shape == (2, OUTPUT_WIDTH[task])
    assert out.clip_logits.shape == (2, 1, OUTPUT_WIDTH[task])
    assert torch.isfinite(out.loss) and out.loss == out.loss_gt
    assert out.loss_siamese is None and out.siamese_knowledge is None and out.soft_labels is None


@pytest.mark.parametrize("task", TASKS)
def test_siamese_forward_returns_every_term_of_the_objective(task):
    model = model_for(task, siamese_preset="paper").train()  # Eq. 5's W1, W2 and their ground-truth term too
    out = model(**tiny_inputs(model.config, clips=3))
    width = OUTPUT_WIDTH[task]
    assert out.clip_logits.shape == (2, 3, width)
    assert out.soft_labels.shape == (2, width)
    assert out.siamese_knowledge.shape == (2, 3, 3)
    torch.testing.assert_close(out.siamese_knowledge.sum(-1), torch.ones(2, 3))
    alpha = model.config.siamese_loss_weight
    torch.testing.assert_close(out.loss, out.loss_gt + alpha * out.loss_siamese + out.loss_clip_weights)
    if task != "count":
        torch.testing.assert_close(out.soft_labels.sum(-1), torch.ones(2))


def test_anchor_logits_do_not_depend_on_siamese_clips_at_inference():
    model = model_for("open_ended").eval()
    inputs = tiny_inputs(model.config, clips=3)
    inputs.pop("labels")
    with torch.no_grad():
        many = model(**inputs)
        inputs["pixel_values"] = inputs["pixel_values"][:, :1]
        one = model(**inputs)
    torch.testing.assert_close(many.logits, one.logits)
    torch.testing.assert_close(many.clip_logits[:, 0], one.logits)


def test_no_labels_means_no_siamese_work():
    model = model_for("open_ended").train()
    inputs = tiny_inputs(model.config, clips=3)
    inputs.pop("labels")
    out = model(**inputs)
    assert out.loss is None and out.siamese_knowledge is None and out.soft_labels is None


def test_siamese_loss_is_cross_entropy_against_detached_soft_label():
    model = model_for("open_ended").train()
    out = model(**tiny_inputs(model.config, clips=3))
    expected = -(out.soft_labels * out.logits.log_softmax(-1)).sum(-1).mean()
    torch.testing.assert_close(out.loss_siamese, expected)


def test_multiple_choice_hinge_loss_matches_definition():
    scores = torch.tensor([[2.0, 1.5, -1.0, 2.2], [0.0, 0.0, 0.0, 0.0]])
    labels = torch.tensor([0, 2])
    # row 0: max(0, 1-(2-1.5)) + max(0, 1-(2+1)) + max(0, 1-(2-2.2)) = 0.5 + 0 + 1.2; row 1: 3 * 1
    torch.testing.assert_close(multiple_choice_hinge_loss(scores, labels), torch.tensor((1.7 + 3.0) / 2))


def _grads(model, loss, pixel_values):
    model.zero_grad()
    pixel_values.grad = None
    loss.backward(retain_graph=True)
    weights = model.siamese_head.clip_weight_logits.grad
    encoder = model.siasamrea.encoder.layer[0].attention.self.query.weight.grad
    return weights, encoder, pixel_values.grad


def test_gradients_reach_anchor_not_teacher_and_clip_weights_only_from_ground_truth_term():
    model = model_for("open_ended", siamese_preset="paper").train()
    inputs = tiny_inputs(model.config, clips=3)
    pixel_values = inputs["pixel_values"].requires_grad_(True)
    out = model(**inputs)

    weights, encoder, pixels = _grads(model, out.loss_siamese, pixel_values)
    assert encoder is not None and encoder.abs().sum() > 0  # the anchor learns from the soft label
    assert pixels[:, 0].abs().sum() > 0
    assert weights is None or torch.all(weights == 0)  # ... but the teacher Q is detached

    weights, encoder, pixels = _grads(model, out.loss_gt, pixel_values)
    assert weights is None or torch.all(weights == 0)

    weights, encoder, pixels = _grads(model, out.loss_clip_weights, pixel_values)
    assert weights.abs().sum() > 0  # W1, W2 learn from the ground truth through Q
    assert encoder is None or torch.all(encoder == 0)
    assert pixels is None or torch.all(pixels == 0)

    _, _, pixels = _grads(model, out.loss, pixel_values)
    assert pixels[:, 0].abs().sum() > 0
    assert torch.all(pixels[:, 1:] == 0)  # siamese clips run without a graph


def test_supervised_siamese_clips_receive_gradient():
    model = model_for("open_ended", siamese_clips_supervised=True).train()
    inputs = tiny_inputs(model.config, clips=3)
    pixel_values = inputs["pixel_values"].requires_grad_(True)
    out = model(**inputs)
    out.loss.backward()
    assert torch.all(pixel_values.grad.flatten(2).abs().sum(-1) > 0)
    expected_gt = torch.nn.functional.cross_entropy(out.clip_logits.flatten(0, 1),
                                                    inputs["labels"].repeat_interleave(3))
    torch.testing.assert_close(out.loss_gt, expected_gt)


def test_projection_is_trained_by_the_ground_truth_term():
    model = model_for("open_ended", siamese_projection=True).train()
    out = model(**tiny_inputs(model.config, clips=3))
    out.loss.backward()
    assert model.siamese_head.projection.weight.grad.abs().sum() > 0


def test_average_knowledge_switch_gives_uniform_off_diagonal_knowledge():
    model = model_for("open_ended", siamese_knowledge="average").train()
    out = model(**tiny_inputs(model.config, clips=3))
    expected = (1 - torch.eye(3)) / 2
    torch.testing.assert_close(out.siamese_knowledge, expected.expand(2, 3, 3))


def test_fixed_clip_weights_switch_uses_uniform_weights_and_drops_their_loss():
    model = model_for("open_ended", siamese_preset="paper", learnable_clip_weights=False).train()
    assert not any("clip_weight" in name for name, _ in model.named_parameters())
    out = model(**tiny_inputs(model.config, clips=3))
    assert out.loss_clip_weights is None
    probs = out.clip_logits.detach().softmax(-1)
    omega = model.config.siamese_omega
    expected = omega * (out.siamese_knowledge @ probs).mean(1) + (1 - omega) * probs.mean(1)
    torch.testing.assert_close(out.soft_labels, expected)
    torch.testing.assert_close(out.loss, out.loss_gt + out.loss_siamese)


def test_learned_clip_weights_change_the_soft_label():
    model = model_for("open_ended", siamese_preset="paper").train()
    inputs = tiny_inputs(model.config, clips=3)
    torch.manual_seed(1)
    before = model(**inputs).soft_labels
    with torch.no_grad():
        model.siamese_head.clip_weight_logits.copy_(torch.tensor([[5.0, 0.0, 0.0], [5.0, 0.0, 0.0]]))
    torch.manual_seed(1)
    after = model(**inputs).soft_labels
    assert not torch.allclose(before, after)


@pytest.mark.parametrize("task", TASKS)
def test_hidden_states_and_attentions_of_every_clip_in_one_order_with_and_without_the_teacher(task):
    model = model_for(task).eval()
    model.set_attn_implementation("eager")  # SDPA computes no attention weights to return
    inputs = tiny_inputs(model.config, clips=3)
    with torch.no_grad():  # with labels the siamese clips run in a separate teacher forward
        teacher = model(**inputs, output_hidden_states=True, output_attentions=True)
        inputs.pop("labels")
        single = model(**inputs, output_hidden_states=True, output_attentions=True)
    texts = 4 if task == "multiple_choice" else 1
    sequence = 7 + 4  # text tokens + a 2x2 grid of visual tokens
    assert len(single.hidden_states) == 3 and len(single.attentions) == 2  # embeddings + 2 layers
    assert single.hidden_states[-1].shape == (2 * 3 * texts, sequence, 32)
    assert single.attentions[0].shape == (2 * 3 * texts, 2, sequence, sequence)
    for merged, reference in zip(teacher.hidden_states + teacher.attentions, single.hidden_states + single.attentions):
        torch.testing.assert_close(merged, reference)
    pooled = model.siasamrea.pooler(single.hidden_states[-1])  # (batch * clips * texts, h), batch-major
    torch.testing.assert_close(pooled, single.pooler_output.flatten(0, -2))


def test_video_features_are_the_visual_tokens_the_model_takes():
    model = SiaSamReaModel(tiny_config()).eval()
    clips = torch.randn(2, 2, 3, 32, 32)
    input_ids = torch.randint(1, 120, (2, 7))
    with torch.no_grad():
        features = model.get_video_features(clips, output_hidden_states=True)
        from_pixels = model(input_ids, pixel_values=clips).last_hidden_state
        from_features = model(input_ids, video_embeds=features.pooler_output).last_hidden_state
    assert features.pooler_output.shape == (2, 4, 32)  # (clips, 2x2 visual tokens, hidden)
    assert features.last_hidden_state.shape == (4, 16, 4, 4)  # ResNet map of each of the 2 x 2 frames
    assert len(features.hidden_states) == 3  # embedder + 2 stages
    torch.testing.assert_close(from_features, from_pixels)
    assert model.get_video_features(clips, return_dict=False)[0] is not None


def test_chunk_size_feed_forward_of_the_model_config_reaches_the_bert_layers():
    config = tiny_config()
    config.chunk_size_feed_forward = 3
    model = SiaSamReaForVideoQuestionAnswering(config)
    assert all(layer.chunk_size_feed_forward == 3 for layer in model.siasamrea.encoder.layer)


def test_eval_forward_is_deterministic_and_batch_independent():
    model = model_for("multiple_choice").eval()
    inputs = tiny_inputs(model.config, clips=1)
    inputs.pop("labels")
    with torch.no_grad():
        both = model(**inputs).logits
        again = model(**inputs).logits
        singles = torch.cat([model(**{k: v[i : i + 1] for k, v in inputs.items()}).logits for i in range(2)])
    torch.testing.assert_close(both, again, rtol=0, atol=0)
    torch.testing.assert_close(both, singles)


@pytest.mark.parametrize("backbone", FAMILY_BACKBONES.values())
def test_gradient_checkpointing_gives_the_same_gradients(backbone):
    model = model_for("open_ended", backbone=backbone, siamese_clips_supervised=True).train()
    model.config.text_config.hidden_dropout_prob = 0.0
    inputs = tiny_inputs(model.config, clips=3)

    def gradients():
        model.zero_grad()
        torch.manual_seed(0)
        model(**inputs).loss.backward()
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    plain = gradients()
    model.activation_checkpointing_enable()
    vision = model.siasamrea.vision_encoder
    # the ResNet's stages are checkpointed by its encoder, a ViT's layers by themselves
    layers = [module for module in vision.backbone.modules() if isinstance(module, GradientCheckpointingLayer)]
    assert vision.gradient_checkpointing if backbone == "resnet" else layers and all(
        layer.gradient_checkpointing for layer in layers)
    assert model.siasamrea.encoder.layer[0].gradient_checkpointing
    checkpointed = gradients()
    assert plain.keys() == checkpointed.keys()
    for name in plain:
        torch.testing.assert_close(plain[name], checkpointed[name], msg=name)


def test_frozen_batchnorm_stays_in_eval_mode_and_untrained():
    model = model_for("open_ended").train()
    batchnorms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert batchnorms and all(not m.training for m in batchnorms)
    assert all(not p.requires_grad for m in batchnorms for p in m.parameters())
    trainable = model_for("open_ended", vision_frozen_batchnorm=False).train()
    assert all(m.training for m in trainable.modules() if isinstance(m, torch.nn.BatchNorm2d))


def test_save_and_from_pretrained_give_identical_outputs(tmp_path):
    model = model_for("open_ended", id2label={0: "red", 1: "blue", 2: "green"}, num_answers=None).eval()
    inputs = tiny_inputs(model.config, clips=1)
    inputs.pop("labels")
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    assert (tmp_path / "modeling_siasamrea.py").exists() and (tmp_path / "siamese_reasoning.py").exists()
    reloaded = SiaSamReaForVideoQuestionAnswering.from_pretrained(tmp_path).eval()
    auto = AutoModel.from_pretrained(tmp_path).eval()
    assert reloaded.config.id2label == {0: "red", 1: "blue", 2: "green"}
    with torch.no_grad():
        expected = model(**inputs).logits
        torch.testing.assert_close(reloaded(**inputs).logits, expected, rtol=0, atol=0)
        torch.testing.assert_close(auto(**inputs).logits, expected, rtol=0, atol=0)


def test_saved_folder_loads_with_trust_remote_code_without_the_package(tmp_path):
    model = model_for("multiple_choice").eval()
    inputs = tiny_inputs(model.config, clips=1)
    inputs.pop("labels")
    model.save_pretrained(tmp_path / "model")
    torch.save(inputs, tmp_path / "inputs.pt")
    with torch.no_grad():
        torch.save(model(**inputs).logits, tmp_path / "expected.pt")
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["modeling_siasamrea"] = None  # the package must not be importable here
        import torch
        from transformers import AutoModel
        model = AutoModel.from_pretrained({str(tmp_path / 'model')!r}, trust_remote_code=True).eval()
        assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
        inputs = torch.load({str(tmp_path / 'inputs.pt')!r})
        with torch.no_grad():
            logits = model(**inputs).logits
        # a few float32 ulps, not bit equality: on an AMD EPYC this process's logits differed from the saving
        # process's in the last bit (1e-10); wrong weights or code would differ by far more
        torch.testing.assert_close(logits, torch.load({str(tmp_path / 'expected.pt')!r}), rtol=1e-6, atol=1e-7)
        print("REMOTE-OK")
        """
    )
    env = dict(os.environ, HF_MODULES_CACHE=str(tmp_path / "modules"), HF_HUB_OFFLINE="1")
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert "REMOTE-OK" in result.stdout, result.stderr[-3000:]


@pytest.mark.parametrize("task", TASKS)
def test_folders_saved_by_v0_1_load_and_reproduce_their_outputs(task):
    expected = torch.load(SAVED_V0_1 / task / "expected.pt")
    model = SiaSamReaForVideoQuestionAnswering.from_pretrained(SAVED_V0_1 / task).eval()
    inputs = expected.pop("inputs")
    with torch.no_grad():
        without_labels = model(**{name: value for name, value in inputs.items() if name != "labels"})
        with_labels = model(**inputs)
    torch.testing.assert_close(without_labels.clip_logits, expected.pop("anchor_only_clip_logits"), rtol=0, atol=1e-5)
    assert {"logits", "clip_logits", "loss", "loss_gt", "loss_siamese", "soft_labels"} <= expected.keys()
    for name, value in expected.items():
        torch.testing.assert_close(getattr(with_labels, name), value, rtol=0, atol=1e-5, msg=name)


def test_from_vision_text_pretrained_copies_both_backbones(tmp_path):
    vision = ResNetModel(ResNetConfig(**TINY_VISION)).eval()
    text = BertModel(BertConfig(**TINY_TEXT)).eval()
    vision.save_pretrained(tmp_path / "resnet")
    text.save_pretrained(tmp_path / "bert")
    model = SiaSamReaForVideoQuestionAnswering.from_vision_text_pretrained(
        str(tmp_path / "resnet"), str(tmp_path / "bert"), task="open_ended", num_answers=7
    )
    assert model.config.num_answers == 7 and model.config.text_config.hidden_size == 32
    body = model.siasamrea
    for name, tensor in vision.state_dict().items():
        torch.testing.assert_close(body.vision_encoder.backbone.state_dict()[name], tensor, msg=name)
    for name, tensor in text.encoder.state_dict().items():
        torch.testing.assert_close(body.encoder.state_dict()[name], tensor, msg=name)
    torch.testing.assert_close(body.embeddings.word_embeddings.weight, text.embeddings.word_embeddings.weight)
    torch.testing.assert_close(body.pooler.dense.weight, text.pooler.dense.weight)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda i: i.update(pixel_values=i["pixel_values"][:, 0]), "pixel_values must be"),
        (lambda i: i.update(input_ids=i["input_ids"][:, 0], attention_mask=None), "takes input_ids of shape"),
        (lambda i: i.update(attention_mask=i["attention_mask"][:, :3]), "attention_mask must have the shape"),
        (lambda i: i.update(labels=torch.tensor([0, 4])), r"labels must be choice indices in \[0, 4\)"),
        (lambda i: i.update(labels=torch.tensor([0.5, 1.0])), "integer labels"),
        (lambda i: i.update(input_ids=i["input_ids"][:1], attention_mask=None), "batch size"),
    ],
)
def test_bad_input_raises_value_error_naming_expected_and_given(change, message):
    model = model_for("multiple_choice").eval()
    inputs = tiny_inputs(model.config, clips=1)
    change(inputs)
    with pytest.raises(ValueError, match=message):
        model(**inputs)


def test_wrong_number_of_clips_for_clip_weights_is_rejected():
    model = model_for("open_ended").train()
    with pytest.raises(ValueError, match="built for N = 3 clips"):
        model(**tiny_inputs(model.config, clips=5))


def test_open_ended_labels_out_of_vocabulary_range_are_rejected_but_ignore_index_is_accepted():
    model = model_for("open_ended").eval()
    inputs = tiny_inputs(model.config, clips=1)
    inputs["labels"] = torch.tensor([1, 9])
    with pytest.raises(ValueError, match=r"answer ids in \[0, 5\)"):
        model(**inputs)
    inputs["labels"] = torch.tensor([1, -100])
    assert torch.isfinite(model(**inputs).loss)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(task="captioning"), "task must be one of"),
        (dict(siamese_omega=1.5), "omega"),
        (dict(siamese_loss_weight=-1.0), "alpha"),
        (dict(siamese_knowledge="cosine"), "siamese_knowledge must be one of"),
        (dict(siamese_temperature=0.0), "siamese_temperature"),
    ],
)
def test_config_rejects_unknown_task_and_out_of_domain_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SiaSamReaConfig(**kwargs)


def test_dense_aggregation_of_clip_logits():
    from modeling_siasamrea import aggregate_clip_logits

    clip_logits = torch.tensor([[[1.0, 3.0], [3.0, -1.0]]])  # (batch=1, clips=2, K=2)
    torch.testing.assert_close(aggregate_clip_logits(clip_logits, "mean"), torch.tensor([[2.0, 1.0]]))
    torch.testing.assert_close(aggregate_clip_logits(clip_logits, "max"), torch.tensor([[3.0, 3.0]]))
    torch.testing.assert_close(aggregate_clip_logits(clip_logits, "lse"), clip_logits.logsumexp(1))
    with pytest.raises(ValueError, match="aggregation must be one of"):
        aggregate_clip_logits(clip_logits, "median")


def test_a_loaded_model_uses_no_hub_kernels_unless_asked(tmp_path):
    """Hub kernels are fetched at run time on CUDA: offline (HF_HUB_OFFLINE=1) that fails, so loading keeps them off."""
    model_for("open_ended").save_pretrained(tmp_path)
    assert not SiaSamReaForVideoQuestionAnswering.from_pretrained(tmp_path).use_kernels
    assert not AutoModel.from_pretrained(tmp_path).use_kernels
    assert SiaSamReaForVideoQuestionAnswering.from_pretrained(tmp_path, use_kernels=True).use_kernels
