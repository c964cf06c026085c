"""Siamese knowledge generation (Eq. 1-2) and reasoning (Eq. 3-5) as functions."""

import math

import pytest
import torch

from modeling_siasamrea import siamese_knowledge_generation, siamese_knowledge_reasoning

# Hand-computed example, N = 3 clips, K = 2 answers: f1 = [1, 0], f2 = [0, 1], f3 = [1, 1].
# cos(f1, f2) = 0, cos(f1, f3) = cos(f2, f3) = 1/sqrt(2); a = 1 / (1 + e^{1/sqrt(2)}).
A_SMALL = 0.33023845067334306
EXPECTED_KNOWLEDGE = [[0.0, A_SMALL, 1 - A_SMALL], [A_SMALL, 0.0, 1 - A_SMALL], [0.5, 0.5, 0.0]]
PROBS = [[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]]
W1, W2 = [0.5, 0.25, 0.25], [0.2, 0.3, 0.5]
EXPECTED_Q = [0.4929940387331664, 0.5070059612668336]  # 0.5 * W1 Â P + 0.5 * W2 P, worked out by hand


def test_knowledge_matches_hand_computed_example():
    features = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], dtype=torch.float64)
    knowledge = siamese_knowledge_generation(features)
    torch.testing.assert_close(knowledge, torch.tensor(EXPECTED_KNOWLEDGE, dtype=torch.float64))


def test_soft_label_matches_hand_computed_example():
    knowledge = torch.tensor(EXPECTED_KNOWLEDGE, dtype=torch.float64)
    q = siamese_knowledge_reasoning(
        knowledge, torch.tensor(PROBS, dtype=torch.float64), torch.tensor(W1, dtype=torch.float64),
        torch.tensor(W2, dtype=torch.float64), omega=0.5,
    )
    torch.testing.assert_close(q, torch.tensor(EXPECTED_Q, dtype=torch.float64))


def test_knowledge_rows_sum_to_one_with_exact_zero_diagonal():
    knowledge = siamese_knowledge_generation(torch.randn(4, 9, 16))
    assert knowledge.shape == (4, 9, 9)
    torch.testing.assert_close(knowledge.sum(-1), torch.ones(4, 9))
    assert torch.all(torch.diagonal(knowledge, dim1=-2, dim2=-1) == 0)
    assert torch.all(knowledge >= 0)


def test_knowledge_is_scale_invariant_through_l2_normalisation():
    features = torch.randn(5, 8)
    torch.testing.assert_close(
        siamese_knowledge_generation(features), siamese_knowledge_generation(features * 7.5)
    )


def test_knowledge_is_permutation_equivariant():
    features = torch.randn(6, 10)
    perm = torch.randperm(6)
    knowledge = siamese_knowledge_generation(features)
    torch.testing.assert_close(siamese_knowledge_generation(features[perm]), knowledge[perm][:, perm])


def test_temperature_sharpens_and_flattens_knowledge():
    features = torch.randn(5, 8)
    base = siamese_knowledge_generation(features, temperature=1.0)
    sharp = siamese_knowledge_generation(features, temperature=0.05)
    flat = siamese_knowledge_generation(features, temperature=1000.0)
    assert sharp.max(-1).values.min() > base.max(-1).values.min()
    off_diagonal = 1 - torch.eye(5)
    torch.testing.assert_close(flat, off_diagonal / 4, atol=1e-3, rtol=0)
    # equivalent to scaling the cosine similarities
    cos = torch.nn.functional.normalize(features, dim=-1)
    logits = (cos @ cos.T / 0.05).masked_fill(torch.eye(5, dtype=torch.bool), float("-inf"))
    torch.testing.assert_close(sharp, logits.softmax(-1))


def test_knowledge_needs_two_clips():
    with pytest.raises(ValueError, match="at least 2 clips"):
        siamese_knowledge_generation(torch.randn(1, 4))


def test_soft_label_is_a_distribution_for_any_normalised_weights():
    knowledge = siamese_knowledge_generation(torch.randn(3, 5, 4))
    probs = torch.randn(3, 5, 7).softmax(-1)
    w1, w2 = torch.randn(2, 5).softmax(-1)
    for omega in (0.0, 0.3, 1.0):
        q = siamese_knowledge_reasoning(knowledge, probs, w1, w2, omega)
        assert q.shape == (3, 7)
        torch.testing.assert_close(q.sum(-1), torch.ones(3))


def test_omega_zero_and_one_select_plain_and_propagated_terms():
    knowledge = siamese_knowledge_generation(torch.randn(4, 6))
    probs = torch.randn(4, 3).softmax(-1)
    w1, w2 = torch.randn(2, 4).softmax(-1)
    torch.testing.assert_close(siamese_knowledge_reasoning(knowledge, probs, w1, w2, 0.0), w2 @ probs)
    torch.testing.assert_close(siamese_knowledge_reasoning(knowledge, probs, w1, w2, 1.0), w1 @ (knowledge @ probs))
    assert not math.isclose(float((w2 @ probs)[0]), float((w1 @ (knowledge @ probs))[0]), rel_tol=1e-6)
