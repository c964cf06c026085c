"""GPU benchmark (for a lent H100/H200): the real-size model, bf16 + gradient checkpointing.

    bash benchmarks/bench_gpu.sh [OUT_DIR]            # on a CUDA machine (what the README calls the GPU check)
    bash benchmarks/bench_gpu.sh OUT_DIR --jpeg-decode-only   # only the JPEG decoding part (< 1 min)
    python -m benchmarks.bench_gpu --frames 16 --checkpointing off   # the same at 16 frames per clip (gpu_16frames)
    python -m benchmarks.bench_gpu --quick            # CPU smoke test with the tiny config

Real-size config: ResNet-50 at 448 x 448, BERT-base, 9 clips (anchor + 8 siamese) x 8 frames per video, open-ended
with 1000 answers, random initialisation (no download needed). Per setting (bf16 autocast, with / without gradient
checkpointing) it measures, for growing batches of videos: the training-step time (forward + backward + AdamW,
CUDA-synchronised, median of a few steps) and ``torch.cuda.max_memory_allocated``; then it finds the largest batch
that fits (doubling, then bisection between the last fit and the first out-of-memory). Results: gpu.{json,md}.

Then JPEG decoding for ``--decode_on_device`` (gpu_jpeg.{json,md}): batches of 448x252 JPEGs (PIL, quality 90, 4:2:0;
smooth moving content with a little noise, ~23 KB each: natural footage gives 18-36 KB), as many as 1, 4 and 16 training
samples ship (144 unique frames each), decoded by ``TorchvisionJpegDecoder`` (nvJPEG, batched, on the GPU) and, on one
CPU thread, by the workers' decoders (PIL; simplejpeg where installed): images per second, the CPU seconds of the
calling process per image and per sample, the time of the whole device step (``pixel_values_from_jpeg``: decode,
gather, pad, normalise), and the largest difference from the CPU's pixels. Needs torch, torchvision and PIL only (no
decord, PyAV or datasets). Without a GPU the CPU implementation of the same interface is measured.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import numpy as np
import torch

from benchmarks._common import RESULTS_DIR, machine, markdown_table, write_results
from modeling_siasamrea import SiaSamReaConfig, SiaSamReaForVideoQuestionAnswering, SiaSamReaImageProcessor
from modeling_siasamrea.image_processing_siasamrea import JpegDecoder, JpegFrames, jpeg_decoder_for
from modeling_siasamrea.video_io import _encode_jpeg, decode_jpeg, jpeg_decoder

REAL = {"model_config": {}, "frames": 8, "size": 448, "text_len": 40, "num_answers": 1000, "num_siamese_clips": 8}
QUICK = {"model_config": {"vision_config": {"depths": [1, 1], "hidden_sizes": [8, 16], "embedding_size": 8},
                          "text_config": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
                                          "intermediate_size": 64, "max_position_embeddings": 64}},
         "frames": 2, "size": 64, "text_len": 8, "num_answers": 10, "num_siamese_clips": 2}


def is_oom(error: BaseException) -> bool:
    return isinstance(error, torch.cuda.OutOfMemoryError) or "out of memory" in str(error).lower()


class Bench:
    def __init__(self, setup: dict[str, Any], device: torch.device, checkpointing: bool, dtype: torch.dtype | None):
        self.setup, self.device, self.dtype = setup, device, dtype
        torch.manual_seed(0)
        config = SiaSamReaConfig(task="open_ended", num_answers=setup["num_answers"],
                                 num_siamese_clips=setup["num_siamese_clips"], **setup["model_config"])
        self.model = SiaSamReaForVideoQuestionAnswering(config).to(device).train()
        if checkpointing:  # transformers 5 renamed gradient_checkpointing_enable (kept as a deprecated alias)
            enable = (getattr(self.model, "activation_checkpointing_enable", None)
                      or self.model.gradient_checkpointing_enable)
            enable()
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=1e-5, fused=True)  # the Trainer default
        self.num_params = sum(p.numel() for p in self.model.parameters())

    def inputs(self, batch: int) -> dict[str, torch.Tensor]:
        s, n = self.setup, 1 + self.setup["num_siamese_clips"]
        return {
            "pixel_values": torch.randn(batch, n, s["frames"], 3, s["size"], s["size"], device=self.device),
            "input_ids": torch.randint(1, 30000, (batch, s["text_len"]), device=self.device),
            "attention_mask": torch.ones(batch, s["text_len"], dtype=torch.long, device=self.device),
            "labels": torch.randint(0, s["num_answers"], (batch,), device=self.device),
        }

    def step(self, inputs: dict[str, torch.Tensor]) -> None:
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype is not None):
            loss = self.model(**inputs).loss
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def measure(self, batch: int, steps: int) -> dict[str, Any]:
        """Step time and peak memory at one batch size; raises on out-of-memory."""
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        inputs = self.inputs(batch)
        self.step(inputs)  # warm-up (cuDNN autotune, AdamW state)
        self.sync()
        times = []
        for _ in range(steps):
            start = time.perf_counter()
            self.step(inputs)
            self.sync()
            times.append(time.perf_counter() - start)
        peak = torch.cuda.max_memory_allocated() / 2**30 if self.device.type == "cuda" else None
        step_s = statistics.median(times)
        return {"batch": batch, "step_s": step_s, "videos_per_s": batch / step_s, "peak_gib": peak}

    def try_measure(self, batch: int, steps: int) -> dict[str, Any] | None:
        try:
            return self.measure(batch, steps)
        except (RuntimeError, torch.cuda.OutOfMemoryError) as error:
            if not is_oom(error):
                raise
            self.optimizer.zero_grad(set_to_none=True)
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            return None


def largest_batch(bench: Bench, steps: int, max_batch: int, max_step_s: float, log) -> tuple[list[dict], int | None]:
    """Doubling then bisection; stops doubling when a step gets slower than ``max_step_s`` (time budget)."""
    rows, fit, fail, batch = [], None, None, 1
    while batch <= max_batch:
        row = bench.try_measure(batch, steps)
        if row is None:
            fail = batch
            log(f"    batch {batch}: out of memory")
            break
        rows.append(row)
        fit = batch
        log(f"    batch {batch}: {row['step_s']:.3f} s/step, {row['videos_per_s']:.2f} videos/s, "
            f"peak {row['peak_gib']} GiB")
        if row["step_s"] > max_step_s:
            log(f"    stopping the search: a step takes over {max_step_s} s")
            return rows, None
        batch *= 2
    if fail is None:
        return rows, None  # never ran out of memory within max_batch / the time budget
    low, high = fit or 0, fail
    while high - low > max(1, low // 8):  # bisection to within ~12 %
        mid = (low + high) // 2
        row = bench.try_measure(mid, 1)
        log(f"    batch {mid}: " + ("out of memory" if row is None else f"fits, peak {row['peak_gib']:.1f} GiB"))
        if row is None:
            high = mid
        else:
            rows.append(row)
            low = mid
    return rows, low


def run(quick: bool, out_dir: str | None, steps: int, max_batch: int, max_step_s: float, frames: int | None = None,
        checkpointing_settings: tuple[bool, ...] = (True, False)) -> dict[str, Any]:
    """Both settings (or those given) at the real size (``frames`` per clip instead of 8: results gpu_<N>frames)."""
    device = torch.device("cuda" if torch.cuda.is_available() and not quick else "cpu")
    setup = QUICK if quick else REAL
    if frames is not None:
        setup = {**setup, "frames": frames}
    dtype = torch.bfloat16 if device.type == "cuda" else None
    results = {"machine": machine(), "device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu",
               "setup": setup, "dtype": str(dtype), "settings": []}
    log = lambda msg: print(msg, flush=True)  # noqa: E731
    for checkpointing in checkpointing_settings:
        log(f"[{results['device']}] gradient checkpointing {checkpointing}, {dtype}")
        bench = Bench(setup, device, checkpointing, dtype)
        rows, largest = largest_batch(bench, steps, 2 if quick else max_batch, max_step_s, log)
        results["settings"].append({"gradient_checkpointing": checkpointing, "num_params": bench.num_params,
                                    "rows": rows, "largest_batch": largest})
        del bench
        if device.type == "cuda":
            torch.cuda.empty_cache()
    write_results("gpu" if frames is None else f"gpu_{frames}frames", results, to_markdown(results), out_dir)
    return results


FRAMES_PER_SAMPLE = 144  # unique frames of a training sample: anchor + 8 siamese clips x 16 frames
JPEG_SIZE = (252, 448)  # a 16:9 video stored at 448 px


def test_jpegs(count: int, height: int, width: int, quality: int = 90) -> list[bytes]:
    """``count`` distinct JPEGs of smooth moving gradients and shapes with mild noise (natural-footage-like sizes)."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[:height, :width].astype(np.float32)
    images = []
    for t in range(count):
        base = 120 + 60 * np.sin(0.021 * x + 0.013 * y + 0.3 * t)[..., None] * np.array([1.0, 0.8, 0.6])
        top, left = (t * 7) % (height - 60), (t * 11) % (width - 90)
        base[top:top + 60, left:left + 90] = (30 + 5 * t % 200, 180, 90)
        image = np.clip(base + rng.normal(0, 5, base.shape), 0, 255).astype(np.uint8)
        images.append(_encode_jpeg(image, quality))
    return images


