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
Targets: after <= 1.3x floor; the after payload uint8 and <= 1/6 of before's. Results: dataloader.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks._common import RESULTS_DIR, machine, markdown_table, median, write_results
from benchmarks.bench_sampling import make_test_video
from modeling_siasamrea import SiameseSampler, SiaSamReaImageProcessor
from modeling_siasamrea.video_io import count_frames, decoder_threads, read_clips, scaled_frame_size

PAPER = {"seconds": 30.0, "fps": 30, "height": 480, "width": 854, "frames": 16, "num_siamese_clips": 8, "size": 448}
QUICK = {"seconds": 2.0, "fps": 30, "height": 96, "width": 128, "frames": 4, "num_siamese_clips": 2, "size": 32}
TARGET_FLOOR_RATIO = 1.3
TARGET_PAYLOAD_RATIO = 1 / 6
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
        gpu_results: Path | None, tmp: Path) -> dict[str, Any]:
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
    return results


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
    args = parser.parse_args(argv)
    setup = dict(QUICK if args.quick else PAPER)
    if args.quick:
        args.repeats, args.loader_samples = 2, 2
    if args.video is not None:
        import av

        with av.open(str(args.video)) as container:
            stream = container.streams.video[0]
            setup.update(height=stream.codec_context.height, width=stream.codec_context.width)
    with tempfile.TemporaryDirectory() as tmp:
        results = run(setup, args.repeats, args.loader_samples, args.workers, args.video, args.gpu_results, Path(tmp))
    write_results("dataloader", results, to_markdown(results), args.out_dir)
    print(to_markdown(results))
    return results


if __name__ == "__main__":
    main()
