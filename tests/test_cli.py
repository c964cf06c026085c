"""The `siasamrea` command line and the offline demo (quick mode) end to end."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from training.cli import main
from training.demo import answer_confidence, demo_split, question_type_prior, run_demo

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    run_demo(out, quick=True, num_videos=40)
    return out


def test_demo_writes_data_model_metrics_and_figure(demo_dir, capsys):
    model = demo_dir / "model"
    for name in ("config.json", "model.safetensors", "pipeline_siasamrea.py", "processor_config.json",
                 "eval_results.json", "README.md"):
        assert (model / name).is_file(), name
    assert (demo_dir / "data" / "msrvtt_qa" / "train.jsonl").is_file()
    assert Image.open(demo_dir / "siamese_example.png").size == (1200, 800)


def test_demo_reports_the_final_models_test_answers_and_their_confidence(demo_dir):
    saved = json.loads((demo_dir / "model" / "eval_results.json").read_text())
    predictions = demo_dir / "model" / "predictions_test.jsonl"
    records = [json.loads(line) for line in predictions.read_text().splitlines()]
    test = demo_split(demo_dir / "data", "test")
    assert [r["question_id"] for r in records] == test["question_id"][:16]  # the quick demo's max_eval_samples
    assert sum(r["correct"] for r in records) / len(records) == pytest.approx(saved["eval_accuracy"])
    confidence = answer_confidence(predictions)
    assert confidence["questions"] == len(records)
    for kind in ("right", "wrong"):
        scores = [r["score"] for r in records if r["correct"] == (kind == "right")]
        assert confidence[kind] == pytest.approx(sum(scores) / len(scores) if scores else float("nan"), nan_ok=True)


def test_demo_second_run_reuses_what_exists(demo_dir, capsys):
    before = (demo_dir / "model" / "model.safetensors").stat().st_mtime_ns
    metrics = run_demo(demo_dir, quick=True, num_videos=40)
    out = capsys.readouterr().out
    assert "reusing the model trained before" in out and "accuracy" in out and "chance level" in out
    assert (demo_dir / "model" / "model.safetensors").stat().st_mtime_ns == before
    assert metrics == json.loads((demo_dir / "model" / "eval_results.json").read_text())


def test_predict_prints_ranked_answers(demo_dir, capsys):
    video = sorted((demo_dir / "data" / "videos").glob("*.mp4"))[0]
    main(["predict", str(video), "what color is the circle ?", "--model", str(demo_dir / "model"), "--top_k", "3"])
    answers = json.loads(capsys.readouterr().out)
    assert len(answers) == 3 and {"answer", "score"} <= answers[0].keys()
    assert answers[0]["score"] >= answers[1]["score"] >= answers[2]["score"]


def test_predict_with_a_missing_video_names_it(demo_dir, capsys):
    assert main(["predict", "nope.mp4", "what color is the circle ?", "--model", str(demo_dir / "model")]) == 2
    assert capsys.readouterr().err == "siasamrea: error: video nope.mp4 does not exist\n"


def test_eval_reports_the_saved_metrics(demo_dir, tmp_path, capsys):
    main(["eval", "--model", str(demo_dir / "model"), "--data_dir", str(demo_dir / "data"),
          "--dataset_config", "frameqa", "--answer_types", "color",  # the demo's questions (configs/synthetic.yaml)
          "--split", "test",  # the split the demo evaluates its final model on
          "--output_dir", str(tmp_path),  # frames per clip: the model's
          "--max_eval_samples", "16", "--use_cpu", "true", "--disable_tqdm", "true",
          "--predictions", str(tmp_path / "predictions.jsonl")])
    printed = capsys.readouterr().out
    metrics = json.loads(printed[printed.rindex("{\n"):])  # after the Trainer's own log lines
    saved = json.loads((demo_dir / "model" / "eval_results.json").read_text())
    assert metrics["eval_accuracy"] == saved["eval_accuracy"]
    lines = [json.loads(line) for line in (tmp_path / "predictions.jsonl").read_text().splitlines()]
    assert lines and len({line["question_id"] for line in lines}) == len(lines)
    assert sum(line["correct"] for line in lines) / len(lines) == pytest.approx(metrics["eval_accuracy"])


def test_visualize_writes_the_png(demo_dir, tmp_path):
    video = sorted((demo_dir / "data" / "videos").glob("*.mp4"))[0]
    out = tmp_path / "fig.png"
    main(["visualize", str(video), "what color is the circle ?", "--label", "red", "--model",
          str(demo_dir / "model"), "--output", str(out)])
    assert Image.open(out).size == (1200, 800)


def test_train_command_runs_the_training_entry_point(demo_dir, tmp_path):
    main(["train", str(REPO / "training" / "configs" / "synthetic.yaml"), "--data_dir", str(demo_dir / "data"),
          "--output_dir", str(tmp_path / "run"), "--max_steps", "2", "--max_train_samples", "8",
          "--max_eval_samples", "8", "--num_siamese_clips", "2", "--disable_tqdm", "true"])
    assert (tmp_path / "run" / "model.safetensors").is_file() and (tmp_path / "run" / "eval_results.json").is_file()


def test_accelerate_launch_with_two_cpu_processes_runs_the_training_script(demo_dir, tmp_path):
    """The README's `accelerate launch --config_file training/accelerate/cpu_2proc.yaml training/run_videoqa.py`."""
    result = subprocess.run(
        [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
         str(REPO / "training" / "accelerate" / "cpu_2proc.yaml"), "--main_process_port", "29537",
         str(REPO / "training" / "run_videoqa.py"), str(REPO / "training" / "configs" / "synthetic.yaml"),
         "--data_dir", str(demo_dir / "data"), "--output_dir", str(tmp_path / "ddp"), "--max_steps", "2",
         "--max_train_samples", "16", "--max_eval_samples", "8", "--num_siamese_clips", "2",
         "--disable_tqdm", "true"],
        capture_output=True, text=True, timeout=600, env=dict(os.environ, OMP_NUM_THREADS="1"),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "ddp" / "model.safetensors").is_file()
    assert json.loads((tmp_path / "ddp" / "trainer_state.json").read_text())["global_step"] == 2


