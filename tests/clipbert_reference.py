"""An independent, plain-torch re-statement of ClipBERT's inference forward, for checking the checkpoint conversion.

Written from reading jayleicn/ClipBERT (src/modeling/grid_feat.py, src/modeling/modeling.py, src/modeling/
transformers.py, src/modeling/e2e_model.py, src/datasets/data_utils.py) and detectron2's ResNet; it shares no code
with `modeling_siasamrea` and does not use transformers. Module names reproduce ClipBERT's, so `state_dict()` has
exactly the keys of a ClipBERT checkpoint (`cnn.feature.backbone.res2.0.conv1.norm.running_var`, ...).

Dropout is omitted: the reference is only ever run for inference.
"""

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class ReferenceConfig:
    """Sizes of a (tiny) ClipBERT. `stage_channels[i]` are the output channels of res{i+2}; width = out / 4."""

    stem_channels: int = 8
    stage_channels: tuple[int, ...] = (16, 32, 64, 128)
    stage_depths: tuple[int, ...] = (2, 1, 1, 2)
    hidden_size: int = 32
    num_layers: int = 2
    num_heads: int = 2
    intermediate_size: int = 64
    vocab_size: int = 30522
    max_position_embeddings: int = 64
    type_vocab_size: int = 2
    max_grid_rows: int = 10
    max_grid_cols: int = 12
    layer_norm_eps: float = 1e-12
    bn_eps: float = 1e-5
    num_labels: int | None = None  # classifier outputs (1: multiple choice); None: pretraining heads instead
    image_mean: tuple[float, ...] = (123.675, 116.28, 103.53)  # RGB, as ClipBERT's img_pixel_mean
    image_std: tuple[float, ...] = field(default=(1.0, 1.0, 1.0))

    def model_config_json(self) -> dict:
        """ClipBERT's `base_model.json` for these sizes."""
        return {
            "backbone_channel_in_size": self.stage_channels[-1],
            "max_grid_row_position_embeddings": self.max_grid_rows,
            "max_grid_col_position_embeddings": self.max_grid_cols,
            "hidden_act": "gelu",
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "layer_norm_eps": self.layer_norm_eps,
            "max_position_embeddings": self.max_position_embeddings,
            "model_type": "bert",
            "num_attention_heads": self.num_heads,
            "num_hidden_layers": self.num_layers,
            "pad_token_id": 0,
            "type_vocab_size": self.type_vocab_size,
            "vocab_size": self.vocab_size,
        }


# ---------------------------------------------------------------- detectron2 ResNet (MSRA, frozen BN)


class FrozenBN(nn.Module):
    """detectron2's FrozenBatchNorm2d: four buffers, y = (x - mean) / sqrt(var + eps) * weight + bias."""

    def __init__(self, channels: int, eps: float):
        super().__init__()
        self.eps = eps
        for name, value in (("weight", 1.0), ("bias", 0.0), ("running_mean", 0.0), ("running_var", 1.0)):
            self.register_buffer(name, torch.full((channels,), value))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.weight / torch.sqrt(self.running_var + self.eps)
        shift = self.bias - self.running_mean * scale
        return x * scale[None, :, None, None] + shift[None, :, None, None]


