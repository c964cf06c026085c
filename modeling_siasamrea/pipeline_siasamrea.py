"""`video-question-answering` pipeline for SiaSamRea models, shippable next to the weights as remote code.

A flat module with relative imports only: `VideoQuestionAnsweringPipeline.save_pretrained` (or
`save_pipeline_folder`) copies it, with the processor's code, into the saved folder and records it under
`custom_pipelines` in `config.json`, so that in any process

    pipeline("video-question-answering", model=folder, trust_remote_code=True)

loads the model, the processor and this pipeline from the folder alone.
"""

import os
import types
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from transformers import AutoModel, Pipeline, PreTrainedModel, ProcessorMixin
from transformers.pipelines import PIPELINE_REGISTRY

from .tasks import AGGREGATIONS

TASK = "video-question-answering"
# Frames per clip when neither the call, the pipeline nor the model config (`num_frames`) says otherwise.
DEFAULT_NUM_FRAMES = 8
INPUT_KEYS = ("video", "question", "choices", "task")
VIDEO_TYPES = (str, os.PathLike, bytes, bytearray, memoryview, np.ndarray, torch.Tensor)


def _check_positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"`{name}` must be an integer >= 1, got {value!r}")
    return int(value)


def _as_video(video: Any) -> Any:
    """Check the `video` input; a list of (H, W, 3) frames becomes one (T, H, W, 3) array."""
    if video is None or (isinstance(video, str) and not video):
        raise ValueError("`video` is missing: pass a video file path, its bytes, a frame folder or (T, H, W, 3) frames")
    if isinstance(video, (list, tuple)):
        if not video:
            raise ValueError("`video` is an empty list of frames")
        try:
            return np.stack([np.asarray(frame) for frame in video])
        except ValueError as error:
            raise ValueError(f"`video`: the frames of a list must share one shape ({error})") from error
    if not isinstance(video, VIDEO_TYPES):
        raise ValueError(
            "`video` must be a video file path, its bytes, a frame folder, a (T, H, W, 3) uint8 array or a list of "
            f"frames; got {type(video).__name__}"
        )
    return video


def _is_example_or_batch(value: Any) -> bool:
    """True for the dict / list-of-dicts / dataset / generator forms of the pipeline input."""
    if isinstance(value, list):
        return bool(value) and isinstance(value[0], dict)
    return isinstance(value, (dict, Dataset, types.GeneratorType))


