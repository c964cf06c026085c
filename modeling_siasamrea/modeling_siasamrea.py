"""PyTorch SiaSamRea: a vision backbone of any of three families (ClipBERT's ResNet grid, an image ViT per frame, a
video transformer) with its adapter, BERT text embeddings and multimodal transformer, and the siamese training head."""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, BertModel, PreTrainedModel
from transformers import initialization as init
from transformers.masking_utils import create_bidirectional_mask
from transformers.modeling_outputs import BaseModelOutput, BaseModelOutputWithPooling
from transformers.models.auto.modeling_auto import MODEL_MAPPING
from transformers.models.bert.modeling_bert import (
    BertEmbeddings,
    BertEncoder,
    BertLayer,
    BertPooler,
    BertSelfAttention,
)
from transformers.processing_utils import Unpack
from transformers.utils import ModelOutput, TransformersKwargs, logging
from transformers.utils.generic import can_return_tuple
from transformers.utils.output_capturing import capture_outputs

from .configuration_siasamrea import VISION_TOWERS, SiaSamReaConfig
from .siamese_reasoning import SiameseKnowledgeHead
from .tasks import TaskType

logger = logging.get_logger(__name__)


@dataclass
class SiaSamReaVideoQAOutput(ModelOutput):
    r"""
    loss (`torch.FloatTensor` of shape `()`, *optional*, returned when `labels` is provided):
        L = L_gt + α·L_siamese + L_clip_weights (Eq. 8 plus the ground-truth term that trains W1, W2).
    logits (`torch.FloatTensor` of shape `(batch, num_answers)`, `(batch, num_choices)` or `(batch, 1)`):
        Anchor-clip scores of the task asked: answer logits, choice scores or the predicted count.
    clip_logits (`torch.FloatTensor` of shape `(batch, num_clips, ...)`):
        The same scores for every clip passed in (anchor first).
    loss_gt (`torch.FloatTensor` of shape `()`, *optional*):
        Ground-truth task loss on the anchor (on every clip with `siamese_clips_supervised`).
    loss_siamese (`torch.FloatTensor` of shape `()`, *optional*):
        L_siamese: the anchor prediction against the soft label Q (a detached teacher).
    loss_clip_weights (`torch.FloatTensor` of shape `()`, *optional*):
        Ground truth against Q, whose gradient reaches only W1, W2 (and F when `siamese_projection`).
    loss_siamese_kl (`torch.FloatTensor` of shape `()`, *optional*):
        The part of L_siamese that the anchor can reduce: T²·KL(Q ‖ p_anchor); L_siamese minus T²·H(Q).
    soft_label_entropy (`torch.FloatTensor` of shape `()`, *optional*):
        H(Q) in nats, mean over the batch (ln K for a uniform Q); not for the count task.
    siamese_knowledge (`torch.FloatTensor` of shape `(batch, num_clips, num_clips)`, *optional*):
        Â of Eq. 2.
    soft_labels (`torch.FloatTensor` of the shape of `logits`, *optional*):
        Q of Eq. 5, the anchor's distillation target (built at the distillation temperature).
    pooler_output (`torch.FloatTensor` of shape `(batch, num_clips, [num_choices,] hidden_size)`):
        Clip-text features f of every clip.
    hidden_states (`tuple(torch.FloatTensor)`, *optional*, returned with `output_hidden_states=True`):
        The multimodal transformer's input and layer outputs for every clip (and choice) passed in, each
        `(batch * num_clips [* num_choices], text_length + visual_tokens, hidden_size)`, ordered batch, clip, choice.
    attentions (`tuple(torch.FloatTensor)`, *optional*, returned with `output_attentions=True`):
        Its attention weights per layer, `(batch * num_clips [* num_choices], heads, seq_len, seq_len)`, same order.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    clip_logits: torch.FloatTensor | None = None
    loss_gt: torch.FloatTensor | None = None
    loss_siamese: torch.FloatTensor | None = None
    loss_clip_weights: torch.FloatTensor | None = None
    loss_siamese_kl: torch.FloatTensor | None = None
    soft_label_entropy: torch.FloatTensor | None = None
    siamese_knowledge: torch.FloatTensor | None = None
    soft_labels: torch.FloatTensor | None = None
    pooler_output: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


class SiaSamReaPreTrainedModel(PreTrainedModel):
    config_class = SiaSamReaConfig
    config: SiaSamReaConfig
    base_model_prefix = "siasamrea"
    main_input_name = "pixel_values"
    input_modalities = ("video", "text")
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _no_split_modules = ["BertLayer", "ResNetBottleNeckLayer", "ResNetBasicLayer"]
    # hidden states and attentions of the multimodal transformer (the vision backbone has its own, see
    # get_video_features)
    _can_record_outputs = {"hidden_states": BertLayer, "attentions": BertSelfAttention}

    def set_attn_implementation(self, attn_implementation: str | dict, allow_all_kernels: bool = False) -> None:
        """As `PreTrainedModel.set_attn_implementation`, but a plain string applies to the vision backbone only if it
        supports it: a ResNet has no attention and TimeSformer only eager attention, so they stay eager, where
        transformers would reject e.g. SDPA."""
        if isinstance(attn_implementation, str):
            backbone = type(self.base_model.vision_encoder.backbone)
            attn_implementation = {"": attn_implementation, "text_config": attn_implementation,
                                   "vision_config": supported_attention(backbone, attn_implementation)}
        super().set_attn_implementation(attn_implementation, allow_all_kernels=allow_all_kernels)

    @classmethod
    def from_pretrained(cls, *args: Any, **kwargs: Any) -> "SiaSamReaPreTrainedModel":
        """`PreTrainedModel.from_pretrained` with the Hub's kernels off unless asked for (`use_kernels=True`): by
        default transformers swaps layers for kernels downloaded from the Hub when the model runs on CUDA, which fails
        offline (`HF_HUB_OFFLINE=1`, clusters without internet: "kernels-community/activation is not available in the
        local cache") and makes numerics depend on what was downloaded."""
        kwargs.setdefault("use_kernels", False)
        return super().from_pretrained(*args, **kwargs)

    @classmethod
    def is_custom_code(cls) -> bool:
        """False: like the library's models, `_init_weights` initialises with `transformers.initialization` and no
        module is tied, so transformers' own initialisation rules apply. (For custom code it skips a module whose own
        parameters are all loaded, which would skip SigLIP's and CLIP's layer-level initialisation of their linear
        layers when a folder lacks them.)"""
        return False

    def save_pretrained(self, save_directory: str | os.PathLike, *args: Any, **kwargs: Any) -> None:
        """`PreTrainedModel.save_pretrained`, and the folder loads as a `video-question-answering` pipeline too (with
        `trust_remote_code=True` and a saved processor): the config names the pipeline, and because this method
        imports the pipeline's module, transformers copies its code next to the model's."""
        from .pipeline_siasamrea import custom_pipelines

        self.config.custom_pipelines = custom_pipelines()
        super().save_pretrained(save_directory, *args, **kwargs)

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, nn.Conv2d):
            init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, BertEmbeddings):
            init.copy_(module.position_ids, torch.arange(module.position_ids.shape[-1]).expand((1, -1)))
            init.zeros_(module.token_type_ids)
        elif isinstance(module, SiameseKnowledgeHead):
            init.zeros_(module.clip_weight_logits)
            init.copy_(module.clip_weight_prior, module._prior())


