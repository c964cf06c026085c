"""The pre-registered regime study (benchmarks/siamese_regimes.py) and the switches it added: centring the features
over the clip set, the knows-nothing soft label, the true answer's probability in the predictions file."""

import json
import math

import numpy as np
import pytest
import torch
from conftest import tiny_config, tiny_inputs

from benchmarks import siamese_regimes
from modeling_siasamrea import SiaSamReaConfig, SiaSamReaForVideoQuestionAnswering
from modeling_siasamrea.siamese_reasoning import siamese_knowledge_generation, smoothed_label


def test_centring_ignores_what_every_clip_shares_and_sharpens_near_identical_clips():
    features = torch.randn(2, 5, 16)
    shared = 50 * torch.randn(2, 1, 16)  # nearby clips: one large common part, small differences
    plain = siamese_knowledge_generation(features + shared)
    centred = siamese_knowledge_generation(features + shared, center=True)
    torch.testing.assert_close(centred, siamese_knowledge_generation(features, center=True))
    entropy = lambda k: -(k * k.clamp_min(1e-12).log()).sum(-1).mean()  # noqa: E731
    assert entropy(plain) > 0.999 * math.log(4)  # the raw cosines all lie near 1: uniform rows
    assert entropy(centred) < entropy(plain)
    assert torch.all(centred.diagonal(dim1=-2, dim2=-1) == 0)
    torch.testing.assert_close(centred.sum(-1), torch.ones(2, 5))


def test_the_config_centres_the_features_of_the_knowledge():
    torch.manual_seed(0)
    model = SiaSamReaForVideoQuestionAnswering(tiny_config(siamese_feature_centering=True, siamese_temperature=0.3))
    features = torch.randn(2, 3, model.config.hidden_size)
    torch.testing.assert_close(model.siamese_head.knowledge(features),
                               siamese_knowledge_generation(features, 0.3, center=True))


def test_smoothed_label_knows_only_the_label():
    q = smoothed_label(torch.tensor([2, -100]), 4, 0.2)
    torch.testing.assert_close(q, torch.tensor([[0.05, 0.05, 0.85, 0.05], [0.25, 0.25, 0.25, 0.25]]))


def test_smoothed_label_row_distills_the_smoothed_label_without_clip_weights():
    torch.manual_seed(0)
    config = tiny_config(siamese_soft_label="smoothed_label", siamese_label_smoothing=0.3)
    model = SiaSamReaForVideoQuestionAnswering(config).train()
    inputs = tiny_inputs(config, clips=3)
    out = model(**inputs)
    torch.testing.assert_close(out.soft_labels, smoothed_label(inputs["labels"], out.logits.shape[-1], 0.3))
    assert out.loss_clip_weights is None and not any("clip_weight" in n for n, _ in model.named_parameters())
    with pytest.raises(ValueError, match="siamese_label_smoothing"):
        SiaSamReaConfig(siamese_label_smoothing=1.5)


@pytest.mark.parametrize("tasks", [None, {"answer": {"type": "open_ended", "answers": ["a", "b"]},
                                          "count": {"type": "count"}}])
def test_smoothed_label_of_a_count_task_is_rejected_by_the_config(tasks):
    message = r"siamese_soft_label='smoothed_label' needs the labels of tasks with classes .* count task \(task count\)"
    with pytest.raises(ValueError, match=message):
        SiaSamReaConfig(task="count", tasks=tasks, siamese_soft_label="smoothed_label")


def test_paired_bootstrap_resamples_seeds_and_questions():
    constant = np.full((4, 50), 0.02)
    assert siamese_regimes.paired_bootstrap(constant, 100) == pytest.approx((0.02, 0.02))
    rng = np.random.default_rng(0)
    noisy = rng.choice([-1.0, 0.0, 1.0], size=(6, 400), p=[0.1, 0.8, 0.1])
    low, high = siamese_regimes.paired_bootstrap(noisy, 500)
    assert low < noisy.mean() < high and high - low > 0.01  # the questions' sampling widens it


