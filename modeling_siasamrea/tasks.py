"""VideoQA task types: everything that differs between open-ended, multiple-choice and count questions, in one place.

A task type owns its head's output size, the ground-truth loss (Eq. 6 / Eq. 7 / MSE), the predictions P that enter
Eq. 3-5 and the distance of L_siamese, how the scores of several clips are combined, which columns a dataset row has
(`features`, as the data layer's builders and joint datasets declare them) and how one row becomes a label, how the
pipeline words an answer, which metric scores it (and how the trainer feeds it) and what the predictions file says.
The siamese objective itself (Eq. 1-5, Eq. 8) is shared by all of them (`siamese_reasoning.py`,
`SiaSamReaForVideoQuestionAnswering`).

Adding a task type is one subclass of `TaskType` plus one line, `register_task_type(MyType())` (see docs/design.md,
"Adding a task type"). The data layer, the trainer and the model ask the registry (`get_task_type`), never a name.
"""

from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

IGNORE_INDEX = -100
AGGREGATIONS = ("mean", "max", "lse")
DEFAULT_TOP_K = 5  # answers an open-ended question gets unless the caller asks for another number


def aggregate_clip_logits(clip_logits: torch.Tensor, aggregation: str = "mean") -> torch.Tensor:
    """ClipBERT-style dense inference: combine `(batch, clips, ...)` clip scores into `(batch, ...)`.

    `"mean"` averages the clip scores, `"max"` takes their maximum and `"lse"` their log-sum-exp.
    """
    if aggregation == "mean":
        return clip_logits.mean(dim=1)
    if aggregation == "max":
        return clip_logits.max(dim=1).values
    if aggregation == "lse":
        return clip_logits.logsumexp(dim=1)
    raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")


