"""Store a dataset's videos once at the model's size, as frames that decode on their own (one JPEG per frame).

    siasamrea transcode DATA_DIR OUT_DIR --max_image_size 448 [--quality 90] [--num_proc 8]

:func:`transcode_dataset` copies DATA_DIR into OUT_DIR with every video (a video file anywhere in it, or a folder of
frames inside a ``videos/``, ``video/`` or ``gifs/`` folder) replaced by ``<same name>.avi``: an AVI of one JPEG per
frame (MJPEG, :func:`~modeling_siasamrea.video_io.transcode_video`), frame i being frame i of the source decoded at
``max_image_size`` -- the frame count, order and rate are the source's. Every other file is copied, and symbolic
links that stay inside DATA_DIR (the synthetic set's ``msrvtt_qa/videos -> ../videos``) are kept as links. Beside
each videos folder it writes the ``video_manifest.json`` of ``siasamrea probe`` with the source's frame counts and
frame rates, so that ``load_videoqa(NAME, OUT_DIR, ...)`` and every builder read OUT_DIR as they read DATA_DIR: the
same questions, labels, frame counts and How2QA windows, so a sampler draw selects the same moments. OUT_DIR's
``siasamrea_frames.json`` records the frame size (a run with a larger ``max_image_size`` is refused, see
:func:`~datasets_scripts.streaming.check_frame_size`), the JPEG quality, the bytes written per hour of video and the
fidelity: each video's mean PSNR against its source decoded at the same size, over every 8th frame.

Each video is written under a temporary name and renamed when complete, then journaled (with its manifest entry) in
OUT_DIR's ``.siasamrea_transcode.jsonl`` until the run finishes. A rerun with the same settings skips the videos
already written (their manifest or journal entry is fresh and their source unchanged), so an interrupted transcode
continues where it stopped; a rerun with other settings transcodes every video again. A video that cannot be decoded
is not written (its questions are then dropped by the builders as a missing video); it is logged and listed in the
record.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import shutil
from pathlib import Path
from typing import Any

from datasets.utils.tqdm import tqdm as hf_tqdm

from modeling_siasamrea.video_io import VideoDecodeError, decoder_threads, transcode_video

from .builders import _MANIFEST_FORMAT, _VIDEO_SUBDIRS, MANIFEST_FILE, VideoQABuilder, _is_fresh, read_video_manifest

__all__ = ["FRAMES_FILE", "MIN_PSNR_DB", "read_frames_record", "transcode_dataset"]

logger = logging.getLogger(__name__)

FRAMES_FILE = "siasamrea_frames.json"
_FORMAT = 1
MIN_PSNR_DB = 35.0  # a video transcoded below this mean PSNR is reported
_FRAME_SUFFIXES = (".jpg", ".jpeg", ".png")
_REPORT = 5
_JOURNAL_FILE = ".siasamrea_transcode.jsonl"  # the settings, then one [output, manifest entry] per video written


def read_frames_record(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The record ``siasamrea transcode`` wrote into ``folder`` (``max_image_size``, ``jpeg_quality``, ...), or None
    for a folder it did not write."""
    path = Path(folder) / FRAMES_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _is_frame_folder(path: Path) -> bool:
    return path.is_dir() and any(child.suffix.lower() in _FRAME_SUFFIXES for child in path.iterdir())


def _plan(data_dir: Path, output_dir: Path) -> tuple[list[tuple[Path, Path]], list[tuple[Path, Path]],
                                                     list[tuple[Path, str]]]:
    """(videos: (source, output .avi), files to copy: (source, output), links to make: (output, target))."""
    videos, files, links = [], [], []
    extensions = set(VideoQABuilder.VIDEO_EXTENSIONS)

    def visit(folder: Path, out: Path, in_videos_folder: bool) -> None:
        for entry in sorted(folder.iterdir()):
            target = out / entry.name
            if entry.is_symlink() and entry.resolve().is_relative_to(data_dir.resolve()):
                link = os.readlink(entry)
                if entry.suffix.lower() in extensions:  # a link to a video: to its transcoded file
                    target, link = target.with_suffix(".avi"), str(Path(link).with_suffix(".avi"))
                links.append((target, link))
            elif entry.is_dir() and in_videos_folder and _is_frame_folder(entry):
                videos.append((entry, target.with_name(entry.name + ".avi")))
            elif entry.is_dir():
                visit(entry, target, entry.name in _VIDEO_SUBDIRS)
            elif entry.suffix.lower() in extensions:
                videos.append((entry, target.with_suffix(".avi")))
            elif entry.name not in (MANIFEST_FILE, FRAMES_FILE):
                files.append((entry, target))

    visit(data_dir, output_dir, False)
    outputs: dict[Path, Path] = {}
    for source, output in videos:
        if output in outputs:
            raise ValueError(f"{outputs[output]} and {source} would both be transcoded to {output}: rename one")
        outputs[output] = source
    return videos, files, links