def test_make_synthetic_passes_options_through(tmp_path):
    main(["make-synthetic", str(tmp_path / "syn"), "--num-videos", "4", "--min-frames", "48", "--max-frames", "60"])
    assert len(list((tmp_path / "syn" / "videos").glob("*.mp4"))) == 4


@pytest.mark.parametrize("command", [[], ["predict"], ["train"], ["eval"], ["make-synthetic"], ["visualize"],
                                     ["convert-clipbert"], ["demo"]])
def test_help_is_useful(command):
    result = subprocess.run([sys.executable, "-m", "training.cli", *command, "--help"], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
    assert "usage: siasamrea" in result.stdout
    if not command:
        for name in ("predict", "train", "eval", "make-synthetic", "visualize", "convert-clipbert", "demo"):
            assert name in result.stdout


RELEASE = REPO / "tests" / "fixtures" / "release"


def misuses(tmp: Path) -> list[tuple[list[str], str]]:
    """(command, the one line it must print) for mistakes users make."""
    config, msrvtt = (str(REPO / "training" / "configs" / f"{name}.yaml") for name in ("synthetic", "msrvtt_qa"))
    on_cpu = ["--bf16", "false", "--use_cpu", "true"]
    video = str(REPO / "README.md")  # any file: the model is checked first
    (tmp / "empty").mkdir(exist_ok=True)
    (tmp / "bad.yaml").write_text("dataset_name: synthetic\nlearning_rate: [1\n")
    broken = shutil.copytree(RELEASE / "msrvtt_qa", tmp / "msrvtt_qa", dirs_exist_ok=True)
    (broken / "train.jsonl").write_text('{"video_id": "video7010", "question": "q?"}\n')
    return [
        (["predict", video, "q?", "--model", "path/that/does/not/exist"],
         "model folder path/that/does/not/exist does not exist"),
        (["predict", video, "q?", "--model", str(tmp / "empty")], f"{tmp / 'empty'} is not a model folder: it has no "
                                                                  "config.json"),
        (["predict", video, "q?", "--model", "missing/folder"], "missing/folder: no local folder of that name, and "
                                                                "loading it from the Hub failed"),
        (["eval", "--model", str(tmp / "empty")], f"{tmp / 'empty'} is not a model folder"),
        (["visualize", str(tmp / "nope.mp4"), "q?"], f"video {tmp / 'nope.mp4'} does not exist"),
        (["train", str(tmp / "nope.yaml")], f"config file {tmp / 'nope.yaml'} does not exist"),
        (["train", str(tmp / "bad.yaml")], f"config file {tmp / 'bad.yaml'}: not valid YAML"),
        (["train", config, "--lerning_rate", "1"], "unknown arguments --lerning_rate 1; did you mean --learning_rate"),
        (["train", config, "--num_frames", "many"], "num_frames must be 'auto' or a positive integer, got 'many'"),
        (["train", config, "--per_device_train_batch_size", "two"], "argument --per_device_train_batch_size/"
                                                                    "--per-device-train-batch-size: invalid int value"),
        (["train", msrvtt, "--data_dir", str(tmp / "nowhere"), *on_cpu], f"data_dir {tmp / 'nowhere'} does not exist"),
        (["train", msrvtt, "--data_dir", str(broken), "--output_dir", str(tmp / "o"), *on_cpu],
         f"msrvtt_qa: {broken / 'train.jsonl'} line 1: answer: missing"),
        (["probe", str(tmp / "nowhere")], f"data_dir {tmp / 'nowhere'} does not exist"),
        (["make-synthetic", str(tmp / "s"), "--min-frames", "0"], "need 0 < min_frames <= max_frames"),
    ]


def test_every_misuse_is_one_line_and_exit_status_2(tmp_path, capsys):
    for argv, message in misuses(tmp_path):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith(f"siasamrea: error: {message}") and err.count("\n") == 1, (argv, err)


def test_the_traceback_comes_with_debug_only(tmp_path, monkeypatch, capsys):
    with pytest.raises(FileNotFoundError, match="data_dir .* does not exist"):
        main(["--debug", "probe", str(tmp_path / "nowhere")])
    with pytest.raises(FileNotFoundError):
        main(["probe", str(tmp_path / "nowhere"), "--debug"])
    monkeypatch.setenv("SIASAMREA_DEBUG", "1")
    with pytest.raises(FileNotFoundError):
        main(["probe", str(tmp_path / "nowhere")])


def test_the_installed_command_exits_2_without_a_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "training.cli", "probe", str(tmp_path / "nowhere")],
                            capture_output=True, text=True, cwd=REPO, env=dict(os.environ, SIASAMREA_DEBUG="0"))
    assert result.returncode == 2
    assert result.stderr == f"siasamrea: error: data_dir {tmp_path / 'nowhere'} does not exist\n"  # no traceback


def test_unknown_arguments_are_rejected(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--speed", "fast"])
    assert "unrecognized arguments: --speed fast" in capsys.readouterr().err


def test_question_type_prior_answers_the_most_frequent_training_answer_per_question_type():
    train = [{"question": "what color is the x ?", "answer": a} for a in ("red", "red", "blue")]
    train += [{"question": "what shape flashes in red ?", "answer": "circle"}]
    evaluation = [{"question": "what color is the y ?", "answer": "red"},
                  {"question": "what color is the z ?", "answer": "blue"},
                  {"question": "what shape flashes in blue ?", "answer": "cross"},
                  {"question": "how many times ?", "answer": "3"}]  # a type never seen in training: a miss
    assert question_type_prior(train, evaluation) == 0.25