class VideoQuestionAnsweringPipeline(Pipeline):
    """Answer a question about a video with a SiaSamRea model (open-ended, multiple-choice or count).

    Inference follows the paper: by default (`num_eval_clips=1`) only the anchor clip, `num_frames` frames spread
    uniformly over the video (the video processor's evaluation sampler, `UniformClipSampler`), is decoded and
    encoded, so a call costs exactly one plain forward of that clip. The model runs its siamese branch only when given
    labels, which the pipeline never passes: there is no siamese sampling, knowledge generation or reasoning at
    inference. `num_eval_clips > 1` is
    ClipBERT-style dense inference: that many uniformly placed clips go through one batched forward and their logits
    are aggregated (`aggregation`: `"mean"`, `"max"` or `"lse"` = logsumexp) before the softmax.

    A model with several tasks (`config.tasks`, e.g. the joint TGIF-QA model) answers with the head `task` names;
    without `task` it picks the only multiple-choice task when choices are given, and otherwise asks for it. The
    answer's form is the task type's (`tasks.py`).

    Batching (`batch_size > 1`) gives the same results as single calls. Items whose clips have the same shape (and
    task) share one forward; with `num_frames="auto"` (frames per clip grow with the video length) a batch runs one
    forward per distinct clip length. Multiple-choice items of one batch may have different numbers of choices: the
    choice axis is padded, each choice is scored independently, and padded choices are dropped before the softmax over
    the item's own choices.

    Outputs (per input):
        - open-ended: `[{"answer": str, "score": float}, ...]`, the `top_k` (default 5) most probable answers;
        - multiple choice: `[{"choice": str, "index": int, "score": float}, ...]`, all choices (or the `top_k` best)
          ranked by their softmax probability;
        - count: `{"count": float, "rounded": int}`, the regressed count and its non-negative rounding.
    """

    _load_processor = True
    _load_tokenizer = False
    _load_image_processor = False
    _load_feature_extractor = False
    _load_video_processor = False

    @property
    def default_num_frames(self) -> int | str:
        """Frames per clip when the call does not say: the model config's `num_frames` if set, else those its video
        transformer backbone is built for, else 8 (`SiaSamReaConfig.clip_num_frames`)."""
        return self.model.config.clip_num_frames(DEFAULT_NUM_FRAMES)

    def __call__(
        self, video: Any = None, question: str | None = None, choices: list[str] | None = None,
        task: str | None = None, **kwargs: Any
    ) -> list[dict[str, Any]] | dict[str, Any] | list[Any]:
        """Answer one question or a batch of them.

        Args:
            video: a video file path, its raw bytes, a folder of frames, a (T, H, W, 3) uint8 array / tensor or a list
                of frames. Or, with `question`/`choices` left out, one input dict `{"video", "question"[,
                "choices"]}`, a list of such dicts (answered in batches of `batch_size`), a dataset or a generator.
            question: the question.
            choices: the candidate answers, for multiple-choice tasks only.
            task (`str`, *optional*): which task of a multi-task model answers (e.g. "count"); a single-task model
                needs none. May also be given per input dict.
            top_k (`int`, *optional*): number of answers returned (open-ended: default 5; multiple choice: default
                all; ignored by count tasks).
            num_eval_clips (`int`, *optional*, defaults to 1): clips per video; 1 = the anchor clip only (the paper).
            aggregation (`str`, *optional*, defaults to `"mean"`): how `num_eval_clips > 1` clip logits are combined.
            num_frames (`int` or `"auto"`, *optional*): frames per clip (default: the model config's `num_frames`,
                else 8).
            batch_size (`int`, *optional*): items per forward for list / dataset inputs.
        """
        if _is_example_or_batch(video):
            if question is not None or choices is not None:
                raise ValueError("pass `question` and `choices` inside each input dict, not as keyword arguments")
            return super().__call__(video, task=task, **kwargs)
        return super().__call__({"video": video, "question": question, "choices": choices}, task=task, **kwargs)

    def _sanitize_parameters(
        self,
        top_k: int | None = None,
        num_eval_clips: int | None = None,
        aggregation: str | None = None,
        num_frames: int | str | None = None,
        task: str | None = None,
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        preprocess_params, forward_params, postprocess_params = {}, {}, {}
        if num_frames is not None:
            self.processor.video_processor.sampler(num_frames=num_frames)  # a bad value raises here
            preprocess_params["num_frames"] = num_frames
        if num_eval_clips is not None:
            preprocess_params["num_eval_clips"] = _check_positive_int("num_eval_clips", num_eval_clips)
        if task is not None:
            preprocess_params["task"] = task
        if aggregation is not None:
            if aggregation not in AGGREGATIONS:
                raise ValueError(f"`aggregation` must be one of {AGGREGATIONS}, got {aggregation!r}")
            forward_params["aggregation"] = aggregation
        if top_k is not None:
            postprocess_params["top_k"] = _check_positive_int("top_k", top_k)
        return preprocess_params, forward_params, postprocess_params

    def _resolve_task(self, task: str | None, choices: Any) -> str:
        """The task that answers: the one named, the model's only one, or its only multiple-choice task when choices
        are given."""
        config = self.model.config
        if task is None and choices is not None and len(config.task_names) > 1:
            choice_tasks = [name for name in config.task_names if config.task_type(name).takes_choices]
            if len(choice_tasks) == 1:
                return choice_tasks[0]
        try:
            return config.resolve_task(task)
        except ValueError as error:
            raise ValueError(f"`task`: {error}") from None

    def _check_choices(self, task: str, choices: Any) -> list[str] | None:
        task_type = self.model.config.task_type(task)
        if not task_type.takes_choices:
            if choices is not None:
                raise ValueError(f"`choices` were given, but task {task!r} is {task_type.name}, which takes none")
            return None
        if choices is None:
            raise ValueError(f"`choices` are missing: task {task!r} is multiple-choice and needs the candidate answers")
        if isinstance(choices, str) or not isinstance(choices, (list, tuple)) or not choices:
            raise ValueError(f"`choices` must be a non-empty list of strings, got {choices!r}")
        return list(choices)

    def preprocess(
        self, inputs: dict[str, Any], num_frames: int | str | None = None, num_eval_clips: int = 1,
        task: str | None = None,
    ) -> dict[str, Any]:
        """Validate one input; the video processor samples its evaluation clip(s) and decodes only their frames."""
        if not isinstance(inputs, dict):
            raise ValueError(f"each input must be a dict with keys {INPUT_KEYS}, got {type(inputs).__name__}")
        unknown = sorted(set(inputs) - set(INPUT_KEYS))
        if unknown:
            raise ValueError(f"unknown input keys {unknown}; expected {INPUT_KEYS}")
        question = inputs.get("question")
        if not isinstance(question, str) or not question.strip():
            raise ValueError(f"`question` must be a non-empty string, got {question!r}")
        task = self._resolve_task(inputs.get("task") or task, inputs.get("choices"))
        choices = self._check_choices(task, inputs.get("choices"))
        video = _as_video(inputs.get("video"))
        model_inputs = dict(self.processor(text=question, choices=choices))
        # numpy, so that batching lists the clips instead of concatenating them: their shapes may differ
        model_inputs["pixel_values"] = self.processor.video_processor(
            video, num_frames=num_frames or self.default_num_frames, num_eval_clips=num_eval_clips, training=False,
            return_tensors="np",
        )["pixel_values"]  # (1, clips, frames, 3, S, S)
        model_inputs["task"] = [task]  # one entry per batch item, like the tensors
        if choices is not None:
            model_inputs["choices"] = [choices]
        return model_inputs

    def _forward(self, model_inputs: dict[str, Any], aggregation: str = "mean") -> dict[str, Any]:
        """One forward per task and clip shape in the batch (one in all unless tasks differ or `num_frames="auto"`
        meets videos of different lengths), then the clip logits of each item aggregated."""
        choices = model_inputs.pop("choices", None)
        task_entries = model_inputs.pop("task")  # [task], or one [task] per item when batched
        tasks = [entry[0] if isinstance(entry, list) else entry for entry in task_entries]
        videos = model_inputs.pop("pixel_values")  # (1, clips, frames, 3, S, S), or a list of them when batched
        videos = videos if isinstance(videos, list) else [videos]
        rows_by_group = defaultdict(list)
        for row, (task, video) in enumerate(zip(tasks, videos)):
            rows_by_group[task, video.shape].append(row)
        # the dtype of the first weight (the stem's), not `self.dtype`, which walks every parameter at each call
        dtype = next(self.model.parameters()).dtype
        if len(rows_by_group) == 1:  # one task and clip shape (the usual case): no copies, no regrouping
            pixel_values = torch.from_numpy(videos[0] if len(videos) == 1 else np.concatenate(videos))
            logits = self._clip_forward(pixel_values.to(self.device, dtype), model_inputs, tasks[0], aggregation)
        else:  # one row each: the tasks' outputs may differ in size
            logits = [None] * len(videos)
            for (task, _), rows in rows_by_group.items():
                pixel_values = torch.from_numpy(np.concatenate([videos[row] for row in rows]))
                text = {key: value[rows] for key, value in model_inputs.items()}
                group = self._clip_forward(pixel_values.to(self.device, dtype), text, task, aggregation)
                for row, row_logits in zip(rows, group):
                    logits[row] = row_logits
        outputs = {"logits": logits, "task": task_entries}  # "logits" first: the batch size is read from it
        if choices is not None:
            outputs["choices"] = choices
        return outputs

    def _clip_forward(
        self, pixel_values: torch.Tensor, text: dict[str, Any], task: str, aggregation: str
    ) -> torch.Tensor:
        """`(batch, clips, frames, 3, H, W)` pixels -> `(batch, ...)` logits, the clips' scores aggregated."""
        outputs = self.model(pixel_values=pixel_values, task=task, **text)
        if pixel_values.shape[1] == 1:  # the anchor clip alone (the paper's inference): nothing to aggregate
            return outputs.logits
        return self.model.config.task_type(task).aggregate(outputs.clip_logits, aggregation)

    def postprocess(
        self, model_outputs: dict[str, Any], top_k: int | None = None
    ) -> list[dict[str, Any]] | dict[str, Any]:
        task = model_outputs["task"][0]
        choices = model_outputs["choices"][0] if "choices" in model_outputs else None
        config = self.model.config
        return config.task_type(task).answer(model_outputs["logits"][0].float(), config.answers(task), choices, top_k)

    def save_pretrained(self, save_directory: str | os.PathLike, **kwargs: Any) -> None:
        """Save model, processor and this pipeline's code so that the folder loads with `pipeline(...,
        trust_remote_code=True)`; a `num_frames` given to this pipeline is kept as the config's default."""
        num_frames = self._preprocess_params.get("num_frames")
        if num_frames is not None:
            self.model.config.num_frames = num_frames
        super().save_pretrained(save_directory, **kwargs)  # model + config with `custom_pipelines` + this module
        self.processor.save_pretrained(save_directory, **kwargs)  # + processor_config.json, with its auto_map


def save_pipeline_folder(
    model: PreTrainedModel,
    processor: ProcessorMixin,
    save_directory: str | os.PathLike,
    num_frames: int | str | None = None,
) -> Path:
    """Write a self-contained folder: weights, config, processor, and the model / processor / pipeline code.

    In a fresh process, without this package, `pipeline("video-question-answering", model=save_directory,
    trust_remote_code=True)` then works. `num_frames` (int or "auto") becomes the pipeline's default frames per clip
    (stored as `config.num_frames`). The model stays on its device.
    """
    kwargs = {} if num_frames is None else {"num_frames": num_frames}
    pipe = VideoQuestionAnsweringPipeline(model=model, processor=processor, device=model.device, **kwargs)
    pipe.save_pretrained(save_directory)
    return Path(save_directory)


def custom_pipelines() -> dict[str, dict[str, Any]]:
    """The `config.custom_pipelines` entry that makes a saved folder load this pipeline (with `trust_remote_code`)."""
    impl = f"{__name__.rsplit('.', 1)[-1]}.{VideoQuestionAnsweringPipeline.__name__}"
    return {TASK: {"impl": impl, "pt": ("AutoModel",)}}


if TASK not in PIPELINE_REGISTRY.get_supported_tasks():  # a saved folder's copy of this module registers nothing again
    PIPELINE_REGISTRY.register_pipeline(TASK, pipeline_class=VideoQuestionAnsweringPipeline, pt_model=AutoModel)

__all__ = ["VideoQuestionAnsweringPipeline", "save_pipeline_folder"]
