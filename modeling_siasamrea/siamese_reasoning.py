"""Siamese knowledge generation (SKG, Eq. 1-2) and siamese knowledge reasoning (SKR, Eq. 3-5)."""

import torch
from torch import nn
from transformers.utils import logging

from .configuration_siasamrea import SiaSamReaConfig

logger = logging.get_logger(__name__)


def siamese_knowledge_generation(features: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Siamese knowledge Â of N clip-text features (Eq. 1-2).

    A(i, j) = σ(f_i)ᵀ σ(f_j) with σ the ℓ2-normalisation (Eq. 1); the diagonal is discarded and each row is
    softmax-normalised over j != i (Eq. 2), so Â(i, i) = 0 exactly and every row sums to 1.

    Args:
        features: `(..., N, D)` clip-text features, N >= 2.
        temperature: similarities are divided by it before the softmax (1 in the paper).

    Returns:
        `(..., N, N)` row-stochastic matrix with a zero diagonal.
    """
    num_clips = features.shape[-2]
    if num_clips < 2:
        raise ValueError(f"siamese knowledge needs at least 2 clips, got features of shape {tuple(features.shape)}")
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


def siamese_knowledge_reasoning(
    knowledge: torch.Tensor, probs: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor, omega: float
) -> torch.Tensor:
    """Soft label Q = ω·W1 Â P + (1 − ω)·W2 P (Eq. 3-5).

    Â P propagates every clip's prediction to the others (Eq. 3, 4); W1 and W2 weigh the N clips.

    Args:
        knowledge: `(..., N, N)` siamese knowledge Â.
        probs: `(..., N, K)` predictions P of the N clips (anchor first).
        w1, w2: `(N,)` clip weights, already normalised (each sums to 1 so Q stays a distribution).
        omega: ω in [0, 1].

    Returns:
        `(..., K)` soft label Q.
    """
    propagated = knowledge @ probs  # (..., N, N) @ (..., N, K) -> (..., N, K)
    return omega * torch.einsum("n,...nk->...k", w1, propagated) + (1.0 - omega) * torch.einsum(
        "n,...nk->...k", w2, probs
    )


class SiameseKnowledgeHead(nn.Module):
    """Training-only head: the optional projection F of Eq. 1 and the clip weights W1, W2 of Eq. 5.

    W1 and W2 are stored as N logits each and used through a softmax (initialised uniform), so the soft label is a
    distribution whatever they learn.
    """

    def __init__(self, config: SiaSamReaConfig):
        super().__init__()
        self.config = config
        # Only parameters that take part in the loss are created: DDP without `find_unused_parameters` (what the
        # Trainer uses with activation checkpointing) fails on a parameter that never gets a gradient.
        siamese = config.num_clips > 1
        uses_projection = siamese and config.siamese_projection and config.siamese_knowledge == "similarity"
        if config.siamese_projection and not uses_projection:
            logger.warning("siamese_projection is ignored: F of Eq. 1 only acts on the similarities of siamese clips "
                           "(num_siamese_clips=%d, siamese_knowledge=%r)", config.num_siamese_clips,
                           config.siamese_knowledge)
        self.projection = nn.Linear(config.hidden_size, config.hidden_size) if uses_projection else None
        if config.learnable_clip_weights and siamese:
            self.clip_weight_logits = nn.Parameter(torch.zeros(2, config.num_clips))
        else:  # uniform W1, W2; with one clip (no siamese clips) there is nothing to weigh
            self.register_buffer("clip_weight_logits", torch.zeros(2, config.num_clips), persistent=False)

    @property
    def learns_from_ground_truth(self) -> bool:
        """Whether the head has parameters (W1, W2, F): then the ground truth on Q trains them."""
        return any(parameter.requires_grad for parameter in self.parameters())

    def clip_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The normalised W1 and W2, each `(N,)`."""
        w1, w2 = self.clip_weight_logits.softmax(dim=-1)
        return w1, w2

    def knowledge(self, features: torch.Tensor) -> torch.Tensor:
        """Â `(batch, N, N)` from clip-text features `(batch, N, [texts,] h)`, as `config.siamese_knowledge` says.

        F applies to every clip-text feature; a clip with several texts (multiple choice) is then described by the
        concatenation of its per-choice features, so two clips are similar when they agree on every choice.
        """
        if self.config.siamese_knowledge == "average":
            return average_siamese_knowledge(features.shape[1], features).expand(features.shape[0], -1, -1)
        if self.projection is not None:
            features = self.projection(features)
        clip_features = features.flatten(2)  # (b, N, h) or, with choices, (b, N, choices * h)
        return siamese_knowledge_generation(clip_features, self.config.siamese_temperature)

    def forward(self, features: torch.Tensor, probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (Â `(batch, N, N)`, Q `(batch, K)`) for features `(batch, N, [texts,] h)` and predictions
        `(batch, N, K)`."""
        num_clips = probs.shape[1]
        if num_clips != self.config.num_clips:
            raise ValueError(
                f"the clip weights W1, W2 were built for N = {self.config.num_clips} clips "
                f"(1 anchor + num_siamese_clips={self.config.num_siamese_clips}), got {num_clips} clips"
            )
        knowledge = self.knowledge(features)
        w1, w2 = self.clip_weights()
        return knowledge, siamese_knowledge_reasoning(knowledge, probs, w1, w2, self.config.siamese_omega)


__all__ = ["SiameseKnowledgeHead", "siamese_knowledge_generation", "siamese_knowledge_reasoning"]
