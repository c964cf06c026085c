"""`SiaSamReaTrainer`: the Trainer with SiaSamRea's loss terms logged, dense evaluation and VideoQA metrics."""

import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import evaluate
import numpy as np
import torch
from transformers import EvalPrediction, Trainer, TrainerCallback

from modeling_siasamrea import SiaSamReaConfig
from modeling_siasamrea.image_processing_siasamrea import JpegDecoder, JpegFrames, jpeg_decoder_for
from modeling_siasamrea.tasks import IGNORE_INDEX

from .sampler import GroupedBatchSampler

METRICS_DIR = Path(__file__).parent / "metrics"
# what the model returns of its loss, logged next to it (L_siamese = T²·(KL(Q ‖ p_anchor) + H(Q)) split in two)
MODEL_TERMS = ("loss_gt", "loss_siamese", "loss_clip_weights", "loss_siamese_kl", "soft_label_entropy")
LOGGED_TERMS = (*MODEL_TERMS, "knowledge_entropy")
# what the collator adds to a batch for the trainer, never passed to the model
BATCH_EXTRAS = ("answer_type_ids", "unreadable", "task_ids", "num_replaced")
# what prediction_step returns as `label_ids`, per evaluated example
EVAL_FIELDS = ("labels", "answer_type_ids", "unreadable", "task_ids", "num_scores")


def knowledge_entropy(knowledge: torch.Tensor) -> torch.Tensor:
    """Mean row entropy of the siamese knowledge Â `(batch, N, N)`, in nats; log(N-1) means uniform rows."""
    return -(knowledge * knowledge.clamp_min(1e-12).log()).sum(-1).mean()


def load_metric(name: str) -> evaluate.EvaluationModule:
    """A metric shipped in `training/metrics/` (hub metrics are unreachable offline), else whatever `evaluate.load`
    finds under `name` (a metric script's folder, a Hub metric)."""
    shipped = METRICS_DIR / name
    return evaluate.load(str(shipped) if shipped.is_dir() else name)


def build_compute_metrics(
    config: SiaSamReaConfig, answer_types: Sequence[str] | None = None
) -> Callable[[EvalPrediction], dict]:
    """`compute_metrics` for the Trainer: each task's metric, from its task type (accuracy, per answer type too, or
    the count MSE).

    `label_ids` holds `EVAL_FIELDS` as `SiaSamReaTrainer.prediction_step` returns them; `predictions` are each
    example's scores, padded (with -100) beyond its own `num_scores`. Questions whose video could not be decoded count
    as wrong (a task type may leave them out instead: `unreadable_counted_wrong`, e.g. the count MSE) and are reported
    as `unreadable_videos`; answers outside the model's vocabulary (label -100) count as wrong and are reported as
    `unknown_answers`. A joint model's metrics are named `<task>_<metric>`, and `score` combines them for picking the
    best checkpoint (`combined_score`).
    """
    metrics = {name: load_metric(config.task_type(name).metric) for name in config.task_names}

    def compute_metrics(prediction: EvalPrediction) -> dict[str, float]:
        fields = dict(zip(EVAL_FIELDS, (np.asarray(ids) for ids in prediction.label_ids)))
        logits, unreadable = np.asarray(prediction.predictions), fields["unreadable"].astype(bool)
        results = {"unreadable_videos": int(unreadable.sum()), "unknown_answers": 0}
        for task_id, name in enumerate(config.task_names):
            rows = fields["task_ids"] == task_id
            if not rows.any():
                continue
            task_type = config.task_type(name)
            labels = fields["labels"][rows].astype(task_type.label_dtype)
            width = fields["num_scores"][rows][:, None]
            scores = np.where(np.arange(logits.shape[-1]) < width, logits[rows], -np.inf)  # drop the padding
            readable = ~unreadable[rows]
            results["unknown_answers"] += int(((labels == IGNORE_INDEX) & readable).sum())
            scored = np.ones_like(readable) if task_type.unreadable_counted_wrong else readable
            kwargs = {}
            if answer_types is not None and task_type.metric_answer_types:
                kwargs["answer_types"] = [answer_types[i] if i >= 0 else "unknown"
                                          for i in fields["answer_type_ids"][rows][scored].tolist()]
            task_results = metrics[name].compute(predictions=task_type.metric_predictions(scores[scored]),
                                                 references=labels[scored], **kwargs)
            prefix = f"{name}_" if config.tasks else ""
            results.update({f"{prefix}{key}": value for key, value in task_results.items()})
        if config.tasks:
            results["score"] = combined_score(config, results)
        return results

    return compute_metrics


def combined_score(config: SiaSamReaConfig, results: dict[str, float]) -> float:
    """One number for picking a joint model's best checkpoint: the mean over its tasks of accuracy (higher is better)
    and, for a count task, 1 / (1 + MSE), which also lies in (0, 1] and grows as the MSE shrinks."""
    values = []
    for name in config.task_names:
        task_type = config.task_type(name)
        value = results.get(f"{name}_{task_type.metric_for_best_model}")
        if value is not None:
            values.append(value if task_type.greater_is_better else 1.0 / (1.0 + value))
    return float(np.mean(values))


