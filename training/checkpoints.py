"""Which checkpoint a run resumes from, checked before the Trainer opens it, and whether a run already finished.

The Trainer writes a checkpoint's ``trainer_state.json`` last, so a crash mid-save leaves a folder without it (or with
it cut short): such a folder, or one whose weights, optimizer or JSON files do not read, is not resumed from. Resuming
takes the newest checkpoint that reads (each newer one is named in a warning, with what is wrong with it); when none
does, one error names them all and says how to start afresh.
"""

import json
import logging
import os
import re
import zipfile
from pathlib import Path

from safetensors import safe_open
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

logger = logging.getLogger(__name__)

TRAINER_STATE = "trainer_state.json"
_CHECKPOINT = re.compile(rf"^{PREFIX_CHECKPOINT_DIR}-(\d+)$")
# layouts whose weights are not one safetensors/bin file (FSDP sharded state dicts, DeepSpeed)
_OTHER_WEIGHTS = re.compile(r"^(pytorch_model_fsdp|global_step)")


def _read_json(path: Path) -> dict:
    with path.open(encoding="utf-8") as f:
        return json.load(f)


def checkpoint_problem(folder: str | os.PathLike) -> str | None:
    """Why ``folder`` cannot be resumed from (a missing or unreadable file), or None when it reads."""
    folder = Path(folder)
    if not folder.is_dir():
        return "not a folder"
    if not (folder / TRAINER_STATE).is_file():
        return f"no {TRAINER_STATE} (the save did not finish)"
    names = sorted(os.listdir(folder))
    for name in names:
        path = folder / name
        try:
            if name.endswith(".json"):
                state = _read_json(path)
                if name == TRAINER_STATE and "global_step" not in state:
                    return f"{name} has no global_step"
            elif name.endswith(".safetensors"):
                with safe_open(path, "pt"):
                    pass
            elif name.endswith((".pt", ".pth", ".bin")):
                with path.open("rb") as f:
                    zipped = f.read(2) == b"PK"  # torch.save's zip format; older pickles are not checked
                if path.stat().st_size == 0:
                    return f"{name} is empty"
                if zipped:
                    zipfile.ZipFile(path).close()
        except Exception as error:  # OSError, JSONDecodeError, SafetensorError, BadZipFile: what resuming would meet
            return f"{name} does not read ({type(error).__name__}: {error})"
    weights = {"model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json"}
    if not weights & set(names) and not any(_OTHER_WEIGHTS.match(name) for name in names):
        return "no model weights"
    return None


def checkpoint_step(folder: str | os.PathLike) -> int:
    """The training step a checkpoint was saved at (its ``trainer_state.json``)."""
    return int(_read_json(Path(folder) / TRAINER_STATE)["global_step"])


def resumable_checkpoint(output_dir: str | os.PathLike) -> str | None:
    """The newest ``checkpoint-*`` of ``output_dir`` that reads, None if there is none; newer ones that do not read are
    named in a warning. Raises ValueError when checkpoints exist but none reads."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return None
    found = sorted((int(match.group(1)), output_dir / name) for name in os.listdir(output_dir)
                   if (match := _CHECKPOINT.match(name)) and (output_dir / name).is_dir())
    broken = []
    for _, folder in reversed(found):
        problem = checkpoint_problem(folder)
        if problem is None:
            if broken:
                logger.warning("not resuming from %s: %s; the newest checkpoint that reads is %s",
                               ", ".join(f"{path.name} ({why})" for path, why in broken), "they do not read"
                               if len(broken) > 1 else "it does not read", folder.name)
            return str(folder)
        broken.append((folder, problem))
    if broken:
        raise ValueError(f"no checkpoint in {output_dir} can be resumed from: "
                         f"{'; '.join(f'{path.name}: {why}' for path, why in broken)}. To start afresh, pass "
                         f"--overwrite_output_dir true (or another --output_dir); to resume, restore a checkpoint "
                         f"or name one with --resume_from_checkpoint")
    return None


def check_checkpoint(folder: str | os.PathLike) -> None:
    """Raise ValueError naming ``folder`` (given with --resume_from_checkpoint) if it cannot be resumed from."""
    problem = checkpoint_problem(folder)
    if problem is not None:
        raise ValueError(f"--resume_from_checkpoint {folder}: {problem}")


def finished_run(output_dir: str | os.PathLike) -> dict | None:
    """The trainer state a finished run left in ``output_dir`` (written after its final model), or None."""
    path = Path(output_dir) / TRAINER_STATE
    try:
        return _read_json(path) if path.is_file() else None
    except ValueError:  # cut short: the run did not finish
        return None