class ConvNorm(nn.Module):
    """detectron2's `Conv2d(..., norm=...)`: a bias-free conv whose norm is a child named `norm`."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, padding: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(cout, cin, kernel, kernel))
        self.stride, self.padding = stride, padding
        self.norm = FrozenBN(cout, eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(F.conv2d(x, self.weight, stride=self.stride, padding=self.padding))


class Bottleneck(nn.Module):
    """detectron2 BottleneckBlock with stride_in_1x1=True; a projection shortcut only when channels change."""

    def __init__(self, cin: int, cout: int, stride: int, eps: float):
        super().__init__()
        width = cout // 4
        if cin != cout:
            self.shortcut = ConvNorm(cin, cout, 1, stride, 0, eps)
        else:
            self.shortcut = None
        self.conv1 = ConvNorm(cin, width, 1, stride, 0, eps)  # MSRA: the stride is here
        self.conv2 = ConvNorm(width, width, 3, 1, 1, eps)
        self.conv3 = ConvNorm(width, cout, 1, 1, 0, eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.conv1(x))
        out = F.relu(self.conv2(out))
        out = self.conv3(out)
        return F.relu(out + (x if self.shortcut is None else self.shortcut(x)))


class Stem(nn.Module):
    def __init__(self, channels: int, eps: float):
        super().__init__()
        self.conv1 = ConvNorm(3, channels, 7, 2, 3, eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(F.relu(self.conv1(x)), kernel_size=3, stride=2, padding=1)


class Backbone(nn.Module):
    """stem, res2 (stride 1), res3.. (stride 2 each; RES5_DILATION forced to 1 by ClipBERT); returns res-last."""

    def __init__(self, config: ReferenceConfig):
        super().__init__()
        self.stem = Stem(config.stem_channels, config.bn_eps)
        cin = config.stem_channels
        self.stage_names = []
        for index, (cout, depth) in enumerate(zip(config.stage_channels, config.stage_depths)):
            blocks = [Bottleneck(cin if b == 0 else cout, cout, 2 if (index > 0 and b == 0) else 1, config.bn_eps)
                      for b in range(depth)]
            name = f"res{index + 2}"
            self.add_module(name, nn.Sequential(*blocks))
            self.stage_names.append(name)
            cin = cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for name in self.stage_names:
            x = getattr(self, name)(x)
        return x


class Detectron2Model(nn.Module):
    """Only the part ClipBERT runs: `feature.backbone` (roi_heads.get_conv5_features is the identity on res5)."""

    def __init__(self, config: ReferenceConfig):
        super().__init__()
        self.backbone = Backbone(config)


class GridFeat(nn.Module):
    """ClipBERT's GridFeatBackbone: RGB->BGR flip, backbone, conv3x3 (no bias) -> maxpool 2x2 -> ReLU."""

    def __init__(self, config: ReferenceConfig):
        super().__init__()
        self.feature = Detectron2Model(config)
        self.grid_encoder = nn.Sequential(
            nn.Conv2d(config.stage_channels[-1], config.hidden_size, 3, padding=1, bias=False),
            nn.MaxPool2d(2, 2),
            nn.ReLU(),
        )

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """`(B, T, 3, H, W)` normalised RGB -> `(B, T, h, w, d)`."""
        batch, num_frames = frames.shape[:2]
        x = frames.reshape(batch * num_frames, *frames.shape[2:])[:, [2, 1, 0]]
        grid = self.grid_encoder(self.feature.backbone(x))
        grid = grid.reshape(batch, num_frames, *grid.shape[1:])
        return grid.permute(0, 1, 3, 4, 2)


# ---------------------------------------------------------------- ClipBERT transformer


class LayerNorm(nn.Module):
    def __init__(self, size: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.bias = nn.Parameter(torch.zeros(size))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(-1, keepdim=True)
        var = (x - mean).pow(2).mean(-1, keepdim=True)
        return (x - mean) / torch.sqrt(var + self.eps) * self.weight + self.bias


class TextEmbeddings(nn.Module):
    def __init__(self, config: ReferenceConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = LayerNorm(config.hidden_size, config.layer_norm_eps)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1])
        types = torch.zeros_like(input_ids)  # ClipBERT never passes token types
        words = self.word_embeddings(input_ids)
        return self.LayerNorm(words + self.position_embeddings(positions)[None] + self.token_type_embeddings(types))


class VisualEmbeddings(nn.Module):
    """ClipBERT's VisualInputEmbedding: mean over frames, + row/col embeddings, + type embedding 0, LayerNorm."""

    def __init__(self, config: ReferenceConfig):
        super().__init__()
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)  # never used
        self.row_position_embeddings = nn.Embedding(config.max_grid_rows, config.hidden_size)
        self.col_position_embeddings = nn.Embedding(config.max_grid_cols, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(1, config.hidden_size)
        self.LayerNorm = LayerNorm(config.hidden_size, config.layer_norm_eps)

    def forward(self, grid: torch.Tensor) -> torch.Tensor:
        """`(B, T, h, w, d)` -> `(B, h*w, d)`."""
        grid = grid.mean(1)
        rows, cols = grid.shape[1:3]
        grid = grid + self.row_position_embeddings.weight[:rows][:, None, :]
        grid = grid + self.col_position_embeddings.weight[:cols][None, :, :]
        tokens = grid.reshape(grid.shape[0], rows * cols, grid.shape[-1])
        return self.LayerNorm(tokens + self.token_type_embeddings.weight[0])


class SelfAttention(nn.Module):
    def __init__(self, config: ReferenceConfig):
        super().__init__()
        self.num_heads = config.num_heads
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.value = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, x: torch.Tensor, additive_mask: torch.Tensor) -> torch.Tensor:
        batch, length, dim = x.shape
        head = dim // self.num_heads

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(batch, length, self.num_heads, head).transpose(1, 2)

        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(head) + additive_mask
        return (scores.softmax(-1) @ v).transpose(1, 2).reshape(batch, length, dim)


