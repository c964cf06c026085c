r"""The paired study of the siamese objective, through the shipped training path.

    python -m benchmarks.siamese_study                 # the full study (~75 min on 2 CPU cores)
    python -m benchmarks.siamese_study --from-scratch 10 --variants control --rows baseline paper \
        --seeds 0 1 2 3 4 5 6 7                        # rows trained from scratch instead (~40 min)
    python -m benchmarks.siamese_study --quick         # smoke test (tiny data, 2 rows, 1 seed, ~2 min)
    python -m benchmarks.siamese_study --report benchmarks/results/siamese_study.json   # tables from the json only

Design (benchmarks/README.md): every run is ``training.run_videoqa.main`` with ``training/configs/synthetic.yaml``
and the row's config switches -- the Trainer, its clipping, schedule, collator and data path, nothing private.
Per variant of the synthetic set (the default "flash" variant as the control; the "families" variant with
within-family label noise, whose docstring in datasets_scripts/synthetic.py says what would show the mechanism):

1. one baseline checkpoint (no siamese clips) is trained from scratch, seed 0 (the paper fine-tunes a pretrained
   model, so the teacher knows the task from the first step);
2. every row x seed fine-tunes that checkpoint for the same few steps. Rows are paired by seed: the same initial
   weights, data order and anchor clips (the transform draws clips from (seed, epoch, question_id); the anchor does
   not depend on the number of siamese clips), and the teacher forward neither consumes the random state nor moves
   BatchNorm statistics, so a row differs from the baseline of its seed only by its objective;
3. each run is evaluated once, at the end, on the whole test split (>= 3,000 colour questions, anchor clip only);
   no epoch is selected on it.

For every row: the mean paired difference to the baseline (row - baseline, same seed) with a t-based 95% confidence
interval, and the smallest difference the design detects with 80% power (two-sided 5%). The "best combination" row
combines the single switches whose paired difference was positive on the families variant and is then run on fresh
seeds with its own paired baselines, so its estimate is not selected on its own data.
Results: benchmarks/results/siamese_study.{json,md,png}.

``--from-scratch EPOCHS`` tests what the fine-tuning design cannot, the objective acting over a whole training run:
no checkpoint; every row x seed trains from scratch for EPOCHS with the pretraining schedule, paired by seed as
above (same initial weights, data order and anchor clips), and is evaluated once at the end on the same test split.
Results: benchmarks/results/siamese_study_scratch.{json,md,png}.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import RESULTS_DIR, machine, markdown_table

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "training" / "configs" / "synthetic.yaml"

PAPER = {"num_siamese_clips": 8}  # every other switch at the paper's value (train_run gives the "paper" preset)
# name -> (label, switches as run_videoqa arguments)
ROWS: dict[str, tuple[str, dict[str, Any]]] = {
    "baseline": ("baseline (no siamese clips)", {"num_siamese_clips": 0}),
    "paper": ("paper-literal: Eq. 5 with W1/W2, T = 1, one step, N = 8", PAPER),
    "t4": ("T = 4 (teacher and student softened, x T²)", {**PAPER, "siamese_distillation_temperature": 4.0}),
    "anchor_row": ("Q from the anchor's row of Â (BAKE)", {**PAPER, "siamese_soft_label": "anchor_row"}),
    "anchor_init": ("Eq. 5, W1/W2 start on the anchor", {**PAPER, "siamese_soft_label": "eq5_anchor_init"}),
    "closed_form": ("closed-form propagation (I - ωÂ)⁻¹", {**PAPER, "siamese_propagation": "closed_form"}),
    "warmup": ("α warm-up over the first half", {**PAPER, "siamese_loss_weight_warmup": 0.5}),
    "augment_only": ("siamese clips supervised, α = 0 (augmentation only)",
                     {**PAPER, "siamese_clips_supervised": True, "siamese_loss_weight": 0.0}),
    "supervised": ("siamese_clips_supervised (α = 1)", {**PAPER, "siamese_clips_supervised": True}),
    "n1": ("N = 1 siamese clip", {"num_siamese_clips": 1}),
    "n4": ("N = 4 siamese clips", {"num_siamese_clips": 4}),
}
SINGLE_SWITCHES = ("t4", "anchor_row", "anchor_init", "closed_form", "warmup")
BEST = "best"
VARIANTS = {"control": {"variant": "flash", "label_noise": 0.0},
            "families": {"variant": "families", "label_noise": 0.3}}
COLOR_PRIOR = {"control": 1 / 6, "families": 1 / 3}  # chance without a flash (families: the marker leaves 3)


def settings(quick: bool) -> dict[str, Any]:
    """Data sizes, schedule and seeds of the study (``quick``: a smoke test)."""
    s = {
        "data": {"num_videos": 4100, "seed": 0, "image_size": 32, "min_frames": 48, "max_frames": 96,
                 "splits": {"train": 1000, "val": 20, "test": 3080}},
        "num_frames": 8,
        # the baseline checkpoint: the demo config's schedule, 24 epochs (with 12 the families variant's teacher read
        # the member colour less often than the noisy labels gave it, the mechanism's condition; pilot in the README)
        "pretrain": {"epochs": {"control": 24, "families": 24}, "batch_size": 8, "learning_rate": 3e-4,
                     "logging_steps": 50},
        # fine-tuning: a low learning rate and large batches keep the runs of one checkpoint close together
        "finetune": {"steps": 20, "batch_size": 32, "learning_rate": 1e-4, "logging_steps": 5},
        # 6 seeds: what 90 minutes of 2 cores allow with 11 rows x 2 variants (+ the best combination's runs)
        "seeds": list(range(6)),
        "rows": list(ROWS),
    }
    if quick:
        s.update(pretrain={"epochs": {"control": 1, "families": 1}, "batch_size": 4, "learning_rate": 3e-4,
                           "logging_steps": 1},
                 finetune={"steps": 2, "batch_size": 4, "learning_rate": 1e-4, "logging_steps": 1},
                 seeds=[0], rows=["baseline", "paper"])
        s["data"].update(num_videos=24, max_frames=64, splits={"train": 10, "val": 2, "test": 12})
    return s


# ----------------------------------------------------------------------------------------------------- statistics
def student_t_cdf(x: float, df: int) -> float:
    """P(T <= x) for Student's t with ``df`` degrees of freedom (Simpson's rule on the density)."""
    if x < 0:
        return 1.0 - student_t_cdf(-x, df)
    log_norm = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    steps = 2000
    h = x / steps
    density = [math.exp(log_norm - (df + 1) / 2 * math.log1p((i * h) ** 2 / df)) for i in range(steps + 1)]
    simpson = density[0] + density[-1] + 4 * sum(density[1:-1:2]) + 2 * sum(density[2:-1:2])
    return 0.5 + simpson * h / 3


def student_t_quantile(p: float, df: int) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom (bisection on the CDF)."""
    low, high = -100.0, 100.0
    for _ in range(80):
        middle = (low + high) / 2
        low, high = (middle, high) if student_t_cdf(middle, df) < p else (low, middle)
    return (low + high) / 2


