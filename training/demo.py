"""`make demo` / `siasamrea demo`: the main job on the embedded synthetic default, offline, on a few CPU cores.

make videos → train a small SiaSamRea model with siamese clips on the colour questions (`configs/synthetic.yaml`) →
evaluate the final model once on the held-out test split (anchor clip only; no epoch is picked on it) → answer three
test questions through `pipeline(...)` from the saved folder → draw the siamese knowledge of one training example.
A second run reuses the videos and the trained model it finds in `output_dir`.
"""

import json
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path

import datasets
import yaml
from transformers import pipeline

from datasets_scripts import load_videoqa, make_synthetic_videoqa, select_answer_types
from modeling_siasamrea import SiaSamReaForVideoQuestionAnswering, SiaSamReaProcessor
from training import run_videoqa
from training.visualize import visualize_siamese_example

CONFIG = Path(__file__).parent / "configs" / "synthetic.yaml"
# The demo's videos: made at the model's 32 px (no resizing), 40-56 frames (the training anchor sees a flash in ~89% of
# draws, the evaluation clip in ~69% of test videos), 960 training videos: enough colour questions for the tiny model
# to learn the flashes in ~2 minutes.
DATA = {"num_videos": 1200, "image_size": 32, "min_frames": 40, "max_frames": 56,
        "splits": {"train": 0.8, "val": 0.05, "test": 0.15}}
# The final model is what the demo reports: one evaluation at the end, on the test split, with one line per question.
FINAL_MODEL = ["--eval_strategy", "no", "--save_strategy", "no", "--load_best_model_at_end", "false",
               "--eval_split", "test"]
QUICK = ["--num_train_epochs", "1", "--max_train_samples", "32", "--max_eval_samples", "16", "--num_siamese_clips", "2"]


def run_demo(output_dir: str | Path = "demo_output", quick: bool = False, num_videos: int = DATA["num_videos"]) -> dict:
    """Run the whole demo; returns the evaluation metrics. `quick` trains a few steps (for tests)."""
    output_dir = Path(output_dir)
    data_dir, model_dir = output_dir / "data", output_dir / "model"
    predictions = model_dir / "predictions_test.jsonl"
    print(f"[1/5] synthetic VideoQA videos in {data_dir}")
    make_synthetic_videoqa(data_dir, **{**DATA, "num_videos": num_videos})

    results = model_dir / "eval_results.json"
    if results.is_file() and (model_dir / "model.safetensors").is_file() and predictions.is_file():
        print(f"[2/5] reusing the model trained before in {model_dir}")
        metrics = json.loads(results.read_text())
    else:
        print(f"[2/5] training SiaSamRea ({CONFIG.name}) into {model_dir}")
        argv = [str(CONFIG), "--data_dir", str(data_dir), "--output_dir", str(model_dir), *FINAL_MODEL,
                "--overwrite_output_dir", "true",  # whatever an unfinished demo left there
                "--predictions_file", str(predictions), *(QUICK if quick else [])]
        metrics = run_videoqa.main(argv)
    print("[3/5] the final model on the held-out test split, anchor clip only")
    print_metrics(metrics)
    prior = question_type_prior(demo_split(data_dir, "train"), demo_split(data_dir, "test"))
    print(f"  (chance level: answering the most frequent training answer of each question type scores {prior:.4f})")
    confidence = answer_confidence(predictions)
    print(f"  top-1 probability: {confidence['right']:.2f} on average when the answer is right, "
          f"{confidence['wrong']:.2f} when it is wrong ({confidence['questions']} questions)")

    print("[4/5] answering test questions through pipeline('video-question-answering') from the saved folder")
    vqa = pipeline("video-question-answering", model=str(model_dir), trust_remote_code=True)
    for example in demo_split(data_dir, "test").select(range(3)):
        top = vqa(video=example["video_path"], question=example["question"], top_k=1)[0]
        print(f"  {Path(example['video_path']).name}: {example['question']}  ->  {top['answer']} "
              f"({top['score']:.2f}; truth: {example['answer']})")

    print("[5/5] siamese clips, knowledge Â and soft label Q of one training example")
    train_example = demo_split(data_dir, "train")[0]
    picture = visualize_siamese_example(
        SiaSamReaForVideoQuestionAnswering.from_pretrained(model_dir), SiaSamReaProcessor.from_pretrained(model_dir),
        train_example["video_path"], train_example["question"], label=train_example["answer"],
        output_path=output_dir / "siamese_example.png",
    )
    print(f"\nwritten:\n  videos + annotations  {data_dir}\n  model folder          {model_dir}"
          f"  (pipeline-ready, trust_remote_code=True)\n  metrics               {results}\n"
          f"  answers               {predictions}\n  figure                {picture}")
    return metrics


def answer_confidence(predictions: Path) -> dict[str, float]:
    """Mean top-1 probability of the right and of the wrong answers in a predictions file (`run_videoqa`'s)."""
    records = [json.loads(line) for line in predictions.read_text().splitlines()]
    scores = {kind: [r["score"] for r in records if r["correct"] == (kind == "right")] for kind in ("right", "wrong")}
    return {kind: statistics.fmean(values) if values else float("nan") for kind, values in scores.items()} | {
        "questions": len(records)}


def demo_split(data_dir: Path, split: str) -> datasets.Dataset:
    """A split of the synthetic set as the demo's config trains on it (its `dataset_config` and `answer_types`)."""
    settings = yaml.safe_load(CONFIG.read_text())
    dataset = load_videoqa("synthetic", data_dir, split, config=settings["dataset_config"])
    return select_answer_types(dataset, settings["answer_types"]) if settings.get("answer_types") else dataset


def question_type_prior(train: Iterable[dict], evaluation: Iterable[dict]) -> float:
    """Accuracy on `evaluation` of always giving the most frequent `train` answer of the question's type (its first
    two words: "what color", "what shape"): what a model that ignores the video can reach."""
    counts: dict[str, Counter] = defaultdict(Counter)
    for example in train:
        counts[_question_type(example["question"])][example["answer"]] += 1
    majority = {kind: answers.most_common(1)[0][0] for kind, answers in counts.items()}
    hits = [majority.get(_question_type(example["question"])) == example["answer"] for example in evaluation]
    return sum(hits) / len(hits)


def _question_type(question: str) -> str:
    return " ".join(question.split()[:2])


def print_metrics(metrics: dict) -> None:
    rows = [(name.removeprefix("eval_"), value) for name, value in sorted(metrics.items())
            if name.startswith("eval_") and "runtime" not in name and "per_second" not in name]
    width = max(len(name) for name, _ in rows)
    print(f"  {'metric':<{width}}  value\n  {'-' * width}  ------")
    for name, value in rows:
        print(f"  {name:<{width}}  {value:.4f}")
