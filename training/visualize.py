"""Figure 4 of the paper for one training example: the anchor and siamese clips, Â, and the soft label Q."""

import os
from pathlib import Path

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from transformers import ProcessorMixin

from modeling_siasamrea import SiaSamReaForVideoQuestionAnswering, SiaSamReaVideoQAOutput, TaskType
from modeling_siasamrea.sampling import SiameseSampler, clip_sampler_from_config
from modeling_siasamrea.video_io import VideoInput, count_frames, read_clips

# Fixed figure size: 12 x 8 inches at 100 dpi = a 1200 x 800 pixel PNG.
FIGSIZE = (12, 8)
DPI = 100
TOP_ANSWERS = 8  # open-ended: answers of Q shown in the bar chart (plus the ground truth)


def _label_index(names: list[str], label: int | str) -> int:
    """An answer (string or id) or a choice (string or index) as an index into `names`."""
    if not isinstance(label, str):
        return int(label)
    if label not in names:
        raise ValueError(f"label {label!r} is not one of the model's answers / the choices")
    return names.index(label)


def _siamese_forward(
    model: SiaSamReaForVideoQuestionAnswering, inputs: dict[str, torch.Tensor], labels: torch.Tensor, seed: int
) -> SiaSamReaVideoQAOutput:
    """A training-mode forward (so Â and Q are computed) under no_grad, dropout seeded, the model's mode restored."""
    was_training = model.training
    try:
        model.train()
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return model(**inputs, labels=labels.to(model.device))
    finally:
        model.train(was_training)


def _clip_prediction(task_type: TaskType, scores: torch.Tensor, names: list[str] | None) -> str:
    """Top prediction of one clip, `answer (p)` or `count c`, from its scores `(K | choices | 1)`."""
    if names is None:
        return f"count {task_type.answer(scores, None, None, 1)['count']:.2f}"
    best = task_type.answer(scores, dict(enumerate(names)), names, 1)[0]
    return f"{best.get('answer', best.get('choice'))} ({best['score']:.2f})"


def _draw_knowledge(axis: Axes, knowledge: np.ndarray) -> None:
    """Â as an N x N heatmap (row i: how much clip i draws on clip j)."""
    image = axis.imshow(knowledge, cmap="viridis", vmin=0.0)
    short_names = ["A"] + [f"S{k}" for k in range(1, len(knowledge))]
    axis.set_xticks(range(len(knowledge)), short_names, fontsize=7)
    axis.set_yticks(range(len(knowledge)), short_names, fontsize=7)
    axis.set_title("siamese knowledge Â (row i, column j)", fontsize=9)
    axis.figure.colorbar(image, ax=axis, fraction=0.046, pad=0.04)


def _draw_soft_label(
    axis: Axes, soft_label: torch.Tensor, anchor: torch.Tensor, truth: float | None, names: list[str] | None
) -> None:
    """Q next to the ground truth: the top answers of Q, every choice, or the counts (no `names`)."""
    axis.set_title("soft label Q vs ground truth", fontsize=9)
    axis.tick_params(labelsize=7)
    axis.invert_yaxis()  # first entry on top
    if names is None:
        values = {"soft label Q": soft_label[0].item(), "anchor": anchor[0].item()}
        if truth is not None:
            values["ground truth"] = truth
        axis.barh(list(values), list(values.values()))
        return
    shown = soft_label.argsort(descending=True)[:TOP_ANSWERS].tolist()
    if truth is not None and truth not in shown:
        shown.append(int(truth))
    positions = np.arange(len(shown))
    axis.barh(positions - 0.2, soft_label[shown].numpy(), height=0.4, label="soft label Q")
    if truth is not None:
        axis.barh(positions + 0.2, [float(i == truth) for i in shown], height=0.4, label="ground truth")
    axis.set_yticks(positions, [names[i] for i in shown])
    axis.set_xlim(0, 1)
    axis.legend(fontsize=7, loc="best")


