"""Model card (README.md) for a fine-tuned SiaSamRea model folder."""

from pathlib import Path

from modeling_siasamrea import SiaSamReaConfig

SIAMESE_FIELDS = (
    "num_siamese_clips",
    "siamese_loss_weight",
    "siamese_omega",
    "siamese_temperature",
    "siamese_knowledge",
    "siamese_projection",
    "learnable_clip_weights",
    "siamese_clips_supervised",
)


def render_model_card(
    config: SiaSamReaConfig, dataset_name: str, metrics: dict[str, float], repo_id: str | None = None
) -> str:
    """Markdown with Hub metadata: task, dataset, evaluation metrics, siamese settings and how to use the model."""
    model_ref = repo_id or "path/to/this/folder"
    metric_rows = "\n".join(f"| {name} | {value:.4f} |" for name, value in sorted(metrics.items()))
    settings = "\n".join(f"| {name} | {getattr(config, name)} |" for name in SIAMESE_FIELDS)
    example_args = ', choices=["a", "b", "c", "d", "e"]' if config.task == "multiple_choice" else ""
    return f"""---
library_name: transformers
pipeline_tag: video-question-answering
tags:
- siasamrea
- video-question-answering
- custom_code
datasets:
- {dataset_name}
---

# SiaSamRea ({config.task.replace("_", "-")} VideoQA, {dataset_name})

A [SiaSamRea](https://proceedings.neurips.cc/paper/2021) model (Self-driven Siamese Sampling and Reasoning,
NeurIPS 2021): ClipBERT's ResNet video encoder and BERT multimodal transformer, fine-tuned with siamese clips whose
predictions, propagated through the siamese knowledge Â, give the anchor clip a soft label
(L = L_gt + α·L_siamese). Inference uses only the anchor clip.

## Evaluation ({dataset_name}, anchor clip only)

| metric | value |
|---|---|
{metric_rows}

## Siamese settings

| setting | value |
|---|---|
{settings}

## Use

```python
from transformers import pipeline

vqa = pipeline("video-question-answering", model="{model_ref}", trust_remote_code=True)
vqa(video="video.mp4", question="what is the man doing?"{example_args})
```

```python
from transformers import AutoModel

model = AutoModel.from_pretrained("{model_ref}", trust_remote_code=True)
```
"""


def write_model_card(
    output_dir: str | Path, config: SiaSamReaConfig, dataset_name: str, metrics: dict[str, float],
    repo_id: str | None = None,
) -> Path:
    path = Path(output_dir) / "README.md"
    path.write_text(render_model_card(config, dataset_name, metrics, repo_id))
    return path