# The family adapters below turn a clip `(clips, frames, 3, H, W)` into a grid of visual tokens `(clips, T, R, C, h)`
# at the transformer width h (T time steps: frames, or a video transformer's tubelet steps) and optional extra tokens
# `(clips, T', E, h)` (a ViT's class / pooled token); `SiaSamReaVisualEmbeddings` pools them into the clip's tokens.

# Modules of a backbone that only compute its pooled output: unused, hence frozen, without `vision_cls_token`
POOLING_HEADS = {"clip_vision_model": "post_layernorm", "siglip_vision_model": "head", "siglip2_vision_model": "head",
                 "vivit": "pooler"}
# attention implementations and the class flag saying that a backbone supports them (eager: every backbone)
ATTENTION_SUPPORT = {"sdpa": "_supports_sdpa", "flash_attention_2": "_supports_flash_attn",
                     "flash_attention_3": "_supports_flash_attn", "flex_attention": "_supports_flex_attn"}


def supported_attention(model_class: type[PreTrainedModel], requested: str | None) -> str | None:
    """`requested` if the backbone class supports it, else eager (a ResNet has no attention, TimeSformer only eager);
    None leaves the backbone its own default."""
    if requested in (None, "eager") or getattr(model_class, ATTENTION_SUPPORT.get(requested, ""), False):
        return requested
    return "eager"


def build_backbone(config: SiaSamReaConfig) -> PreTrainedModel:
    """`AutoModel.from_config(config.vision_config)` (as LLaVA builds its vision tower), with an attention
    implementation the backbone supports: the model's where it can, else eager."""
    vision_config = config.vision_config
    model_class = MODEL_MAPPING[type(vision_config)]
    requested = vision_config._attn_implementation or config._attn_implementation
    vision_config._attn_implementation_internal = supported_attention(model_class, requested)
    return AutoModel.from_config(vision_config)


def freeze_backbone(backbone: PreTrainedModel, config: SiaSamReaConfig) -> None:
    """Stop training the backbone weights that `freeze_vision`, `vision_trainable_layers` and `vision_cls_token`
    leave out: all of them, all but its last layers (the blocks of its largest `ModuleList`, and what comes after
    them), its pooling head when nothing uses it."""
    frozen = []
    if config.freeze_vision:
        frozen = list(backbone.parameters())
    elif config.vision_trainable_layers is not None:
        blocks = max((module for module in backbone.modules() if isinstance(module, nn.ModuleList)),
                     key=lambda module: sum(parameter.numel() for parameter in module.parameters()))
        if config.vision_trainable_layers > len(blocks):
            raise ValueError(f"vision_trainable_layers={config.vision_trainable_layers}, but the vision backbone has "
                             f"{len(blocks)} layers")
        parameters = list(backbone.parameters())
        position = {id(parameter): index for index, parameter in enumerate(parameters)}
        frozen_blocks = list(blocks[: len(blocks) - config.vision_trainable_layers].parameters())
        # the embeddings and the frozen blocks; the trained blocks and what follows them (the final norm) train
        start = position[id(frozen_blocks[-1])] + 1 if frozen_blocks else position[id(next(blocks.parameters()))]
        frozen = parameters[:start]
    head = POOLING_HEADS.get(config.vision_config.model_type)
    if not config.vision_cls_token and head is not None:
        frozen += [parameter for name, parameter in backbone.named_parameters() if name.startswith(head + ".")]
    for parameter in frozen:
        parameter.requires_grad_(False)


def class_tokens(outputs: BaseModelOutputWithPooling, num_patches: int) -> torch.Tensor | None:
    """A ViT's image- or clip-level tokens `(n, E, D)`: its pooled output (CLIP's normalised class token, SigLIP's
    attention pooling, ViViT's pooler), else the tokens before its `num_patches` patch tokens (TimeSformer's class
    token); None when it has neither (VideoMAE, SigLIP without its head)."""
    tokens, pooled = outputs.last_hidden_state, getattr(outputs, "pooler_output", None)
    pooled = tokens[:, : tokens.shape[1] - num_patches] if pooled is None else pooled[:, None]  # (n, E, D)
    return pooled if pooled.shape[1] else None


