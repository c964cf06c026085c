"""Convert ClipBERT's released PyTorch checkpoint into a SiaSamRea folder (weights, config, processor, pipeline code).

SiaSamRea initialises from ClipBERT's COCO+VG image-text pretrained model (`clipbert_image_text_pretrained.pt`,
github.com/jayleicn/ClipBERT). That file is a plain `state_dict` of ClipBERT's `ClipBert` module:

- `cnn.feature.*`: a detectron2 `GeneralizedRCNN` whose `backbone` is an MSRA ResNet-50 (stride in the first 1x1
  conv of each bottleneck, frozen BatchNorm, BGR input on the 0-255 scale minus the ImageNet means, std 1). ClipBERT
  only runs the backbone; the proposal generator and ROI heads are detection-only.
- `cnn.grid_encoder.0.weight`: the 3x3 convolution (no bias) of the grid encoder (conv -> 2x2 max-pool -> ReLU).
- `transformer.bert.*`: BERT text embeddings, ClipBERT's visual embeddings, the BERT encoder and pooler.
- `transformer.cls.*` (pretraining MLM/ITM heads) or `transformer.classifier.*` (a fine-tuned QA head).

    python -m modeling_siasamrea.convert_clipbert_checkpoint clipbert_image_text_pretrained.pt converted/

Every key is either mapped, skipped with a reason (detection-only parts, pretraining heads, buffers ClipBERT never
reads) or an error: an unknown key, or a SiaSamRea weight the checkpoint does not provide (other than the few that
are initialised by construction, listed in the report), raises `ClipBertConversionError` naming all of them.
"""

import argparse
import json
import logging
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import AutoTokenizer, BertConfig, ResNetConfig

from .configuration_siasamrea import TASKS, SiaSamReaConfig
from .image_processing_siasamrea import SiaSamReaImageProcessor
from .modeling_siasamrea import SiaSamReaForVideoQuestionAnswering
from .pipeline_siasamrea import save_pipeline_folder
from .processing_siasamrea import SiaSamReaProcessor
from .tasks import get_task_type

logger = logging.getLogger(__name__)

# ClipBERT's `img_pixel_mean` / `img_pixel_std` (src/configs/*_base_resnet50.json): RGB order, 0-255 scale. Its
# `ImageNorm` normalises RGB frames with them and `GridFeatBackbone.forward` then flips the channels to BGR, which is
# what `SiaSamReaImageProcessor(channel_order="BGR")` does with RGB-ordered statistics.
CLIPBERT_IMAGE_MEAN = [123.675, 116.28, 103.53]
CLIPBERT_IMAGE_STD = [1.0, 1.0, 1.0]
# `max_img_size` of ClipBERT's MSRVTT-QA config (its TGIF-QA and pretraining configs use 768).
CLIPBERT_MAX_IMAGE_SIZE = 448
REPORT_NAME = "clipbert_conversion.json"

# ClipBERT keys deliberately left out, by prefix, with the reason reported.
SKIPPED_PREFIXES = {
    "cnn.feature.proposal_generator.": "detection only: detectron2 RPN, never run by ClipBERT",
    "cnn.feature.roi_heads.": "detection only: detectron2 ROI box/attribute heads, never run by ClipBERT",
    "transformer.cls.": "pretraining head (masked language modelling / image-text matching)",
}
SKIPPED_KEYS = {
    "cnn.feature.pixel_mean": "detectron2 normalisation buffer, bypassed by ClipBERT (the processor normalises)",
    "cnn.feature.pixel_std": "detectron2 normalisation buffer, bypassed by ClipBERT (the processor normalises)",
    "transformer.bert.visual_embeddings.position_embeddings.weight": (
        "unused: ClipBERT's VisualInputEmbedding builds it but its forward never reads it"
    ),
}
TASK_HEAD_PREFIX = "transformer.classifier."

_BACKBONE = "siasamrea.vision_encoder.backbone"
_BN_STATS = r"(weight|bias|running_mean|running_var)"


def _stage_layer(match: re.Match, suffix: str) -> str:
    stage, block = int(match["stage"]) - 2, int(match["block"])
    return f"{_BACKBONE}.encoder.stages.{stage}.layers.{block}.{suffix}"