def _timed(fn, repeats: int, sync) -> tuple[float, float, Any]:
    """(median wall s, median CPU s of this process, last result) of ``fn()`` after one warm-up call."""
    result = fn()
    sync()
    walls, cpus = [], []
    for _ in range(repeats):
        start, cpu = time.perf_counter(), time.process_time()
        result = fn()
        sync()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus), result


def jpeg_decode(quick: bool, log) -> dict[str, Any]:
    """GPU (nvJPEG via torchvision) vs the workers' CPU decoders for ``--decode_on_device`` (see the docstring)."""
    device = torch.device("cuda" if torch.cuda.is_available() and not quick else "cpu")
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    samples = (1,) if quick else (1, 4, 16)
    height, width = (24, 32) if quick else JPEG_SIZE
    per_sample = 8 if quick else FRAMES_PER_SAMPLE
    images = test_jpegs(per_sample * max(samples), height, width)
    decoder = jpeg_decoder_for(device)
    results: dict[str, Any] = {"machine": machine(), "device": torch.cuda.get_device_name(0) if device.type == "cuda"
                               else "cpu", "decoder": type(decoder).__name__, "image_size": [height, width],
                               "kb_per_image": float(np.mean([len(image) for image in images])) / 1e3,
                               "frames_per_sample": per_sample, "rows": []}
    torch.set_num_threads(1)
    cpu_decoders = ["pil"] + (["simplejpeg"] if jpeg_decoder() == "simplejpeg" else [])
    for name in cpu_decoders:  # the workers' path: one thread
        wall, cpu, _ = _timed(lambda: [decode_jpeg(image, decoder=name) for image in images[:per_sample]], 3 if quick
                              else 5, lambda: None)
        results[f"cpu_{name}"] = {"cpu_s_per_image": cpu / per_sample, "images_per_s": per_sample / wall}
        log(f"  CPU {name}: {per_sample / wall:.0f} images/s, {cpu / per_sample * 1e3:.3f} CPU ms per image")
    processor = SiaSamReaImageProcessor(max_image_size=width)
    for count in samples:
        batch = images[: per_sample * count]
        wall, cpu, decoded = _timed(lambda: decoder(batch, device), 3 if quick else 10, sync)
        index = torch.arange(len(batch)).view(count, 1, per_sample)  # (batch, clips, frames): one clip of all
        frames = JpegFrames(batch, index)
        step_wall, step_cpu, _ = _timed(lambda: processor.pixel_values_from_jpeg(frames, device, decoder),
                                        3 if quick else 10, sync)
        reference = torch.stack(JpegDecoder()(batch[:per_sample])).float()
        difference = (torch.stack(decoded[:per_sample]).cpu().float() - reference).abs()
        row = {"samples": count, "images": len(batch), "images_per_s": len(batch) / wall,
               "cpu_s_per_image": cpu / len(batch), "cpu_s_per_sample": cpu / count,
               "step_s_per_sample": step_wall / count, "step_cpu_s_per_sample": step_cpu / count,
               "max_abs_diff_vs_cpu": float(difference.max()), "mean_abs_diff_vs_cpu": float(difference.mean())}
        results["rows"].append(row)
        log(f"  {results['decoder']} on {device}, {count} samples ({len(batch)} images): "
            f"{row['images_per_s']:.0f} images/s, {row['cpu_s_per_image'] * 1e3:.3f} CPU ms per image, "
            f"mean |diff| vs CPU {row['mean_abs_diff_vs_cpu']:.3f}")
    results["gpu"] = max(results["rows"], key=lambda row: row["images_per_s"])
    return results