def _manifest_dir(output: Path) -> Path:
    """Where the manifest that lists ``output`` lies: beside its videos folder (a builder's data_dir)."""
    return output.parent.parent if output.parent.name in _VIDEO_SUBDIRS else output.parent


def _transcode_one(task: tuple[str, str, int, int, int]) -> tuple[str, dict[str, Any]]:
    """Transcode one video (in a worker process): ``(output, manifest entry)``, or ``(output, {"error": ...})``."""
    source, output, max_image_size, quality, threads = task
    stat = os.stat(source)
    tmp = f"{output}.tmp{os.getpid()}"
    try:
        result = transcode_video(source, tmp, max_image_size, quality=quality, num_threads=threads)
    except VideoDecodeError as error:
        Path(tmp).unlink(missing_ok=True)
        return output, {"error": str(error)}
    except BaseException:
        Path(tmp).unlink(missing_ok=True)  # interrupted: no partial file left behind
        raise
    os.replace(tmp, output)
    written = os.stat(output)
    return output, {"num_video_frames": result.num_video_frames, "fps": result.fps, "size": written.st_size,
                    "mtime_ns": written.st_mtime_ns, "psnr_db": round(result.psnr_db, 3),
                    "source_size": stat.st_size, "source_mtime_ns": stat.st_mtime_ns}


def _unchanged(entry: dict[str, Any] | None, source: Path, output: Path) -> bool:
    """Whether a manifest entry of an earlier run still describes ``output`` and the unchanged ``source``."""
    if entry is None or "error" in entry or not _is_fresh(entry, str(output)):
        return False
    stat = source.stat()
    return entry.get("source_size") == stat.st_size and entry.get("source_mtime_ns") == stat.st_mtime_ns