def visualize_siamese_example(
    model: SiaSamReaForVideoQuestionAnswering,
    processor: ProcessorMixin,
    video: VideoInput,
    question: str,
    label: float | str | None = None,
    choices: list[str] | None = None,
    sampler: SiameseSampler | None = None,
    output_path: str | os.PathLike = "siamese_example.png",
    seed: int = 0,
    task: str | None = None,
) -> Path:
    """Draw what Figure 4 of the paper shows for one training example and save it as a 1200 x 800 px PNG.

    Left: one row of frame thumbnails per clip (anchor first, then the siamese clips), each row titled with its
    frame indices and that clip's top prediction. Right: the siamese knowledge Â (Eq. 2) as a heatmap, and the soft
    label Q (Eq. 5) next to the ground truth (the top answers of Q, all choices, or the count).

    The clips come from `sampler.sample(num_frames, np.random.default_rng(seed))` (default sampler: the model's
    `num_siamese_clips`, and its config's `num_frames` or "auto"). The model runs in train mode (as in training: Â
    and Q only exist with labels and several clips) under `torch.no_grad`, with dropout seeded by `seed` without
    touching the global RNG; its previous mode is restored. `label` (answer string / id, choice string / index, or
    count) may be None: Â and Q do not depend on it, so a placeholder label then only switches the siamese branch on.
    `task` names the task of a joint model.
    """
    config = model.config
    task_type = config.task_type(task)
    if sampler is None:
        sampler = clip_sampler_from_config(config, train=True)
    if sampler.num_siamese_clips != config.num_siamese_clips or config.num_siamese_clips < 1:
        raise ValueError(
            f"the sampler draws {sampler.num_siamese_clips} siamese clips, the model needs "
            f"num_siamese_clips={config.num_siamese_clips} (>= 1)"
        )
    indices = sampler.sample(count_frames(video), np.random.default_rng(seed))  # (N, B)
    clips = read_clips(video, indices)  # (N, B, H, W, 3) uint8
    inputs = processor(videos=clips, text=question, choices=choices).to(model.device, dtype=model.dtype)
    answers = config.answers(task)
    names = list(answers.values()) if answers else choices  # None: the task answers with a count
    if names is None:
        truth = None if label is None else float(label)
    else:
        truth = None if label is None else _label_index(names, label)
    labels = task_type.label({task_type.label_column: truth or 0})[None]
    outputs = _siamese_forward(model, {**inputs, "task": config.resolve_task(task)}, labels, seed)
    clip_scores = outputs.clip_logits[0].float().cpu()  # (N, K | choices | 1)

    figure = Figure(figsize=FIGSIZE, dpi=DPI)
    FigureCanvasAgg(figure)  # render with Agg: no pyplot, no global backend or figure registry
    layout = figure.add_gridspec(1, 2, width_ratios=(2.2, 1), left=0.02, right=0.94, top=0.9, bottom=0.08, wspace=0.3)
    frames_grid = layout[0].subgridspec(*indices.shape, hspace=0.9, wspace=0.05)
    for row, (clip, frame_ids) in enumerate(zip(clips, indices)):
        axes = [figure.add_subplot(frames_grid[row, column]) for column in range(len(clip))]
        for axis, frame in zip(axes, clip):
            axis.imshow(frame)
            axis.set_axis_off()
        name = "anchor" if row == 0 else f"siamese {row}"
        prediction = _clip_prediction(task_type, clip_scores[row], names)
        axes[0].set_title(f"{name} | frames {frame_ids.tolist()} | {prediction}", loc="left", fontsize=7)
    side = layout[1].subgridspec(2, 1, hspace=0.45)
    _draw_knowledge(figure.add_subplot(side[0]), outputs.siamese_knowledge[0].float().cpu().numpy())
    soft_label = outputs.soft_labels[0].float().cpu()
    _draw_soft_label(figure.add_subplot(side[1]), soft_label, clip_scores[0], truth, names)
    figure.suptitle(f"Q: {question}" + ("" if label is None else f"   (label: {label})"), fontsize=10)

    output_path = Path(output_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output_path, dpi=DPI)
    return output_path


__all__ = ["DPI", "FIGSIZE", "visualize_siamese_example"]
