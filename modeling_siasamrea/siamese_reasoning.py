"""Siamese knowledge generation (SKG, Eq. 1-2) and siamese knowledge reasoning (SKR, Eq. 3-5)."""

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from transformers import PreTrainedConfig
from transformers.utils import logging

logger = logging.get_logger(__name__)


def siamese_knowledge_generation(
    features: torch.Tensor, temperature: float = 1.0, center: bool = False
) -> torch.Tensor:
    """Siamese knowledge Â of N clip-text features (Eq. 1-2).

    A(i, j) = σ(F(f_i))ᵀ σ(F(f_j)) with σ the ℓ2-normalisation (Eq. 1); the diagonal is discarded and each row is
    softmax-normalised over j != i (Eq. 2), so Â(i, i) = 0 exactly and every row sums to 1.

    Nearby clips have nearly identical features, so their cosines all lie near 1 and a softmax at temperature 1 (whose
    largest possible ratio between two entries is e²) gives rows near uniform. `center` takes F(f_i) = f_i − mean_j f_j
    over the clip set: the cosines then compare what differs between the clips and spread over [−1, 1].

    Args:
        features: `(..., N, D)` clip-text features, N >= 2 (already through a learned F, if any).
        temperature: similarities are divided by it before the softmax (1 in the paper).
        center: subtract the clip set's mean feature before the ℓ2-normalisation (not in the paper).

    Returns:
        `(..., N, N)` row-stochastic matrix with a zero diagonal.
    """
    num_clips = features.shape[-2]
    if num_clips < 2:
        raise ValueError(f"siamese knowledge needs at least 2 clips, got features of shape {tuple(features.shape)}")
    if center:
        features = features - features.mean(dim=-2, keepdim=True)  # (..., N, D) - (..., 1, D)
    normalized = nn.functional.normalize(features, dim=-1)
    # (..., N, D) @ (..., D, N) -> (..., N, N)
    similarity = normalized @ normalized.transpose(-1, -2) / temperature
    self_loops = torch.eye(num_clips, dtype=torch.bool, device=features.device)
    return similarity.masked_fill(self_loops, float("-inf")).softmax(dim=-1)


def average_siamese_knowledge(num_clips: int, like: torch.Tensor) -> torch.Tensor:
    """Â(i, j) = 1/(N-1) for j != i: the knowledge-free "w/ SKR" ablation (Table 1), shaped `(N, N)` like `like`."""
    if num_clips < 2:
        raise ValueError(f"siamese knowledge needs at least 2 clips, got {num_clips}")
    off_diagonal = 1.0 - torch.eye(num_clips, dtype=like.dtype, device=like.device)
    return off_diagonal / (num_clips - 1)