def paired_summary(differences: list[float], power: float = 0.8, level: float = 0.95) -> dict[str, float]:
    """Mean paired difference, its t-based confidence interval and the minimal detectable effect (two-sided, at
    ``power``) of a design with this many pairs and this spread."""
    n = len(differences)
    mean = float(np.mean(differences))
    if n < 2:
        return {"n": n, "mean": mean, "sd": float("nan"), "ci_low": float("nan"), "ci_high": float("nan"),
                "mde": float("nan")}
    sd = float(np.std(differences, ddof=1))
    se = sd / math.sqrt(n)
    t_level = student_t_quantile(1 - (1 - level) / 2, n - 1)
    return {"n": n, "mean": mean, "sd": sd, "ci_low": mean - t_level * se, "ci_high": mean + t_level * se,
            "mde": (t_level + student_t_quantile(power, n - 1)) * se}


# ------------------------------------------------------------------------------------------------------------ runs
def _worker_init(core: Any) -> None:
    """One core and one torch thread per worker process (decoders then use one thread too)."""
    import torch

    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cores) > 1:
        with core.get_lock():
            mine = cores[core.value % len(cores)]
            core.value += 1
        os.sched_setaffinity(0, {mine})
    torch.set_num_threads(1)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def _argv(switches: dict[str, Any]) -> list[str]:
    argv = []
    for key, value in switches.items():
        argv += [f"--{key}", str(value).lower() if isinstance(value, bool) else str(value)]
    return argv


