"""transformers' common model and config tests (`ModelTesterMixin`, `ConfigTester`) on SiaSamRea.

The mixins come from the sdist of the installed transformers (see `transformers_sdist.py`); this module is skipped,
with the reason, when they have not been fetched. With the ResNet backbone, `SiaSamReaModel` is tested once (it does
not depend on the task) and `SiaSamReaForVideoQuestionAnswering` for each task, with `1 + num_siamese_clips` clips per
video; the QA model once more for each other family of vision backbones (an image ViT per frame: SigLIP; a video
transformer: VideoMAE), since what differs between backbones is the vision side, not the task.
"""

import tempfile
import unittest

import torch
from conftest import TINY_BACKBONES
from transformers.models.bert.modeling_bert import BertSelfAttention
from transformers_sdist import import_common_tests

from modeling_siasamrea import SiaSamReaConfig, SiaSamReaForVideoQuestionAnswering, SiaSamReaModel

common = import_common_tests()
ModelTesterMixin = common.modeling.ModelTesterMixin
ConfigTester = common.configuration.ConfigTester
ids_tensor = common.modeling.ids_tensor


# visual tokens of a clip of 32x32 frames: a 2x2 grid (the ResNet's stride 8 and the grid encoder's 2x2 pooling;
# 16-pixel ViT patches or tubelets), and SigLIP's pooled token
VISUAL_TOKENS = {"resnet": 4, "siglip": 5, "videomae": 4}


class SiaSamReaModelTester:
    """Tiny configs and inputs for one model class, task and vision backbone (`conftest.TINY_BACKBONES`), a 2-layer
    BERT, 32x32 frames."""

    def __init__(
        self,
        parent: unittest.TestCase,
        model_class: type = SiaSamReaForVideoQuestionAnswering,
        task: str = "open_ended",
        backbone: str = "resnet",
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
        self.backbone = backbone
        self.vision_config = dict(TINY_BACKBONES[backbone])
        self.text_config = {
            "vocab_size": vocab_size,
            "hidden_size": hidden_size,
            "num_hidden_layers": num_hidden_layers,
            "num_attention_heads": num_attention_heads,
            "intermediate_size": intermediate_size,
            "max_position_embeddings": 64,
        }
        self.num_visual_tokens = VISUAL_TOKENS[backbone]
        # the multimodal transformer attends over [text tokens ; visual tokens]
        self.seq_length = text_length + self.num_visual_tokens
        # only the QA model has a loss to train
        self.is_training = model_class is SiaSamReaForVideoQuestionAnswering
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
    """What the common tests check `get_video_features` with: clips of frames and the vision backbone, whose layers'
    outputs (a ResNet's embedder and stages) are its hidden states."""

    def __init__(self, model_tester: SiaSamReaModelTester):
        self.model_tester = model_tester
        vision_config = model_tester.vision_config
        # a ViT's layers, a ResNet's stages
        self.num_hidden_layers = vision_config.get("num_hidden_layers") or len(vision_config["depths"])

    def prepare_config_and_inputs_for_common(self) -> tuple[SiaSamReaConfig, dict[str, torch.Tensor]]:
        tester = self.model_tester
        clips = torch.rand(tester.batch_size, tester.num_frames, 3, tester.image_size, tester.image_size)
        return tester.get_config(), {"pixel_values_videos": clips}


class SiaSamReaCommonTestMixin(ModelTesterMixin):
    """What every SiaSamRea test class sets on top of transformers' ModelTesterMixin."""

    task = "open_ended"
    backbone = "resnet"
    # the config has two sub-configs (vision, BERT): run the composite-model attention tests, not the single-config ones
    _is_composite = True
    # transformers dates a model by the copyright line of its config file (none here, so "before 2023") and skips this
    # check of _init_weights for older models unless told; ours initialises every weight
    test_can_init_all_missing_weights_before_2023 = True

    def setUp(self):
        self.model_tester = SiaSamReaModelTester(self, model_class=self.all_model_classes[0], task=self.task,
                                                 backbone=self.backbone)
        # get_video_features' last_hidden_state of a ResNet is its channels-first feature map of every frame
        # (clips * frames, C, h, w), and ResNetConfig has no hidden_size, so the test's shape check does not apply
        self.skip_test_video_features_output_shape = self.backbone == "resnet"
        # the vocabulary size is a property of text_config, not of the top-level config
        self.config_tester = ConfigTester(self, config_class=SiaSamReaConfig, has_text_modality=False)

    def _prepare_for_class(self, inputs_dict, model_class, return_labels=False):
        inputs_dict = super()._prepare_for_class(inputs_dict, model_class, return_labels=return_labels)
        if return_labels and model_class is SiaSamReaForVideoQuestionAnswering:
            inputs_dict["labels"] = self.model_tester.labels()
        return inputs_dict

    def test_config(self):
        self.config_tester.run_common_tests()

    def test_get_video_features_attentions(self):
        if self.backbone == "resnet":
            self.skipTest("the ResNet is a CNN: get_video_features has no attentions")
        super().test_get_video_features_attentions()

    def test_sdpa_can_dispatch_composite_models(self):
        # transformers' version looks for a `vision_tower` and a `language_model` sub-model and skips without them.
        # Here the attention is in the BERT layers and in the vision backbone if it is a ViT: a plain string (the
        # default "sdpa" included) applies to both; a ResNet has no attention and stays eager.
        config, _ = self.model_tester.prepare_config_and_inputs_for_common()
        model_class = self.all_model_classes[0]

        def check(model, expected):
            attention_configs = [m.config for m in model.modules() if isinstance(m, BertSelfAttention)]
            self.assertTrue(attention_configs)
            self.assertTrue(all(c._attn_implementation == expected for c in [model.config, *attention_configs]))
            backbone = model.base_model.vision_encoder.backbone
            self.assertIs(backbone.config, model.config.vision_config)
            self.assertEqual(backbone.config._attn_implementation, "eager" if self.backbone == "resnet" else expected)

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


class SiaSamReaForVideoQuestionAnsweringSiglipTest(SiaSamReaForVideoQuestionAnsweringTestMixin, unittest.TestCase):
    backbone = "siglip"  # an image ViT on every frame


class SiaSamReaForVideoQuestionAnsweringVideoMAETest(SiaSamReaForVideoQuestionAnsweringTestMixin, unittest.TestCase):
    backbone = "videomae"  # a video transformer on every clip
