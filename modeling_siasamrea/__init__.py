"""SiaSamRea for Hugging Face transformers.

A flat package: `save_pretrained` copies its modules next to the weights so that a saved model loads with
`trust_remote_code=True` without this package installed.
"""

from transformers import AutoConfig, AutoModel

from .configuration_siasamrea import SiaSamReaConfig
from .modeling_siasamrea import (
    SiaSamReaForVideoQuestionAnswering,
    SiaSamReaModel,
    SiaSamReaPreTrainedModel,
    SiaSamReaVideoQAOutput,
    aggregate_clip_logits,
    multiple_choice_hinge_loss,
)
from .siamese_reasoning import SiameseKnowledgeHead, siamese_knowledge_generation, siamese_knowledge_reasoning

# Local registration (`AutoModel.from_pretrained(dir)` with this package installed) and auto_map entries so that
# `save_pretrained` ships the code. AutoModel maps to the QA model: it is what the pipeline and users load.
AutoConfig.register(SiaSamReaConfig.model_type, SiaSamReaConfig, exist_ok=True)
AutoModel.register(SiaSamReaConfig, SiaSamReaForVideoQuestionAnswering, exist_ok=True)
SiaSamReaConfig.register_for_auto_class()
SiaSamReaForVideoQuestionAnswering.register_for_auto_class("AutoModel")

__all__ = [
    "aggregate_clip_logits",
    "SiaSamReaConfig",
    "SiaSamReaForVideoQuestionAnswering",
    "SiaSamReaModel",
    "SiaSamReaPreTrainedModel",
    "SiaSamReaVideoQAOutput",
    "SiameseKnowledgeHead",
    "multiple_choice_hinge_loss",
    "siamese_knowledge_generation",
    "siamese_knowledge_reasoning",
]
