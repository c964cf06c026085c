"""Trainer callbacks of the siamese objective."""

from transformers import TrainerCallback

from modeling_siasamrea.siamese_reasoning import SiameseKnowledgeHead


class SiameseLossWarmupCallback(TrainerCallback):
    """Tell the model's siamese head how far training is (global step / max steps) before every step, so that α
    rises linearly over the first `siamese_loss_weight_warmup` of training (`SiameseKnowledgeHead.loss_weight`).
    Harmless without a warm-up: the head then ignores the progress."""

    def on_step_begin(self, args, state, control, model=None, **kwargs):
        if model is None or not state.max_steps:
            return
        progress = state.global_step / state.max_steps
        for module in model.modules():  # the head, wherever a wrapper put the model
            if isinstance(module, SiameseKnowledgeHead):
                module.training_progress = progress


__all__ = ["SiameseLossWarmupCallback"]
