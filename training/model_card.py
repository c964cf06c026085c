"""Model card (README.md) of a fine-tuned SiaSamRea model folder, with Hub metadata built by `huggingface_hub`."""

from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from modeling_siasamrea import SiaSamReaConfig

SIAMESE_FIELDS = (
    "num_siamese_clips",
    "siamese_preset",
    "siamese_loss_weight",
    "siamese_omega",
    "siamese_temperature",
    "siamese_feature_centering",
    "siamese_knowledge",
    "siamese_projection",
    "learnable_clip_weights",
    "siamese_clips_supervised",
    "siamese_distillation_temperature",
    "siamese_soft_label",
    "siamese_propagation",
    "siamese_loss_weight_warmup",
    "siamese_label_smoothing",
)
# The Hub has no video-question-answering pipeline tag; VQA is the closest one it knows (answers from a vocabulary).
PIPELINE_TAG = "visual-question-answering"
# metric name -> its name on the Hub; only each task's selection metric enters the model-index
METRIC_NAMES = {"accuracy": "Accuracy", "mse": "Count MSE (rounded)"}
# what a metrics dict also holds that is no result: runtimes, throughputs, the loss, the epoch
NOT_RESULTS = ("runtime", "per_second", "loss", "epoch")

TEMPLATE = """---
{{ card_data }}
---

# SiaSamRea ({{ title }}, {{ dataset }})

A [SiaSamRea](https://proceedings.neurips.cc/paper/2021) model (Self-driven Siamese Sampling and Reasoning,
NeurIPS 2021): {{ vision }} and ClipBERT's BERT multimodal transformer, fine-tuned with siamese clips whose
predictions, propagated through the siamese knowledge Â, give the anchor clip a soft label
(L = L_gt + α·L_siamese). Inference uses only the anchor clip.

## Evaluation ({{ dataset }}, split {{ split }}, anchor clip only)

| metric | value |
|---|---|
{{ metric_rows }}

## Siamese settings

| setting | value |
|---|---|
{{ settings }}

## Use

```python
from transformers import pipeline

vqa = pipeline("video-question-answering", model="{{ model_ref }}", trust_remote_code=True)
vqa(video="video.mp4", question="what is the man doing?"{{ example_args }})
```

```python
from transformers import AutoModel

model = AutoModel.from_pretrained("{{ model_ref }}", trust_remote_code=True)
```
"""


# what the model card says of the vision side, by backbone family ({} is the backbone's model_type)
VISION_ENCODER_WORDS = {
    "grid": "ClipBERT's video encoder (a {} on every frame)",
    "frame": "a {} image ViT on every frame",
    "video": "a {} video transformer on every clip",
}


def build_model_card(
    config: SiaSamReaConfig,
    dataset_name: str,
    metrics: dict[str, float],
    repo_id: str | None = None,
    dataset_config: str | None = None,
    split: str = "test",
    base_model: str | None = None,
) -> ModelCard:
    """A `huggingface_hub.ModelCard`: metadata with a model-index (one `EvalResult` per task: its selection metric,
    e.g. accuracy or count MSE), the results table, the siamese settings and how to use the model. `metrics` may carry
    an `eval_` prefix; a joint model's are `<task>_<metric>`."""
    results = {name.removeprefix("eval_"): value for name, value in metrics.items()
               if not any(part in name for part in NOT_RESULTS)}
    eval_results = []
    for task in config.task_names:
        metric = config.task_type(task).metric_for_best_model
        key = f"{task}_{metric}" if config.tasks else metric
        if key in results:
            eval_results.append(EvalResult(
                task_type=PIPELINE_TAG, task_name="Video Question Answering", dataset_type=dataset_name,
                dataset_name=dataset_name, dataset_config=task if config.tasks else dataset_config,
                dataset_split=split, metric_type=metric, metric_name=METRIC_NAMES.get(metric, metric),
                metric_value=float(results[key])))
    card_data = ModelCardData(
        library_name="transformers", license="apache-2.0", pipeline_tag=PIPELINE_TAG,
        tags=["siasamrea", "video-question-answering", "custom_code"], datasets=[dataset_name],
        base_model=base_model if base_model and not Path(base_model).exists() else None,  # Hub ids only
        model_name=repo_id or f"siasamrea-{dataset_name}", eval_results=eval_results or None,
    )
    if config.tasks:
        title = "tasks " + ", ".join(config.task_names)
        example_args = f', task="{config.task_names[-1]}"'
    else:
        title = f"{config.task.replace('_', '-')} VideoQA"
        example_args = ', choices=["a", "b", "c", "d", "e"]' if config.task_type().takes_choices else ""
    return ModelCard.from_template(
        card_data, template_str=TEMPLATE, title=title, dataset=dataset_name, split=split,
        metric_rows="\n".join(f"| {name} | {value:.4f} |" for name, value in sorted(results.items())),
        settings="\n".join(f"| {name} | {getattr(config, name)} |" for name in SIAMESE_FIELDS),
        model_ref=repo_id or "path/to/this/folder", example_args=example_args,
        vision=VISION_ENCODER_WORDS[config.vision_family].format(config.vision_config.model_type),
    )


def write_model_card(output_dir: str | Path, config: SiaSamReaConfig, dataset_name: str, metrics: dict[str, float],
                     repo_id: str | None = None, **kwargs) -> Path:
    """Write `build_model_card(...)` as `output_dir/README.md`."""
    path = Path(output_dir) / "README.md"
    build_model_card(config, dataset_name, metrics, repo_id, **kwargs).save(path)
    return path