def jpeg_markdown(results: dict[str, Any]) -> str:
    text = [f"# JPEG decoding for --decode_on_device: {results['device']} ({results['decoder']})\n\n"
            f"{results['image_size'][1]}x{results['image_size'][0]} JPEGs of {results['kb_per_image']:.1f} KB, "
            f"{results['frames_per_sample']} per training sample.\n\n"]
    rows = [[f"CPU, one thread: {name[4:]}", "-", f"{results[name]['images_per_s']:.0f}",
             f"{results[name]['cpu_s_per_image'] * 1e3:.3f}",
             f"{results[name]['cpu_s_per_image'] * results['frames_per_sample']:.3f}", "-", "-"]
            for name in results if name.startswith("cpu_")]
    rows += [[results["decoder"], f"{row['samples']} ({row['images']} images)", f"{row['images_per_s']:.0f}",
              f"{row['cpu_s_per_image'] * 1e3:.3f}", f"{row['cpu_s_per_sample']:.3f}",
              f"{row['step_s_per_sample'] * 1e3:.1f}",
              f"{row['mean_abs_diff_vs_cpu']:.2f} / {row['max_abs_diff_vs_cpu']:.0f}"]
             for row in results["rows"]]
    text.append(markdown_table(["decoder", "samples per call", "images / s", "CPU ms / image", "CPU s / sample",
                                "device step ms / sample", "mean / max abs diff vs CPU"], rows))
    return "".join(text)


