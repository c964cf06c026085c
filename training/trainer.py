"""`SiaSamReaTrainer`: the Trainer with SiaSamRea's loss terms logged, dense evaluation and VideoQA metrics."""

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import evaluate
import numpy as np
import torch
from transformers import EvalPrediction, Trainer, TrainerCallback

from modeling_siasamrea.tasks import IGNORE_INDEX, aggregate_clip_logits

METRICS_DIR = Path(__file__).parent / "metrics"
LOGGED_TERMS = ("loss_gt", "loss_siamese", "loss_clip_weights", "knowledge_entropy")
# what the collator adds to a batch for the trainer, never passed to the model
BATCH_EXTRAS = ("answer_type_ids", "unreadable", "num_replaced")


def knowledge_entropy(knowledge: torch.Tensor) -> torch.Tensor:
    """Mean row entropy of the siamese knowledge Â `(batch, N, N)`, in nats; log(N-1) means uniform rows."""
    return -(knowledge * knowledge.clamp_min(1e-12).log()).sum(-1).mean()


def load_metric(name: str) -> evaluate.EvaluationModule:
    """A metric shipped in `training/metrics/` (hub metrics are unreachable offline)."""
    return evaluate.load(str(METRICS_DIR / name))


def build_compute_metrics(task: str, answer_types: Sequence[str] | None = None) -> Callable[[EvalPrediction], dict]:
    """`compute_metrics` for the Trainer: accuracy (+ per answer type) or, for the count task, MSE.

    `label_ids` is `(labels, answer_type_ids, unreadable)` as `SiaSamReaTrainer.prediction_step` returns it. Questions
    whose video could not be decoded count as wrong (they are left out of the count MSE) and are reported as
    `unreadable_videos`; answers outside the model's vocabulary (label -100) count as wrong and are reported as
    `unknown_answers`.
    """
    metric = load_metric("count_mse" if task == "count" else "videoqa_accuracy")

    def compute_metrics(prediction: EvalPrediction) -> dict[str, float]:
        logits = np.asarray(prediction.predictions)
        labels, type_ids, unreadable = (np.asarray(ids) for ids in prediction.label_ids)
        unreadable = unreadable.astype(bool)
        counts = {"unreadable_videos": int(unreadable.sum())}
        if task == "count":
            readable = ~unreadable
            return {**metric.compute(predictions=logits.reshape(-1)[readable], references=labels[readable]), **counts}
        counts["unknown_answers"] = int(((labels == IGNORE_INDEX) & ~unreadable).sum())
        kwargs = {}
        if answer_types is not None:
            kwargs["answer_types"] = [answer_types[i] if i >= 0 else "unknown" for i in type_ids.tolist()]
        return {**metric.compute(predictions=logits.argmax(-1), references=labels, **kwargs), **counts}

    return compute_metrics


class SetEpochCallback(TrainerCallback):
    """Tell the training transform (and the replacement of unreadable videos) the epoch, so siamese clips are fresh
    every epoch and resume-exact.

    DataLoader workers get a copy of them when the epoch's iterator starts, after this callback runs (so do not use
    `dataloader_persistent_workers` with it).
    """

    def __init__(self, *targets: Any):
        self.targets = targets

    def on_epoch_begin(self, args, state, control, **kwargs):
        for target in self.targets:
            target.set_epoch(int((state.epoch or 0.0) + 1e-6))


class SiaSamReaTrainer(Trainer):
    """Trainer whose loss is the model's L = L_gt + α·L_siamese + L_clip_weights.

    Each term (and the mean entropy of Â) is logged next to `loss`, averaged over the logging interval and across
    processes, with `replaced_videos`: how many unreadable training videos were replaced so far, over all processes.
    The model returns a per-batch mean, so the Trainer divides it by the gradient-accumulation steps.
    Evaluation uses the anchor clip only, unless the eval data carries several clips per video: then the clip logits
    are aggregated ClipBERT-style with `dense_aggregation`.
    """

    def __init__(self, *args, dense_aggregation: str = "mean", **kwargs):
        super().__init__(*args, **kwargs)
        self.dense_aggregation = dense_aggregation
        self.model_accepts_loss_kwargs = False
        self.loss_is_scaled_for_ga = False
        self._term_sums: dict[str, torch.Tensor] = {}
        self._term_steps = 0
        self._replaced = torch.zeros((), dtype=torch.long)  # unreadable videos replaced, this process, since the last log
        self.replaced_videos = 0  # all processes, whole run (as of the last log)

    def compute_loss(
        self,
        model: torch.nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ):
        replaced = inputs.get("num_replaced")
        outputs = model(**{key: value for key, value in inputs.items() if key not in BATCH_EXTRAS})
        if model.training:
            self._accumulate_terms(outputs)
            if replaced is not None:
                self._replaced += replaced.detach().cpu()
        return (outputs.loss, outputs) if return_outputs else outputs.loss

    def _accumulate_terms(self, outputs) -> None:
        terms = {name: getattr(outputs, name, None) for name in LOGGED_TERMS[:3]}
        if outputs.siamese_knowledge is not None:
            terms["knowledge_entropy"] = knowledge_entropy(outputs.siamese_knowledge)
        for name, value in terms.items():
            if value is not None:
                self._term_sums[name] = self._term_sums.get(name, 0.0) + value.detach().float()
        self._term_steps += 1

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self._term_steps:
            names = [name for name in LOGGED_TERMS if name in self._term_sums]
            if names:
                means = torch.stack([self._term_sums[name] for name in names]) / self._term_steps
                means = self.accelerator.reduce(means.to(self.args.device), reduction="mean")
                logs.update({name: round(float(value), 4) for name, value in zip(names, means)})
            replaced = self.accelerator.reduce(self._replaced.to(self.args.device), reduction="sum")
            self.replaced_videos += int(replaced)
            logs["replaced_videos"] = self.replaced_videos
            self._term_sums, self._term_steps, self._replaced = {}, 0, torch.zeros_like(self._replaced)
        super().log(logs, start_time)

    def prediction_step(
        self,
        model: torch.nn.Module,
        inputs: dict[str, Any],
        prediction_loss_only: bool,
        ignore_keys: list[str] | None = None,
    ):
        inputs = self._prepare_inputs(inputs)
        extras = {key: inputs.pop(key, None) for key in BATCH_EXTRAS}
        labels = inputs.get("labels")
        with torch.no_grad():
            if inputs["pixel_values"].shape[1] > 1:  # dense evaluation: several clips, no siamese objective
                outputs = model(**{key: value for key, value in inputs.items() if key != "labels"})
                loss, logits = None, aggregate_clip_logits(outputs.clip_logits, self.dense_aggregation)
            else:
                outputs = model(**inputs)
                loss, logits = outputs.loss, outputs.logits
        if loss is not None:
            loss = loss.detach().mean()
        if prediction_loss_only:
            return loss, None, None
        if labels is None:
            return loss, logits.detach(), None
        return loss, logits.detach(), (labels, extras["answer_type_ids"], extras["unreadable"])
