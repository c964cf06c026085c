"""transformers' common model and config tests (`ModelTesterMixin`, `ConfigTester`) on SiaSamRea.

The mixins come from the sdist of the installed transformers (see `transformers_sdist.py`); this module is skipped,
with the reason, when they have not been fetched. `SiaSamReaModel` is tested once (it does not depend on the task);
`SiaSamReaForVideoQuestionAnswering` for each task, with `1 + num_siamese_clips` clips per video.
"""

import tempfile
import unittest

import torch
from transformers import ResNetModel
from transformers.models.bert.modeling_bert import BertSelfAttention
from transformers_sdist import import_common_tests

from modeling_siasamrea import SiaSamReaConfig, SiaSamReaForVideoQuestionAnswering, SiaSamReaModel

common = import_common_tests()
ModelTesterMixin = common.modeling.ModelTesterMixin
ConfigTester = common.configuration.ConfigTester
ids_tensor = common.modeling.ids_tensor


class SiaSamReaModelTester:
    """Tiny configs and inputs for one model class and task (a 2-stage ResNet, a 2-layer BERT, 32x32 frames)."""

    def __init__(
        self,
        parent: unittest.TestCase,
        model_class: type = SiaSamReaForVideoQuestionAnswering,
        task: str = "open_ended",
        batch_size: int = 2,
        num_clips: int = 3,
        num_frames: int = 2,
        image_size: int = 32,
        text_length: int = 7,
        num_choices: int = 3,
        num_answers: int = 5,
        vocab_size: int = 99,
        hidden_size: int = 32,
        num_hidden_layers: int = 2,
        num_attention_heads: int = 2,
        intermediate_size: int = 37,
    ):
        self.parent = parent
        self.model_class = model_class
        self.task = task
        self.batch_size = batch_size
        self.num_clips = num_clips
        self.num_frames = num_frames
        self.image_size = image_size
        self.text_length = text_length
        self.num_choices = num_choices
        self.num_answers = num_answers
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.vision_config = {"depths": [1, 1], "hidden_sizes": [8, 16], "embedding_size": 8}
        self.text_config = {
            "vocab_size": vocab_size,
            "hidden_size": hidden_size,
            "num_hidden_layers": num_hidden_layers,
            "num_attention_heads": num_attention_heads,
            "intermediate_size": intermediate_size,
            "max_position_embeddings": 64,
        }
        # the ResNet (stride 8 for two stages) and the grid encoder's 2x2 pooling give a (size/16)^2 grid of tokens
        self.num_visual_tokens = (image_size // 16) ** 2
        # the multimodal transformer attends over [text tokens ; visual tokens]
        self.seq_length = text_length + self.num_visual_tokens
        # only the QA model has a loss to train
        self.is_training = model_class is SiaSamReaForVideoQuestionAnswering
        if model_class is SiaSamReaModel:
            self.video_model_tester = SiaSamReaVideoModelTester(self)

    def get_config(self) -> SiaSamReaConfig:
        return SiaSamReaConfig(
            task=self.task,
            vision_config=dict(self.vision_config),
            text_config=dict(self.text_config),
            num_answers=self.num_answers if self.task == "open_ended" else None,
            num_siamese_clips=self.num_clips - 1,
        )

    def prepare_config_and_inputs_for_common(self) -> tuple[SiaSamReaConfig, dict[str, torch.Tensor]]:
        frame_shape = (self.num_frames, 3, self.image_size, self.image_size)
        # torch.rand rather than the common floats_tensor, which draws every pixel in Python (a tenth of the run time)
        if self.model_class is SiaSamReaModel:  # one clip per text
            pixel_values = torch.rand(self.batch_size, *frame_shape)
            text_shape = (self.batch_size, self.text_length)
        else:
            pixel_values = torch.rand(self.batch_size, self.num_clips, *frame_shape)
            text_shape = (self.batch_size, self.text_length)
            if self.task == "multiple_choice":
                text_shape = (self.batch_size, self.num_choices, self.text_length)
        input_ids = ids_tensor(text_shape, self.text_config["vocab_size"])
        attention_mask = torch.ones_like(input_ids)
        attention_mask[0, ..., -2:] = 0  # the first text is padded
        inputs = {"pixel_values": pixel_values, "input_ids": input_ids, "attention_mask": attention_mask}
        return self.get_config(), inputs

    def labels(self) -> torch.Tensor:
        """Valid labels for the task, the same at every call (the common tests compare runs on copies of the inputs)."""
        labels = torch.arange(self.batch_size)
        if self.task == "count":
            return labels.float()
        return labels % (self.num_answers if self.task == "open_ended" else self.num_choices)


class SiaSamReaVideoModelTester:
    """What the common tests check `SiaSamReaModel.get_video_features` with: clips of frames and the ResNet, whose
    embedder and stage outputs are its hidden states."""

    def __init__(self, model_tester: SiaSamReaModelTester):
        self.model_tester = model_tester
        self.num_hidden_layers = len(model_tester.vision_config["depths"])  # stages

    def prepare_config_and_inputs_for_common(self) -> tuple[SiaSamReaConfig, dict[str, torch.Tensor]]:
        config, inputs = self.model_tester.prepare_config_and_inputs_for_common()
        return config, {"pixel_values_videos": inputs["pixel_values"]}


class SiaSamReaCommonTestMixin(ModelTesterMixin):
    """What every SiaSamRea test class sets on top of transformers' ModelTesterMixin."""

    task = "open_ended"
    # the config has two sub-configs (ResNet, BERT): run the composite-model attention tests, not the single-config ones
    _is_composite = True
    # transformers dates a model by the copyright line of its config file (none here, so "before 2023") and skips this
    # check of _init_weights for older models unless told; ours initialises every weight
    test_can_init_all_missing_weights_before_2023 = True

    def setUp(self):
        self.model_tester = SiaSamReaModelTester(self, model_class=self.all_model_classes[0], task=self.task)
        # the vocabulary size is a property of text_config, not of the top-level config
        self.config_tester = ConfigTester(self, config_class=SiaSamReaConfig, has_text_modality=False)

    def _prepare_for_class(self, inputs_dict, model_class, return_labels=False):
        inputs_dict = super()._prepare_for_class(inputs_dict, model_class, return_labels=return_labels)
        if return_labels and model_class is SiaSamReaForVideoQuestionAnswering:
            inputs_dict["labels"] = self.model_tester.labels()
        return inputs_dict

    def test_config(self):
        self.config_tester.run_common_tests()

    def test_sdpa_can_dispatch_composite_models(self):
        # transformers' version looks for a `vision_tower` and a `language_model` sub-model and skips without them.
        # Here the attention is in the BERT layers and the ResNet sub-model has none: a plain string (the default
        # "sdpa" included) applies to the former, the latter stays eager.
        config, _ = self.model_tester.prepare_config_and_inputs_for_common()
        model_class = self.all_model_classes[0]

        def check(model, expected):
            attention_configs = [m.config for m in model.modules() if isinstance(m, BertSelfAttention)]
            self.assertTrue(attention_configs)
            self.assertTrue(all(c._attn_implementation == expected for c in [model.config, *attention_configs]))
            (resnet,) = [m for m in model.modules() if isinstance(m, ResNetModel)]
            self.assertEqual(resnet.config._attn_implementation, "eager")

        with tempfile.TemporaryDirectory() as folder:
            model_class(config).save_pretrained(folder)
            check(model_class.from_pretrained(folder), "sdpa")
            check(model_class.from_pretrained(folder, attn_implementation="sdpa"), "sdpa")
            model = model_class.from_pretrained(folder, attn_implementation="eager")
            check(model, "eager")
        model.set_attn_implementation("sdpa")
        check(model, "sdpa")
        model.set_attn_implementation("eager")
        check(model, "eager")

    @unittest.skip(reason="the config has sub-configs: test_sdpa_can_dispatch_composite_models checks the dispatch")
    def test_sdpa_can_dispatch_non_composite_models(self):
        pass


class SiaSamReaModelTest(SiaSamReaCommonTestMixin, unittest.TestCase):
    all_model_classes = (SiaSamReaModel,)
    # the eager/SDPA comparisons pass only the main input (input_ids), an attention mask and these: the video too
    additional_model_inputs = ["pixel_values"]
    # get_video_features' last_hidden_state is the ResNet's channels-first feature map of every frame
    # (clips * frames, C, h, w), and ResNetConfig has no hidden_size, so the test's shape check does not apply
    skip_test_video_features_output_shape = True

    @unittest.skip(reason="the video encoder is a CNN (ResNet): get_video_features has no attentions")
    def test_get_video_features_attentions(self):
        pass


class SiaSamReaForVideoQuestionAnsweringTestMixin(SiaSamReaCommonTestMixin):
    all_model_classes = (SiaSamReaForVideoQuestionAnswering,)
    # the eager/SDPA comparisons pass only the main input (pixel_values), an attention mask and these: the text too
    additional_model_inputs = ["input_ids"]


class SiaSamReaForVideoQuestionAnsweringOpenEndedTest(SiaSamReaForVideoQuestionAnsweringTestMixin, unittest.TestCase):
    task = "open_ended"


class SiaSamReaForVideoQuestionAnsweringMultipleChoiceTest(
    SiaSamReaForVideoQuestionAnsweringTestMixin, unittest.TestCase
):
    task = "multiple_choice"


class SiaSamReaForVideoQuestionAnsweringCountTest(SiaSamReaForVideoQuestionAnsweringTestMixin, unittest.TestCase):
    task = "count"
