"""Processor for SiaSamRea: videos through the image processor, questions (and choices) through BERT's tokenizer."""

import os
from typing import Any

from transformers.image_processing_utils import BatchFeature
from transformers.processing_utils import ProcessorMixin
from transformers.tokenization_utils_base import PreTrainedTokenizerBase
from transformers.utils import PaddingStrategy, TensorType

from .image_processing_siasamrea import SiaSamReaImageProcessor


class SiaSamReaProcessor(ProcessorMixin):
    r"""
    Wraps a [`SiaSamReaImageProcessor`] and a BERT tokenizer into one processor.

    - Open-ended / count questions: `input_ids`, `attention_mask`, `token_type_ids` of shape `(batch, L)`.
    - Multiple choice (`choices` given): every choice becomes ONE text segment `f"{question} {sep_token} {choice}"`,
      giving `(batch, num_choices, L)`.
    - `videos`: `pixel_values` of shape `(batch, num_clips, num_frames, 3, S, S)` (see [`SiaSamReaImageProcessor`]).

    Args:
        image_processor ([`SiaSamReaImageProcessor`]): The video-frame processor.
        tokenizer ([`PreTrainedTokenizerBase`]): A BERT (uncased) tokenizer.
    """

    def __init__(
        self, image_processor: SiaSamReaImageProcessor, tokenizer: PreTrainedTokenizerBase, **kwargs: Any
    ) -> None:
        super().__init__(image_processor, tokenizer, **kwargs)

    @classmethod
    def _get_arguments_from_pretrained(
        cls, pretrained_model_name_or_path: str | os.PathLike, processor_dict: dict | None = None, **kwargs: Any
    ) -> list[Any]:
        """
        Load the image processor with its concrete class and the tokenizer as the base class does. (The base class
        asks `AutoImageProcessor`, to which this custom-code class is unknown without `trust_remote_code`.)
        """
        image_processor = SiaSamReaImageProcessor.from_pretrained(pretrained_model_name_or_path, **kwargs)
        tokenizer = cls._load_tokenizer_from_pretrained("tokenizer", pretrained_model_name_or_path, **kwargs)
        return [image_processor, tokenizer]

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
            videos: one uint8 video `(num_clips, num_frames, H, W, 3)` (numpy or torch), a list of them or a 6-D batch.
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


__all__ = ["SiaSamReaProcessor"]
