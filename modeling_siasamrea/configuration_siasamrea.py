"""SiaSamRea model configuration."""

from typing import Any

from transformers import AutoConfig, BertConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

from .sampling import check_num_frames
from .siamese_reasoning import SIAMESE_VARIANTS, siamese_variant
from .tasks import TASK_TYPES, TaskType, get_task_type

TASKS = tuple(TASK_TYPES)
# Named settings of the siamese objective: `siamese_preset` gives every field listed here that a config leaves unset
# (None). "paper" is the paper read literally (docs/design.md). "structured" gives Â structure (features centred over
# the clip set, Eq. 2 temperature 0.3) and takes the anchor's own row of it as the soft label. It is the default: of
# the settings of the objective that no study in benchmarks/results/ has shown to be worse than the no-siamese
# baseline, it was tested on the most seeds (paired regime study: -0.28 points [-1.00, +0.44] on 8 CPU seeds, -0.53
# [-2.97, +1.90] on 5 GPU seeds), while the paper-literal objective was worse on the GPU seeds (-1.43 [-2.72, -0.15]).
# No setting has been shown to beat the baseline (README §7 says what each study could detect).
SIAMESE_PRESETS: dict[str, dict[str, Any]] = {
    "paper": {
        "siamese_loss_weight": 1.0,
        "siamese_clips_supervised": False,
        "siamese_distillation_temperature": 1.0,
        "siamese_soft_label": "eq5",
        "siamese_propagation": "one_step",
        "siamese_loss_weight_warmup": 0.0,
        "siamese_temperature": 1.0,
        "siamese_feature_centering": False,
    },
    "structured": {
        "siamese_loss_weight": 1.0,
        "siamese_clips_supervised": False,
        "siamese_distillation_temperature": 1.0,
        "siamese_soft_label": "anchor_row",
        "siamese_propagation": "one_step",
        "siamese_loss_weight_warmup": 0.0,
        "siamese_temperature": 0.3,
        "siamese_feature_centering": True,
    },
}
DEFAULT_SIAMESE_PRESET = "structured"
# a saved config without `siamese_preset` was written before presets existed, when the objective was the paper's
PRESET_OF_OLDER_CONFIGS = "paper"
PRESET_FIELDS = tuple(SIAMESE_PRESETS[DEFAULT_SIAMESE_PRESET])

# The vision backbones a model can use, by the `model_type` of its `vision_config`, in three families, each with its
# adapter in modeling_siasamrea.py: "grid", a CNN on every frame whose last feature map goes through ClipBERT's grid
# encoder; "frame", an image ViT on every frame whose patch tokens are projected; "video", a video transformer on the
# whole clip whose spatio-temporal (tubelet) tokens are projected.
VISION_FAMILIES = {
    "resnet": "grid",
    "clip_vision_model": "frame",
    "siglip_vision_model": "frame",
    "siglip2_vision_model": "frame",
    "videomae": "video",
    "timesformer": "video",
    "vivit": "video",
}
# video transformers whose position embeddings are built for their `num_frames`: they take clips of that length only
# (TimeSformer's are resized)
FIXED_CLIP_BACKBONES = ("videomae", "vivit")
# image-text models whose vision tower is a supported backbone: their `vision_config` is the one to use
VISION_TOWERS = {"clip": "clip_vision_model", "siglip": "siglip_vision_model", "siglip2": "siglip2_vision_model"}
TEMPORAL_POOLINGS = ("mean", "concat")