class SiaSamReaGridEncoder(nn.Module):
    """A CNN (ResNet) on every frame → its last feature map → ClipBERT's grid encoder (3×3 conv to the transformer
    width, 2×2 max-pool, ReLU)."""

    def __init__(self, config: SiaSamReaConfig):
        super().__init__()
        self.backbone = build_backbone(config)
        self.grid_encoder = nn.Sequential(
            nn.Conv2d(config.vision_config.hidden_sizes[-1], config.hidden_size, kernel_size=3, padding=1),
            nn.MaxPool2d(kernel_size=2, stride=2),
            nn.ReLU(),
        )
        self.frozen_batchnorm = config.vision_frozen_batchnorm
        self.gradient_checkpointing = False
        if self.frozen_batchnorm:
            for module in self._batchnorms():
                module.requires_grad_(False)

    def _batchnorms(self) -> list[nn.BatchNorm2d]:
        return [module for module in self.backbone.modules() if isinstance(module, nn.BatchNorm2d)]

    def train(self, mode: bool = True) -> "SiaSamReaGridEncoder":
        super().train(mode)
        if self.frozen_batchnorm:
            for module in self._batchnorms():
                module.eval()
        return self

    def forward(
        self, pixel_values: torch.Tensor, output_hidden_states: bool = False, output_attentions: bool = False
    ) -> tuple[torch.Tensor, None, BaseModelOutput]:
        """Clips `(clips, frames, 3, H, W)` → for a ResNet-50 (stride 32, then pooled) the grid
        `(clips, frames, H/64, W/64, hidden_size)`, no extra tokens, and the ResNet's output: its last feature map
        `(clips * frames, C, H/32, W/32)` and (with `output_hidden_states`) the embedder's and every stage's."""
        num_clips, num_frames = pixel_values.shape[:2]
        hidden_state = self.backbone.embedder(pixel_values.flatten(0, 1))  # (clips * frames, 3, H, W) -> ...
        hidden_states = [hidden_state]
        for stage in self.backbone.encoder.stages:
            if self.gradient_checkpointing and self.training and torch.is_grad_enabled():
                hidden_state = self._gradient_checkpointing_func(stage.__call__, hidden_state)
            else:
                hidden_state = stage(hidden_state)
            hidden_states.append(hidden_state)
        grid = self.grid_encoder(hidden_state)  # (clips * frames, h, R, C)
        grid = grid.unflatten(0, (num_clips, num_frames)).permute(0, 1, 3, 4, 2)  # -> (clips, frames, R, C, h)
        return grid, None, BaseModelOutput(
            last_hidden_state=hidden_state, hidden_states=tuple(hidden_states) if output_hidden_states else None
        )


class SiaSamReaFrameEncoder(nn.Module):
    """An image ViT (CLIP, SigLIP, SigLIP2 vision tower) on every frame as a batch of images → its patch tokens (and
    its pooled / class token) projected to the transformer width."""

    def __init__(self, config: SiaSamReaConfig):
        super().__init__()
        self.backbone = build_backbone(config)
        self.projection = nn.Linear(config.vision_config.hidden_size, config.hidden_size)
        self.patch_size = config.vision_config.patch_size
        self.image_size = getattr(config.vision_config, "image_size", None)
        self.takes_patches = config.vision_config.model_type == "siglip2_vision_model"  # NaFlex: patches + shapes
        self.cls_token = config.vision_cls_token

    def _run_backbone(self, frames: torch.Tensor, **kwargs: Any) -> BaseModelOutputWithPooling:
        """The backbone on images `(n, 3, H, W)`, as patches with their grid shape for SigLIP2."""
        num_images, channels, height, width = frames.shape
        rows, cols, patch = height // self.patch_size, width // self.patch_size, self.patch_size
        if self.takes_patches:  # (n, 3, R*p, C*p) -> (n, R, C, p, p, 3) -> (n, R*C, p*p*3), SigLIP2's patch layout
            patches = frames[..., : rows * patch, : cols * patch]
            patches = patches.reshape(num_images, channels, rows, patch, cols, patch)
            patches = patches.permute(0, 2, 4, 3, 5, 1).reshape(num_images, rows * cols, -1)
            shapes = torch.tensor([[rows, cols]], device=frames.device).expand(num_images, 2)
            mask = torch.ones(num_images, rows * cols, dtype=torch.long, device=frames.device)
            return self.backbone(pixel_values=patches, pixel_attention_mask=mask, spatial_shapes=shapes, **kwargs)
        resized = self.image_size is not None and (height, width) != (self.image_size, self.image_size)
        return self.backbone(pixel_values=frames, interpolate_pos_encoding=resized, **kwargs)

    def forward(
        self, pixel_values: torch.Tensor, output_hidden_states: bool = False, output_attentions: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None, BaseModelOutput]:
        """Clips `(clips, frames, 3, H, W)` → the grid `(clips, frames, H/p, W/p, hidden_size)` of projected patch
        tokens (patch size p), the projected pooled token of every frame `(clips, frames, 1, hidden_size)` (with
        `vision_cls_token`), and the backbone's output with every frame's tokens of a clip in a row:
        `last_hidden_state` `(clips, frames * tokens, vision hidden size)` and hidden states alike; the attentions
        stay per frame, `(clips * frames, heads, tokens, tokens)` (a frame attends only within itself)."""
        num_clips, num_frames, _, height, width = pixel_values.shape
        rows, cols = height // self.patch_size, width // self.patch_size
        outputs = self._run_backbone(pixel_values.flatten(0, 1), output_hidden_states=output_hidden_states,
                                     output_attentions=output_attentions)  # (clips * frames, E + R*C, D)
        tokens = outputs.last_hidden_state
        patches = self.projection(tokens[:, tokens.shape[1] - rows * cols:])  # prefix (class) tokens come first
        # (clips * frames, R*C, h) -> (clips, frames, R, C, h)
        grid = patches.view(num_clips, num_frames, rows, cols, -1)
        extra = class_tokens(outputs, rows * cols) if self.cls_token else None
        if extra is not None:  # (clips * frames, E, D) -> (clips, frames, E, h)
            extra = self.projection(extra).unflatten(0, (num_clips, num_frames))

        def per_clip(states: torch.Tensor) -> torch.Tensor:
            return states.unflatten(0, (num_clips, num_frames)).flatten(1, 2)  # -> (clips, frames * tokens, D)

        return grid, extra, BaseModelOutput(
            last_hidden_state=per_clip(tokens),
            hidden_states=None if outputs.hidden_states is None else tuple(map(per_clip, outputs.hidden_states)),
            attentions=outputs.attentions,
        )