def propagate_siamese_knowledge(knowledge: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
    """Every clip's propagated prediction p̂_i = Σ_{j != i} Â(i, j) p_j = Â(i) P (Eq. 3), for all i at once.

    Args:
        knowledge: `(..., N, N)` siamese knowledge Â (zero diagonal).
        probs: `(..., N, K)` what is propagated: the predictions P, or BAKE's fixed point (`converged_soft_labels`).

    Returns:
        `(..., N, K)` Â P.
    """
    return knowledge @ probs  # (..., N, N) @ (..., N, K) -> (..., N, K)


def converged_soft_labels(knowledge: torch.Tensor, probs: torch.Tensor, omega: float) -> torch.Tensor:
    """BAKE's closed-form propagation Q∞ = (1 − ω)(I − ωÂ)⁻¹ P (Ge et al., 2021, "Self-distillation with Batch
    Knowledge Ensembling", §3.2): the fixed point of Q∞ = ω Â Q∞ + (1 − ω) P, i.e. Eq. 3-5's one step repeated
    until it converges, Σ_t (1 − ω) ωᵗ Âᵗ P. Each row is a distribution when P's rows are (Â is row-stochastic).

    Args:
        knowledge: `(..., N, N)` siamese knowledge Â.
        probs: `(..., N, K)` predictions P.
        omega: ω in [0, 1) (I − ωÂ is singular at ω = 1).

    Returns:
        `(..., N, K)` Q∞, row i the soft label of clip i.
    """
    identity = torch.eye(knowledge.shape[-1], dtype=knowledge.dtype, device=knowledge.device)
    return (1.0 - omega) * torch.linalg.solve(identity - omega * knowledge, probs)  # (..., N, N) \ (..., N, K)


def siamese_knowledge_reasoning(
    knowledge: torch.Tensor,
    probs: torch.Tensor,
    w1: torch.Tensor,
    w2: torch.Tensor,
    omega: float,
    propagated: torch.Tensor | None = None,
) -> torch.Tensor:
    """Soft label Q = ω·W1 Â P + (1 − ω)·W2 P (Eq. 4-5).

    W1 weighs the rows of Â P, so ω·W1 Â P = ω·Σ_j c_j p_j with c_j = Σ_i W1_i Â(i, j): with W1 uniform, c_j is a
    column mean of Â. That is about 1/N when Â is near uniform (nearby clips at Eq. 2's temperature 1), and then Q
    hardly depends on Â; a sharp, non-symmetric Â has column means far from 1/N.

    Args:
        knowledge: `(..., N, N)` siamese knowledge Â.
        probs: `(..., N, K)` predictions P of the N clips (anchor first).
        w1, w2: `(N,)` clip weights, already normalised (each sums to 1 so Q stays a distribution).
        omega: ω in [0, 1].
        propagated: `(..., N, K)` what replaces Â P (Eq. 3), e.g. Â Q∞ of the closed form; default Â P.

    Returns:
        `(..., K)` soft label Q.
    """
    if propagated is None:
        propagated = propagate_siamese_knowledge(knowledge, probs)
    return omega * torch.einsum("n,...nk->...k", w1, propagated) + (1.0 - omega) * torch.einsum(
        "n,...nk->...k", w2, probs
    )


def anchor_soft_label(propagated: torch.Tensor, probs: torch.Tensor, omega: float) -> torch.Tensor:
    """The anchor's own soft label Q = ω·Â(0, :) P + (1 − ω)·p_anchor (BAKE's per-sample form, Ge et al., 2021):
    Eq. 5 with W1 = W2 = the anchor's indicator, so Â's anchor row decides how much each siamese clip counts.

    Args:
        propagated: `(..., N, K)` Â P (Eq. 3), or Â Q∞ (then Q = Q∞(0, :) exactly).
        probs: `(..., N, K)` predictions P (anchor first).
        omega: ω in [0, 1].

    Returns:
        `(..., K)` soft label Q.
    """
    return omega * propagated[..., 0, :] + (1.0 - omega) * probs[..., 0, :]


def smoothed_label(labels: torch.Tensor, num_classes: int, smoothing: float) -> torch.Tensor:
    """The knows-nothing control for Q (not in the paper): (1 − ε)·onehot(y) + ε/K, a soft label with no information
    beyond the label, whose entropy a study matches to the siamese Q's.

    Args:
        labels: `(batch,)` class ids (answers or choices); -100 (unlabelled) gives the uniform distribution.
        num_classes: K.
        smoothing: ε in [0, 1].

    Returns:
        `(batch, K)` soft labels.
    """
    onehot = nn.functional.one_hot(labels.clamp_min(0), num_classes).float()
    onehot = torch.where(labels[:, None] >= 0, onehot, torch.full_like(onehot, 1.0 / num_classes))
    return (1.0 - smoothing) * onehot + smoothing / num_classes


def one_step_propagation(knowledge: torch.Tensor, probs: torch.Tensor, omega: float) -> torch.Tensor:
    """`siamese_propagation="one_step"`: Â P (`propagate_siamese_knowledge`); ω is not used."""
    return propagate_siamese_knowledge(knowledge, probs)


def closed_form_propagation(knowledge: torch.Tensor, probs: torch.Tensor, omega: float) -> torch.Tensor:
    """`siamese_propagation="closed_form"`: Â Q∞, BAKE's fixed point (`converged_soft_labels`) propagated."""
    return propagate_siamese_knowledge(knowledge, converged_soft_labels(knowledge, probs, omega))


def similarity_knowledge(features: torch.Tensor, temperature: float, center: bool) -> torch.Tensor:
    """`siamese_knowledge="similarity"`: Â from features `(b, N, [texts,] h)` (`siamese_knowledge_generation`); a clip
    with several texts (multiple choice) is described by the concatenation of its per-text features."""
    clip_features = features.flatten(2)  # (b, N, h) or, with choices, (b, N, choices * h)
    return siamese_knowledge_generation(clip_features, temperature, center=center)


def average_knowledge(features: torch.Tensor, temperature: float, center: bool) -> torch.Tensor:
    """`siamese_knowledge="average"`: Â = 1/(N-1) off the diagonal (Table 1's "w/ SKR"), `(b, N, N)`; the features
    give only the shape."""
    return average_siamese_knowledge(features.shape[1], features).expand(features.shape[0], -1, -1)


@dataclass(frozen=True)
class KnowledgeSource:
    """A value of `siamese_knowledge`: how Â comes from the clip-text features."""

    compute: Callable[[torch.Tensor, float, bool], torch.Tensor]  # (features, temperature, center) -> Â
    compares_clips: bool  # whether Eq. 1's similarities are computed, i.e. whether F (`siamese_projection`) acts


def _eq5_soft_label(head: "SiameseKnowledgeHead", knowledge: torch.Tensor, probs: torch.Tensor,
                    labels: torch.Tensor | None) -> torch.Tensor:
    """`siamese_knowledge_reasoning` with the head's W1, W2."""
    w1, w2 = head.clip_weights()
    return siamese_knowledge_reasoning(knowledge, probs, w1, w2, head.config.siamese_omega,
                                       propagated=head.propagate(knowledge, probs))


def _anchor_row_soft_label(head: "SiameseKnowledgeHead", knowledge: torch.Tensor, probs: torch.Tensor,
                           labels: torch.Tensor | None) -> torch.Tensor:
    """The anchor's own row (`anchor_soft_label`)."""
    return anchor_soft_label(head.propagate(knowledge, probs), probs, head.config.siamese_omega)


def _smoothed_soft_label(head: "SiameseKnowledgeHead", knowledge: torch.Tensor, probs: torch.Tensor,
                         labels: torch.Tensor | None) -> torch.Tensor:
    """The knows-nothing control (`smoothed_label`): neither Â nor P enter, only the labels and K."""
    if labels is None or probs.shape[-1] < 2:
        raise ValueError("siamese_soft_label='smoothed_label' needs the labels of a task with classes "
                         "(open-ended or multiple choice), not of the count task")
    return smoothed_label(labels, probs.shape[-1], head.config.siamese_label_smoothing).to(probs.dtype)


@dataclass(frozen=True)
class SoftLabelSource:
    """A value of `siamese_soft_label`: how Q is built, whether it depends on Â, and whether (and from where) it
    weighs the clips by W1, W2."""

    build: Callable[["SiameseKnowledgeHead", torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]
    uses_clip_weights: bool
    uses_knowledge: bool = True  # Q depends on Â, i.e. F (`siamese_projection`) can learn from it
    needs_classes: bool = False  # Q is built from class labels: every task must have classes (`TaskType.has_classes`)
    anchor_init_weight: float | None = None  # W1, W2 start with this weight on the anchor (None: uniform)


# "eq5_anchor_init": W1 and W2 start with this weight on the anchor (the rest spread evenly), i.e. near BAKE's
# per-sample soft label; a one-hot start would saturate their softmax and stop them from learning
ANCHOR_INIT_WEIGHT = 0.9

# The siamese variants: each switch's allowed values and what each one does, looked up once when the head is built
# (the config validates its values against the same tables). docs/design.md, "Siamese knowledge reasoning".
KNOWLEDGE_SOURCES = {
    "similarity": KnowledgeSource(similarity_knowledge, compares_clips=True),
    "average": KnowledgeSource(average_knowledge, compares_clips=False),
}
SOFT_LABEL_SOURCES = {
    "eq5": SoftLabelSource(_eq5_soft_label, uses_clip_weights=True),  # Eq. 5, W1 and W2 start uniform
    "anchor_row": SoftLabelSource(_anchor_row_soft_label, uses_clip_weights=False),  # BAKE's per-sample soft label
    "eq5_anchor_init": SoftLabelSource(_eq5_soft_label, uses_clip_weights=True, anchor_init_weight=ANCHOR_INIT_WEIGHT),
    "smoothed_label": SoftLabelSource(  # a study control
        _smoothed_soft_label, uses_clip_weights=False, uses_knowledge=False, needs_classes=True
    ),
}
PROPAGATIONS = {"one_step": one_step_propagation, "closed_form": closed_form_propagation}
SIAMESE_VARIANTS: dict[str, dict[str, Any]] = {
    "siamese_knowledge": KNOWLEDGE_SOURCES,
    "siamese_soft_label": SOFT_LABEL_SOURCES,
    "siamese_propagation": PROPAGATIONS,
}


def siamese_variant(field: str, value: str) -> Any:
    """The strategy that `value` names for the config field `field` (a key of `SIAMESE_VARIANTS`); a `ValueError`
    naming the field and its allowed values for any other value."""
    variants = SIAMESE_VARIANTS[field]
    if value not in variants:
        raise ValueError(f"{field} must be one of {tuple(variants)}, got {value!r}")
    return variants[value]


class SiameseKnowledgeHead(nn.Module):
    """Training-only head: the optional projection F of Eq. 1, the clip weights W1, W2 of Eq. 5 and the schedule of α.

    W1 and W2 are stored as N logits each and used through a softmax (initialised uniform, or on the anchor with
    `siamese_soft_label="eq5_anchor_init"`), so the soft label is a distribution whatever they learn.
    `training_progress` (the fraction of training done, set by `training/callbacks.py`'s
    `SiameseLossWarmupCallback`) drives the warm-up of α. The variants that the config's `siamese_knowledge`,
    `siamese_soft_label` and `siamese_propagation` name are looked up once, here.
    """

    def __init__(self, config: PreTrainedConfig):  # a SiaSamReaConfig, which validates against these tables
        super().__init__()
        self.config = config
        self.knowledge_source: KnowledgeSource = siamese_variant("siamese_knowledge", config.siamese_knowledge)
        self.soft_label_source: SoftLabelSource = siamese_variant("siamese_soft_label", config.siamese_soft_label)
        self.propagation: Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor] = siamese_variant(
            "siamese_propagation", config.siamese_propagation
        )
        # Only parameters that take part in the loss are created: DDP without `find_unused_parameters` (what the
        # Trainer uses with activation checkpointing) fails on a parameter that never gets a gradient.
        siamese = config.num_clips > 1
        uses_projection = (siamese and config.siamese_projection and self.knowledge_source.compares_clips
                           and self.soft_label_source.uses_knowledge)
        if config.siamese_projection and not uses_projection:
            logger.warning("siamese_projection is ignored: F of Eq. 1 only acts on the similarities of siamese clips, "
                           "through a soft label built from them (num_siamese_clips=%d, siamese_knowledge=%r, "
                           "siamese_soft_label=%r)", config.num_siamese_clips, config.siamese_knowledge,
                           config.siamese_soft_label)
        self.projection = nn.Linear(config.hidden_size, config.hidden_size) if uses_projection else None
        if config.learnable_clip_weights and siamese and self.soft_label_source.uses_clip_weights:
            self.clip_weight_logits = nn.Parameter(torch.zeros(2, config.num_clips))
        else:  # fixed W1, W2; with one clip (no siamese clips) or the anchor's row there is nothing to weigh
            self.register_buffer("clip_weight_logits", torch.zeros(2, config.num_clips), persistent=False)
        self.register_buffer("clip_weight_prior", self._prior(), persistent=False)
        self.training_progress: float | None = None

    def _prior(self) -> torch.Tensor:
        """`(2, N)` offsets added to the W1, W2 logits: zeros (uniform start), or the anchor-weighted start."""
        num_clips, anchor_weight = self.config.num_clips, self.soft_label_source.anchor_init_weight
        prior = torch.zeros(2, num_clips)
        if anchor_weight is not None and num_clips > 1:
            # softmax(prior) = [anchor_weight, (1 - anchor_weight) / (N - 1), ...]
            prior[:, 0] = math.log(anchor_weight * (num_clips - 1) / (1.0 - anchor_weight))
        return prior

    @property
    def learns_from_ground_truth(self) -> bool:
        """Whether the head has parameters (W1, W2, F): then the ground truth on Q trains them."""
        return any(parameter.requires_grad for parameter in self.parameters())

    def clip_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The normalised W1 and W2, each `(N,)`."""
        w1, w2 = (self.clip_weight_logits + self.clip_weight_prior).softmax(dim=-1)
        return w1, w2

    def loss_weight(self) -> float:
        """α of Eq. 8 now: `siamese_loss_weight`, scaled by training progress / `siamese_loss_weight_warmup` during
        the warm-up."""
        alpha, warmup = self.config.siamese_loss_weight, self.config.siamese_loss_weight_warmup
        if warmup <= 0 or not self.training:
            return alpha
        if self.training_progress is None:
            logger.warning_once("siamese_loss_weight_warmup is set but nothing tells the model its training progress "
                                "(training/callbacks.py, SiameseLossWarmupCallback): alpha is used without warm-up")
            return alpha
        return alpha * min(1.0, self.training_progress / warmup)

    def knowledge(self, features: torch.Tensor) -> torch.Tensor:
        """Â `(batch, N, N)` from clip-text features `(batch, N, [texts,] h)`, as `config.siamese_knowledge` says.

        F applies to every clip-text feature; a clip with several texts (multiple choice) is then described by the
        concatenation of its per-choice features, so two clips are similar when they agree on every choice.
        """
        if self.projection is not None:
            features = self.projection(features)
        return self.knowledge_source.compute(features, self.config.siamese_temperature,
                                             self.config.siamese_feature_centering)

    def propagate(self, knowledge: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
        """What Â propagates to every clip `(batch, N, K)`, as `config.siamese_propagation` says: Â P or Â Q∞."""
        num_clips = probs.shape[1]
        if num_clips != self.config.num_clips:
            raise ValueError(
                f"the clip weights W1, W2 were built for N = {self.config.num_clips} clips "
                f"(1 anchor + num_siamese_clips={self.config.num_siamese_clips}), got {num_clips} clips"
            )
        return self.propagation(knowledge, probs, self.config.siamese_omega)

    def soft_label(self, knowledge: torch.Tensor, probs: torch.Tensor,
                   labels: torch.Tensor | None = None) -> torch.Tensor:
        """Q `(batch, K)` from Â `(batch, N, N)` and predictions P `(batch, N, K)`, as `config.siamese_soft_label`
        and `config.siamese_propagation` say (`"smoothed_label"`, the knows-nothing control, needs `labels`)."""
        return self.soft_label_source.build(self, knowledge, probs, labels)

    def forward(self, features: torch.Tensor, probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (Â `(batch, N, N)`, Q `(batch, K)`) for features `(batch, N, [texts,] h)` and predictions
        `(batch, N, K)`."""
        knowledge = self.knowledge(features)
        return knowledge, self.soft_label(knowledge, probs)


__all__ = [
    "SIAMESE_VARIANTS",
    "SiameseKnowledgeHead",
    "anchor_soft_label",
    "converged_soft_labels",
    "propagate_siamese_knowledge",
    "siamese_knowledge_generation",
    "siamese_knowledge_reasoning",
    "siamese_variant",
    "smoothed_label",
]
