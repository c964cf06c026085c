"""The clip sampler interface: `ClipSampler` (training draw, evaluation clips), its two samplers, the one factory, and
`num_frames` as a declared, validated config field and a typed training argument."""

import zlib
from pathlib import Path

import numpy as np
import pytest

from modeling_siasamrea import SiaSamReaConfig, SiaSamReaVideoProcessor
from modeling_siasamrea.sampling import ClipSampler, SiameseSampler, UniformClipSampler, clip_sampler_from_config
from training import run_videoqa

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "training" / "configs").glob("*.yaml"))

# (num_frames, num_siamese_clips, pace, video length, seed) -> (shape, crc32 of the int64 indices) of
# `SiameseSampler.sample`, as computed by the sampler before the interface existed: draws must not change
TRAIN_DRAWS = [
    (4, 4, None, 100, 0, ((5, 4), 2682628956)),
    ("auto", 8, None, 300, 1, ((9, 16), 531699112)),
    (8, 2, 5, 64, 2, ((3, 8), 885827114)),
    (6, 0, None, 5, 3, ((1, 6), 1835845522)),
    (16, 8, None, 900, 4, ((9, 16), 3509349220)),
    ("auto", 3, None, 20, 5, ((4, 5), 1125443182)),
    ("auto", 8, None, 37, 6, ((9, 5), 596845669)),
]
# (num_frames, video length, num_eval_clips) -> the same for the evaluation clips
EVAL_CLIPS = [
    (4, 100, 1, ((1, 4), 2437134897)),
    (4, 100, 2, ((2, 4), 3272097190)),
    ("auto", 300, 3, ((3, 16), 3865730794)),
    (8, 5, 1, ((1, 8), 487104711)),
    (6, 7, 4, ((4, 6), 2599001380)),
    (16, 900, 5, ((5, 16), 1826064213)),
    ("auto", 40, 1, ((1, 5), 948892186)),
]


def digest(indices: np.ndarray) -> tuple[tuple[int, ...], int]:
    assert indices.dtype == np.int64
    return indices.shape, zlib.crc32(np.ascontiguousarray(indices, dtype="<i8").tobytes())


@pytest.mark.parametrize("num_frames, num_siamese_clips, pace, length, seed, expected", TRAIN_DRAWS)
def test_siamese_draws_are_bit_identical_to_the_sampler_before_the_interface(num_frames, num_siamese_clips, pace,
                                                                             length, seed, expected):
    sampler = SiameseSampler(num_frames=num_frames, num_siamese_clips=num_siamese_clips, pace=pace)
    assert digest(sampler.sample(length, np.random.default_rng(seed))) == expected


@pytest.mark.parametrize("num_frames, length, num_eval_clips, expected", EVAL_CLIPS)
def test_evaluation_clips_are_bit_identical_for_every_sampler(num_frames, length, num_eval_clips, expected):
    uniform = UniformClipSampler(num_frames=num_frames, num_clips=num_eval_clips)
    assert digest(uniform.sample(length, np.random.default_rng(0))) == expected
    assert digest(uniform.sample_eval(length, num_eval_clips)) == expected
    assert digest(SiameseSampler(num_frames=num_frames).sample_eval(length, num_eval_clips)) == expected


def test_clip_sampler_is_abstract_and_both_samplers_implement_it():
    with pytest.raises(TypeError):
        ClipSampler()
    assert isinstance(SiameseSampler(), ClipSampler) and isinstance(UniformClipSampler(), ClipSampler)


def test_uniform_sampler_draws_nothing_at_random():
    sampler = UniformClipSampler(num_frames=4, num_clips=2)
    draws = [sampler.sample(100, np.random.default_rng(seed)).tolist() for seed in range(3)]
    assert draws == [[[0, 22, 44, 66], [33, 55, 77, 99]]] * 3
    assert repr(sampler) == "UniformClipSampler(num_frames=4, num_clips=2, min_frames=5, max_frames=16)"
    with pytest.raises(ValueError, match="num_clips"):
        UniformClipSampler(num_clips=0)