class SiaSamReaConfig(PreTrainedConfig):
    r"""
    Configuration of a SiaSamRea model: a video encoder (ClipBERT's ResNet grid, or any supported vision backbone) and
    ClipBERT's multimodal transformer plus the siamese knowledge generation (SKG) and reasoning (SKR) training head of
    "Learning from Inside: Self-driven Siamese Sampling and Reasoning for Video Question Answering" (NeurIPS 2021).
    Defaults follow §4.2 of the paper, except the siamese objective's default preset, `"structured"` rather than the
    paper read literally (`docs/design.md`, "Presets"); every reading of an ambiguous point of the paper is a switch
    here, and `docs/design.md` says how each is read.

    Args:
        vision_config (`dict` or `PreTrainedConfig`, *optional*):
            Configuration of the vision backbone, any of `VISION_FAMILIES` by its `model_type`: a ResNet (ClipBERT's
            grid features; the default, ResNet-50, and the type of a dict without `model_type`), an image ViT run on
            every frame (`clip_vision_model`, `siglip_vision_model`, `siglip2_vision_model`) or a video transformer
            run on every clip (`videomae`, `timesformer`, `vivit`). Any other type raises.
        text_config (`dict` or `BertConfig`, *optional*):
            Configuration of the text embeddings and the multimodal transformer (transformers' BERT). Defaults to
            BERT-base.
        task (`str`, *optional*, defaults to `"open_ended"`):
            The task type of a single-task model: `"open_ended"` (classification over a fixed answer vocabulary,
            cross-entropy), `"multiple_choice"` (one score per `question [SEP] choice`, summed pairwise hinge loss) or
            `"count"` (regression, MSE); see `tasks.py`. Unused (None) when `tasks` is given.
        num_answers (`int`, *optional*):
            Size of the answer vocabulary for `"open_ended"`. Taken from `id2label` when that is given.
        tasks (`dict`, *optional*):
            Several heads in one model, e.g. the paper's joint TGIF-QA model: `{name: {"type": task type, "answers":
            [...] (open-ended: the answer of each id), "loss_weight": 1.0}}`. `forward(..., task=name)` uses that
            task's head, labels and losses; the siamese objective is shared. Without it the model has one task,
            `task`, whose answers are `id2label`.
        num_siamese_clips (`int`, *optional*, defaults to 8):
            Siamese clips sampled next to the anchor in training, so each video gives `N = 1 + num_siamese_clips`
            clips (paper: N = 9). The clip weights W1, W2 of Eq. 5 have N entries.
        num_frames (`int` or `"auto"`, *optional*):
            Frames per clip B of the clip sampler (`sampling.py`), in training and in evaluation; `"auto"` grows them
            with the video length (5-16 frames, the paper's). The training script records the value it trained with,
            so the saved model answers with it. None (unset, as in configs saved before this field): a video
            transformer backbone's clip length (`backbone_num_frames`), else the caller's default. VideoMAE and ViViT
            take clips of their own `num_frames` only: any other value is rejected.
        siamese_preset (`str`, *optional*, defaults to `"structured"`):
            A named setting of the siamese objective (`SIAMESE_PRESETS`): it gives `siamese_loss_weight`,
            `siamese_clips_supervised`, `siamese_distillation_temperature`, `siamese_soft_label`,
            `siamese_propagation`, `siamese_loss_weight_warmup`, `siamese_temperature` and
            `siamese_feature_centering` wherever they are left unset. `"paper"`: the paper read literally.
            `"structured"`: a knowledge matrix with structure and the anchor's row of it as the soft label: of the
            settings no study here has shown worse than the baseline, the best tested (none has shown one better;
            README §7). A saved config without this field (written before presets) loads as `"paper"`.
        siamese_loss_weight (`float`, *optional*, defaults to the preset's, 1.0 in `"paper"`):
            α of Eq. 8, the weight of the soft-label loss L_siamese.
        siamese_omega (`float`, *optional*, defaults to 0.5):
            ω of Eq. 5, mixing the propagated predictions (ÂP) and the plain predictions (P) into the soft label Q.
        siamese_temperature (`float`, *optional*, defaults to the preset's, 1.0 in `"paper"`, 0.3 in `"structured"`):
            Temperature dividing the cosine similarities before the row softmax of Eq. 2 (the paper uses 1). At 1 the
            rows of Â are near uniform for nearby clips (cosines near 1; docs/design.md gives measured entropies); a
            lower temperature, with `siamese_feature_centering`, gives Â structure.
        siamese_feature_centering (`bool`, *optional*, defaults to the preset's, `True` in `"structured"`):
            Subtract the mean clip-text feature of the clip set before Eq. 1's ℓ2-normalisation, so the cosines
            compare what differs between a video's clips rather than what they share (not in the paper).
        siamese_knowledge (`str`, *optional*, defaults to `"similarity"`):
            `"similarity"`: Â from feature similarities (Eq. 1-2). `"average"`: Â(i, j) = 1/(N-1) for j != i, the
            "w/ SKR" ablation of Table 1.
        siamese_projection (`bool`, *optional*, defaults to `False`):
            Apply a learnable linear map F to the clip-text features before Eq. 1 (identity when `False`).
        learnable_clip_weights (`bool`, *optional*, defaults to `True`):
            Learn W1 and W2 of Eq. 5 (softmax over N logits, so Q stays a distribution). When `False` both are
            uniform and the ground-truth term on Q is dropped (the paper's W1/W2 ablation).
        siamese_clips_supervised (`bool`, *optional*, defaults to the preset's, `False` in `"paper"`):
            Also apply the ground-truth loss to every siamese clip (and let them receive gradient). By default the
            siamese clips only act as the teacher and run under `torch.no_grad`.
        siamese_distillation_temperature (`float`, *optional*, defaults to the preset's, 1.0 in `"paper"`):
            Distillation temperature T: the clips' predictions P that build Q and the anchor's prediction in
            L_siamese are both softmaxes of scores / T, and L_siamese is multiplied by T² (BAKE and Hinton et al.
            use T = 4; the paper's T = 1). Exactly neutral for the count task, whose P is the count itself.
        siamese_soft_label (`str`, *optional*, defaults to the preset's, `"eq5"` in `"paper"`, else `"anchor_row"`):
            Where Q comes from. `"eq5"`: Q = ω·W1 Â P + (1 − ω)·W2 P with W1, W2 over the N clips (the paper).
            `"anchor_row"`: Q = ω·Â(0, :) P + (1 − ω)·p_anchor, the anchor's own row (BAKE's per-sample soft label;
            no W1, W2). `"eq5_anchor_init"`: Eq. 5 with W1 and W2 starting with weight 0.9 on the anchor. With W1
            uniform Eq. 5 weighs clip j by a column mean of Â, about 1/N when Â is near uniform (docs/design.md).
            `"smoothed_label"`: a control for studies, not a reading of the paper: Q = (1 − ε)·onehot(label) + ε/K
            with ε = `siamese_label_smoothing`, a soft label that knows nothing beyond the label (tasks with classes
            only, not the count task).
        siamese_label_smoothing (`float`, *optional*, defaults to 0.1):
            ε of `siamese_soft_label="smoothed_label"` (unused otherwise).
        siamese_propagation (`str`, *optional*, defaults to the preset's, `"one_step"` in `"paper"`):
            `"one_step"`: Â P of Eq. 3-4. `"closed_form"`: Â propagates BAKE's fixed point Q∞ = (1 − ω)(I − ωÂ)⁻¹P
            of Q∞ = ωÂQ∞ + (1 − ω)P instead of P (needs ω < 1); with `"anchor_row"`, Q = Q∞(0, :) exactly.
        siamese_loss_weight_warmup (`float`, *optional*, defaults to the preset's, 0.0 in `"paper"`):
            Fraction of the training steps over which α rises linearly from 0 to `siamese_loss_weight` (0: α from
            the first step, the paper). The Trainer's `SiameseLossWarmupCallback` (training/callbacks.py) tells the
            model its progress.
        vision_frozen_batchnorm (`bool`, *optional*, defaults to `True`):
            Keep the ResNet's BatchNorm layers in inference mode with fixed statistics and affine parameters, as
            ClipBERT's detectron2 backbone does (batches of one video per GPU are common).
        vision_cls_token (`bool`, *optional*, defaults to `True`):
            ViT backbones: also pass the backbone's image- or clip-level token (its pooled output where it has one:
            CLIP's normalised class token, SigLIP's attention-pooled embedding, ViViT's pooled class token; else its
            class token: TimeSformer's) as a visual token of every frame (image ViTs) or clip (video transformers).
            Without it only the patch tokens are kept (the backbone's pooling head is then unused and frozen).
            VideoMAE and the ResNet have no such token.
        vision_temporal_pooling (`str`, *optional*, defaults to `"mean"`):
            How the tokens of the frames (or of the tubelet time steps of a video transformer) of a clip become its
            visual tokens: `"mean"` averages them over time (ClipBERT); `"concat"` keeps every time step's tokens,
            with a learned temporal position embedding.
        vision_spatial_pooling (`int`, *optional*, defaults to 1):
            Average-pool the grid of visual tokens by this factor in both directions (e.g. 2: a 14x14 grid of ViT patch
            tokens becomes 7x7, the number ClipBERT's ResNet gives at 448 pixels), to shorten the multimodal
            transformer's sequence.
        max_temporal_position_embeddings (`int`, *optional*, defaults to 64):
            Largest number of time steps of visual tokens with `vision_temporal_pooling="concat"`.
        freeze_vision (`bool`, *optional*, defaults to `False`):
            Train no weight of the vision backbone (its adapter still trains): for small GPUs, or a linear-probe
            style fine-tuning. The backbone then stores no activations for the backward pass.
        vision_trainable_layers (`int`, *optional*):
            Train only the last this many layers (blocks; a ResNet's stages) of the vision backbone and what follows
            them (its final norm; with 0 only that); the earlier ones and the embeddings are frozen. None: train all of
            them.
        max_grid_row_position_embeddings (`int`, *optional*, defaults to 100):
            Largest number of rows of visual tokens (frame height / 64 after the grid encoder's pooling).
        max_grid_col_position_embeddings (`int`, *optional*, defaults to 100):
            Largest number of columns of visual tokens.

    Example:

    ```python
    >>> from modeling_siasamrea import SiaSamReaConfig, SiaSamReaForVideoQuestionAnswering

    >>> config = SiaSamReaConfig(task="open_ended", num_answers=1000)
    >>> model = SiaSamReaForVideoQuestionAnswering(config)
    ```"""

    model_type = "siasamrea"
    # any vision config (AutoConfig, as LLaVA's): a dict without `model_type` is a ResNet's, as in every folder saved
    # so far
    sub_configs_defaults = {
        "vision_config": SubConfigSpec(config_class=AutoConfig, model_type="resnet"),
        "text_config": BertConfig,
    }

    vision_config: dict | PreTrainedConfig | None = None
    text_config: dict | BertConfig | None = None
    task: str | None = "open_ended"
    num_answers: int | None = None
    tasks: dict[str, dict[str, Any]] | None = None
    num_siamese_clips: int = 8
    num_frames: int | str | None = None
    siamese_preset: str = DEFAULT_SIAMESE_PRESET
    siamese_loss_weight: float | None = None
    siamese_omega: float = 0.5
    siamese_temperature: float | None = None
    siamese_feature_centering: bool | None = None
    siamese_knowledge: str = "similarity"
    siamese_projection: bool = False
    learnable_clip_weights: bool = True
    siamese_clips_supervised: bool | None = None
    siamese_distillation_temperature: float | None = None
    siamese_soft_label: str | None = None
    siamese_propagation: str | None = None
    siamese_loss_weight_warmup: float | None = None
    siamese_label_smoothing: float = 0.1
    vision_frozen_batchnorm: bool = True
    vision_cls_token: bool = True
    vision_temporal_pooling: str = "mean"
    vision_spatial_pooling: int = 1
    max_temporal_position_embeddings: int = 64
    freeze_vision: bool = False
    vision_trainable_layers: int | None = None
    max_grid_row_position_embeddings: int = 100
    max_grid_col_position_embeddings: int = 100

    def __post_init__(self, **kwargs):
        if self.id2label is None and self.num_answers is not None:
            self.id2label = {i: f"LABEL_{i}" for i in range(self.num_answers)}
            self.label2id = {label: i for i, label in self.id2label.items()}
        super().__post_init__(**kwargs)
        if self.tasks:
            self.task = None
            self.tasks = {name: self._task_spec(name, dict(spec)) for name, spec in self.tasks.items()}
        elif self.task in TASK_TYPES and TASK_TYPES[self.task].has_vocabulary:
            if self.num_answers is not None and self.num_answers != self.num_labels:
                raise ValueError(
                    f"num_answers={self.num_answers} does not match id2label, which has {self.num_labels} answers."
                )
            self.num_answers = self.num_labels
        if self.siamese_preset not in SIAMESE_PRESETS:
            raise ValueError(f"siamese_preset must be one of {tuple(SIAMESE_PRESETS)}, got {self.siamese_preset!r}")
        for name, value in SIAMESE_PRESETS[self.siamese_preset].items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        if self.num_frames is not None:
            self.num_frames = check_num_frames(self.num_frames)
        self.validate_siamese()
        self.validate_vision()

    @classmethod
    def from_dict(cls, config_dict: dict[str, Any], **kwargs) -> "SiaSamReaConfig":
        """As `PreTrainedConfig.from_dict`, with two rules for the siamese preset: a saved config without
        `siamese_preset` (written before presets existed) keeps the paper's objective, whatever today's default; and
        siamese settings passed as keyword arguments (e.g. `from_pretrained(path, siamese_preset="paper")`) are
        resolved and checked like constructor arguments -- a new preset replaces every setting the saved one gave."""
        config_dict = {"siamese_preset": PRESET_OF_OLDER_CONFIGS, **config_dict}
        if kwargs.get("siamese_preset") is not None:
            config_dict = {key: value for key, value in config_dict.items() if key not in PRESET_FIELDS}
        for name in ("siamese_preset", *PRESET_FIELDS):
            if name in kwargs:
                config_dict[name] = kwargs.pop(name)
        return super().from_dict(config_dict, **kwargs)

    @staticmethod
    def _task_spec(name: str, spec: dict[str, Any]) -> dict[str, Any]:
        """A checked entry of `tasks`: its type, its answers (open-ended only) and its loss weight."""
        task_type = get_task_type(spec.get("type"))
        answers = spec.get("answers")
        if task_type.has_vocabulary:
            if not answers:
                raise ValueError(f"task {name!r} is {task_type.name} and needs its answer vocabulary in 'answers'")
        elif answers is not None:
            raise ValueError(f"task {name!r} is {task_type.name}: it takes no 'answers'")
        weight = float(spec.get("loss_weight", 1.0))
        if weight < 0:
            raise ValueError(f"task {name!r}: loss_weight must be >= 0, got {weight}")
        unknown = set(spec) - {"type", "answers", "loss_weight"}
        if unknown:
            raise ValueError(f"task {name!r}: unknown keys {sorted(unknown)} (type, answers, loss_weight)")
        return {"type": task_type.name, **({"answers": list(answers)} if answers else {}), "loss_weight": weight}

    @property
    def task_names(self) -> tuple[str, ...]:
        """The model's tasks: the names of `tasks`, or the one `task`."""
        return tuple(self.tasks) if self.tasks else (self.task,)

    def resolve_task(self, task: str | None = None) -> str:
        """The task a call is about: `task`, or the only one; a multi-task model needs it named."""
        if task is None:
            if len(self.task_names) > 1:
                raise ValueError(f"this model answers several tasks: name one with task=..., one of {self.task_names}")
            return self.task_names[0]
        if task not in self.task_names:
            raise ValueError(f"unknown task {task!r}; this model's tasks are {self.task_names}")
        return task

    def task_type(self, task: str | None = None) -> TaskType:
        """The task type (`tasks.TaskType`) of a task of this model."""
        name = self.resolve_task(task)
        return get_task_type(self.tasks[name]["type"] if self.tasks else name)

    def answers(self, task: str | None = None) -> dict[int, str] | None:
        """`{id: answer}` of an open-ended task (`id2label` for a single-task model), else None."""
        name = self.resolve_task(task)
        if not self.task_type(name).has_vocabulary:
            return None
        if self.tasks:
            return dict(enumerate(self.tasks[name]["answers"]))
        return {int(i): label for i, label in self.id2label.items()}

    def loss_weight(self, task: str | None = None) -> float:
        """The weight of a task's loss (1 for a single-task model)."""
        name = self.resolve_task(task)
        return self.tasks[name]["loss_weight"] if self.tasks else 1.0

    def validate_siamese(self) -> None:
        """Raise a `ValueError` naming the field for any value outside its domain."""
        for field in SIAMESE_VARIANTS:  # the variants' names and what they do live in siamese_reasoning.py
            siamese_variant(field, getattr(self, field))
        checks = [
            (self.tasks or self.task in TASK_TYPES, f"task must be one of {tuple(TASK_TYPES)}, got {self.task!r}"),
            (self.num_siamese_clips >= 0, f"num_siamese_clips must be >= 0, got {self.num_siamese_clips}"),
            (self.siamese_loss_weight >= 0,
             f"siamese_loss_weight (alpha) must be >= 0, got {self.siamese_loss_weight}"),
            (0.0 <= self.siamese_omega <= 1.0, f"siamese_omega (omega) must be in [0, 1], got {self.siamese_omega}"),
            (self.siamese_temperature > 0, f"siamese_temperature must be > 0, got {self.siamese_temperature}"),
            (
                self.siamese_distillation_temperature > 0,
                f"siamese_distillation_temperature (T) must be > 0, got {self.siamese_distillation_temperature}",
            ),
            (
                self.siamese_propagation != "closed_form" or self.siamese_omega < 1.0,
                f"siamese_propagation='closed_form' needs siamese_omega < 1 (I - ωÂ is singular at ω = 1), "
                f"got {self.siamese_omega}",
            ),
            (
                0.0 <= self.siamese_label_smoothing <= 1.0,
                f"siamese_label_smoothing must be in [0, 1], got {self.siamese_label_smoothing}",
            ),
            (
                0.0 <= self.siamese_loss_weight_warmup <= 1.0,
                f"siamese_loss_weight_warmup must be a fraction of the training steps in [0, 1], "
                f"got {self.siamese_loss_weight_warmup}",
            ),
            (
                self.task not in TASK_TYPES or not TASK_TYPES[self.task].has_vocabulary or self.num_labels >= 1,
                f"an open-ended model needs num_answers >= 1, got {self.num_labels}",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        if siamese_variant("siamese_soft_label", self.siamese_soft_label).needs_classes:
            counts = [name for name in self.task_names if not self.task_type(name).has_classes]
            if counts:
                others = tuple(source for source, variant in SIAMESE_VARIANTS["siamese_soft_label"].items()
                               if not variant.needs_classes)
                raise ValueError(
                    f"siamese_soft_label={self.siamese_soft_label!r} needs the labels of tasks with classes "
                    f"(open-ended or multiple choice), not of the count task (task {', '.join(counts)}): set "
                    f"siamese_soft_label to one of {others}"
                )

    def validate_vision(self) -> None:
        """Raise a `ValueError` for a vision backbone outside `VISION_FAMILIES` or a vision setting outside its
        domain."""
        model_type = self.vision_config.model_type
        if model_type in VISION_TOWERS:
            raise ValueError(
                f"vision_config is a {model_type!r} image-text config: pass its vision_config (model_type "
                f"{VISION_TOWERS[model_type]!r}), or build the model with from_vision_text_pretrained"
            )
        if model_type not in VISION_FAMILIES:
            raise ValueError(
                f"vision_config has model_type {model_type!r}, which is not a supported vision backbone; supported: "
                f"{sorted(VISION_FAMILIES)}"
            )
        checks = [
            (
                self.vision_temporal_pooling in TEMPORAL_POOLINGS,
                f"vision_temporal_pooling must be one of {TEMPORAL_POOLINGS}, got {self.vision_temporal_pooling!r}",
            ),
            (
                self.vision_spatial_pooling >= 1,
                f"vision_spatial_pooling must be >= 1, got {self.vision_spatial_pooling}",
            ),
            (
                self.max_temporal_position_embeddings >= 1,
                f"max_temporal_position_embeddings must be >= 1, got {self.max_temporal_position_embeddings}",
            ),
            (
                self.vision_trainable_layers is None or self.vision_trainable_layers >= 0,
                f"vision_trainable_layers must be None or >= 0, got {self.vision_trainable_layers}",
            ),
            (
                self.fixed_clip_num_frames is None or self.num_frames in (None, self.fixed_clip_num_frames),
                f"num_frames={self.num_frames!r}, but this {model_type} backbone takes clips of "
                f"{self.fixed_clip_num_frames} frames (its num_frames) and no other: leave num_frames unset or set it "
                f"to {self.fixed_clip_num_frames}",
            ),
            (
                not (self.freeze_vision and self.vision_trainable_layers),
                f"freeze_vision=True freezes every layer of the vision backbone, but vision_trainable_layers="
                f"{self.vision_trainable_layers} asks to train some: set one of them",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    @property
    def vision_family(self) -> str:
        """`"grid"`, `"frame"` or `"video"`: how the vision backbone sees a clip (`VISION_FAMILIES`)."""
        return VISION_FAMILIES[self.vision_config.model_type]

    @property
    def backbone_num_frames(self) -> int | None:
        """Frames per clip a video transformer backbone is built for (its `num_frames`); None for per-frame ones."""
        return self.vision_config.num_frames if self.vision_family == "video" else None

    @property
    def fixed_clip_num_frames(self) -> int | None:
        """Frames per clip a backbone takes and no other (`FIXED_CLIP_BACKBONES`: its `num_frames`); None for any."""
        return self.vision_config.num_frames if self.vision_config.model_type in FIXED_CLIP_BACKBONES else None

    def clip_num_frames(self, default: int | str = "auto") -> int | str:
        """Frames per clip this model samples: `num_frames`, else its video transformer backbone's clip length, else
        `default`."""
        return self.num_frames or self.backbone_num_frames or default

    @property
    def hidden_size(self) -> int:
        """Width of the multimodal transformer (and of the visual tokens)."""
        return self.text_config.hidden_size

    @property
    def num_clips(self) -> int:
        """N of the paper: the anchor clip plus the siamese clips."""
        return 1 + self.num_siamese_clips


__all__ = ["SiaSamReaConfig"]