def multiple_choice_hinge_loss(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Summed pairwise hinge loss of the multiple-choice setting (Eq. 7), averaged over the batch.

    Σ_{n != pos} max(0, 1 − (s_pos − s_n)) for scores `(batch, num_choices)` and correct indices `(batch,)`.
    """
    positive = scores.gather(1, labels[:, None])  # (batch, 1)
    margins = (1.0 - (positive - scores)).clamp(min=0)  # (batch, num_choices)
    negatives = torch.ones_like(margins).scatter_(1, labels[:, None], 0.0)
    return (margins * negatives).sum(dim=1).mean()


def _labelled(scores: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The rows whose label is not IGNORE_INDEX."""
    keep = labels != IGNORE_INDEX
    return scores[keep], labels[keep]


def _no_loss(scores: torch.Tensor) -> torch.Tensor:
    """A zero that keeps the graph: the loss of a batch without any usable label (e.g. only unknown answers)."""
    return scores.sum() * 0.0


def _value(dtype: str) -> dict[str, str]:
    """A `datasets.Value(dtype)` column, serialised."""
    return {"dtype": dtype, "_type": "Value"}


def normalize_answer(answer: Any) -> str:
    """Open-ended answer text as matched against the vocabulary: stripped and lower-cased."""
    return str(answer).strip().lower()


class TaskType:
    """Base class of a VideoQA task type. Scores are the head's outputs for one clip: `(batch, K)` answer logits,
    `(batch, num_choices)` choice scores or `(batch, 1)` counts."""

    name: ClassVar[str]
    metric: ClassVar[str]  # a metric module shipped in training/metrics/, else a name or path `evaluate.load` takes
    metric_for_best_model: ClassVar[str]
    greater_is_better: ClassVar[bool] = True
    takes_choices: ClassVar[bool] = False  # one text per choice: input_ids (batch, num_choices, L)
    has_vocabulary: ClassVar[bool] = False  # answers are classes of a fixed vocabulary (the head has one per answer)
    has_classes: ClassVar[bool] = True  # the scores are per class (answer or choice): P is a distribution over them
    label_column: ClassVar[str] = "label"  # the dataset column that holds a row's label
    label_dtype: ClassVar[str] = "int64"  # its dtype (a `datasets.Value` dtype), also of the metric's references
    # a question whose video cannot be read enters the metric, counted wrong (False: it is left out of the metric)
    unreadable_counted_wrong: ClassVar[bool] = True
    metric_answer_types: ClassVar[bool] = True  # the metric also scores per answer type (it takes `answer_types`)

    def features(self, answers: list[str] | None = None) -> dict[str, dict[str, Any]]:
        """The columns a dataset row of this task has besides the shared ones (`question`, `answer`, `video_path`...),
        serialised as `datasets.Features.to_dict` writes them (`datasets.Features.from_dict` reads them; plain dicts
        keep this module free of `datasets`, like all Hub custom code). `answers`: the vocabulary, for a task with
        one; without it an open-ended `label` is a plain int64 (a joint dataset's tasks have different vocabularies)."""
        return {self.label_column: _value(self.label_dtype)}

    def filler(self) -> dict[str, Any]:
        """What this task's columns hold in a row of another task (a joint dataset): -1, no choices."""
        return {self.label_column: -1}

    def read_label(self, record: dict[str, Any], label2id: dict[str, int]) -> dict[str, Any]:
        """The label column(s) of a record read from an annotation file, to update it with: by default none, the
        record has its own (a multiple-choice record's `label` is the index of its correct choice, a count record's
        `count` the count). -1 in the label column: an answer the task cannot score (dropped from train)."""
        return {}

    def num_outputs(self, num_answers: int | None) -> int:
        """Outputs of the head's last layer per text."""
        return 1

    def check_labels(self, labels: torch.Tensor, num_classes: int) -> None:
        """Raise a ValueError for labels this task cannot score."""
        if labels.is_floating_point():
            raise ValueError(f"a {self.name} task takes integer labels, got {labels.dtype}")
        valid = ((labels >= 0) & (labels < num_classes)) | (labels == IGNORE_INDEX)
        if not bool(valid.all()):
            raise ValueError(f"labels must be {self.label_kind} in [0, {num_classes}) or {IGNORE_INDEX} (ignored), "
                             f"got {labels.tolist()}")

    label_kind: ClassVar[str] = "class ids"

    def ground_truth_loss(self, scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """L_gt, averaged over the labelled examples (a graph-connected zero when there are none)."""
        raise NotImplementedError

    def predictions(self, scores: torch.Tensor) -> torch.Tensor:
        """P of Eq. 3: what a clip predicts, in the space where soft labels are averaged."""
        return scores.softmax(dim=-1)

    def soft_label_loss(self, scores: torch.Tensor, soft_labels: torch.Tensor) -> torch.Tensor:
        """L_siamese: the anchor's scores against the detached soft label Q (cross-entropy)."""
        return -(soft_labels.detach() * scores.log_softmax(dim=-1)).sum(dim=-1).mean()

    def soft_label_target_loss(self, soft_labels: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The ground truth against Q itself (negative log-likelihood), which trains W1, W2 (and F)."""
        soft_labels, labels = _labelled(soft_labels, labels)
        if not len(labels):
            return _no_loss(soft_labels)
        log_q = soft_labels.clamp_min(torch.finfo(soft_labels.dtype).tiny).log()
        return nn.functional.nll_loss(log_q, labels)

    def aggregate(self, clip_scores: torch.Tensor, aggregation: str = "mean") -> torch.Tensor:
        """Dense inference: `(batch, clips, ...)` clip scores -> `(batch, ...)`."""
        return aggregate_clip_logits(clip_scores, aggregation)

    def label(self, example: dict[str, Any]) -> torch.Tensor:
        """The training/evaluation label of a dataset row (-1 in the data: unknown, ignored, counted wrong)."""
        label = int(example[self.label_column])
        return torch.tensor(label if label >= 0 else IGNORE_INDEX, dtype=torch.long)

    def unanswerable(self, label: torch.Tensor) -> torch.Tensor:
        """The label of a question that must count as wrong (e.g. its video could not be read)."""
        return torch.full_like(label, IGNORE_INDEX)

    def metric_predictions(self, logits: np.ndarray) -> np.ndarray:
        """What the metric compares with the references: the top-scoring class."""
        return logits.argmax(-1)

    def answer(self, scores: torch.Tensor, id2label: dict[int, str] | None, choices: list[str] | None,
               top_k: int | None) -> Any:
        """The pipeline's answer for one question from its `(K,)` scores."""
        raise NotImplementedError

    def record(self, scores: torch.Tensor, row: dict[str, Any], label: int, id2label: dict[int, str] | None,
               unreadable: bool) -> dict[str, Any]:
        """`prediction`, `score`, `label`, `label_score` (the probability given to the true answer; None when it is
        outside the vocabulary) and `correct` of one question for a predictions file."""
        probs = scores.softmax(-1)
        index = int(probs.argmax())
        prediction = row["choices"][index] if self.takes_choices else id2label[index]
        return {"prediction": prediction, "score": float(probs[index]), "label": row["answer"],
                "label_score": float(probs[label]) if 0 <= label < len(probs) else None, "correct": index == label}


class OpenEnded(TaskType):
    """Classification over a fixed answer vocabulary (Eq. 6, cross-entropy)."""

    name = "open_ended"
    metric = "videoqa_accuracy"
    metric_for_best_model = "accuracy"
    label_kind = "answer ids"
    has_vocabulary = True

    def num_outputs(self, num_answers: int | None) -> int:
        if not num_answers:
            raise ValueError(f"an open-ended task needs an answer vocabulary of >= 1 answers, got {num_answers}")
        return num_answers

    def features(self, answers=None):
        if answers is None:
            return super().features()
        return {"label": {"names": list(answers), "_type": "ClassLabel"}}  # features["label"].names: id2label

    def read_label(self, record, label2id):
        """The answer text normalised and its id in the vocabulary `label2id` (-1 outside it)."""
        answer = normalize_answer(record["answer"])
        return {"answer": answer, "label": label2id.get(answer, -1)}

    def ground_truth_loss(self, scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        scores, labels = _labelled(scores, labels)
        return nn.functional.cross_entropy(scores, labels) if len(labels) else _no_loss(scores)

    def answer(self, scores, id2label, choices, top_k):
        probs, indices = scores.softmax(dim=-1).topk(min(top_k or DEFAULT_TOP_K, scores.numel()))
        return [{"answer": id2label[i], "score": p} for p, i in zip(probs.tolist(), indices.tolist())]


class MultipleChoice(TaskType):
    """One score per `question [SEP] choice` text (Eq. 7, summed pairwise hinge loss)."""

    name = "multiple_choice"
    metric = "videoqa_accuracy"
    metric_for_best_model = "accuracy"
    takes_choices = True
    label_kind = "choice indices"

    def features(self, answers=None):
        return {"choices": {"feature": _value("string"), "_type": "List"}, **super().features(answers)}

    def filler(self):
        return {"choices": [], **super().filler()}

    def ground_truth_loss(self, scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        scores, labels = _labelled(scores, labels)
        return multiple_choice_hinge_loss(scores, labels) if len(labels) else _no_loss(scores)

    def answer(self, scores, id2label, choices, top_k):
        probs = scores[: len(choices)].softmax(dim=-1)  # choices padded in by batching are dropped
        probs, indices = probs.topk(min(top_k or len(choices), len(choices)))
        return [{"choice": choices[i], "index": i, "score": p} for p, i in zip(probs.tolist(), indices.tolist())]


class Count(TaskType):
    """Repetition count (TGIF-QA Count): regression with MSE; P is the predicted count itself."""

    name = "count"
    metric = "count_mse"
    metric_for_best_model = "mse"
    greater_is_better = False
    has_classes = False
    label_column = "count"
    label_dtype = "float32"
    unreadable_counted_wrong = False  # a count has no wrong class to count it as: left out of the MSE
    metric_answer_types = False

    def check_labels(self, labels: torch.Tensor, num_classes: int) -> None:
        return None

    def ground_truth_loss(self, scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return nn.functional.mse_loss(scores.squeeze(-1), labels.to(scores.dtype))

    def predictions(self, scores: torch.Tensor) -> torch.Tensor:
        return scores

    def soft_label_loss(self, scores: torch.Tensor, soft_labels: torch.Tensor) -> torch.Tensor:
        return nn.functional.mse_loss(scores, soft_labels.detach())

    def soft_label_target_loss(self, soft_labels: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return nn.functional.mse_loss(soft_labels.squeeze(-1), labels.to(soft_labels.dtype))

    def aggregate(self, clip_scores: torch.Tensor, aggregation: str = "mean") -> torch.Tensor:
        if aggregation == "lse":  # a log-sum-exp of counts is no count
            raise ValueError("the counts of several clips are combined with aggregation 'mean' or 'max', not 'lse'")
        return super().aggregate(clip_scores, aggregation)

    def label(self, example):
        return torch.tensor(float(example[self.label_column]), dtype=torch.float32)

    def unanswerable(self, label: torch.Tensor) -> torch.Tensor:
        return label  # left out of the MSE by the `unreadable` flag

    def metric_predictions(self, logits: np.ndarray) -> np.ndarray:
        return logits.reshape(len(logits), -1)[:, 0]  # the count; columns beyond it pad a joint model's wider tasks

    def answer(self, scores, id2label, choices, top_k):
        count = scores.reshape(-1)[0].item()
        return {"count": count, "rounded": max(0, round(count))}

    def record(self, scores, row, label, id2label, unreadable):
        value = float(scores.reshape(-1)[0])
        rounded = max(0, round(value))
        count = float(row[self.label_column])
        return {"prediction": rounded, "score": value, "label": count, "correct": rounded == count and not unreadable}


TASK_TYPES: dict[str, TaskType] = {}


def register_task_type(task_type: TaskType) -> TaskType:
    """Add `task_type` to the registry under its `name`, which must be new; returns it."""
    if not isinstance(task_type, TaskType):
        raise TypeError(f"a task type is an instance of a TaskType subclass, got {type(task_type).__name__}")
    if task_type.name in TASK_TYPES:
        raise ValueError(f"a task type named {task_type.name!r} is registered already "
                         f"({type(TASK_TYPES[task_type.name]).__name__})")
    TASK_TYPES[task_type.name] = task_type
    return task_type


for _task_type in (OpenEnded(), MultipleChoice(), Count()):
    register_task_type(_task_type)


def get_task_type(name: str) -> TaskType:
    """The task type registered under `name`."""
    if name not in TASK_TYPES:
        raise ValueError(f"task type must be one of {tuple(TASK_TYPES)}, got {name!r}")
    return TASK_TYPES[name]


__all__ = [
    "AGGREGATIONS",
    "IGNORE_INDEX",
    "TASK_TYPES",
    "Count",
    "MultipleChoice",
    "OpenEnded",
    "TaskType",
    "aggregate_clip_logits",
    "get_task_type",
    "multiple_choice_hinge_loss",
    "normalize_answer",
    "register_task_type",
]