class DenseNorm(nn.Module):
    """BERT's *Output: dense, residual add, LayerNorm."""

    def __init__(self, cin: int, config: ReferenceConfig):
        super().__init__()
        self.dense = nn.Linear(cin, config.hidden_size)
        self.LayerNorm = LayerNorm(config.hidden_size, config.layer_norm_eps)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dense(x) + residual)


class Attention(nn.Module):
    def __init__(self, config: ReferenceConfig):
        super().__init__()
        self.self = SelfAttention(config)
        self.output = DenseNorm(config.hidden_size, config)

    def forward(self, x: torch.Tensor, additive_mask: torch.Tensor) -> torch.Tensor:
        return self.output(self.self(x, additive_mask), x)


class Intermediate(nn.Module):
    def __init__(self, config: ReferenceConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.dense(x))  # transformers 2.11's "gelu" is the exact erf form


class Layer(nn.Module):
    def __init__(self, config: ReferenceConfig):
        super().__init__()
        self.attention = Attention(config)
        self.intermediate = Intermediate(config)
        self.output = DenseNorm(config.intermediate_size, config)

    def forward(self, x: torch.Tensor, additive_mask: torch.Tensor) -> torch.Tensor:
        attended = self.attention(x, additive_mask)
        return self.output(self.intermediate(attended), attended)


class Encoder(nn.Module):
    def __init__(self, config: ReferenceConfig):
        super().__init__()
        self.layer = nn.ModuleList(Layer(config) for _ in range(config.num_layers))

    def forward(self, x: torch.Tensor, additive_mask: torch.Tensor) -> torch.Tensor:
        for layer in self.layer:
            x = layer(x, additive_mask)
        return x


class Pooler(nn.Module):
    def __init__(self, config: ReferenceConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dense(x[:, 0]))