# (ClipBERT key pattern, SiaSamRea key builder), tried in order; the first full match wins.
KEY_RULES: list[tuple[re.Pattern, Callable[[re.Match], str]]] = [
    (re.compile(r"cnn\.feature\.backbone\.stem\.conv1\.weight"),
     lambda m: f"{_BACKBONE}.embedder.embedder.convolution.weight"),
    (re.compile(rf"cnn\.feature\.backbone\.stem\.conv1\.norm\.{_BN_STATS}"),
     lambda m: f"{_BACKBONE}.embedder.embedder.normalization.{m[1]}"),
    (re.compile(r"cnn\.feature\.backbone\.res(?P<stage>\d+)\.(?P<block>\d+)\.conv(?P<conv>[123])\.weight"),
     lambda m: _stage_layer(m, f"layer.{int(m['conv']) - 1}.convolution.weight")),
    (re.compile(rf"cnn\.feature\.backbone\.res(?P<stage>\d+)\.(?P<block>\d+)\.conv(?P<conv>[123])\.norm\.{_BN_STATS}"),
     lambda m: _stage_layer(m, f"layer.{int(m['conv']) - 1}.normalization.{m[4]}")),
    (re.compile(r"cnn\.feature\.backbone\.res(?P<stage>\d+)\.(?P<block>\d+)\.shortcut\.weight"),
     lambda m: _stage_layer(m, "shortcut.convolution.weight")),
    (re.compile(rf"cnn\.feature\.backbone\.res(?P<stage>\d+)\.(?P<block>\d+)\.shortcut\.norm\.{_BN_STATS}"),
     lambda m: _stage_layer(m, f"shortcut.normalization.{m[3]}")),
    (re.compile(r"cnn\.grid_encoder\.0\.weight"), lambda m: "siasamrea.vision_encoder.grid_encoder.0.weight"),
    (re.compile(r"transformer\.bert\.(embeddings|visual_embeddings|encoder|pooler)\.(.+)"),
     lambda m: f"siasamrea.{m[1]}.{m[2]}"),
    (re.compile(r"transformer\.classifier\.([02])\.(weight|bias)"), lambda m: f"classifier.{m[1]}.{m[2]}"),
]

# BERT settings that the checkpoint's shapes cannot tell, taken from ClipBERT's model config when one is given
# (src/configs/base_model.json); their defaults there equal `BertConfig`'s.
BERT_CONFIG_KEYS = (
    "num_attention_heads", "hidden_act", "layer_norm_eps", "hidden_dropout_prob", "attention_probs_dropout_prob",
    "initializer_range", "pad_token_id",
)


class ClipBertConversionError(ValueError):
    """The checkpoint does not map onto SiaSamRea: lists every unmapped, missing and shape-mismatched key."""

    def __init__(
        self,
        unmapped: list[str] | None = None,
        missing: list[str] | None = None,
        mismatched: list[str] | None = None,
    ):
        self.unmapped = sorted(unmapped or [])
        self.missing = sorted(missing or [])
        self.mismatched = sorted(mismatched or [])
        parts = []
        if self.unmapped:
            parts.append(f"{len(self.unmapped)} ClipBERT key(s) with no SiaSamRea counterpart: {self.unmapped}")
        if self.missing:
            parts.append(f"{len(self.missing)} weight(s) missing from the checkpoint: {self.missing}")
        if self.mismatched:
            parts.append(f"{len(self.mismatched)} shape mismatch(es): {self.mismatched}")
        super().__init__("cannot convert the ClipBERT checkpoint:\n" + "\n".join(parts))


@dataclass
class ConversionReport:
    """What happened to every key.

    Attributes:
        mapped: ClipBERT key -> SiaSamRea key.
        skipped: ClipBERT key -> why it was left out.
        initialised: SiaSamRea key -> how it was set without a ClipBERT counterpart.
        not_saved: SiaSamRea keys left out of the saved weights (fresh heads, initialised again when loading).
    """

    mapped: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    initialised: dict[str, str] = field(default_factory=dict)
    not_saved: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """A human-readable account: counts, then every skipped and initialised key grouped by reason."""
        lines = [f"mapped {len(self.mapped)} ClipBERT tensors onto SiaSamRea"]
        for title, entries in (("skipped", self.skipped), ("initialised without ClipBERT weights", self.initialised)):
            by_reason: dict[str, list[str]] = {}
            for key, reason in entries.items():
                by_reason.setdefault(reason, []).append(key)
            lines.append(f"{title}: {len(entries)}")
            for reason, keys in by_reason.items():
                shown = ", ".join(keys[:3]) + (f", ... ({len(keys)} in all)" if len(keys) > 3 else "")
                lines.append(f"  - {reason}: {shown}")
        if self.not_saved:
            lines.append(f"not saved (initialised when the folder is loaded): {len(self.not_saved)}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"mapped": self.mapped, "skipped": self.skipped, "initialised": self.initialised,
                "not_saved": self.not_saved}