class SiaSamReaVideoEncoder(nn.Module):
    """A video transformer (VideoMAE, TimeSformer, ViViT) on every clip → its spatio-temporal tokens (one per tubelet)
    and its class / pooled token, projected to the transformer width."""

    def __init__(self, config: SiaSamReaConfig):
        super().__init__()
        vision_config = config.vision_config
        self.backbone = build_backbone(config)
        self.projection = nn.Linear(vision_config.hidden_size, config.hidden_size)
        self.model_type = vision_config.model_type
        if self.model_type == "vivit":
            self.tubelet = tuple(vision_config.tubelet_size)  # (t, p_h, p_w)
        else:  # TimeSformer: one frame per token
            time = vision_config.tubelet_size if self.model_type == "videomae" else 1
            self.tubelet = (time, vision_config.patch_size, vision_config.patch_size)
        if self.model_type == "timesformer" and vision_config.attention_type != "divided_space_time":
            raise ValueError(f"a TimeSformer backbone with attention_type={vision_config.attention_type!r} gives no "
                             "spatio-temporal tokens; use 'divided_space_time'")
        self.num_frames = config.fixed_clip_num_frames  # VideoMAE's, ViViT's; TimeSformer's embeddings are resized
        self.image_size = vision_config.image_size
        self.cls_token = config.vision_cls_token

    def forward(
        self, pixel_values: torch.Tensor, output_hidden_states: bool = False, output_attentions: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None, BaseModelOutput]:
        """Clips `(clips, frames, 3, H, W)` → the grid `(clips, frames/t, H/p, W/p, hidden_size)` of projected tubelet
        tokens (tubelet t×p×p), the projected class / pooled token `(clips, 1, 1, hidden_size)` (with
        `vision_cls_token`, where the backbone has one), and the backbone's output."""
        num_clips, num_frames, _, height, width = pixel_values.shape
        if self.num_frames is not None and num_frames != self.num_frames:
            raise ValueError(f"this {self.model_type} backbone takes clips of {self.num_frames} frames (its "
                             f"num_frames), got {num_frames}: sample {self.num_frames} frames per clip")
        steps, rows, cols = num_frames // self.tubelet[0], height // self.tubelet[1], width // self.tubelet[2]
        kwargs = {}
        if self.model_type == "vivit":  # its spatial position embeddings are resized on request
            kwargs["interpolate_pos_encoding"] = (height, width) != (self.image_size, self.image_size)
        outputs = self.backbone(pixel_values=pixel_values, output_hidden_states=output_hidden_states,
                                output_attentions=output_attentions, **kwargs)  # (clips, E + steps*R*C, D)
        tokens = outputs.last_hidden_state
        patches = self.projection(tokens[:, tokens.shape[1] - steps * rows * cols:])  # (clips, steps*R*C, h)
        if self.model_type == "timesformer":  # space-major: (clips, R*C*steps, h) -> (clips, R, C, steps, h) -> ...
            grid = patches.view(num_clips, rows, cols, steps, -1).permute(0, 3, 1, 2, 4)
        else:  # (clips, steps*R*C, h) -> (clips, steps, R, C, h)
            grid = patches.view(num_clips, steps, rows, cols, -1)
        extra = class_tokens(outputs, steps * rows * cols) if self.cls_token else None
        if extra is not None:  # (clips, E, D) -> (clips, 1, E, h)
            extra = self.projection(extra)[:, None]
        return grid, extra, BaseModelOutput(
            last_hidden_state=tokens, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )


VISION_ENCODERS = {"grid": SiaSamReaGridEncoder, "frame": SiaSamReaFrameEncoder, "video": SiaSamReaVideoEncoder}


