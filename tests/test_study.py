"""The paired study runner (benchmarks/siamese_study.py): its statistics, its rows and a smoke run."""

import json

import pytest

from benchmarks import siamese_study


@pytest.mark.parametrize("p, df, expected", [(0.975, 9, 2.2622), (0.8, 9, 0.8834), (0.975, 1, 12.7062),
                                             (0.975, 4, 2.7764), (0.5, 7, 0.0), (0.025, 9, -2.2622)])
def test_student_t_quantiles_match_the_tables(p, df, expected):
    assert siamese_study.student_t_quantile(p, df) == pytest.approx(expected, abs=2e-4)


def test_paired_summary_gives_the_t_interval_and_the_minimal_detectable_effect():
    summary = siamese_study.paired_summary([1.0, 2.0, 3.0, 4.0, 5.0])
    se = 1.5811388 / 5**0.5
    assert summary["mean"] == 3.0 and summary["sd"] == pytest.approx(1.5811388)
    assert summary["ci_low"] == pytest.approx(3.0 - 2.7764 * se, abs=1e-3)
    assert summary["ci_high"] == pytest.approx(3.0 + 2.7764 * se, abs=1e-3)
    assert summary["mde"] == pytest.approx((2.7764 + 0.9410) * se, abs=1e-3)


def test_each_single_switch_row_is_the_paper_row_plus_one_switch():
    paper = siamese_study.ROWS["paper"][1]
    for row in siamese_study.SINGLE_SWITCHES:
        switches = siamese_study.ROWS[row][1]
        assert paper.items() <= switches.items() and len(switches) == len(paper) + 1, row


def test_best_combination_joins_the_helpful_switches_and_keeps_one_soft_label_source():
    means = {"t4": 0.8, "anchor_row": 0.3, "anchor_init": 0.5, "closed_form": -0.2, "warmup": 0.1}
    summary = {"families": {row: {"difference": {"mean": mean}} for row, mean in means.items()}}
    best = siamese_study.best_combination(summary)
    assert best["rows"] == ["t4", "anchor_init", "warmup"]
    assert best["switches"] == {"num_siamese_clips": 8, "siamese_distillation_temperature": 4.0,
                                "siamese_soft_label": "eq5_anchor_init", "siamese_loss_weight_warmup": 0.5}
    summary = {"families": {row: {"difference": {"mean": -abs(mean)}} for row, mean in means.items()}}
    assert siamese_study.best_combination(summary)["rows"] == ["warmup"]  # none helped: the least harmful one


def test_quick_study_runs_through_run_videoqa_and_reports_paired_differences(tmp_path):
    results = siamese_study.main(["--quick", "--workers", "1", "--data-dir", str(tmp_path / "data"),
                                  "--work-dir", str(tmp_path / "work"), "--out-dir", str(tmp_path / "out")])
    assert {(r["variant"], r["row"]) for r in results["runs"]} == {
        (variant, row) for variant in siamese_study.VARIANTS for row in ("baseline", "paper")}
    for variant in siamese_study.VARIANTS:  # the Trainer wrote the pretrained checkpoint the rows started from
        assert (tmp_path / "work" / f"pretrained_{variant}" / "trainer_state.json").is_file()
        assert results["summary"][variant]["paper"]["difference"]["n"] == 1
    paper_run = next(r for r in results["runs"] if r["row"] == "paper")
    assert paper_run["train"]["loss_siamese"] is not None  # the Trainer logged the siamese terms
    assert (tmp_path / "out" / "siamese_study.png").is_file()
    saved = json.loads((tmp_path / "out" / "siamese_study.json").read_text())
    siamese_study.main(["--report", str(tmp_path / "out" / "siamese_study.json"), "--out-dir", str(tmp_path / "again")])
    assert (tmp_path / "again" / "siamese_study.md").read_text() == (tmp_path / "out" / "siamese_study.md").read_text()
    assert saved["settings"]["finetune"]["steps"] == 2
    resumed = siamese_study.main(["--quick", "--workers", "1", "--resume", "--data-dir", str(tmp_path / "data"),
                                  "--work-dir", str(tmp_path / "work"), "--out-dir", str(tmp_path / "resumed")])
    assert resumed["resumed_runs"] == len(results["runs"]) + len(results["pretrained"])  # nothing trained again
    assert json.dumps(resumed["summary"]) == json.dumps(results["summary"])  # (NaN != NaN: compare the text)


def test_from_scratch_study_trains_every_row_from_scratch_without_a_checkpoint(tmp_path):
    results = siamese_study.main(["--quick", "--from-scratch", "1", "--variants", "control", "--workers", "1",
                                  "--data-dir", str(tmp_path / "data"), "--work-dir", str(tmp_path / "work"),
                                  "--out-dir", str(tmp_path / "out")])
    assert {(r["phase"], r["variant"], r["row"]) for r in results["runs"]} == {
        ("scratch", "control", "baseline"), ("scratch", "control", "paper")}
    assert not results["pretrained"] and not list((tmp_path / "work").glob("pretrained_*"))
    assert list(results["summary"]) == ["control"] and results["summary"]["control"]["paper"]["difference"]["n"] == 1
    report = (tmp_path / "out" / "siamese_study_scratch.md").read_text()
    assert "--from-scratch 1" in report and "fine-tunes" not in report
    assert (tmp_path / "out" / "siamese_study_scratch.png").is_file()
    assert not (tmp_path / "out" / "siamese_study.json").exists()
