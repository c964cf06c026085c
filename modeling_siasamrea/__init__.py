"""SiaSamRea for Hugging Face transformers.

A flat package: `save_pretrained` copies its modules next to the weights so that a saved model loads with
`trust_remote_code=True` without this package installed.
"""

from transformers import AutoConfig, AutoImageProcessor, AutoModel, AutoProcessor

# imported from its module: without torchvision, `from transformers import AutoVideoProcessor` gives a placeholder
from transformers.models.auto.video_processing_auto import AutoVideoProcessor

from .configuration_siasamrea import SiaSamReaConfig
from .image_processing_siasamrea import SiaSamReaImageProcessor
from .modeling_siasamrea import (
    SiaSamReaForVideoQuestionAnswering,
    SiaSamReaModel,
    SiaSamReaPreTrainedModel,
    SiaSamReaVideoQAOutput,
)
from .pipeline_siasamrea import VideoQuestionAnsweringPipeline, save_pipeline_folder
from .processing_siasamrea import SiaSamReaProcessor
from .sampling import ClipSampler, SiameseSampler, UniformClipSampler, clip_sampler_from_config
from .siamese_reasoning import SiameseKnowledgeHead, siamese_knowledge_generation, siamese_knowledge_reasoning
from .tasks import TASK_TYPES, TaskType, aggregate_clip_logits, get_task_type, multiple_choice_hinge_loss
from .video_io import VideoDecodeError, count_frames, read_clips, write_video
from .video_processing_siasamrea import SiaSamReaVideoProcessor

# Local registration (`AutoModel.from_pretrained(dir)` with this package installed) and auto_map entries so that
# `save_pretrained` ships the code. AutoModel maps to the QA model: it is what the pipeline and users load.
AutoConfig.register(SiaSamReaConfig.model_type, SiaSamReaConfig, exist_ok=True)
AutoModel.register(SiaSamReaConfig, SiaSamReaForVideoQuestionAnswering, exist_ok=True)
AutoImageProcessor.register(SiaSamReaConfig, image_processor_classes={"pil": SiaSamReaImageProcessor}, exist_ok=True)
AutoVideoProcessor.register(SiaSamReaConfig, SiaSamReaVideoProcessor, exist_ok=True)
AutoProcessor.register(SiaSamReaConfig, SiaSamReaProcessor, exist_ok=True)
SiaSamReaConfig.register_for_auto_class()
SiaSamReaForVideoQuestionAnswering.register_for_auto_class("AutoModel")
SiaSamReaImageProcessor.register_for_auto_class("AutoImageProcessor")
SiaSamReaVideoProcessor.register_for_auto_class("AutoVideoProcessor")
SiaSamReaProcessor.register_for_auto_class("AutoProcessor")

__all__ = [
    "TASK_TYPES",
    "TaskType",
    "get_task_type",
    "aggregate_clip_logits",
    "ClipSampler",
    "SiaSamReaConfig",
    "SiaSamReaForVideoQuestionAnswering",
    "SiaSamReaImageProcessor",
    "SiaSamReaModel",
    "SiaSamReaPreTrainedModel",
    "SiaSamReaProcessor",
    "SiaSamReaVideoProcessor",
    "SiaSamReaVideoQAOutput",
    "SiameseKnowledgeHead",
    "SiameseSampler",
    "UniformClipSampler",
    "VideoDecodeError",
    "VideoQuestionAnsweringPipeline",
    "clip_sampler_from_config",
    "count_frames",
    "multiple_choice_hinge_loss",
    "read_clips",
    "save_pipeline_folder",
    "siamese_knowledge_generation",
    "siamese_knowledge_reasoning",
    "write_video",
]