class SiaSamReaVisualEmbeddings(nn.Module):
    """Visual tokens of a clip → temporal pooling (mean, or concatenation with learned temporal position embeddings),
    optional spatial pooling, learned row/column position and token-type embeddings, LayerNorm."""

    def __init__(self, config: SiaSamReaConfig):
        super().__init__()
        hidden_size = config.hidden_size
        self.row_position_embeddings = nn.Embedding(config.max_grid_row_position_embeddings, hidden_size)
        self.col_position_embeddings = nn.Embedding(config.max_grid_col_position_embeddings, hidden_size)
        self.temporal_pooling = config.vision_temporal_pooling
        if self.temporal_pooling == "concat":
            self.temporal_position_embeddings = nn.Embedding(config.max_temporal_position_embeddings, hidden_size)
        self.spatial_pooling = config.vision_spatial_pooling
        self.token_type_embeddings = nn.Embedding(1, hidden_size)
        self.LayerNorm = nn.LayerNorm(hidden_size, eps=config.text_config.layer_norm_eps)
        self.dropout = nn.Dropout(config.text_config.hidden_dropout_prob)

    def forward(self, grid: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        """`grid` `(clips, T, R, C, hidden)` and `extra` `(clips, T', E, hidden)` or None → `(clips, [T' *] E +
        [T *] R' * C', hidden)`: the extra tokens, then the grid's row by row (R' = ceil(R / spatial pooling))."""
        if self.temporal_pooling == "mean":  # (clips, T, R, C, h) -> (clips, 1, R, C, h)
            grid = grid.mean(dim=1, keepdim=True)
            extra = None if extra is None else extra.mean(dim=1, keepdim=True)
        if self.spatial_pooling > 1:  # (clips * T, h, R, C) -> (clips * T, h, R', C') -> (clips, T, R', C', h)
            pooled = nn.functional.avg_pool2d(grid.flatten(0, 1).permute(0, 3, 1, 2), self.spatial_pooling,
                                              ceil_mode=True)
            grid = pooled.permute(0, 2, 3, 1).unflatten(0, grid.shape[:2])
        steps, rows, cols = grid.shape[1:4]
        limits = {"rows": (rows, self.row_position_embeddings, "max_grid_row_position_embeddings"),
                  "columns": (cols, self.col_position_embeddings, "max_grid_col_position_embeddings")}
        if self.temporal_pooling == "concat":
            limits["time steps"] = (max(steps, 0 if extra is None else extra.shape[1]),
                                    self.temporal_position_embeddings, "max_temporal_position_embeddings")
        for what, (size, embeddings, field) in limits.items():
            if size > embeddings.num_embeddings:
                raise ValueError(f"the clips give {size} {what} of visual tokens, but the model has position "
                                 f"embeddings for at most {embeddings.num_embeddings}: use smaller (or fewer) frames "
                                 f"or raise {field}")
        row_ids = torch.arange(rows, device=grid.device)
        col_ids = torch.arange(cols, device=grid.device)
        grid = grid + self.row_position_embeddings(row_ids)[:, None, :] + self.col_position_embeddings(col_ids)[None]
        if self.temporal_pooling == "concat":  # (T, h) -> (T, 1, 1, h) and (T', 1, h): each time step's embedding
            grid = grid + self.temporal_position_embeddings(torch.arange(steps, device=grid.device))[:, None, None]
            if extra is not None:
                time_ids = torch.arange(extra.shape[1], device=grid.device)
                extra = extra + self.temporal_position_embeddings(time_ids)[:, None]
        tokens = grid.flatten(1, 3)  # (clips, T, R, C, h) -> (clips, T * R * C, h)
        if extra is not None:  # (clips, T', E, h) -> (clips, T' * E, h), before the grid
            tokens = torch.cat([extra.flatten(1, 2), tokens], dim=1)
        tokens = tokens + self.token_type_embeddings.weight[0]
        return self.dropout(self.LayerNorm(tokens))


class SiaSamReaModel(SiaSamReaPreTrainedModel):
    """The ClipBERT body: the vision backbone and its adapter (`VISION_ENCODERS`, by family), the visual embeddings,
    BERT text embeddings, and a BERT encoder over `[text tokens ; visual tokens]`."""

    main_input_name = "input_ids"

    def __init__(self, config: SiaSamReaConfig):
        super().__init__(config)
        # the BERT modules read the attention implementation from the text sub-config: give it the resolved one
        if config.text_config._attn_implementation is None:
            config.text_config._attn_implementation_internal = config._attn_implementation
        # ... and feed-forward chunking too: a top-level setting applies to them
        if config.chunk_size_feed_forward:
            config.text_config.chunk_size_feed_forward = config.chunk_size_feed_forward
        self.vision_encoder = VISION_ENCODERS[config.vision_family](config)
        self.visual_embeddings = SiaSamReaVisualEmbeddings(config)
        self.embeddings = BertEmbeddings(config.text_config)
        self.encoder = BertEncoder(config.text_config)
        self.pooler = BertPooler(config.text_config)
        freeze_backbone(self.vision_encoder.backbone, config)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings.word_embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embeddings.word_embeddings = value

    @can_return_tuple
    def get_video_features(
        self,
        pixel_values_videos: torch.FloatTensor,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
    ) -> BaseModelOutputWithPooling:
        r"""
        pixel_values_videos (`(clips, frames, 3, H, W)`): clips of frames.

        Returns `pooler_output`: the clips' visual tokens `(clips, V, hidden_size)`, what `forward` takes as
        `video_embeds`; `last_hidden_state`, `hidden_states` (with `output_hidden_states`) and `attentions` (with
        `output_attentions`, ViT backbones): the vision backbone's, see the family's encoder (a ResNet's last feature
        map of every frame `(clips * frames, C, h, w)`; an image ViT's tokens of a clip's frames in a row
        `(clips, frames * tokens, D)`, its attentions per frame `(clips * frames, heads, tokens, tokens)`; a video
        transformer's `(clips, tokens, D)`).
        """
        if output_hidden_states is None:
            output_hidden_states = self.config.output_hidden_states
        if output_attentions is None:
            output_attentions = self.config.output_attentions
        grid, extra, outputs = self.vision_encoder(
            pixel_values_videos, output_hidden_states=output_hidden_states, output_attentions=output_attentions
        )
        return BaseModelOutputWithPooling(
            last_hidden_state=outputs.last_hidden_state,
            pooler_output=self.visual_embeddings(grid, extra),
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )

    @capture_outputs
    def forward(
        self,
        input_ids: torch.LongTensor,
        pixel_values: torch.FloatTensor | None = None,
        attention_mask: torch.LongTensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        video_embeds: torch.FloatTensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> BaseModelOutputWithPooling:
        r"""
        input_ids (`(batch, L)`): question (or `question [SEP] choice`) tokens.
        pixel_values (`(batch, frames, 3, H, W)`): one clip per text; or pass `video_embeds` from `get_video_features`.
        video_embeds (`(batch, V, hidden_size)`): precomputed visual tokens (never masked).

        `output_hidden_states` / `output_attentions` return the multimodal transformer's, over `L + V` tokens.
        """
        if (pixel_values is None) == (video_embeds is None):
            raise ValueError("pass exactly one of pixel_values and video_embeds")
        if video_embeds is None:
            video_embeds = self.get_video_features(
                pixel_values, output_hidden_states=False, output_attentions=False, return_dict=True
            ).pooler_output  # (batch, V, h)
        text_embeds = self.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
        embeds = torch.cat([text_embeds, video_embeds], dim=1)  # (batch, L + V, h)
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        visual_mask = attention_mask.new_ones(video_embeds.shape[:2])
        attention_mask = create_bidirectional_mask(
            config=self.config.text_config,
            inputs_embeds=embeds,
            attention_mask=torch.cat([attention_mask, visual_mask], dim=1),
        )
        hidden_states = self.encoder(embeds, attention_mask=attention_mask, **kwargs).last_hidden_state
        return BaseModelOutputWithPooling(last_hidden_state=hidden_states, pooler_output=self.pooler(hidden_states))


@contextmanager
def _teacher_pass(model: nn.Module, device: torch.device) -> Iterator[None]:
    """Run the siamese clips' teacher forward without side effects on training: the random state (dropout) is
    restored afterwards (`torch.random.fork_rng`) and BatchNorm layers in training mode normalise with the clips'
    batch statistics without updating their running statistics."""
    batchnorms = [
        module for module in model.modules()
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.training and module.track_running_stats
    ]
    for module in batchnorms:
        module.track_running_stats = False  # batch statistics, running_mean / running_var / counter untouched
    on_accelerator = device.type != "cpu"
    try:
        with torch.random.fork_rng(devices=[device] if on_accelerator else [],
                                   device_type=device.type if on_accelerator else None):
            yield
    finally:
        for module in batchnorms:
            module.track_running_stats = True


def _concat_clips(
    anchor: tuple[torch.Tensor | None, ...] | None, teacher: tuple[torch.Tensor | None, ...] | None, batch_size: int
) -> tuple[torch.Tensor | None, ...] | None:
    """Per-layer outputs of the anchor and the teacher forward in the order of one forward over all clips.

    Each layer's `(batch * 1 * texts, ...)` and `(batch * (N - 1) * texts, ...)` → `(batch * N * texts, ...)`.
    """
    if anchor is None:
        return None
    return tuple(
        None
        if anchor_layer is None
        else torch.cat(  # (b, texts, ...) + (b, (N - 1) * texts, ...) -> (b, N * texts, ...) -> (b * N * texts, ...)
            [anchor_layer.unflatten(0, (batch_size, -1)), teacher_layer.unflatten(0, (batch_size, -1))], dim=1
        ).flatten(0, 1)
        for anchor_layer, teacher_layer in zip(anchor, teacher)
    )


def answer_head(hidden_size: int, num_outputs: int) -> nn.Sequential:
    """ClipBERT's answer MLP on the pooled clip-text feature: h -> 2h -> ReLU -> outputs."""
    return nn.Sequential(nn.Linear(hidden_size, hidden_size * 2), nn.ReLU(), nn.Linear(hidden_size * 2, num_outputs))


class SiaSamReaForVideoQuestionAnswering(SiaSamReaPreTrainedModel):
    """SiaSamRea for open-ended, multiple-choice and count VideoQA, one task or several (one head each).

    Clip 0 of `pixel_values` is the anchor. With one clip (inference) this is exactly a ClipBERT forward. With
    `1 + num_siamese_clips` clips and `labels` it adds the siamese training objective: the siamese clips act as a
    teacher (under `torch.no_grad` unless `siamese_clips_supervised`), Eq. 1-5 turn their predictions into a soft
    label Q, and the anchor learns from the ground truth and from Q (Eq. 8). What differs between task types (the
    head's size, the losses, P) comes from `config.task_type(task)`; the siamese objective is the same for all.
    """

    def __init__(self, config: SiaSamReaConfig):
        super().__init__(config)
        self.siasamrea = SiaSamReaModel(config)
        heads = {
            name: answer_head(config.hidden_size, config.task_type(name).num_outputs(len(config.answers(name) or ())))
            for name in config.task_names
        }
        # one task: `classifier` is its head (the layout of every folder saved so far); several: one head per name
        self.classifier = nn.ModuleDict(heads) if config.tasks else heads[config.task]
        self.siamese_head = SiameseKnowledgeHead(config)
        self.post_init()

    def get_video_features(self, pixel_values_videos: torch.FloatTensor, **kwargs: Any) -> BaseModelOutputWithPooling:
        """The visual tokens of clips `(clips, frames, 3, H, W)` and the vision backbone's outputs
        (`SiaSamReaModel.get_video_features`)."""
        return self.siasamrea.get_video_features(pixel_values_videos, **kwargs)

    def answer_head(self, task: str | None = None) -> nn.Sequential:
        """The answer head of a task (the only one of a single-task model)."""
        name = self.config.resolve_task(task)
        return self.classifier[name] if self.config.tasks else self.classifier

    def single_task(self, task: str) -> "SiaSamReaForVideoQuestionAnswering":
        """A single-task model made of this joint model's body, siamese head and the head of `task` (e.g. to
        fine-tune the joint TGIF-QA model's FrameQA head on MSRVTT-QA); its task is named by its type."""
        name = self.config.resolve_task(task)
        settings = {key: value for key, value in self.config.to_dict().items() if key not in ("tasks", "task")}
        answers = self.config.answers(name)
        if answers is not None:
            settings.update(id2label=answers, label2id={label: i for i, label in answers.items()},
                            num_answers=len(answers))
        model = type(self)(SiaSamReaConfig(**settings, task=self.config.task_type(name).name))
        prefix = f"classifier.{name}."
        weights = {("classifier." + key.removeprefix(prefix) if key.startswith(prefix) else key): value
                   for key, value in self.state_dict().items()
                   if key.startswith(prefix) or not key.startswith("classifier.")}
        model.load_state_dict(weights)
        return model.to(self.device, self.dtype)

    def set_answer_vocabulary(self, answers: list[str], task: str | None = None, reinit: bool = False) -> int:
        """Give an open-ended task the answer vocabulary `answers` (the answer of each id), in place.

        The rows of the head's last layer of answers both vocabularies share are kept, under their new ids; the other
        rows start from the model's initialisation (all of them with `reinit`). Returns how many rows were kept.
        """
        name = self.config.resolve_task(task)
        old = self.config.answers(name)
        if old is None:
            raise ValueError(f"task {name!r} is {self.config.task_type(name).name}: it has no answer vocabulary")
        old_ids = {answer: i for i, answer in old.items()}
        last = self.answer_head(name)[-1]  # Linear(2h, old K)
        fresh = nn.Linear(last.in_features, len(answers), dtype=last.weight.dtype, device=last.weight.device)
        self._init_weights(fresh)
        kept = [] if reinit else [(new, old_ids[answer]) for new, answer in enumerate(answers) if answer in old_ids]
        with torch.no_grad():
            for new, previous in kept:
                fresh.weight[new] = last.weight[previous]
                fresh.bias[new] = last.bias[previous]
        self.answer_head(name)[-1] = fresh
        if self.config.tasks:
            self.config.tasks[name]["answers"] = list(answers)
        else:
            self.config.id2label = dict(enumerate(answers))
            self.config.label2id = {answer: i for i, answer in enumerate(answers)}
            self.config.num_answers = len(answers)
        return len(kept)

    @classmethod
    def from_vision_text_pretrained(
        cls, vision_model_name_or_path: str, text_model_name_or_path: str, **config_kwargs
    ) -> "SiaSamReaForVideoQuestionAnswering":
        """Build a model whose vision backbone and BERT come from separate checkpoints (Hub names or local folders).

        The vision checkpoint may hold any supported backbone (`VISION_FAMILIES`), whatever its head: a ResNet
        (`"microsoft/resnet-50"`), an image ViT or the vision tower of an image-text model
        (`"google/siglip-base-patch16-224"`, `"openai/clip-vit-base-patch16"`), a video transformer
        (`"MCG-NJU/videomae-base"`, `"facebook/timesformer-base-finetuned-k400"`). Its weights and BERT's are loaded;
        the vision adapter, the visual embeddings and the heads start from random initialisation (logged).
        `config_kwargs` go to `SiaSamReaConfig` (e.g. `task`, `num_answers`, `id2label`, `freeze_vision`).
        """
        vision_config = AutoConfig.from_pretrained(vision_model_name_or_path)
        if vision_config.model_type in VISION_TOWERS:  # an image-text model (CLIP, SigLIP): its vision tower
            vision_config = vision_config.vision_config
        text = BertModel.from_pretrained(text_model_name_or_path)
        config = SiaSamReaConfig(vision_config=vision_config.to_dict(), text_config=text.config.to_dict(),
                                 **config_kwargs)
        vision = MODEL_MAPPING[type(config.vision_config)].from_pretrained(vision_model_name_or_path)
        model = cls(config)
        body = model.siasamrea
        body.vision_encoder.backbone.load_state_dict(vision.state_dict())
        for name in ("embeddings", "encoder", "pooler"):
            getattr(body, name).load_state_dict(getattr(text, name).state_dict())
        pretrained = ("siasamrea.vision_encoder.backbone.", "siasamrea.embeddings.", "siasamrea.encoder.",
                      "siasamrea.pooler.")
        new = sorted({name.rsplit(".", 1)[0] for name, _ in model.named_parameters()
                      if not name.startswith(pretrained)})
        logger.warning("%s: vision backbone from %s (%s), text encoder from %s; newly initialised: %s",
                       cls.__name__, vision_model_name_or_path, config.vision_config.model_type,
                       text_model_name_or_path, ", ".join(new))
        return model

    def _check_inputs(
        self, task_type: TaskType, pixel_values: torch.Tensor, input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None,
    ) -> None:
        if pixel_values.dim() != 6:
            raise ValueError(
                "pixel_values must be (batch, num_clips, num_frames, 3, height, width), "
                f"got shape {tuple(pixel_values.shape)}"
            )
        expected_text_rank = 3 if task_type.takes_choices else 2
        layout = "(batch, num_choices, seq_len)" if expected_text_rank == 3 else "(batch, seq_len)"
        if input_ids.dim() != expected_text_rank:
            raise ValueError(
                f"a {task_type.name} task takes input_ids of shape {layout}, got shape {tuple(input_ids.shape)}"
            )
        if input_ids.shape[0] != pixel_values.shape[0]:
            raise ValueError(
                f"input_ids has batch size {input_ids.shape[0]} but pixel_values has {pixel_values.shape[0]}"
            )
        if attention_mask is not None and attention_mask.shape != input_ids.shape:
            raise ValueError(
                f"attention_mask must have the shape of input_ids {tuple(input_ids.shape)}, "
                f"got {tuple(attention_mask.shape)}"
            )

    def _clip_forward(
        self,
        head: nn.Module,
        pixel_values: torch.Tensor,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None,
        token_type_ids: torch.Tensor | None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> tuple[torch.Tensor, torch.Tensor, BaseModelOutputWithPooling]:
        """All clips of all videos in one batched forward.

        `pixel_values` `(batch, clips, frames, 3, H, W)`; text `(batch, L)` or `(batch, choices, L)`.
        Returns features `(batch, clips[, choices], hidden)`, scores `(batch, clips, K | choices | 1)` and the
        multimodal transformer's output over `(batch * clips * texts)` sequences (for its hidden states / attentions).
        """
        batch_size, num_clips = pixel_values.shape[:2]
        video_embeds = self.siasamrea.get_video_features(
            pixel_values.flatten(0, 1), output_hidden_states=False, output_attentions=False, return_dict=True
        ).pooler_output  # (b * clips, V, h)
        text_shape = input_ids.shape[1:]  # (L,) or (choices, L)
        texts_per_clip = input_ids.shape[1] if input_ids.dim() == 3 else 1
        # every clip of a video is paired with each of its texts: (b, [choices,] L) -> (b * clips * texts, L)
        texts = [
            None if tensor is None else tensor[:, None].expand(-1, num_clips, *text_shape).reshape(-1, text_shape[-1])
            for tensor in (input_ids, attention_mask, token_type_ids)
        ]
        video_embeds = video_embeds.repeat_interleave(texts_per_clip, dim=0)  # (b * clips * texts, V, h)
        outputs = self.siasamrea(
            input_ids=texts[0],
            attention_mask=texts[1],
            token_type_ids=texts[2],
            video_embeds=video_embeds,
            return_dict=True,
            **kwargs,
        )
        pooled = outputs.pooler_output  # (b * clips * texts, h)
        scores = head(pooled)  # (b * clips * texts, K | 1)
        if input_ids.dim() == 3:
            features = pooled.view(batch_size, num_clips, texts_per_clip, -1)  # (b, clips, choices, h)
            return features, scores.view(batch_size, num_clips, texts_per_clip), outputs  # (b, clips, choices)
        return pooled.view(batch_size, num_clips, -1), scores.view(batch_size, num_clips, -1), outputs

    def _siamese_objective(
        self, task_type: TaskType, features: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """L = L_gt + α·L_siamese (Eq. 8) + the ground-truth term on Q that trains W1, W2 (and F).

        `features` `(batch, N, [choices,] h)` and `scores` `(batch, N, K)` of all clips, anchor first; the task type
        gives P, L_gt and the distances; the knowledge Â and the soft label Q are task-independent (Eq. 1-5). With a
        distillation temperature T, Q is built from P = predictions(scores / T) and L_siamese = T²·CE(Q, p_anchor at
        T) = T²·(KL(Q ‖ p_anchor) + H(Q)) (Q is detached, so its gradient is the KL's); for the count task, whose P is
        the count, scaling by 1/T and T² cancels exactly. The ground-truth term on Q uses Q at T = 1.
        """
        head, temperature = self.siamese_head, self.config.siamese_distillation_temperature
        knowledge = head.knowledge(features.detach())
        soft_labels = head.soft_label(knowledge, task_type.predictions(scores.detach() / temperature), labels)
        if self.config.siamese_clips_supervised:  # every clip also learns from the ground truth
            gt_scores, gt_labels = scores.flatten(0, 1), labels.repeat_interleave(scores.shape[1])
        else:
            gt_scores, gt_labels = scores[:, 0], labels
        terms = {
            "loss_gt": task_type.ground_truth_loss(gt_scores, gt_labels),
            "loss_siamese": temperature**2 * task_type.soft_label_loss(scores[:, 0] / temperature, soft_labels),
            "siamese_knowledge": knowledge,
            "soft_labels": soft_labels,
        }
        if soft_labels.shape[-1] > 1:  # Q is a distribution (the count task's is one number): split off H(Q)
            log_q = soft_labels.clamp_min(torch.finfo(soft_labels.dtype).tiny).log()
            terms["soft_label_entropy"] = -(soft_labels * log_q).sum(-1).mean()
            terms["loss_siamese_kl"] = terms["loss_siamese"] - temperature**2 * terms["soft_label_entropy"]
        loss = terms["loss_gt"] + head.loss_weight() * terms["loss_siamese"]
        if head.learns_from_ground_truth:
            if temperature != 1.0:
                soft_labels = head.soft_label(knowledge, task_type.predictions(scores.detach()), labels)
            terms["loss_clip_weights"] = task_type.soft_label_target_loss(soft_labels, labels)
            loss = loss + terms["loss_clip_weights"]
        terms["loss"] = loss
        return terms

    @can_return_tuple
    def forward(
        self,
        pixel_values: torch.FloatTensor,
        input_ids: torch.LongTensor,
        attention_mask: torch.LongTensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        labels: torch.Tensor | None = None,
        task: str | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> SiaSamReaVideoQAOutput:
        r"""
        pixel_values (`(batch, num_clips, num_frames, 3, H, W)`): clip 0 is the anchor.
        input_ids, attention_mask, token_type_ids (`(batch, L)`, or `(batch, num_choices, L)` for multiple choice).
        labels (`(batch,)`): answer ids / correct choice indices (long, -100 ignored) or counts (float).
        task (`str`, *optional*): which task (head) every question of the batch belongs to; needed only by a
            multi-task model (`config.tasks`).

        `output_hidden_states` / `output_attentions` return those of the multimodal transformer for every clip.
        """
        task = self.config.resolve_task(task)
        task_type, head = self.config.task_type(task), self.answer_head(task)
        self._check_inputs(task_type, pixel_values, input_ids, attention_mask)
        batch_size, num_clips = pixel_values.shape[:2]
        siamese = labels is not None and num_clips > 1
        if siamese and not self.config.siamese_clips_supervised:
            features, scores, outputs = self._clip_forward(
                head, pixel_values[:, :1], input_ids, attention_mask, token_type_ids, **kwargs
            )
            # the siamese clips are a teacher only: one batched forward without a graph that leaves training as it
            # found it (RNG, BatchNorm statistics), so with α = 0 this trains the no-siamese baseline bit for bit
            with torch.no_grad(), _teacher_pass(self, pixel_values.device):
                teacher_features, teacher_scores, teacher_outputs = self._clip_forward(
                    head, pixel_values[:, 1:], input_ids, attention_mask, token_type_ids, **kwargs
                )
            features = torch.cat([features, teacher_features], dim=1)  # (b, 1, ...) + (b, N - 1, ...) -> (b, N, ...)
            scores = torch.cat([scores, teacher_scores], dim=1)
            hidden_states = _concat_clips(outputs.hidden_states, teacher_outputs.hidden_states, batch_size)
            attentions = _concat_clips(outputs.attentions, teacher_outputs.attentions, batch_size)
        else:
            features, scores, outputs = self._clip_forward(
                head, pixel_values, input_ids, attention_mask, token_type_ids, **kwargs
            )
            hidden_states, attentions = outputs.hidden_states, outputs.attentions

        terms = {}
        if labels is not None:
            if labels.shape != (batch_size,):
                raise ValueError(f"labels must have shape ({batch_size},), got {tuple(labels.shape)}")
            task_type.check_labels(labels, scores.shape[-1])
            if siamese:
                terms = self._siamese_objective(task_type, features, scores, labels)
            else:
                loss_gt = task_type.ground_truth_loss(scores[:, 0], labels)
                terms = {"loss": loss_gt, "loss_gt": loss_gt}
            if self.config.tasks:  # the task's weight in a joint model
                terms["loss"] = self.config.loss_weight(task) * terms["loss"]
        return SiaSamReaVideoQAOutput(
            logits=scores[:, 0],
            clip_logits=scores,
            pooler_output=features,
            hidden_states=hidden_states,
            attentions=attentions,
            **terms,
        )


__all__ = [
    "SiaSamReaForVideoQuestionAnswering",
    "SiaSamReaModel",
    "SiaSamReaPreTrainedModel",
    "SiaSamReaVideoQAOutput",
    "answer_head",
]