def test_quick_regime_study_reports_paired_intervals_entropies_and_predictions(tmp_path):
    args = ["--data-dir", str(tmp_path / "data"), "--work-dir", str(tmp_path / "work")]
    results = siamese_regimes.main(["--scale", "quick", "--workers", "1", *args, "--out-dir", str(tmp_path / "out")])
    rows = results["summary"]["evidence"]
    assert set(rows) == {"baseline", "structured", "smoothed"}
    structured = rows["structured"]
    d = structured["difference_accuracy"]
    assert d["n"] == 2 and d["ci_low"] <= d["mean"] <= d["ci_high"]
    assert structured["bootstrap_accuracy"]["ci_low"] <= structured["bootstrap_accuracy"]["ci_high"]
    assert structured["knowledge_entropy"] is not None and rows["baseline"]["knowledge_entropy"] is None
    run = next(r for r in results["runs"] if r["phase"] == "rows")
    assert len(run["predictions"]["correct"]) == 20 and all(0 < p <= 1 for p in run["predictions"]["label_score"])
    curves = [r for r in results["runs"] if r["phase"] == "curves"]
    assert curves and any("eval_accuracy" in entry for entry in curves[0]["history"])
    knowledge = results["knowledge"]["synthetic_checkpoint"]
    assert {(k["center"], k["temperature"]) for k in knowledge[:-1]} >= {(False, 1.0), (True, siamese_regimes.TAU)}
    out = tmp_path / "out"
    assert (out / "siamese_regimes_quick.png").is_file()
    assert (out / "siamese_regimes_quick_predictions.jsonl.gz").is_file()
    again = siamese_regimes.main(["--report", str(out / "siamese_regimes_quick.json"),
                                  "--out-dir", str(tmp_path / "b")])
    assert (tmp_path / "b" / "siamese_regimes_quick.md").read_text() == (out / "siamese_regimes_quick.md").read_text()
    assert again["summary"]["evidence"]["structured"]["difference_accuracy"] == d
    # a stopped study: --logged-only trains nothing and names the runs it lacks
    log = tmp_path / "work" / "runs.jsonl"
    lines = [line for line in log.read_text().splitlines() if '"smoothed", "seed": 1' not in line]
    log.write_text("\n".join(lines) + "\n")
    stopped = siamese_regimes.main(["--scale", "quick", "--workers", "1", "--resume", "--logged-only", *args,
                                    "--out-dir", str(tmp_path / "c")])
    assert stopped["not_run"] == [["rows", "evidence", "smoothed", 1]]
    assert stopped["summary"]["evidence"]["smoothed"]["seeds"] == [0]
    assert stopped["summary"]["evidence"]["structured"]["difference_accuracy"] == d
    assert "stopped before 1 of its planned runs" in (tmp_path / "c" / "siamese_regimes_quick.md").read_text()


def test_the_study_stops_before_any_row_when_its_checkpoint_does_not_see_the_flashes(tmp_path, monkeypatch):
    quick = siamese_regimes.settings
    monkeypatch.setattr(siamese_regimes, "settings", lambda scale: {
        **quick(scale), "pretrain": {**quick(scale)["pretrain"], "min_accuracy": 0.4}})
    weak = tmp_path / "weak"
    weak.mkdir()
    (weak / "config.json").write_text("{}")
    (weak / "eval_results.json").write_text(json.dumps({"eval_accuracy": 0.3}))
    args = ["--scale", "quick", "--workers", "1", "--data-dir", str(tmp_path / "data"), "--work-dir",
            str(tmp_path / "work"), "--out-dir", str(tmp_path / "out"), "--pretrained", str(weak)]
    with pytest.raises(SystemExit, match=r"answers 0\.300 of its test questions, under the 0\.4 the design needs"):
        siamese_regimes.main(args)
    assert not (tmp_path / "work" / "runs.jsonl").exists() and not (tmp_path / "out").exists()