def train_run(task: dict[str, Any]) -> dict[str, Any]:
    """One run of ``run_videoqa.main``: fine-tune (or pretrain) with the row's switches, evaluate once on test.

    With ``task["predictions"]`` the result keeps every test question's ``video_id``, ``correct`` and ``label_score``
    (the probability of the true answer); with ``task["history"]`` the Trainer's logs (training terms, evaluations)."""
    from training import run_videoqa

    s, out = task["settings"], Path(task["output_dir"])
    start = time.perf_counter()
    if task.get("predictions"):
        task = {**task, "extra": [*task["extra"], "--predictions_file", str(out / "predictions.jsonl")]}
    argv = [str(CONFIG), "--data_dir", task["data_dir"], "--output_dir", str(out), "--seed", str(task["seed"]),
            "--num_frames", str(s["num_frames"]), "--max_image_size", str(s["data"]["image_size"]),
            "--per_device_train_batch_size", str(task["schedule"]["batch_size"]),
            "--learning_rate", str(task["schedule"]["learning_rate"]),
            "--logging_steps", str(task["schedule"]["logging_steps"]), "--eval_split", "test",
            "--eval_strategy", "no", "--save_strategy", "no",
            "--load_best_model_at_end", "false", "--do_eval", "true", "--disable_tqdm", "true", "--report_to", "none",
            "--log_level", "error", "--per_device_eval_batch_size", "32", *task["extra"],
            "--siamese_preset", "paper", *_argv(task["switches"])]  # every row: the paper's settings and its switches
    metrics = run_videoqa.main(argv)
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    logged = [entry for entry in history if "loss" in entry and "eval_accuracy" not in entry]
    last = logged[-1] if logged else {}
    result = {
        "variant": task["variant"], "row": task["row"], "seed": task["seed"], "phase": task["phase"],
        "accuracy": metrics["eval_accuracy"],
        "train": {name: last.get(name) for name in ("loss", "loss_gt", "loss_siamese", "loss_clip_weights",
                                                      "knowledge_entropy")},
        "seconds": time.perf_counter() - start,
    }
    if task.get("history"):
        result["history"] = [{k: v for k, v in entry.items() if not k.startswith(("eval_runtime", "eval_samples",
                                                                                  "eval_steps", "train_"))}
                             for entry in history]
    if task.get("predictions"):
        lines = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
        result["predictions"] = {"video_id": [line["video_id"] for line in lines],
                                 "correct": [int(line["correct"]) for line in lines],
                                 "label_score": [line["label_score"] for line in lines]}
    if task.get("keep"):
        return result
    shutil.rmtree(out, ignore_errors=True)
    return result


def _key(run: dict[str, Any]) -> tuple:
    return run["phase"], run["variant"], run["row"], run["seed"]


