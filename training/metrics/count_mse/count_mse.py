"""TGIF-QA repetition count: mean squared error of the rounded predicted count (and of the raw prediction)."""

import datasets
import evaluate

_DESCRIPTION = """
Mean squared error between the predicted count, rounded to the nearest non-negative integer, and the true count
(`mse`, the TGIF-QA protocol), plus the MSE of the raw regression output (`mse_raw`).
"""

_KWARGS = """
Args:
    predictions (`list[float]`): predicted counts.
    references (`list[float]`): true counts.
Returns:
    `mse` (rounded predictions) and `mse_raw`.
"""


class CountMse(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS,
            features=datasets.Features(
                {"predictions": datasets.Value("float64"), "references": datasets.Value("float64")}
            ),
        )

    def _compute(self, predictions, references):
        n = max(len(references), 1)
        rounded = [max(0.0, float(round(p))) for p in predictions]
        return {
            "mse": sum((p - r) ** 2 for p, r in zip(rounded, references)) / n,
            "mse_raw": sum((p - r) ** 2 for p, r in zip(predictions, references)) / n,
        }
