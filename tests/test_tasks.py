"""Task types (tasks.py) and models with several heads: one place per task type, one model for TGIF-QA's four tasks."""

import pytest
import torch
from conftest import TINY_TEXT, TINY_VISION, tiny_config, tiny_inputs

from modeling_siasamrea import TASK_TYPES, SiaSamReaConfig, SiaSamReaForVideoQuestionAnswering, get_task_type
from modeling_siasamrea.tasks import IGNORE_INDEX

JOINT_TASKS = {
    "action": {"type": "multiple_choice"},
    "transition": {"type": "multiple_choice", "loss_weight": 0.5},
    "frameqa": {"type": "open_ended", "answers": ["red", "green", "blue"]},
    "count": {"type": "count"},
}


def joint_config(**kwargs) -> SiaSamReaConfig:
    return SiaSamReaConfig(tasks=JOINT_TASKS, vision_config=dict(TINY_VISION), text_config=dict(TINY_TEXT),
                           num_siamese_clips=2, **kwargs)


def inputs_for(config: SiaSamReaConfig, task: str, **kwargs) -> dict:
    """`tiny_inputs` shaped for one task of a (joint) model."""
    single = tiny_config(config.task_type(task).name, num_answers=len(config.answers(task) or ()) or None)
    return tiny_inputs(single, **kwargs)


def test_the_registry_names_each_task_type_once():
    assert set(TASK_TYPES) == {"open_ended", "multiple_choice", "count"}
    assert all(get_task_type(name).name == name for name in TASK_TYPES)
    with pytest.raises(ValueError, match="task type must be one of"):
        get_task_type("ranking")


@pytest.mark.parametrize("task", list(TASK_TYPES))
def test_a_batch_without_any_usable_label_has_a_finite_zero_loss(task):
    model = SiaSamReaForVideoQuestionAnswering(tiny_config(task)).eval()
    inputs = tiny_inputs(model.config, clips=1)
    if task != "count":
        inputs["labels"] = torch.full_like(inputs["labels"], IGNORE_INDEX)  # e.g. only answers the model does not know
        assert model(**inputs).loss.item() == 0.0


def test_a_joint_model_has_one_head_per_task_and_routes_by_name():
    model = SiaSamReaForVideoQuestionAnswering(joint_config()).eval()
    assert set(model.classifier) == set(JOINT_TASKS)
    assert model.classifier["frameqa"][-1].out_features == 3 and model.classifier["count"][-1].out_features == 1
    for task in JOINT_TASKS:
        inputs = inputs_for(model.config, task, clips=3)
        out = model(**inputs, task=task)
        width = {"action": 4, "transition": 4, "frameqa": 3, "count": 1}[task]  # 4 choices per question here
        assert out.logits.shape == (2, width) and torch.isfinite(out.loss) and out.soft_labels.shape == (2, width)


def test_a_joint_model_weighs_each_tasks_loss_and_needs_the_task_named():
    model = SiaSamReaForVideoQuestionAnswering(joint_config()).eval()
    model.classifier["transition"].load_state_dict(model.classifier["action"].state_dict())
    inputs = inputs_for(model.config, "transition", clips=1)
    weighted = model(**inputs, task="transition").loss
    assert torch.allclose(weighted, 0.5 * model(**inputs, task="action").loss)  # the same head, inputs and labels
    with pytest.raises(ValueError,
                       match=r"name one with task=\.\.\., one of \('action', 'transition', 'frameqa', 'count'\)"):
        model(**inputs)
    with pytest.raises(ValueError, match="unknown task 'colour'"):
        model(**inputs, task="colour")


def test_a_joint_config_round_trips_and_checks_its_tasks(tmp_path):
    model = SiaSamReaForVideoQuestionAnswering(joint_config())
    model.save_pretrained(tmp_path)
    reloaded = SiaSamReaForVideoQuestionAnswering.from_pretrained(tmp_path)
    assert set(reloaded.config.task_names) == set(JOINT_TASKS) and reloaded.config.task is None
    assert reloaded.config.answers("frameqa") == {0: "red", 1: "green", 2: "blue"}
    assert reloaded.config.loss_weight("transition") == 0.5
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, reloaded.state_dict()[name]), name
    with pytest.raises(ValueError, match="needs its answer vocabulary"):
        SiaSamReaConfig(tasks={"frameqa": {"type": "open_ended"}})
    with pytest.raises(ValueError, match="takes no 'answers'"):
        SiaSamReaConfig(tasks={"count": {"type": "count", "answers": ["1"]}})


def test_a_single_task_model_keeps_its_one_head_and_needs_no_task_name():
    model = SiaSamReaForVideoQuestionAnswering(tiny_config("count"))
    assert isinstance(model.classifier, torch.nn.Sequential) and model.answer_head() is model.classifier
    assert model.config.task_names == ("count",) and model.config.resolve_task(None) == "count"