def _parallel(tasks: list[dict[str, Any]], workers: int, log: Path | None,
              done: dict[tuple, dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Run the tasks on ``workers`` single-core processes, seed by seed; print and log each result as it comes.
    Tasks with a result in ``done`` (a resumed study's log) are not run again."""
    import multiprocessing

    results = [done[_key(task)] for task in tasks if done and _key(task) in done]
    tasks = sorted((task for task in tasks if not done or _key(task) not in done),
                   key=lambda t: (t["seed"], -_cost(t["switches"])))  # stopped early: whole seeds done
    if workers > 1:
        context = multiprocessing.get_context("spawn")
        # (no max_tasks_per_child: with it Python 3.11's pool hangs once every worker has been replaced)
        pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_worker_init,
                                   initargs=(context.Value("i", 0),))
        outcomes = pool.map(train_run, tasks)
    else:  # in this process (tests)
        pool, outcomes = None, map(train_run, tasks)
    try:
        for result in outcomes:
            line = (f"{result['variant']:9s} {result['row']:13s} seed {result['seed']:3d}: test accuracy "
                    f"{result['accuracy']:.4f} ({result['seconds']:.0f} s)")
            print(line, flush=True)
            if log is not None:
                with log.open("a") as f:
                    f.write(json.dumps(result) + "\n")
            results.append(result)
    finally:
        if pool is not None:
            pool.shutdown()
    return results


def _cost(switches: dict[str, Any]) -> float:
    """Relative cost of a training step: the anchor's forward + backward, the teacher's forwards."""
    clips = switches.get("num_siamese_clips", 0)
    return 3 + clips * (3 if switches.get("siamese_clips_supervised") else 1)


# ----------------------------------------------------------------------------------------------------- evidence
def evidence_statistics(data_dir: Path, num_frames: int, draws: int = 10) -> dict[str, float]:
    """How often the training anchor, the anchor + 8 siamese clips and the evaluation clip see a target flash."""
    from datasets_scripts.synthetic import META_FILE
    from modeling_siasamrea.sampling import SiameseSampler

    meta = [json.loads(line) for line in (data_dir / META_FILE).read_text().splitlines()]
    sampler, rng = SiameseSampler(num_frames=num_frames, num_siamese_clips=8), np.random.default_rng(0)
    anchor, union, evaluation = [], [], []
    for m in meta:
        flashes = {t for start in m["flash_starts"] for t in range(start, start + m["flash_length"])}
        for _ in range(draws if m["split"] == "train" else 0):
            indices = sampler.sample(m["num_frames"], rng)
            anchor.append(bool(flashes & set(indices[0].tolist())))
            union.append(bool(flashes & set(indices.ravel().tolist())))
        if m["split"] == "test":
            evaluation.append(bool(flashes & set(sampler.sample_eval(m["num_frames"])[0].tolist())))
    train = [m for m in meta if m["split"] == "train"]
    return {"train_anchor_sees_a_flash": float(np.mean(anchor)),
            "train_union_of_9_clips_sees_a_flash": float(np.mean(union)),
            "test_eval_clip_sees_a_flash": float(np.mean(evaluation)),
            "train_labels_right": float(np.mean([m.get("annotated_color") is None for m in train]))}


def teacher_diagnostic(checkpoint: Path, data_dir: Path, s: dict[str, Any], limit: int = 400) -> dict[str, float]:
    """On training questions: how often the true colour is the argmax of the paper's teacher Q (the checkpoint with
    8 siamese clips), of the anchor's prediction, and the training label itself. Q knows what the labels do not
    when it is right more often than they are."""
    import torch

    from datasets_scripts import VideoQATransform, load_videoqa, select_answer_types
    from datasets_scripts.synthetic import META_FILE
    from modeling_siasamrea import SiaSamReaForVideoQuestionAnswering, SiaSamReaProcessor
    from modeling_siasamrea.sampling import SiameseSampler
    from training.collator import SiaSamReaCollator

    truth = {json.loads(line)["video_id"]: json.loads(line)["target_color"]
             for line in (data_dir / META_FILE).read_text().splitlines()}
    model = SiaSamReaForVideoQuestionAnswering.from_pretrained(checkpoint, num_siamese_clips=8).eval()
    processor = SiaSamReaProcessor.from_pretrained(checkpoint)
    rows = select_answer_types(load_videoqa("synthetic", data_dir, "train", config="frameqa"), ["color"])
    rows = rows.select(range(min(limit, len(rows))))
    transform = VideoQATransform(processor, SiameseSampler(num_frames=s["num_frames"], num_siamese_clips=8),
                                 train=True, task="open_ended", max_length=24, seed=0)
    transform.set_epoch(0)
    collate = SiaSamReaCollator(pad_token_id=processor.tokenizer.pad_token_id or 0)
    ids = {label: int(i) for i, label in model.config.id2label.items()}
    right = {"teacher": [], "anchor": [], "label": []}
    for first in range(0, len(rows), 32):
        batch = rows[first:first + 32]
        examples = transform(batch)
        inputs = collate([{k: v[i] for k, v in examples.items()} for i in range(len(examples["labels"]))])
        inputs["pixel_values"] = processor.image_processor.pixel_values_from_frames(inputs["pixel_values"])
        true = torch.tensor([ids.get(truth[Path(path).stem], -1) for path in batch["video_path"]])
        labels = torch.tensor([ids[answer] for answer in batch["answer"]])  # by name: the model's own vocabulary
        with torch.no_grad():
            out = model(**{k: v for k, v in inputs.items() if k in ("pixel_values", "input_ids", "attention_mask",
                                                                   "token_type_ids")}, labels=labels)
        right["teacher"] += (out.soft_labels.argmax(-1) == true).tolist()
        right["anchor"] += (out.logits.argmax(-1) == true).tolist()
        right["label"] += (labels == true).tolist()
    return {f"{name}_right": float(np.mean(values)) for name, values in right.items()} | {"questions": len(rows)}


# -------------------------------------------------------------------------------------------------------- study
def make_data(root: Path, s: dict[str, Any], variant: str, quick: bool) -> Path:
    from datasets_scripts import make_synthetic_videoqa

    data = s["data"]
    path = root / (f"study_{variant}_v{data['num_videos']}_s{data['image_size']}" + ("_quick" if quick else ""))
    return make_synthetic_videoqa(path, num_videos=data["num_videos"], seed=data["seed"], image_size=data["image_size"],
                                  min_frames=data["min_frames"], max_frames=data["max_frames"], splits=data["splits"],
                                  **VARIANTS[variant])


def best_combination(summary: dict[str, Any]) -> dict[str, Any]:
    """The switches of the single-switch rows with a positive mean paired difference on the families variant (of
    "anchor_row" and "anchor_init", which exclude each other, the better one); if none is positive, the best one."""
    singles = {row: summary["families"][row]["difference"]["mean"] for row in SINGLE_SWITCHES
               if row in summary["families"]}
    chosen = [row for row, mean in singles.items() if mean > 0] or [max(singles, key=singles.get)]
    if "anchor_row" in chosen and "anchor_init" in chosen:
        chosen.remove(min(("anchor_row", "anchor_init"), key=singles.get))
    switches = dict(PAPER)
    for row in chosen:
        switches.update(ROWS[row][1])
    return {"rows": chosen, "switches": switches}


def summarize(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per variant and row: mean accuracy and the paired difference to the baseline of the same seeds."""
    summary: dict[str, dict[str, Any]] = {}
    for variant in [v for v in VARIANTS if any(r["variant"] == v for r in runs)]:
        mine = [r for r in runs if r["variant"] == variant]
        baseline = {(r["phase"], r["seed"]): r["accuracy"] for r in mine if r["row"] == "baseline"}
        summary[variant] = {}
        for row in dict.fromkeys(r["row"] for r in mine):
            if row == "baseline":
                continue
            pairs = [(r["accuracy"], baseline[(r["phase"], r["seed"])]) for r in mine
                     if r["row"] == row and (r["phase"], r["seed"]) in baseline]
            if not pairs:
                continue
            summary[variant][row] = {
                "accuracy": float(np.mean([a for a, _ in pairs])),
                "baseline_accuracy": float(np.mean([b for _, b in pairs])),
                "difference": paired_summary([100 * (a - b) for a, b in pairs]),
                "seeds": sorted(r["seed"] for r in mine if r["row"] == row),
            }
    return summary


def run_study(args: argparse.Namespace) -> dict[str, Any]:
    s = settings(args.quick)
    if args.seeds:
        s["seeds"] = args.seeds
    s["best_seeds"] = [100 + seed for seed in s["seeds"]]  # fresh seeds, as many
    if args.rows:
        s["rows"] = args.rows
    s["from_scratch_epochs"] = args.from_scratch
    variants = {v: VARIANTS[v] for v in (args.variants or VARIANTS)}
    root = Path(args.data_dir or os.environ.get("SIASAMREA_BENCH_DATA", ROOT / "outputs" / "bench_data"))
    work = Path(args.work_dir or ROOT / "outputs" / "siamese_study")
    work.mkdir(parents=True, exist_ok=True)
    log = work / "runs.jsonl"
    done = {}
    if args.resume and log.is_file():  # the runs a stopped study finished (same settings: the caller's promise)
        done = {_key(run): run for run in map(json.loads, log.read_text().splitlines())}
        print(f"resuming: {len(done)} runs done before", flush=True)
    start = time.perf_counter()
    data_dirs = {variant: make_data(root, s, variant, args.quick) for variant in variants}
    print(f"data ready in {time.perf_counter() - start:.0f} s: {data_dirs}", flush=True)
    evidence = {variant: evidence_statistics(path, s["num_frames"]) for variant, path in data_dirs.items()}
    if args.from_scratch:  # every row x seed from scratch, with the pretraining schedule (no checkpoint, no best row)
        extra = ["--num_train_epochs", str(args.from_scratch)]
        runs = _parallel([{"variant": v, "row": row, "seed": seed, "phase": "scratch", "settings": s,
                           "data_dir": str(data_dirs[v]), "output_dir": str(work / f"scratch_{v}_{row}_{seed}"),
                           "switches": ROWS[row][1], "schedule": s["pretrain"], "extra": extra}
                          for v in variants for row in s["rows"] for seed in s["seeds"]], args.workers, log, done)
        return {"machine": machine(), "settings": s, "evidence": evidence, "pretrained": [], "teacher": {},
                "best": None, "runs": runs, "summary": summarize(runs), "wall_seconds": time.perf_counter() - start,
                "core_seconds": sum(r["seconds"] for r in runs), "resumed_runs": len(done)}

    # 1. one pretrained baseline per variant (kept in the work folder; reused by a later run with the same settings)
    checkpoints = {v: work / f"pretrained_{v}" for v in variants}
    def key(variant: str) -> dict[str, Any]:
        return json.loads(json.dumps({"data": s["data"], "num_frames": s["num_frames"], "variant": VARIANTS[variant],
                                      **s["pretrain"], "epochs": s["pretrain"]["epochs"][variant]}))

    pretrained = []
    for v in variants:
        record = checkpoints[v] / "study_pretraining.json"
        if record.is_file() and json.loads(record.read_text())["settings"] == key(v):
            pretrained.append(json.loads(record.read_text())["result"])
            print(f"reusing the pretrained {v} checkpoint in {checkpoints[v]}", flush=True)
    missing = [v for v in variants if v not in {r["variant"] for r in pretrained}]
    pretrain_tasks = [{"variant": v, "row": "baseline", "seed": 0, "phase": "pretrain", "settings": s,
                       "data_dir": str(data_dirs[v]), "output_dir": str(checkpoints[v]), "keep": True,
                       "schedule": s["pretrain"], "switches": {"num_siamese_clips": 0},
                       "extra": ["--num_train_epochs", str(s["pretrain"]["epochs"][v])]}
                      for v in missing]
    for v in missing:
        shutil.rmtree(checkpoints[v], ignore_errors=True)  # another checkpoint's trainer state must not resume
    for result in _parallel(pretrain_tasks, args.workers, log):
        (checkpoints[result["variant"]] / "study_pretraining.json").write_text(
            json.dumps({"settings": key(result["variant"]), "result": result}) + "\n")
        pretrained.append(result)
    teacher = {v: teacher_diagnostic(checkpoints[v], data_dirs[v], s, limit=64 if args.quick else 400)
               for v in variants}
    print(f"pretrained: {[(r['variant'], r['accuracy']) for r in pretrained]}; teacher {teacher}", flush=True)

    def tasks(rows: dict[str, dict[str, Any]], seeds: list[int], phase: str) -> list[dict[str, Any]]:
        return [{"variant": v, "row": row, "seed": seed, "phase": phase, "settings": s, "data_dir": str(data_dirs[v]),
                 "output_dir": str(work / f"{phase}_{v}_{row}_{seed}"), "switches": switches,
                 "schedule": s["finetune"],
                 "extra": ["--model_name_or_path", str(checkpoints[v]), "--max_steps", str(s["finetune"]["steps"])]}
                for v in variants for row, switches in rows.items() for seed in seeds]

    # 2. every row x seed fine-tunes the checkpoint, paired by seed
    runs = _parallel(tasks({row: ROWS[row][1] for row in s["rows"]}, s["seeds"], "rows"), args.workers, log, done)
    summary = summarize(runs)
    # 3. the best combination of single switches, on fresh seeds with their own baselines
    best = None
    if not args.quick and "families" in variants and all(row in s["rows"] for row in SINGLE_SWITCHES):
        best = best_combination(summary)
        print(f"best combination: {best}", flush=True)
        runs += _parallel(tasks({"baseline": ROWS["baseline"][1], BEST: best["switches"]}, s["best_seeds"], "best"),
                          args.workers, log, done)
        summary = summarize(runs)
    return {"machine": machine(), "settings": s, "evidence": evidence, "pretrained": pretrained, "teacher": teacher,
            "best": best, "runs": runs, "summary": summary, "wall_seconds": time.perf_counter() - start,
            "core_seconds": sum(r["seconds"] for r in pretrained + runs), "resumed_runs": len(done)}


# ------------------------------------------------------------------------------------------------------- report
def _label(row: str, results: dict[str, Any]) -> str:
    if row == BEST:
        return "best combination: " + " + ".join(results["best"]["rows"]) + " (fresh seeds)"
    return ROWS[row][0]


def to_markdown(results: dict[str, Any]) -> str:
    s, summary = results["settings"], results["summary"]
    data = s["data"]
    scratch = s.get("from_scratch_epochs")
    if scratch:
        design = (f"`python -m benchmarks.siamese_study --from-scratch {scratch}`: every run is "
                  f"`training.run_videoqa.main` with `training/configs/synthetic.yaml` and the row's switches. Every "
                  f"row x seed trains from scratch for {scratch} epochs on {data['splits']['train']} videos' colour "
                  f"questions (batch {s['pretrain']['batch_size']}, lr {s['pretrain']['learning_rate']}, 10% warm-up, "
                  "linear decay), paired by seed (same initial weights, data order and anchor clips), and is ")
    else:
        design = (f"`python -m benchmarks.siamese_study`: every run is `training.run_videoqa.main` with "
                  f"`training/configs/synthetic.yaml` and the row's switches. Per variant a baseline (no siamese "
                  f"clips) is trained from scratch on {data['splits']['train']} videos' colour questions (epochs "
                  f"{s['pretrain']['epochs']}, batch {s['pretrain']['batch_size']}, lr "
                  f"{s['pretrain']['learning_rate']}); every row x seed then fine-tunes it for "
                  f"{s['finetune']['steps']} steps (batch {s['finetune']['batch_size']}, lr "
                  f"{s['finetune']['learning_rate']}, 10% warm-up, linear decay) and is ")
    best = "" if scratch else f"; the best combination: seeds {s['best_seeds']} with their own baselines"
    text = [f"# The siamese objective, paired study{', from scratch' if scratch else ''}\n",
            design + "evaluated once, at the end, on all "
            f"{data['splits']['test']} test colour questions (anchor clip only; {s['num_frames']} frames at "
            f"{data['image_size']} px; videos {data['min_frames']}-{data['max_frames']} frames). Seeds "
            f"{s['seeds']}{best}. "
            "**Difference** = row - baseline of the same seed, in accuracy points: mean [95% t-interval]; "
            "**MDE** = the smallest difference this design detects with 80% power (two-sided 5%).\n",
            f"Wall time {results['wall_seconds'] / 60:.1f} min ({results['core_seconds'] / 60:.0f} core-min of runs) "
            "on "
            f"{results['machine']['cpu_count']} CPUs, 2 single-core worker processes; load average at the end "
            f"{results['machine'].get('load_average_1m')}"
            + (f"; this invocation resumed {results['resumed_runs']} runs logged by earlier, stopped invocations "
               "with the same settings (`--resume`), which the wall time leaves out and the core-minutes count"
               if results.get("resumed_runs") else "") + ".\n"]
    for variant in summary:
        spec = VARIANTS[variant]
        ev, teacher = results["evidence"][variant], results["teacher"].get(variant)
        p = ev["test_eval_clip_sees_a_flash"]
        text.append(f"\n## {variant}: `make_synthetic_videoqa(variant={spec['variant']!r}, "
                    f"label_noise={spec['label_noise']})`\n")
        seen = (f"the training anchor sees a flash in {100 * ev['train_anchor_sees_a_flash']:.0f}% of draws, the 9 "
                f"clips together in {100 * ev['train_union_of_9_clips_sees_a_flash']:.0f}%, the evaluation clip in "
                f"{100 * p:.0f}% of test videos")
        checkpoint = ""
        if teacher:
            pre = next(r["accuracy"] for r in results["pretrained"] if r["variant"] == variant)
            checkpoint = (f" The pretrained checkpoint: {100 * pre:.1f}% test accuracy; on {teacher['questions']} "
                          f"training questions the true colour is the argmax of the paper's teacher Q in "
                          f"{100 * teacher['teacher_right']:.0f}%, of the anchor's prediction in "
                          f"{100 * teacher['anchor_right']:.0f}%, and the label in "
                          f"{100 * teacher['label_right']:.0f}%.")
        text.append(f"Evidence: {seen}: anchor-only ceiling {100 * (p + (1 - p) * COLOR_PRIOR[variant]):.1f}%. "
                    f"Training labels right: {100 * ev['train_labels_right']:.0f}%.{checkpoint}\n")
        rows = []
        for row, r in summary[variant].items():
            d = r["difference"]
            rows.append([_label(row, results), f"{100 * r['accuracy']:.2f}", f"{100 * r['baseline_accuracy']:.2f}",
                         f"{d['mean']:+.2f} [{d['ci_low']:+.2f}, {d['ci_high']:+.2f}]", f"{d['mde']:.2f}", d["n"]])
        text.append(markdown_table(["row", "accuracy %", "its baselines %", "difference (points) [95% CI]", "MDE",
                                    "seeds"], rows))
    return "\n".join(text)


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = list(results["summary"])
    fig, axes = plt.subplots(1, len(variants), figsize=(6 * len(variants), 4.5), sharey=True)
    for ax, variant in zip(np.atleast_1d(axes), variants):
        rows = list(results["summary"][variant])
        diffs = [results["summary"][variant][row]["difference"] for row in rows]
        y = np.arange(len(rows))
        means = [d["mean"] for d in diffs]
        errors = [[d["mean"] - d["ci_low"] for d in diffs], [d["ci_high"] - d["mean"] for d in diffs]]
        ax.errorbar(means, y, xerr=errors, fmt="o", capsize=3)
        ax.axvline(0, color="grey", ls="--")
        ax.set_yticks(y, [_label(row, results) for row in rows], fontsize=7)
        ax.invert_yaxis()
        ax.set_title(variant)
        ax.set_xlabel("test accuracy - baseline of the same seed (points, 95% CI)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(results: dict[str, Any], out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    name = "siamese_study_scratch" if results["settings"].get("from_scratch_epochs") else "siamese_study"
    (out_dir / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n")
    markdown = to_markdown(results)
    (out_dir / f"{name}.md").write_text(markdown)
    plot(results, out_dir / f"{name}.png")
    print(markdown, flush=True)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke test: tiny data, 2 rows, 1 seed, 2 steps")
    parser.add_argument("--rows", nargs="+", choices=list(ROWS), default=None)
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=None)
    parser.add_argument("--from-scratch", type=int, default=None, metavar="EPOCHS",
                        help="train every row x seed from scratch for EPOCHS instead of fine-tuning one checkpoint")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--data-dir", default=None, help="where the synthetic sets are generated")
    parser.add_argument("--work-dir", default=None, help="checkpoints and run folders (default outputs/siamese_study)")
    parser.add_argument("--out-dir", default=None, help="results folder (default benchmarks/results)")
    parser.add_argument("--report", default=None, metavar="JSON", help="train nothing: rewrite the tables from a json")
    parser.add_argument("--resume", action="store_true",
                        help="reuse the runs logged in WORK_DIR/runs.jsonl by a stopped study with the same settings")
    args = parser.parse_args(argv)
    out_dir = Path(args.out_dir) if args.out_dir else RESULTS_DIR
    results = json.loads(Path(args.report).read_text()) if args.report else run_study(args)
    write_report(results, out_dir)
    return results


if __name__ == "__main__":
    main()