class SetEpochCallback(TrainerCallback):
    """Tell the training transform (and the replacement of unreadable videos) the epoch, so siamese clips are fresh
    every epoch and resume-exact.

    It runs before the epoch's iterator starts; the targets keep the epoch in shared memory (`SharedEpoch`), so
    persistent DataLoader workers (`dataloader_persistent_workers`) see it as well as fresh ones.
    """

    def __init__(self, *targets: Any):
        self.targets = targets

    def on_epoch_begin(self, args, state, control, **kwargs):
        for target in self.targets:
            target.set_epoch(int((state.epoch or 0.0) + 1e-6))


class SiaSamReaTrainer(Trainer):
    """Trainer whose loss is the model's L = L_gt + α·L_siamese + L_clip_weights.

    Each term (and the mean entropy of Â) is logged next to `loss`, averaged over the logging interval and across
    processes; a joint model also logs `loss_<task>` per task, and `replaced_videos` counts the unreadable training
    videos replaced so far, over all processes. `data_wait_fraction` is the share of the logging interval's wall time
    that training spent waiting for the next batch from the DataLoader (all processes together): near 0 the data path
    keeps up; above ~0.1 the accelerator starves (more workers, or frames stored as JPEG at the model's size). The model
    returns a per-batch mean, so the Trainer divides it by the gradient-accumulation steps.

    `train_group_keys` (one per training example: its task, its clip length...) make every training batch hold
    examples of one key (`GroupedBatchSampler`). Evaluation batches may mix them: they come as sub-batches, one
    forward each. Evaluation uses the anchor clip only, unless the eval data carries several clips per video: then the
    clip scores are aggregated ClipBERT-style with `dense_aggregation`. Batches of uint8 frames are normalised on the
    device by the image processor of `processing_class`; batches of undecoded JPEG frames (`JpegFrames`) are decoded
    there first, in one batch, by `jpeg_decoder` (default: nvJPEG through torchvision on a CUDA device, else the CPU).
    """

    def __init__(self, *args, dense_aggregation: str = "mean", train_group_keys: list | None = None,
                 jpeg_decoder: JpegDecoder | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.dense_aggregation = dense_aggregation
        self.train_group_keys = train_group_keys
        self.model_accepts_loss_kwargs = False
        self.loss_is_scaled_for_ga = False
        config = self.model.config
        self._logged_terms = [*LOGGED_TERMS, *(f"loss_{name}" for name in config.task_names if config.tasks)]
        self._term_sums = torch.zeros(len(self._logged_terms), dtype=torch.float64)  # this process, since the last log
        self._term_counts = torch.zeros(len(self._logged_terms), dtype=torch.float64)
        self._replaced = torch.zeros((), dtype=torch.long)  # unreadable videos replaced here since the last log
        self.replaced_videos = 0  # all processes, whole run (as of the last log)
        self.jpeg_decoder = jpeg_decoder
        self._data_wait = 0.0  # seconds waiting for batches since the last log, in this process
        self._interval_start: float | None = None  # when that interval began

    def _prepare_inputs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """On the device: uint8 frames (or JPEG frames, decoded there) from the data workers become the model's
        normalised `pixel_values`."""
        inputs = super()._prepare_inputs(inputs)
        image_processor = self.processing_class.image_processor
        for batch in [inputs, *inputs.get("sub_batches", [])]:
            frames = batch.get("pixel_values")
            if isinstance(frames, JpegFrames):
                if self.jpeg_decoder is None:
                    self.jpeg_decoder = jpeg_decoder_for(self.args.device)
                pixel_values = image_processor.pixel_values_from_jpeg(frames, self.args.device, self.jpeg_decoder)
            elif frames is not None and frames.dtype == torch.uint8:
                pixel_values = image_processor.pixel_values_from_frames(frames)
            else:
                continue
            batch["pixel_values"] = self._prepare_input(pixel_values)  # DeepSpeed's input dtype, as for any float
        return inputs

    def floating_point_ops(self, inputs: dict[str, Any]) -> int:
        """The Trainer's estimate; JPEG frames count as the pixels they decode to (padded to `max_image_size`)."""
        frames = inputs.get("pixel_values")
        if isinstance(frames, JpegFrames):
            pixels = frames.index.numel() * 3 * self.processing_class.image_processor.max_image_size**2
            return 6 * pixels * self.model.num_parameters(exclude_embeddings=True)
        return super().floating_point_ops(inputs)

    def get_batch_samples(self, epoch_iterator: Iterator, num_batches: int, device: torch.device):
        """The Trainer's, timed: the time spent here is time spent waiting for data (`data_wait_fraction`)."""
        start = time.perf_counter()
        if self._interval_start is None:
            self._interval_start = start
        batches = super().get_batch_samples(epoch_iterator, num_batches, device)
        self._data_wait += time.perf_counter() - start
        return batches

    def _get_train_sampler(self, train_dataset=None):
        if self.train_group_keys is None:
            return super()._get_train_sampler(train_dataset)
        return GroupedBatchSampler(self.train_group_keys, self._train_batch_size, seed=self.args.seed,
                                   rank=self.args.process_index, world_size=self.args.world_size)

    def compute_loss(
        self,
        model: torch.nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ):
        if "sub_batches" in inputs:
            raise ValueError("a training batch mixes tasks, clip lengths or numbers of choices: give the trainer "
                             "train_group_keys (run_videoqa does) so that each batch holds one kind")
        outputs = model(**{key: value for key, value in inputs.items() if key not in BATCH_EXTRAS})
        if model.training:
            self._accumulate_terms(outputs, inputs.get("task"))
            self._replaced += inputs["num_replaced"].detach().cpu()
        return (outputs.loss, outputs) if return_outputs else outputs.loss

    def _accumulate_terms(self, outputs, task: str | None) -> None:
        terms = {name: getattr(outputs, name, None) for name in MODEL_TERMS}
        if outputs.siamese_knowledge is not None:
            terms["knowledge_entropy"] = knowledge_entropy(outputs.siamese_knowledge)
        if task is not None:
            terms[f"loss_{task}"] = outputs.loss
        for i, name in enumerate(self._logged_terms):
            if terms.get(name) is not None:
                self._term_sums[i] += float(terms[name].detach())
                self._term_counts[i] += 1

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs:  # a training log: add the terms, averaged over the interval and the processes
            now = time.perf_counter()
            elapsed = now - (self._interval_start or now)
            timing = torch.tensor([self._replaced, self._data_wait, elapsed], dtype=torch.float64)
            totals = torch.cat([self._term_sums, self._term_counts, timing]).to(self.args.device)
            totals = self.accelerator.reduce(totals, reduction="sum").cpu()
            sums, counts = totals[: len(self._logged_terms)], totals[len(self._logged_terms): -3]
            logs.update({name: round(float(total / count), 4)
                         for name, total, count in zip(self._logged_terms, sums, counts) if count > 0})
            replaced, data_wait, elapsed = totals[-3:].tolist()
            self.replaced_videos += int(replaced)
            logs["replaced_videos"] = self.replaced_videos
            if elapsed > 0:
                logs["data_wait_fraction"] = round(data_wait / elapsed, 4)
            self._term_sums.zero_(), self._term_counts.zero_(), self._replaced.zero_()
            self._data_wait, self._interval_start = 0.0, now
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
        sub_batches = inputs.pop("sub_batches", [inputs])
        positions = inputs.pop("positions", [torch.arange(len(extras["task_ids"]))])
        batch_size = len(extras["task_ids"])
        losses, width = [], 0
        results = []
        with torch.no_grad():
            for sub_batch in sub_batches:
                loss, scores = self._evaluate_sub_batch(model, sub_batch)
                if loss is not None:
                    losses.append(loss * len(scores))
                results.append(scores)
                width = max(width, scores.shape[-1])
        loss = torch.stack(losses).sum() / batch_size if losses else None
        if prediction_loss_only:
            return loss, None, None
        logits = results[0].new_full((batch_size, width), -100.0)  # each example's scores, padded like the Trainer
        num_scores = torch.zeros(batch_size, dtype=torch.long, device=logits.device)
        for rows, scores in zip(positions, results):
            logits[rows.to(logits.device), : scores.shape[-1]] = scores
            num_scores[rows.to(logits.device)] = scores.shape[-1]
        if all("labels" not in sub_batch for sub_batch in sub_batches):
            return loss, logits, None
        labels = torch.zeros(batch_size, dtype=torch.float64, device=logits.device)
        for rows, sub_batch in zip(positions, sub_batches):
            labels[rows.to(logits.device)] = sub_batch["labels"].double()
        fields = {"labels": labels, **extras, "num_scores": num_scores}
        return loss, logits, tuple(fields[name] for name in EVAL_FIELDS)

    def _evaluate_sub_batch(self, model: torch.nn.Module, inputs: dict[str, Any]) -> tuple[torch.Tensor | None,
                                                                                            torch.Tensor]:
        """(mean loss or None, scores `(batch, K | choices | 1)`) of examples of one kind."""
        if inputs["pixel_values"].shape[1] > 1:  # dense evaluation: several clips, no siamese objective
            outputs = model(**{key: value for key, value in inputs.items() if key != "labels"})
            task_type = self.model.config.task_type(inputs.get("task"))
            return None, task_type.aggregate(outputs.clip_logits, self.dense_aggregation).detach()
        outputs = model(**inputs)
        return (None if outputs.loss is None else outputs.loss.detach()), outputs.logits.detach()
