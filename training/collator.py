"""Batching of transformed VideoQA examples."""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

logger = logging.getLogger(__name__)

TEXT_KEYS = ("input_ids", "attention_mask", "token_type_ids")


@dataclass
class SiaSamReaCollator:
    """Stack `pixel_values` `(clips, frames, 3, S, S)`, pad text `(L,)` / `(choices, L)` on the right, stack labels.

    Besides the model inputs a batch carries, for the trainer: `answer_type_ids` (each example's `answer_type` as an
    index in `answer_types`, -1 when unknown or without `answer_types`), `unreadable` (evaluation examples whose video
    failed to decode and stand in blank, see `VideoQATransform`) and `num_replaced` (unreadable training videos
    replaced in this batch, see `ReplaceUnreadableVideos`). An example whose `pixel_values` is None (a failed video
    that nothing replaced) is dropped with a warning.
    """

    pad_token_id: int = 0
    answer_types: Sequence[str] | None = None

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        kept = [feature for feature in features if feature.get("pixel_values") is not None]
        if len(kept) < len(features):
            logger.warning("dropping %d example(s) whose video failed to decode; wrap the training set in "
                           "ReplaceUnreadableVideos to replace them instead", len(features) - len(kept))
        if not kept:
            raise RuntimeError(
                f"every example of this batch ({len(features)}) failed to decode; see the warnings above for the "
                "files and errors"
            )
        shapes = {tuple(feature["pixel_values"].shape) for feature in kept}
        if len(shapes) > 1:
            raise ValueError(
                f"the videos of one batch must have the same (clips, frames, 3, S, S) shape, got {sorted(shapes)}; "
                "with num_frames='auto' clips differ in length, so use per_device_train_batch_size=1 (as the paper "
                "does) or a fixed num_frames"
            )
        batch = {"pixel_values": torch.stack([feature["pixel_values"] for feature in kept])}
        for key in TEXT_KEYS:
            if kept[0].get(key) is not None:
                pad = self.pad_token_id if key == "input_ids" else 0
                batch[key] = self._pad([torch.as_tensor(feature[key]) for feature in kept], pad)
        if kept[0].get("labels") is not None:
            batch["labels"] = torch.stack([torch.as_tensor(feature["labels"]) for feature in kept])
        index = {name: i for i, name in enumerate(self.answer_types or ())}
        batch["answer_type_ids"] = torch.tensor([index.get(feature.get("answer_type"), -1) for feature in kept])
        batch["unreadable"] = torch.tensor([bool(feature.get("unreadable", False)) for feature in kept])
        batch["num_replaced"] = torch.tensor(sum(int(feature.get("num_replaced", 0)) for feature in kept))
        return batch

    @staticmethod
    def _pad(tensors: list[torch.Tensor], value: int) -> torch.Tensor:
        """Right-pad `(L,)` or `(choices, L)` tensors to the longest L: `(batch, [choices,] L_max)`."""
        if len({tensor.shape[:-1] for tensor in tensors}) > 1:
            raise ValueError(
                f"all questions of a batch need the same number of choices, got {[t.shape[0] for t in tensors]}"
            )
        length = max(tensor.shape[-1] for tensor in tensors)
        padded = [torch.nn.functional.pad(tensor, (0, length - tensor.shape[-1]), value=value) for tensor in tensors]
        return torch.stack(padded).long()