class Bert(nn.Module):
    """ClipBertBaseModel: [text ; visual] through BERT; text padding masked with -10000, visual tokens never."""

    def __init__(self, config: ReferenceConfig):
        super().__init__()
        self.embeddings = TextEmbeddings(config)
        self.visual_embeddings = VisualEmbeddings(config)
        self.encoder = Encoder(config)
        self.pooler = Pooler(config)

    def forward(self, input_ids: torch.Tensor, grid: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
        visual = self.visual_embeddings(grid)
        tokens = torch.cat([self.embeddings(input_ids), visual], dim=1)
        mask = torch.cat([text_mask, text_mask.new_ones(visual.shape[:2])], dim=1).float()
        additive_mask = (1.0 - mask)[:, None, None, :] * -10000.0
        return self.pooler(self.encoder(tokens, additive_mask))


class PretrainingHeads(nn.Module):
    """Stand-in for BertPreTrainingHeads (`transformer.cls.*`): only its keys matter, it is never run here."""

    def __init__(self, config: ReferenceConfig):
        super().__init__()
        self.predictions = nn.Module()
        self.predictions.bias = nn.Parameter(torch.zeros(config.vocab_size))
        self.predictions.transform = nn.Module()
        self.predictions.transform.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.predictions.transform.LayerNorm = LayerNorm(config.hidden_size, config.layer_norm_eps)
        self.predictions.decoder = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.seq_relationship = nn.Linear(config.hidden_size, 2)


class Transformer(nn.Module):
    def __init__(self, config: ReferenceConfig):
        super().__init__()
        self.bert = Bert(config)
        if config.num_labels is None:
            self.cls = PretrainingHeads(config)
        else:
            self.classifier = nn.Sequential(
                nn.Linear(config.hidden_size, 2 * config.hidden_size),
                nn.ReLU(),
                nn.Linear(2 * config.hidden_size, config.num_labels),
            )


class ClipBertReference(nn.Module):
    """`ClipBert` (e2e_model.py) at inference: `cnn` then `transformer`, visual features repeated per text."""

    def __init__(self, config: ReferenceConfig):
        super().__init__()
        self.config = config
        self.cnn = GridFeat(config)
        self.transformer = Transformer(config)

    def pooled(self, frames: torch.Tensor, input_ids: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
        """frames `(B, T, 3, H, W)` ImageNorm-ed RGB; text `(B * n, L)`, n texts per video -> `(B * n, d)`."""
        grid = self.cnn(frames)
        grid = grid.repeat_interleave(input_ids.shape[0] // frames.shape[0], dim=0)  # ClipBERT's repeat_tensor_rows
        return self.transformer.bert(input_ids, grid, text_mask)

    def forward(self, frames: torch.Tensor, input_ids: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
        """Logits `(B * n, num_labels)`."""
        return self.transformer.classifier(self.pooled(frames, input_ids, text_mask))


def image_norm(frames: torch.Tensor, config: ReferenceConfig) -> torch.Tensor:
    """ClipBERT's ImageNorm on `(B, T, 3, H, W)` RGB 0-255 frames (it divides by 255 only for a mean <= 1)."""
    mean = torch.tensor(config.image_mean).view(1, 1, 3, 1, 1)
    std = torch.tensor(config.image_std).view(1, 1, 3, 1, 1)
    frames = frames.float()
    if frames.max() > 1 and mean.max() <= 1:
        frames = frames / 255.0
    return (frames - mean) / std


@torch.no_grad()
def randomize(model: ClipBertReference, seed: int = 0) -> ClipBertReference:
    """Random weights of moderate scale everywhere, including BN statistics, so no part is an identity."""
    generator = torch.Generator().manual_seed(seed)

    def normal(shape: torch.Size, std: float, mean: float = 0.0) -> torch.Tensor:
        return torch.randn(shape, generator=generator) * std + mean

    for name, tensor in model.state_dict().items():
        if name.endswith("running_var"):
            tensor.copy_(torch.rand(tensor.shape, generator=generator) * 1.5 + 0.5)
        elif name.endswith(("norm.weight", "LayerNorm.weight")):
            tensor.copy_(normal(tensor.shape, 0.2, 1.0))
        elif name.endswith("stem.conv1.weight"):  # 0-255 pixels: scale down so the grid is O(1)
            tensor.copy_(normal(tensor.shape, math.sqrt(1.0 / tensor[0].numel()) / 64))
        elif tensor.dim() == 4:  # conv kernels: He-like scale keeps activations O(1) through the ResNet
            tensor.copy_(normal(tensor.shape, math.sqrt(1.0 / tensor[0].numel())))
        elif tensor.dim() == 2 and "embeddings" not in name:
            tensor.copy_(normal(tensor.shape, 1.0 / math.sqrt(tensor.shape[1])))
        else:
            tensor.copy_(normal(tensor.shape, 0.3))
    return model.eval()


def detection_and_pretraining_extras(config: ReferenceConfig, seed: int = 1) -> dict[str, torch.Tensor]:
    """Keys a real ClipBERT checkpoint also holds: detectron2's RPN, ROI heads and pixel statistics (never run)."""
    generator = torch.Generator().manual_seed(seed)
    channels = config.stage_channels[-1]
    shapes = {
        "cnn.feature.pixel_mean": (3, 1, 1),
        "cnn.feature.pixel_std": (3, 1, 1),
        "cnn.feature.proposal_generator.rpn_head.conv.weight": (channels, channels, 3, 3),
        "cnn.feature.proposal_generator.rpn_head.objectness_logits.weight": (15, channels, 1, 1),
        "cnn.feature.roi_heads.box_head.fc1.weight": (16, channels),
        "cnn.feature.roi_heads.box_predictor.cls_score.weight": (1601, 16),
        "cnn.feature.roi_heads.attribute_predictor.obj_embed.weight": (1601, 8),
    }
    extras = {key: torch.randn(shape, generator=generator) for key, shape in shapes.items()}
    extras["cnn.feature.pixel_mean"] = torch.tensor([103.53, 116.28, 123.675]).view(3, 1, 1)
    extras["cnn.feature.pixel_std"] = torch.ones(3, 1, 1)
    return extras
