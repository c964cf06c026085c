"""The siamese variants are strategies chosen once when the head is built, and they compute what they always did.

`EXPECTED_*` were computed with the head before its variants became strategies (string comparisons at forward time):
the same Â and Q for every switch value, and the same losses for every row of the siamese studies
(benchmarks/siamese_study.py, benchmarks/siamese_regimes.py).
"""

import itertools
import re
from pathlib import Path

import pytest
import torch
from conftest import tiny_config, tiny_inputs

from modeling_siasamrea import SiaSamReaConfig, SiaSamReaForVideoQuestionAnswering
from modeling_siasamrea.siamese_reasoning import (
    KNOWLEDGE_SOURCES,
    PROPAGATIONS,
    SIAMESE_VARIANTS,
    SOFT_LABEL_SOURCES,
    SiameseKnowledgeHead,
)

REPO = Path(__file__).resolve().parents[1]
# settings of the studies' rows that have siamese clips, with fewer clips to keep the test short
STUDY_ROWS = {
    "paper": {},
    "t4": {"siamese_distillation_temperature": 4.0},
    "anchor_row": {"siamese_soft_label": "anchor_row"},
    "anchor_init": {"siamese_soft_label": "eq5_anchor_init"},
    "closed_form": {"siamese_propagation": "closed_form"},
    "warmup": {"siamese_loss_weight_warmup": 0.5},
    "augment_only": {"siamese_clips_supervised": True, "siamese_loss_weight": 0.0},
    "supervised": {"siamese_clips_supervised": True},
    "structured": {"siamese_soft_label": "anchor_row", "siamese_feature_centering": True, "siamese_temperature": 0.3},
    "structured_average": {"siamese_soft_label": "anchor_row", "siamese_feature_centering": True,
                           "siamese_temperature": 0.3, "siamese_knowledge": "average"},
    "smoothed": {"siamese_soft_label": "smoothed_label", "siamese_label_smoothing": 0.345},
}
KNOWLEDGE_SWITCHES = {
    "siamese_knowledge": ("similarity", "average"),
    "siamese_feature_centering": (False, True),
    "siamese_projection": (False, True),
}
SOFT_LABEL_SWITCHES = {
    "siamese_soft_label": ("eq5", "anchor_row", "eq5_anchor_init", "smoothed_label"),
    "siamese_propagation": ("one_step", "closed_form"),
    "learnable_clip_weights": (False, True),
}

# Â fingerprint by (siamese_knowledge, siamese_feature_centering, siamese_projection, features shape)
EXPECTED_KNOWLEDGE = {
    "similarity,False,False,oe": 3.6115657025370935,
    "similarity,False,False,mc": 3.671352021533375,
    "similarity,False,True,oe": 3.595403315549118,
    "similarity,False,True,mc": 3.665778207750858,
    "similarity,True,False,oe": 3.591276992030464,
    "similarity,True,False,mc": 3.606276752205907,
    "similarity,True,True,oe": 3.5462575012176716,
    "similarity,True,True,mc": 3.599494509361758,
    "average,False,False,oe": 3.730259767919329,
    "average,False,False,mc": 3.730259767919329,
    "average,False,True,oe": 3.730259767919329,
    "average,False,True,mc": 3.730259767919329,
    "average,True,False,oe": 3.730259767919329,
    "average,True,False,mc": 3.730259767919329,
    "average,True,True,oe": 3.730259767919329,
    "average,True,True,mc": 3.730259767919329,
}
# Q fingerprint by (siamese_soft_label, siamese_propagation, learnable_clip_weights)
EXPECTED_SOFT_LABELS = {
    "eq5,one_step,False": 1.1438636113652447,
    "eq5,one_step,True": 1.1169196816944944,
    "eq5,closed_form,False": 1.1447108118738027,
    "eq5,closed_form,True": 1.111518087350206,
    "anchor_row,one_step,False": 1.153273772908877,
    "anchor_row,one_step,True": 1.153273772908877,
    "anchor_row,closed_form,False": 1.148488806359544,
    "anchor_row,closed_form,True": 1.148488806359544,
    "eq5_anchor_init,one_step,False": 1.1520190847702505,
    "eq5_anchor_init,one_step,True": 1.1407672153405994,
    "eq5_anchor_init,closed_form,False": 1.147985073788421,
    "eq5_anchor_init,closed_form,True": 1.1359473019293769,
    "smoothed_label,one_step,False": 0.5713386954031153,
    "smoothed_label,one_step,True": 0.5713386954031153,
    "smoothed_label,closed_form,False": 0.5713386954031153,
    "smoothed_label,closed_form,True": 0.5713386954031153,
}
# (loss, L_siamese) by study row
EXPECTED_STUDY_LOSSES = {
    "paper": [4.838749222349195, 1.6087420097494154],
    "t4": [28.98032897774209, 25.75032176514231],
    "anchor_row": [3.225369134344368, 1.6087387122650525],
    "anchor_init": [4.839700270062803, 1.6087391519296106],
    "closed_form": [4.838749048653204, 1.6087419261501652],
    "warmup": [4.838749222349195, 1.6087420097494154],
    "augment_only": [3.231622632148768, 1.60867088058182],
    "supervised": [4.840293512730588, 1.60867088058182],
    "structured": [3.22535923388255, 1.6087288118032346],
    "structured_average": [3.22536965865971, 1.6087392365803947],
    "smoothed": [3.2310191824849697, 1.6143887604056544],
}