def _read_journal(output_dir: Path, settings: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{output: manifest entry}`` of the videos an unfinished run with ``settings`` wrote ({} for other settings);
    a last line cut short by a crash is ignored."""
    path = output_dir / _JOURNAL_FILE
    values = []
    for line in path.read_text(encoding="utf-8").splitlines() if path.is_file() else []:
        try:
            values.append(json.loads(line))
        except json.JSONDecodeError:
            values.append(None)
    if not values or values[0] != settings:
        return {}
    return {str(output_dir / value[0]): value[1] for value in values[1:] if isinstance(value, list) and len(value) == 2}


def transcode_dataset(data_dir: str | os.PathLike, output_dir: str | os.PathLike, max_image_size: int,
                      quality: int = 90, num_proc: int | None = None) -> Path:
    """Write ``data_dir`` into ``output_dir`` with its videos as JPEG frames at ``max_image_size`` (see the module
    docstring), in ``num_proc`` processes with a progress bar; return the record file (``siasamrea_frames.json``)."""
    data_dir, output_dir = Path(os.path.abspath(data_dir)), Path(os.path.abspath(output_dir))
    if not data_dir.is_dir():
        raise FileNotFoundError(f"data_dir {data_dir} does not exist")
    if output_dir == data_dir or output_dir.is_relative_to(data_dir):
        raise ValueError(f"OUT_DIR {output_dir} must lie outside DATA_DIR {data_dir}")
    previous = read_frames_record(output_dir)
    same_settings = previous is not None and (previous["max_image_size"], previous["jpeg_quality"]) == (
        max_image_size, quality)
    settings = {"format": _FORMAT, "max_image_size": max_image_size, "jpeg_quality": quality}
    journaled = _read_journal(output_dir, settings)
    videos, files, links = _plan(data_dir, output_dir)
    if not videos:
        raise FileNotFoundError(f"{data_dir}: no video file ({', '.join(VideoQABuilder.VIDEO_EXTENSIONS)}) and no "
                                f"frame folder in a {'/, '.join(_VIDEO_SUBDIRS)}/ folder")
    for source, target in files:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    for target, link in links:
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink() or target.exists():
            target.unlink()
        target.symlink_to(link)
    manifests = {folder: read_video_manifest(folder) if same_settings else {}
                 for folder in {_manifest_dir(output) for _, output in videos}}
    entries: dict[str, dict[str, Any]] = {}
    todo = []
    processes = max(1, num_proc or 1)
    for source, output in videos:
        output.parent.mkdir(parents=True, exist_ok=True)
        listed = manifests[_manifest_dir(output)].get(os.path.relpath(output, _manifest_dir(output)))
        old = next((entry for entry in (listed, journaled.get(str(output))) if _unchanged(entry, source, output)), None)
        if old is not None:
            entries[str(output)] = old
        else:
            todo.append((str(source), str(output), max_image_size, quality, decoder_threads(processes)))
    if previous is not None and not same_settings:
        (output_dir / FRAMES_FILE).unlink()  # it would describe the videos of other settings
    journal_path = output_dir / _JOURNAL_FILE
    tmp = output_dir / f"{_JOURNAL_FILE}.tmp{os.getpid()}"
    tmp.write_text("".join(json.dumps(line) + "\n" for line in [settings, *(
        [os.path.relpath(output, output_dir), entry] for output, entry in entries.items())]), encoding="utf-8")
    os.replace(tmp, journal_path)
    with hf_tqdm(total=len(todo), desc="transcoding videos", unit=" videos") as bar, journal_path.open(
            "a", encoding="utf-8") as journal:

        def done(output: str, entry: dict[str, Any]) -> None:
            entries[output] = entry
            if "error" not in entry:
                journal.write(json.dumps([os.path.relpath(output, output_dir), entry]) + "\n")
                journal.flush()
            bar.update()

        if processes > 1 and len(todo) > 1:
            with multiprocessing.get_context().Pool(min(processes, len(todo))) as pool:
                for output, entry in pool.imap_unordered(_transcode_one, todo):
                    done(output, entry)
        else:
            for task in todo:
                done(*_transcode_one(task))
    sources = {str(output): source for source, output in videos}
    written = {output: entry for output, entry in entries.items() if "error" not in entry}
    unreadable = {str(sources[output].relative_to(data_dir)): entry["error"]
                  for output, entry in entries.items() if "error" in entry}
    _write_manifests(written, output_dir, links)
    record = _write_record(output_dir, data_dir, max_image_size, quality, written, unreadable, sources, len(todo))
    journal_path.unlink()  # the manifests and the record hold it all now
    return record


def _write_manifests(written: dict[str, dict[str, Any]], output_dir: Path, links: list[tuple[Path, str]]) -> None:
    """One ``video_manifest.json`` beside each videos folder, and beside each link to one."""
    by_folder: dict[Path, dict[str, dict[str, Any]]] = {}
    for output, entry in written.items():
        folder = _manifest_dir(Path(output))
        by_folder.setdefault(folder, {})[os.path.relpath(output, folder)] = entry
    for link, _ in links:  # e.g. msrvtt_qa/videos -> ../videos: msrvtt_qa/ gets the manifest of ../videos
        if link.name in _VIDEO_SUBDIRS and link.resolve().parent in by_folder:
            entries = by_folder[link.resolve().parent]
            prefix = f"{link.resolve().name}/"
            by_folder.setdefault(link.parent, {}).update(
                {f"{link.name}/{key[len(prefix):]}": entry for key, entry in entries.items() if key.startswith(prefix)})
    for folder, entries in by_folder.items():
        manifest = {"format": _MANIFEST_FORMAT, "videos": dict(sorted(entries.items()))}
        tmp = folder / f"{MANIFEST_FILE}.tmp{os.getpid()}"
        tmp.write_text(json.dumps(manifest, indent=0) + "\n", encoding="utf-8")
        os.replace(tmp, folder / MANIFEST_FILE)


def _write_record(output_dir: Path, data_dir: Path, max_image_size: int, quality: int,
                  written: dict[str, dict[str, Any]], unreadable: dict[str, str], sources: dict[str, Path],
                  num_transcoded: int) -> Path:
    """``siasamrea_frames.json``: settings, sizes and fidelity of what was written; low-PSNR and unreadable videos
    are logged."""
    seconds = sum(e["num_video_frames"] / e["fps"] for e in written.values() if e.get("fps"))
    num_bytes = sum(e["size"] for e in written.values())
    timed_bytes = sum(e["size"] for e in written.values() if e.get("fps"))
    source_bytes = sum(e["source_size"] for e in written.values())
    psnr = sorted((e["psnr_db"], str(sources[output].relative_to(data_dir))) for output, e in written.items())
    record = {
        "format": _FORMAT, "frames": "jpeg", "container": "avi (mjpeg)", "max_image_size": max_image_size,
        "jpeg_quality": quality, "source_dir": str(data_dir), "num_videos": len(written),
        "num_frames": sum(e["num_video_frames"] for e in written.values()), "num_bytes": num_bytes,
        "source_bytes": source_bytes, "video_seconds": round(seconds, 3),
        "bytes_per_hour": round(timed_bytes / seconds * 3600) if seconds else None,
        "psnr_db": {"mean": round(sum(p for p, _ in psnr) / len(psnr), 3) if psnr else None,
                    "lowest": [{"video": video, "psnr_db": p} for p, video in psnr[:_REPORT]]},
        "unreadable": unreadable,
    }
    path = output_dir / FRAMES_FILE
    path.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    low = [f"{video} ({p:.1f} dB)" for p, video in psnr if p < MIN_PSNR_DB]
    if low:
        logger.warning("%d videos transcoded below %.0f dB mean PSNR (a higher --quality keeps more): %s", len(low),
                       MIN_PSNR_DB, ", ".join(low[:_REPORT]))
    if unreadable:
        logger.warning("%d videos could not be decoded and were not written (their questions will be dropped as "
                       "missing videos): %s", len(unreadable), "; ".join(f"{k}: {v}" for k, v in
                                                                       list(unreadable.items())[:_REPORT]))
    logger.warning("%s: %d videos (%d transcoded now), %.2f GB (source %.2f GB), mean PSNR %s dB", output_dir,
                   len(written), num_transcoded, num_bytes / 1e9, source_bytes / 1e9, record["psnr_db"]["mean"])
    return path
