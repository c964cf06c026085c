"""Top-1 VideoQA accuracy, overall and per answer type (MSRVTT-QA / MSVD-QA report what/who/how/when/where)."""

import datasets
import evaluate

_DESCRIPTION = """
Top-1 accuracy of predicted answer (or choice) ids. References of -100 (answers outside the training vocabulary)
count as wrong, as in the open-ended evaluation protocol. With `answer_types`, also `accuracy_<type>` per type.
"""

_KWARGS = """
Args:
    predictions (`list[int]`): predicted answer / choice ids.
    references (`list[int]`): correct ids, -100 for an answer outside the vocabulary.
    answer_types (`list[str]`, *optional*): the question type of each example.
Returns:
    `accuracy` and, with answer types, `accuracy_<type>` for each type.
"""


class VideoqaAccuracy(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS,
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
            ),
        )

    def _compute(self, predictions, references, answer_types=None):
        correct = [int(p == r) for p, r in zip(predictions, references)]
        results = {"accuracy": sum(correct) / max(len(correct), 1)}
        if answer_types is not None:
            if len(answer_types) != len(correct):
                raise ValueError(f"got {len(answer_types)} answer_types for {len(correct)} predictions")
            for answer_type in sorted(set(answer_types)):
                hits = [c for c, t in zip(correct, answer_types) if t == answer_type]
                results[f"accuracy_{answer_type}"] = sum(hits) / len(hits)
        return results
