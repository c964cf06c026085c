"""Batching of transformed VideoQA examples."""

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from modeling_siasamrea.image_processing_siasamrea import JpegFrames

logger = logging.getLogger(__name__)

TEXT_KEYS = ("input_ids", "attention_mask", "token_type_ids")


@dataclass
class SiaSamReaCollator:
    """Stack `pixel_values` `(clips, frames, 3, h, w)` (uint8 frames padded at the bottom/right to the batch's largest
    h and w; float ones likewise; undecoded `JpegFrames` into one `JpegFrames` of the batch, which the trainer decodes
    on the accelerator), pad text `(L,)` / `(choices, L)` on the right, stack labels.

    A batch goes to one forward, so its examples must share a task (joint TGIF-QA data), a number of clips and frames
    (`num_frames="auto"`) and a number of choices: training batches do (`training.sampler.GroupedBatchSampler`). An
    evaluation batch that mixes them becomes `sub_batches`, each of one kind, with `positions` (where each sub-batch's
    examples sit in the batch); the trainer runs one forward per sub-batch. A batch carries `task` (the task name of a
    joint model's examples; absent for a single-task model).

    Besides the model inputs a batch carries, for the trainer: `answer_type_ids` (each example's `answer_type` as an
    index in `answer_types`, -1 when unknown or without `answer_types`), `task_ids` (index in `task_names`),
    `unreadable` (evaluation examples whose video failed to decode and stand in blank, see `VideoQATransform`) and
    `num_replaced` (unreadable training videos replaced in this batch, see `ReplaceUnreadableVideos`). An example
    whose `pixel_values` is None (a failed video that nothing replaced) is dropped with a warning.
    """

    pad_token_id: int = 0
    answer_types: Sequence[str] | None = None
    task_names: Sequence[str | None] = (None,)

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        kept = [feature for feature in features if feature.get("pixel_values") is not None]
        if len(kept) < len(features):
            logger.warning("dropping %d example(s) whose video failed to decode; wrap the training set in "
                           "ReplaceUnreadableVideos to replace them instead", len(features) - len(kept))
        if not kept:
            raise RuntimeError(
                f"every example of this batch ({len(features)}) failed to decode; see the warnings above for the "
                "files and errors"
            )
        types = {name: i for i, name in enumerate(self.answer_types or ())}
        tasks = {name: i for i, name in enumerate(self.task_names)}
        batch = {  # per-example tensors first: the Trainer reads the batch size from the first one
            "unreadable": torch.tensor([bool(feature.get("unreadable", False)) for feature in kept]),
            "answer_type_ids": torch.tensor([types.get(feature.get("answer_type"), -1) for feature in kept]),
            "task_ids": torch.tensor([tasks[feature.get("task")] for feature in kept]),
            "num_replaced": torch.tensor(sum(int(feature.get("num_replaced", 0)) for feature in kept)),
        }
        groups = defaultdict(list)
        for position, feature in enumerate(kept):
            text_shape = tuple(torch.as_tensor(feature["input_ids"]).shape[:-1])  # () or (choices,)
            groups[feature.get("task"), tuple(feature["pixel_values"].shape[:2]), text_shape].append(position)
        if len(groups) == 1:
            return {**batch, **self._model_inputs(kept)}
        batch["sub_batches"] = [self._model_inputs([kept[i] for i in positions]) for positions in groups.values()]
        batch["positions"] = [torch.tensor(positions) for positions in groups.values()]
        return batch

    def _model_inputs(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        """Model inputs of examples of one kind."""
        videos = [feature["pixel_values"] for feature in features]
        inputs: dict[str, Any] = {
            "pixel_values": (JpegFrames.collate(videos) if isinstance(videos[0], JpegFrames)
                             else self._pad_frames(videos))
        }
        for key in TEXT_KEYS:
            if features[0].get(key) is not None:
                pad = self.pad_token_id if key == "input_ids" else 0
                inputs[key] = self._pad([torch.as_tensor(feature[key]) for feature in features], pad)
        if features[0].get("labels") is not None:
            inputs["labels"] = torch.stack([torch.as_tensor(feature["labels"]) for feature in features])
        if features[0].get("task") is not None:
            inputs["task"] = features[0]["task"]
        return inputs

    @staticmethod
    def _pad_frames(videos: list[torch.Tensor]) -> torch.Tensor:
        """`(clips, frames, 3, h, w)` videos zero-padded at the bottom/right to the largest h, w and stacked."""
        height, width = max(video.shape[-2] for video in videos), max(video.shape[-1] for video in videos)
        return torch.stack([torch.nn.functional.pad(video, (0, width - video.shape[-1], 0, height - video.shape[-2]))
                            for video in videos])

    @staticmethod
    def _pad(tensors: list[torch.Tensor], value: int) -> torch.Tensor:
        """Right-pad `(L,)` or `(choices, L)` tensors to the longest L: `(batch, [choices,] L_max)`."""
        length = max(tensor.shape[-1] for tensor in tensors)
        padded = [torch.nn.functional.pad(tensor, (0, length - tensor.shape[-1]), value=value) for tensor in tensors]
        return torch.stack(padded).long()