def test_factory_builds_the_siamese_sampler_for_training_and_the_uniform_one_for_evaluation():
    config = SiaSamReaConfig(num_answers=3, num_siamese_clips=3, num_frames=6)
    train, evaluation = clip_sampler_from_config(config, train=True), clip_sampler_from_config(config, train=False)
    assert type(train) is SiameseSampler and (train.num_frames, train.num_siamese_clips) == (6, 3)
    assert type(evaluation) is UniformClipSampler and (evaluation.num_frames, evaluation.num_clips) == (6, 1)
    overridden = clip_sampler_from_config(config, train=True, num_frames="auto", pace=2, max_frames=8)
    assert (overridden.num_frames, overridden.pace, overridden.max_frames) == ("auto", 2, 8)
    assert clip_sampler_from_config(SiaSamReaConfig(num_answers=3), train=False).num_frames == "auto"  # unset


def test_factory_takes_the_clip_length_of_a_video_backbone_when_num_frames_is_unset():
    videomae = dict(model_type="videomae", image_size=32, patch_size=16, num_frames=4, tubelet_size=2, hidden_size=16,
                    intermediate_size=32, num_hidden_layers=2, num_attention_heads=2)
    config = SiaSamReaConfig(num_answers=3, vision_config=videomae)
    assert config.num_frames is None
    evaluation = clip_sampler_from_config(config, train=False)
    assert evaluation.num_frames == 4 and evaluation.sample(100).shape == (1, 4)
    assert clip_sampler_from_config(config, train=True).num_frames == 4


def test_video_processor_samples_through_the_factory():
    processor = SiaSamReaVideoProcessor(num_frames=4, num_siamese_clips=2, pace=3)
    assert repr(processor.sampler(training=True)) == repr(clip_sampler_from_config(processor, train=True, pace=3))
    assert type(processor.sampler()) is UniformClipSampler  # processor.training is False
    assert type(processor.sampler(training=True)) is SiameseSampler


def test_num_frames_is_a_declared_config_field_that_is_saved_and_reloaded(tmp_path):
    config = SiaSamReaConfig(num_answers=3, num_frames=8)
    config.save_pretrained(tmp_path)
    assert SiaSamReaConfig.from_pretrained(tmp_path).num_frames == 8
    config.num_frames = "auto"
    config.save_pretrained(tmp_path)
    assert SiaSamReaConfig.from_pretrained(tmp_path).num_frames == "auto"


def test_configs_saved_without_num_frames_still_load():
    saved = SiaSamReaConfig(num_answers=3).to_dict()
    saved.pop("num_frames")
    config = SiaSamReaConfig.from_dict(saved)
    assert config.num_frames is None and config.clip_num_frames() == "auto" and config.clip_num_frames(8) == 8


@pytest.mark.parametrize("bad", [0, -2, "many", "8", 2.5, True])
def test_config_rejects_a_bad_num_frames_naming_the_field(bad):
    with pytest.raises(ValueError, match="num_frames must be 'auto' or a positive integer"):
        SiaSamReaConfig(num_answers=3, num_frames=bad)


@pytest.mark.parametrize("argv, expected", [(["--num_frames", "8"], 8), (["--num_frames", "auto"], "auto"), ([], None)])
def test_data_arguments_type_num_frames_as_an_int_or_auto(argv, expected):
    _, data_args, _ = run_videoqa.parse_args(["--model_config", "{}", *argv])
    assert data_args.num_frames == expected and type(data_args.num_frames) is type(expected)


@pytest.mark.parametrize("value, expected", [("8", 8), ("auto", "auto")])
def test_yaml_configs_give_num_frames_as_an_int_or_auto(value, expected, tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(f"model_config: '{{}}'\nnum_frames: {value}\n")
    _, data_args, _ = run_videoqa.parse_args([str(path)])
    assert data_args.num_frames == expected


@pytest.mark.parametrize("path", CONFIGS, ids=lambda path: path.name)
def test_shipped_configs_give_num_frames_as_an_int_or_auto(path):
    parser = run_videoqa.ArgumentParser(run_videoqa.DataArguments)  # their GPU training arguments need a GPU
    data_args, _ = parser.parse_args_into_dataclasses(run_videoqa.config_file_to_argv(str(path)),
                                                      return_remaining_strings=True)
    assert data_args.num_frames is None or data_args.num_frames == "auto" or type(data_args.num_frames) is int