def to_markdown(results: dict[str, Any]) -> str:
    s = results["setup"]
    model = json.dumps(s["model_config"]) if s["model_config"] else "default (ResNet-50 + BERT-base)"
    text = [f"# GPU training step: {results['device']}, {results['dtype']}\n",
            f"{1 + s['num_siamese_clips']} clips x {s['frames']} frames at {s['size']} px per video, "
            f"text {s['text_len']} tokens, {s['num_answers']} answers; "
            f"model_config {model}.\n"]
    for setting in results["settings"]:
        text.append(f"\n## gradient checkpointing: {setting['gradient_checkpointing']} "
                    f"({setting['num_params'] / 1e6:.0f} M parameters); largest batch that fits: "
                    f"{setting['largest_batch'] if setting['largest_batch'] is not None else 'not reached'}\n")
        rows = sorted(setting["rows"], key=lambda r: r["batch"])
        text.append(markdown_table(["videos / batch", "s / step", "videos / s", "peak GiB"],
                                   [[r["batch"], f"{r['step_s']:.3f}", f"{r['videos_per_s']:.2f}",
                                     "-" if r["peak_gib"] is None else f"{r['peak_gib']:.1f}"] for r in rows]))
    return "\n".join(text) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CPU smoke test with a tiny config")
    parser.add_argument("--out-dir", default=None, help=f"results folder (default {RESULTS_DIR})")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per batch size")
    parser.add_argument("--max-batch", type=int, default=256)
    parser.add_argument("--max-step-seconds", type=float, default=25.0, help="stop growing the batch past this")
    parser.add_argument("--jpeg-decode-only", action="store_true", help="only the JPEG decoding part")
    parser.add_argument("--frames", type=int, default=None,
                        help="frames per clip instead of 8 (results gpu_<N>frames.{json,md}, no JPEG part)")
    parser.add_argument("--checkpointing", choices=("both", "on", "off"), default="both")
    args = parser.parse_args(argv)
    if not args.quick and not torch.cuda.is_available():
        raise SystemExit("bench_gpu needs a CUDA device (use --quick for the CPU smoke test)")
    results = {}
    if not args.jpeg_decode_only:
        settings = {"both": (True, False), "on": (True,), "off": (False,)}[args.checkpointing]
        results = run(args.quick, args.out_dir, args.steps, args.max_batch, args.max_step_seconds, args.frames,
                      settings)
        if args.frames is not None:
            return results
    print("JPEG decoding for --decode_on_device", flush=True)
    jpeg = jpeg_decode(args.quick, lambda msg: print(msg, flush=True))
    write_results("gpu_jpeg", jpeg, jpeg_markdown(jpeg), args.out_dir)
    return {**results, "jpeg_decode": jpeg}


if __name__ == "__main__":
    main()
