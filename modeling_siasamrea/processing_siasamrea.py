"""Processor for SiaSamRea: videos through the video processor (or clips through the image processor), questions (and
choices) through BERT's tokenizer."""

import os
from typing import Any

from transformers.image_processing_utils import BatchFeature
from transformers.processing_utils import ProcessorMixin
from transformers.tokenization_utils_base import PreTrainedTokenizerBase
from transformers.utils import PaddingStrategy, TensorType
from transformers.video_processing_utils import VideoProcessorMixin

from .image_processing_siasamrea import SiaSamReaImageProcessor
from .video_processing_siasamrea import FRAME_SETTINGS, SiaSamReaVideoProcessor


class SiaSamReaProcessor(ProcessorMixin):
    r"""
    Wraps a [`SiaSamReaVideoProcessor`], the [`SiaSamReaImageProcessor`] with the same frame settings and a BERT
    tokenizer into one processor.

    - Whole videos: `processor.video_processor(videos, ...)` samples their clips (siamese in training, the anchor or
      dense clips at evaluation), decodes those frames and gives `pixel_values` (the pipeline's path).
    - Clips already sampled (`videos=` here, the training data's path): the image processor's frame transform, the
      same resize, pad and normalisation. `image_processor.pixel_values_from_frames` does it on the device.
    - Open-ended / count questions: `input_ids`, `attention_mask`, `token_type_ids` of shape `(batch, L)`.
    - Multiple choice (`choices` given): every choice becomes ONE text segment `f"{question} {sep_token} {choice}"`,
      giving `(batch, num_choices, L)`.

    Args:
        image_processor ([`SiaSamReaImageProcessor`], *optional*): The frame transform of sampled clips; made from the
            video processor's settings when not given.
        tokenizer ([`PreTrainedTokenizerBase`]): A BERT (uncased) tokenizer.
        video_processor ([`SiaSamReaVideoProcessor`], *optional*): Sampling, decoding and the frame transform of whole
            videos; made from the image processor when not given (as for a folder saved before it existed).
    """

    def __init__(
        self,
        image_processor: SiaSamReaImageProcessor | None = None,
        tokenizer: PreTrainedTokenizerBase | None = None,
        video_processor: SiaSamReaVideoProcessor | None = None,
        **kwargs: Any,
    ) -> None:
        if image_processor is None and video_processor is None:
            raise ValueError("SiaSamReaProcessor needs a video_processor (or an image_processor)")
        if video_processor is None:
            video_processor = SiaSamReaVideoProcessor.from_image_processor(image_processor)
        if image_processor is None:
            image_processor = SiaSamReaImageProcessor(**video_processor.frame_settings())
        frame_settings = {name: getattr(image_processor, name) for name in ("max_image_size", *FRAME_SETTINGS)}
        differ = sorted(name for name, value in video_processor.frame_settings().items()
                        if _listed(value) != _listed(frame_settings[name]))
        if differ:
            raise ValueError(f"the image processor and the video processor transform frames differently ({differ}): "
                             "build one from the other")
        super().__init__(image_processor, tokenizer, video_processor, **kwargs)

    def check_argument_for_proper_class(self, argument_name: str, argument: Any) -> type:
        """As `ProcessorMixin`'s, but the video processor is checked against `VideoProcessorMixin` directly:
        transformers looks it up in its video processor mapping, a placeholder without an attribute it reads when
        torchvision is not installed."""
        if argument_name != "video_processor":
            return super().check_argument_for_proper_class(argument_name, argument)
        if not isinstance(argument, VideoProcessorMixin):
            raise TypeError(f"Received a {type(argument).__name__} for argument video_processor, but a video processor "
                            "was expected.")
        return VideoProcessorMixin

    @classmethod
    def _resolve_subprocessors(
        cls, pretrained_model_name_or_path: str | os.PathLike, processor_dict: dict[str, Any], **kwargs: Any
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The frame and video processors with their concrete classes, from the nested configs of
        `processor_config.json` (the auto classes do not know these custom-code classes without
        `trust_remote_code`); a folder saved before the video processor existed has only the image processor's, and
        the video processor is made from it. A folder without a nested image processor config (no
        `processor_config.json`, or one without the key) has it in `preprocessor_config.json`. The tokenizer as the
        base class loads it."""
        processor_dict = dict(processor_dict)
        for name, processor_class in (("image_processor", SiaSamReaImageProcessor),
                                      ("video_processor", SiaSamReaVideoProcessor)):
            if kwargs.get(name) is None and isinstance(processor_dict.get(name), dict):
                processor_dict[name] = processor_class.from_dict(processor_dict[name])  # built: the base skips it
        if kwargs.get("image_processor") is None and processor_dict.get("image_processor") is None:
            loading_kwargs = {key: value for key, value in kwargs.items() if not key.endswith("_processor")}
            processor_dict["image_processor"] = SiaSamReaImageProcessor.from_pretrained(
                pretrained_model_name_or_path, **loading_kwargs
            )
        if processor_dict.get("video_processor") is None and kwargs.get("video_processor") is None:
            image_processor = kwargs.get("image_processor") or processor_dict["image_processor"]
            processor_dict["video_processor"] = SiaSamReaVideoProcessor.from_image_processor(image_processor)
        return super()._resolve_subprocessors(pretrained_model_name_or_path, processor_dict, **kwargs)

    def save_pretrained(self, save_directory: str | os.PathLike, *args: Any, **kwargs: Any) -> list[str]:
        """`ProcessorMixin.save_pretrained`, and the video processor on its own too (`video_preprocessor_config.json`),
        so that the folder loads with `AutoVideoProcessor`."""
        files = super().save_pretrained(save_directory, *args, **kwargs)
        return [*files, *self.video_processor.save_pretrained(save_directory)]

    def __call__(
        self,
        videos: Any = None,
        text: str | list[str] | None = None,
        choices: list[str] | list[list[str]] | None = None,
        max_length: int = 40,
        padding: bool | str | PaddingStrategy = "max_length",
        truncation: bool | str = True,
        return_tensors: str | TensorType | None = "pt",
    ) -> BatchFeature:
        """
        Prepare a batch for the SiaSamRea model.

        Args:
            videos: the sampled clips of one video, uint8 `(num_clips, num_frames, H, W, 3)` (numpy or torch), a list of
                them or a 6-D batch (whole videos go through `self.video_processor`).
            text: a question or a list of questions (one per video).
            choices: the answer candidates: a `list[str]` for one question, or a `list[list[str]]` with one list per
                question, every list of the same length.
            max_length, padding, truncation: passed to the tokenizer.
            return_tensors: `"pt"`, `"np"`, or `None` (NumPy arrays).

        Returns:
            [`BatchFeature`] with the tokenizer outputs (`(batch, L)`, or `(batch, num_choices, L)` with `choices`)
            and/or `pixel_values` `(batch, num_clips, num_frames, 3, S, S)`.
        """
        if videos is None and text is None:
            raise ValueError("Provide `videos`, `text` or both.")
        if choices is not None and text is None:
            raise ValueError("`choices` need the question(s) they answer in `text`.")

        data: dict[str, Any] = {}
        if text is not None:
            questions = self._questions(text)
            segments = questions if choices is None else self._question_choice_segments(questions, choices)
            encoding = self.tokenizer(
                segments, max_length=max_length, padding=padding, truncation=truncation, return_tensors="np"
            )
            if choices is not None:  # (batch * num_choices, L) -> (batch, num_choices, L)
                encoding = {key: value.reshape(len(questions), -1, value.shape[-1]) for key, value in encoding.items()}
            data.update(encoding)
        if videos is not None:
            pixel_values = self.image_processor(videos, return_tensors="np")["pixel_values"]
            if text is not None and len(pixel_values) != len(questions):
                raise ValueError(f"Got {len(pixel_values)} videos for {len(questions)} questions; they must match.")
            data["pixel_values"] = pixel_values
        return BatchFeature(data=data, tensor_type=return_tensors)

    @staticmethod
    def _questions(text: str | list[str]) -> list[str]:
        """Normalise `text` to a non-empty list of non-blank questions."""
        questions = [text] if isinstance(text, str) else list(text)
        if not questions:
            raise ValueError("`text` is an empty list; expected at least one question.")
        for index, question in enumerate(questions):
            if not isinstance(question, str) or not question.strip():
                raise ValueError(f"Question {index} is empty or not a string: {question!r}.")
        return questions

    def _question_choice_segments(self, questions: list[str], choices: list[str] | list[list[str]]) -> list[str]:
        """Flatten to `batch * num_choices` single segments `f"{question} {sep_token} {choice}"`."""
        if isinstance(choices, str):
            raise ValueError("`choices` must be a list of strings (or a list of such lists), not a string.")
        per_question = [choices] if all(isinstance(choice, str) for choice in choices) else list(choices)
        if not all(isinstance(question_choices, (list, tuple)) for question_choices in per_question):
            raise ValueError("`choices` must be a list of strings or a list of lists of strings.")
        if len(per_question) != len(questions):
            raise ValueError(f"Got {len(per_question)} lists of choices for {len(questions)} questions.")
        counts = [len(question_choices) for question_choices in per_question]
        if len(set(counts)) != 1 or counts[0] == 0:
            raise ValueError(f"Every question needs the same, non-zero number of choices; got {counts}.")
        sep = self.tokenizer.sep_token
        segments = []
        for question, question_choices in zip(questions, per_question, strict=True):
            for choice in question_choices:
                if not isinstance(choice, str) or not choice.strip():
                    raise ValueError(f"Empty or non-string choice {choice!r} for question {question!r}.")
                segments.append(f"{question} {sep} {choice}")
        return segments


def _listed(value: Any) -> Any:
    """Per-channel statistics compare as lists whether saved as tuples or lists."""
    return list(value) if isinstance(value, (tuple, list)) else value


__all__ = ["SiaSamReaProcessor"]
