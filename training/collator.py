"""Batching of transformed VideoQA examples."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

TEXT_KEYS = ("input_ids", "attention_mask", "token_type_ids")


@dataclass
class SiaSamReaCollator:
    """Stack `pixel_values` `(clips, frames, 3, S, S)`, pad text `(L,)` / `(choices, L)` on the right, stack labels.

    Examples whose video failed to decode (`pixel_values` is `None`, see `VideoQATransform`) are dropped. With
    `answer_types`, each example's `answer_type` is passed on as `answer_type_ids` (index in that list, -1 when
    unknown) for per-type accuracy.
    """

    pad_token_id: int = 0
    answer_types: Sequence[str] | None = None

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        kept = [feature for feature in features if feature.get("pixel_values") is not None]
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
        if self.answer_types is not None:
            index = {name: i for i, name in enumerate(self.answer_types)}
            batch["answer_type_ids"] = torch.tensor([index.get(f.get("answer_type"), -1) for f in kept])
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