def _grid(switches: dict[str, tuple]) -> list[dict]:
    return [dict(zip(switches, values)) for values in itertools.product(*switches.values())]


def _key(switches: dict) -> str:
    return ",".join(str(value) for value in switches.values())


def _head(**switches) -> SiameseKnowledgeHead:
    """A head for N = 4 clips in float64, its F and learnable W1, W2 logits drawn from a fixed seed."""
    torch.manual_seed(0)
    config = tiny_config(siamese_preset="paper", num_siamese_clips=3, siamese_temperature=0.5, **switches)
    head = SiameseKnowledgeHead(config).double()
    if isinstance(head.clip_weight_logits, torch.nn.Parameter):
        with torch.no_grad():
            head.clip_weight_logits.copy_(torch.randn(2, 4, dtype=torch.float64))
    return head


def _fingerprint(values: torch.Tensor, seed: int) -> float:
    """One number that moves with every entry of `values`: their sum weighted by fixed random weights."""
    weights = torch.rand(values.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return (values.double() * weights).sum().item()


def knowledge_fingerprints() -> dict[str, float]:
    """Â of every knowledge switch setting, for open-ended `(b, N, h)` and multiple-choice `(b, N, choices, h)`."""
    generator = torch.Generator().manual_seed(1)
    features = {"oe": torch.randn(2, 4, 32, generator=generator, dtype=torch.float64),
                "mc": torch.randn(2, 4, 3, 32, generator=generator, dtype=torch.float64)}
    return {f"{_key(switches)},{shape}": _fingerprint(_head(**switches).knowledge(feats), 2)
            for switches in _grid(KNOWLEDGE_SWITCHES) for shape, feats in features.items()}


def soft_label_fingerprints() -> dict[str, float]:
    """Q of every soft-label switch setting, for one fixed Â and P."""
    generator = torch.Generator().manual_seed(3)
    knowledge = _head().knowledge(torch.randn(2, 4, 32, generator=generator, dtype=torch.float64))
    probs = torch.randn(2, 4, 5, generator=generator, dtype=torch.float64).softmax(-1)
    labels = torch.tensor([2, -100])
    return {_key(switches): _fingerprint(_head(**switches).soft_label(knowledge, probs, labels), 4)
            for switches in _grid(SOFT_LABEL_SWITCHES)}


def study_losses() -> dict[str, list[float]]:
    """(loss, L_siamese) of one training forward of a tiny open-ended model (float64) for each study row."""
    losses = {}
    for name, switches in STUDY_ROWS.items():
        torch.manual_seed(0)
        config = tiny_config(**{"siamese_preset": "paper", "num_siamese_clips": 3, **switches})  # as the studies
        model = SiaSamReaForVideoQuestionAnswering(config).double().train()
        with torch.no_grad():  # confident, distinct predictions, so that Q depends on the variant
            model.classifier[-1].weight.mul_(30.0)
        inputs = tiny_inputs(config, clips=config.num_clips, frames=1)
        out = model(**{**inputs, "pixel_values": inputs["pixel_values"].double()})
        losses[name] = [out.loss.item(), out.loss_siamese.item()]
    return losses


def test_knowledge_of_every_switch_setting_is_unchanged():
    assert knowledge_fingerprints() == pytest.approx(EXPECTED_KNOWLEDGE, rel=1e-12)


def test_soft_label_of_every_switch_setting_is_unchanged():
    assert soft_label_fingerprints() == pytest.approx(EXPECTED_SOFT_LABELS, rel=1e-12)


def test_losses_of_every_study_row_are_unchanged():
    losses = study_losses()
    assert losses.keys() == EXPECTED_STUDY_LOSSES.keys()
    for name, expected in EXPECTED_STUDY_LOSSES.items():
        assert losses[name] == pytest.approx(expected, rel=1e-10), name


def test_no_siamese_switch_is_compared_as_a_string_in_the_head():
    source = (REPO / "modeling_siasamrea" / "siamese_reasoning.py").read_text()
    comparisons = re.findall(r"siamese_\w+ *(?:==|!=|not in|in) *[(\"']", source)
    assert not comparisons, comparisons


def test_the_head_uses_the_strategies_its_config_names_looked_up_once():
    head = _head(siamese_knowledge="average", siamese_soft_label="anchor_row", siamese_propagation="closed_form")
    assert head.knowledge_source is KNOWLEDGE_SOURCES["average"]
    assert head.soft_label_source is SOFT_LABEL_SOURCES["anchor_row"]
    assert head.propagation is PROPAGATIONS["closed_form"]
    head.config.siamese_soft_label = "eq5"  # a config changed after the head was built does not switch it
    assert head.soft_label_source is SOFT_LABEL_SOURCES["anchor_row"]


@pytest.mark.parametrize("field", list(SIAMESE_VARIANTS))
def test_an_unknown_variant_names_the_field_and_the_allowed_values(field):
    allowed = tuple(SIAMESE_VARIANTS[field])
    message = re.escape(f"{field} must be one of {allowed}, got 'unknown'")
    with pytest.raises(ValueError, match=message):
        SiaSamReaConfig(**{field: "unknown"})
    config = tiny_config()
    setattr(config, field, "unknown")  # set after validation: the head checks through the same table
    with pytest.raises(ValueError, match=message):
        SiameseKnowledgeHead(config)