def load_clipbert_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a ClipBERT `.pt` with `torch.load(weights_only=True)` (no arbitrary unpickling) as a float32 state dict."""
    try:
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # the unpickler refuses anything beyond tensors and plain containers
        raise ValueError(f"could not load {path} as a weights-only PyTorch checkpoint: {error}") from error
    if not isinstance(state_dict, Mapping) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise ValueError(f"{path} is not a state dict (a mapping of names to tensors), as ClipBERT's ModelSaver writes")
    return {key: value.float() if value.is_floating_point() else value for key, value in state_dict.items()}


def skip_reason(key: str) -> str | None:
    """Why a ClipBERT key is deliberately not converted, or `None`."""
    if key in SKIPPED_KEYS:
        return SKIPPED_KEYS[key]
    return next((reason for prefix, reason in SKIPPED_PREFIXES.items() if key.startswith(prefix)), None)


def map_clipbert_key(key: str) -> str | None:
    """The SiaSamRea key for a ClipBERT key, or `None` when no rule matches."""
    for pattern, target in KEY_RULES:
        match = pattern.fullmatch(key)
        if match:
            return target(match)
    return None


def _require(state_dict: Mapping[str, torch.Tensor], key: str) -> torch.Tensor:
    if key not in state_dict:
        raise ClipBertConversionError(missing=[key])
    return state_dict[key]


def infer_vision_config(state_dict: Mapping[str, torch.Tensor]) -> ResNetConfig:
    """ResNetConfig of the detectron2 backbone, from its shapes: MSRA bottlenecks (stride in the first 1x1 conv)."""
    stem = _require(state_dict, "cnn.feature.backbone.stem.conv1.weight")  # (embedding, channels, 7, 7)
    blocks: dict[int, set[int]] = {}
    for key in state_dict:
        match = re.match(r"cnn\.feature\.backbone\.res(\d+)\.(\d+)\.", key)
        if match:
            blocks.setdefault(int(match[1]), set()).add(int(match[2]))
    stages = sorted(blocks)
    if stages != list(range(2, 2 + len(stages))) or not stages:
        raise ClipBertConversionError(missing=[f"cnn.feature.backbone.res2..res5 (found stages {stages})"])
    hidden_sizes, depths = [], []
    for stage in stages:
        prefix = f"cnn.feature.backbone.res{stage}.0"
        if f"{prefix}.conv3.weight" not in state_dict:
            raise ValueError(f"{prefix} is not a bottleneck block (no conv3): only bottleneck ResNets are supported")
        out_channels = _require(state_dict, f"{prefix}.conv3.weight").shape[0]
        width = _require(state_dict, f"{prefix}.conv1.weight").shape[0]
        if width * 4 != out_channels:
            raise ValueError(
                f"res{stage} has bottleneck width {width} for {out_channels} output channels; transformers' ResNet "
                "bottleneck needs a width of a quarter of its output"
            )
        hidden_sizes.append(out_channels)
        depths.append(max(blocks[stage]) + 1)
    return ResNetConfig(
        num_channels=stem.shape[1],
        embedding_size=stem.shape[0],
        hidden_sizes=hidden_sizes,
        depths=depths,
        layer_type="bottleneck",
        hidden_act="relu",
        downsample_in_first_stage=False,  # res2 keeps the stem's stride 4
        downsample_in_bottleneck=True,  # MSRA: the stride sits in the first 1x1 conv (detectron2 STRIDE_IN_1X1)
    )


def infer_text_config(
    state_dict: Mapping[str, torch.Tensor], clipbert_config: Mapping[str, Any] | None = None
) -> tuple[BertConfig, dict[str, int]]:
    """BertConfig from the checkpoint's shapes (+ the settings shapes cannot tell), and the visual grid sizes."""
    words = _require(state_dict, "transformer.bert.embeddings.word_embeddings.weight")
    layers = {int(m[1]) for key in state_dict if (m := re.match(r"transformer\.bert\.encoder\.layer\.(\d+)\.", key))}
    def rows(key: str) -> int:
        return _require(state_dict, f"transformer.bert.{key}").shape[0]

    shapes = {
        "vocab_size": words.shape[0],
        "hidden_size": words.shape[1],
        "num_hidden_layers": max(layers) + 1 if layers else 0,
        "intermediate_size": rows("encoder.layer.0.intermediate.dense.weight"),
        "max_position_embeddings": rows("embeddings.position_embeddings.weight"),
        "type_vocab_size": rows("embeddings.token_type_embeddings.weight"),
    }
    grid = {
        "max_grid_row_position_embeddings": rows("visual_embeddings.row_position_embeddings.weight"),
        "max_grid_col_position_embeddings": rows("visual_embeddings.col_position_embeddings.weight"),
    }
    channels = {"backbone_channel_in_size": _require(state_dict, "cnn.grid_encoder.0.weight").shape[1]}
    clipbert_config = dict(clipbert_config or {})
    conflicts = [
        f"{name}: config {clipbert_config[name]} vs checkpoint {value}"
        for name, value in {**shapes, **grid, **channels}.items()
        if name in clipbert_config and clipbert_config[name] != value
    ]
    if conflicts:
        raise ValueError(f"the ClipBERT model config disagrees with the checkpoint's shapes: {conflicts}")
    settings = {name: clipbert_config[name] for name in BERT_CONFIG_KEYS if name in clipbert_config}
    settings.setdefault("num_attention_heads", max(1, shapes["hidden_size"] // 64))  # BERT's 64-wide heads
    if shapes["hidden_size"] % settings["num_attention_heads"]:
        raise ValueError(
            f"hidden size {shapes['hidden_size']} is not a multiple of {settings['num_attention_heads']} attention "
            "heads; give num_attention_heads in ClipBERT's model config"
        )
    return BertConfig(**shapes, **settings), grid


def _head_config(
    state_dict: Mapping[str, torch.Tensor], task: str | None, id2label: Mapping[int, str] | None, keep_task_head: bool
) -> dict[str, Any]:
    """`task` / `id2label` for the config, checked against the checkpoint's classifier when it is kept."""
    head = state_dict.get(f"{TASK_HEAD_PREFIX}2.weight") if keep_task_head else None
    outputs = None if head is None else head.shape[0]
    if task is None and outputs == 1:
        raise ValueError(
            "the checkpoint's classifier has one output: ClipBERT's multiple-choice (TGIF action/transition) "
            "or count head; pass task='multiple_choice' or task='count'"
        )
    task_type = get_task_type(task or "open_ended")  # ClipBERT's QA checkpoints are open-ended unless said
    if outputs is not None:
        if task_type.has_vocabulary == (outputs == 1):
            raise ValueError(f"a {task_type.name} model cannot take the checkpoint's {outputs}-output classifier")
        if task_type.has_vocabulary and id2label is not None and len(id2label) != outputs:
            raise ValueError(f"the answer vocabulary has {len(id2label)} answers, the classifier {outputs} outputs")
        if task_type.has_vocabulary and id2label is None:
            id2label = {i: f"LABEL_{i}" for i in range(outputs)}
    config = {"task": task_type.name}
    if task_type.has_vocabulary and id2label is not None:
        config["id2label"] = {int(i): label for i, label in id2label.items()}
        config["label2id"] = {label: i for i, label in config["id2label"].items()}
    return config


def convert_clipbert_state_dict(
    state_dict: Mapping[str, torch.Tensor],
    task: str | None = None,
    id2label: Mapping[int, str] | None = None,
    clipbert_config: Mapping[str, Any] | None = None,
    keep_task_head: bool = True,
    **config_kwargs: Any,
) -> tuple[SiaSamReaForVideoQuestionAnswering, ConversionReport]:
    """Build a `SiaSamReaForVideoQuestionAnswering` holding ClipBERT's weights.

    Args:
        state_dict: ClipBERT's state dict (see `load_clipbert_state_dict`).
        task: `"open_ended"`, `"multiple_choice"` or `"count"`. Inferred from the checkpoint's classifier when it
            has more than one output, `"open_ended"` when it has none.
        id2label: answer vocabulary for an open-ended head.
        clipbert_config: ClipBERT's model config (`src/configs/base_model.json`) for what the shapes cannot tell
            (attention heads, activation, LayerNorm eps, dropouts); BERT-base defaults otherwise.
        keep_task_head: convert a fine-tuned ClipBERT classifier (`transformer.classifier.*`); with `False` it is
            skipped and the head starts fresh.
        config_kwargs: further `SiaSamReaConfig` fields (e.g. `num_siamese_clips`).

    Returns:
        The model (in eval mode) and the report. Raises `ClipBertConversionError` listing every ClipBERT key that
        maps nowhere and every SiaSamRea weight left without a value.
    """
    vision_config = infer_vision_config(state_dict)
    text_config, grid = infer_text_config(state_dict, clipbert_config)
    head = _head_config(state_dict, task, id2label, keep_task_head)
    config = SiaSamReaConfig(
        vision_config=vision_config.to_dict(), text_config=text_config.to_dict(), **grid, **head, **config_kwargs
    )
    model = SiaSamReaForVideoQuestionAnswering(config).eval()
    target_state = model.state_dict()

    report = ConversionReport()
    converted, unmapped, mismatched, mismatched_targets = {}, [], [], set()
    for key, value in state_dict.items():
        reason = skip_reason(key)
        if reason is None and key.startswith(TASK_HEAD_PREFIX) and not keep_task_head:
            reason = "task head dropped (keep_task_head=False): the SiaSamRea classifier starts fresh"
        if reason is not None:
            report.skipped[key] = reason
            continue
        target = map_clipbert_key(key)
        if target is None or target not in target_state:
            unmapped.append(key)
        elif target_state[target].shape != value.shape:
            mismatched.append(f"{key} {tuple(value.shape)} -> {target} {tuple(target_state[target].shape)}")
            mismatched_targets.add(target)
        else:
            converted[target] = value
            report.mapped[key] = target

    fresh = {}
    for key in target_state:
        if key in converted:
            continue
        if key.endswith(".num_batches_tracked"):
            fresh[key] = "zero: ClipBERT's frozen BatchNorm keeps no batch count"
        elif key == "siasamrea.vision_encoder.grid_encoder.0.bias":
            fresh[key] = "zero: ClipBERT's grid-encoder conv has no bias"
            converted[key] = torch.zeros_like(target_state[key])
        elif key.startswith("siamese_head."):
            fresh[key] = "SiaSamRea's siamese head (W1, W2): not in ClipBERT, default initialisation"
        elif key.startswith("classifier.") and not any(k.startswith(TASK_HEAD_PREFIX) for k in report.mapped):
            fresh[key] = "task head: the checkpoint has none (or it was dropped), random initialisation"
    accounted = converted.keys() | fresh.keys() | mismatched_targets
    missing = [key for key in target_state if key not in accounted]
    if unmapped or missing or mismatched:
        raise ClipBertConversionError(unmapped=unmapped, missing=missing, mismatched=mismatched)
    model.load_state_dict(converted, strict=False)
    report.initialised = fresh
    # weights ClipBERT never had are left out of the saved folder, so that fine-tuning with another answer
    # vocabulary, task or number of siamese clips loads it without size mismatches and initialises them afresh
    report.not_saved = sorted(k for k in fresh if k.startswith(("siamese_head.", "classifier.")))
    model._keys_to_ignore_on_save = set(model._keys_to_ignore_on_save or ()) | set(report.not_saved)
    return model, report


def clipbert_image_processor(max_image_size: int = CLIPBERT_MAX_IMAGE_SIZE) -> SiaSamReaImageProcessor:
    """The frame preprocessing ClipBERT's weights expect: 0-255 pixels minus the ImageNet means, std 1, BGR."""
    return SiaSamReaImageProcessor(
        max_image_size=max_image_size,
        channel_order="BGR",
        do_rescale=False,
        do_normalize=True,
        image_mean=CLIPBERT_IMAGE_MEAN,
        image_std=CLIPBERT_IMAGE_STD,
    )


def load_answer_vocabulary(path: str | Path) -> dict[int, str]:
    """`id2label` from a JSON answer list or a `{answer: id}` map (ClipBERT's `train_ans2label.json`)."""
    data = json.loads(Path(path).read_text())
    if isinstance(data, list):
        return dict(enumerate(data))
    if isinstance(data, dict):
        id2label = {int(i): answer for answer, i in data.items()}
        if sorted(id2label) != list(range(len(id2label))):
            raise ValueError(f"{path}: answer ids must be 0..{len(data) - 1}, each used once")
        return id2label
    raise ValueError(f"{path}: expected a JSON list of answers or an {{answer: id}} object")


def convert_clipbert_checkpoint(
    checkpoint_path: str | Path,
    output_dir: str | Path,
    tokenizer_name_or_path: str = "bert-base-uncased",
    task: str | None = None,
    id2label: Mapping[int, str] | None = None,
    clipbert_config: Mapping[str, Any] | None = None,
    keep_task_head: bool = True,
    max_image_size: int = CLIPBERT_MAX_IMAGE_SIZE,
    num_frames: int | str | None = None,
    **config_kwargs: Any,
) -> ConversionReport:
    """Convert a ClipBERT `.pt` into a `save_pretrained` folder that also holds the processor and pipeline code.

    The folder loads with `SiaSamReaForVideoQuestionAnswering.from_pretrained`, `SiaSamReaProcessor.from_pretrained`
    and `pipeline("video-question-answering", model=output_dir, trust_remote_code=True)`; it also gets
    `clipbert_conversion.json`, the report. See `convert_clipbert_state_dict` for the arguments.
    """
    state_dict = load_clipbert_state_dict(checkpoint_path)
    model, report = convert_clipbert_state_dict(
        state_dict, task=task, id2label=id2label, clipbert_config=clipbert_config, keep_task_head=keep_task_head,
        **config_kwargs,
    )
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_name_or_path)
    if len(tokenizer) > model.config.text_config.vocab_size:
        logger.warning(
            "the tokenizer has %d tokens but the checkpoint's word embeddings only %d",
            len(tokenizer), model.config.text_config.vocab_size,
        )
    processor = SiaSamReaProcessor(clipbert_image_processor(max_image_size), tokenizer)
    output_dir = save_pipeline_folder(model, processor, output_dir, num_frames=num_frames)
    (output_dir / REPORT_NAME).write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    return report


def _num_frames(value: str) -> int | str:
    if value == "auto":
        return value
    if value.isdigit() and int(value) > 0:
        return int(value)
    raise argparse.ArgumentTypeError(f"must be a positive integer or 'auto', got {value!r}")


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Convert ClipBERT's checkpoint (e.g. clipbert_image_text_pretrained.pt) into a SiaSamRea folder."
    )
    parser.add_argument("checkpoint", help="ClipBERT .pt state dict")
    parser.add_argument("output_dir", help="folder to write (weights, config, processor, pipeline code, report)")
    parser.add_argument("--tokenizer_name_or_path", default="bert-base-uncased",
                        help="BERT-uncased tokenizer saved with the processor (default: bert-base-uncased)")
    parser.add_argument("--clipbert_config", default=None,
                        help="ClipBERT's model config JSON (src/configs/base_model.json); default: BERT-base")
    parser.add_argument("--task", choices=TASKS, default=None,
                        help="task of the converted model; needed for a fine-tuned 1-output ClipBERT head")
    parser.add_argument("--answer_vocab", default=None,
                        help="open-ended answers: JSON list or {answer: id} (ClipBERT's train_ans2label.json)")
    parser.add_argument("--drop_task_head", action="store_true",
                        help="skip a fine-tuned ClipBERT classifier; the SiaSamRea head starts fresh")
    parser.add_argument("--max_image_size", type=int, default=CLIPBERT_MAX_IMAGE_SIZE,
                        help="frame size of the saved processor (ClipBERT: 448 for MSRVTT-QA, 768 for TGIF-QA)")
    parser.add_argument("--num_frames", type=_num_frames, default=None,
                        help="default frames per clip of the saved pipeline (an integer or 'auto')")
    return parser


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """Command-line entry point: returns 0, or exits with status 1 (2 for bad arguments) naming what went wrong."""
    args = build_parser(prog).parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        clipbert_config = json.loads(Path(args.clipbert_config).read_text()) if args.clipbert_config else None
        id2label = load_answer_vocabulary(args.answer_vocab) if args.answer_vocab else None
        report = convert_clipbert_checkpoint(
            args.checkpoint, args.output_dir, tokenizer_name_or_path=args.tokenizer_name_or_path, task=args.task,
            id2label=id2label, clipbert_config=clipbert_config, keep_task_head=not args.drop_task_head,
            max_image_size=args.max_image_size, num_frames=args.num_frames,
        )
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(1) from error
    print(report.summary())
    print(f"wrote {args.output_dir}")
    return 0


__all__ = [
    "ClipBertConversionError",
    "ConversionReport",
    "clipbert_image_processor",
    "convert_clipbert_checkpoint",
    "convert_clipbert_state_dict",
    "load_clipbert_state_dict",
    "main",
    "map_clipbert_key",
]

if __name__ == "__main__":
    sys.exit(main())
