"""GPU benchmark (for a lent H100/H200): the real-size model, bf16 + gradient checkpointing.

    bash benchmarks/bench_gpu.sh [OUT_DIR]            # on a CUDA machine (what the README calls the GPU check)
    python -m benchmarks.bench_gpu --quick            # CPU smoke test with the tiny config

Real-size config: ResNet-50 at 448 x 448, BERT-base, 9 clips (anchor + 8 siamese) x 8 frames per video, open-ended
with 1000 answers, random initialisation (no download needed). Per setting (bf16 autocast, with / without gradient
checkpointing) it measures, for growing batches of videos: the training-step time (forward + backward + AdamW,
CUDA-synchronised, median of a few steps) and ``torch.cuda.max_memory_allocated``; then it finds the largest batch
that fits (doubling, then bisection between the last fit and the first out-of-memory). Results: gpu.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import torch

from benchmarks._common import RESULTS_DIR, machine, markdown_table, write_results
from modeling_siasamrea import SiaSamReaConfig, SiaSamReaForVideoQuestionAnswering

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
            enable = getattr(self.model, "activation_checkpointing_enable", None) or self.model.gradient_checkpointing_enable
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
        log(f"    batch {batch}: {row['step_s']:.3f} s/step, {row['videos_per_s']:.2f} videos/s, peak {row['peak_gib']} GiB")
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


def run(quick: bool, out_dir: str | None, steps: int, max_batch: int, max_step_s: float) -> dict[str, Any]:
    device = torch.device("cuda" if torch.cuda.is_available() and not quick else "cpu")
    setup = QUICK if quick else REAL
    dtype = torch.bfloat16 if device.type == "cuda" else None
    results = {"machine": machine(), "device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu",
               "setup": setup, "dtype": str(dtype), "settings": []}
    log = lambda msg: print(msg, flush=True)  # noqa: E731
    for checkpointing in (True, False):
        log(f"[{results['device']}] gradient checkpointing {checkpointing}, {dtype}")
        bench = Bench(setup, device, checkpointing, dtype)
        rows, largest = largest_batch(bench, steps, 2 if quick else max_batch, max_step_s, log)
        results["settings"].append({"gradient_checkpointing": checkpointing, "num_params": bench.num_params,
                                    "rows": rows, "largest_batch": largest})
        del bench
        if device.type == "cuda":
            torch.cuda.empty_cache()
    write_results("gpu", results, to_markdown(results), out_dir)
    return results


def to_markdown(results: dict[str, Any]) -> str:
    s = results["setup"]
    text = [f"# GPU training step: {results['device']}, {results['dtype']}\n",
            f"{1 + s['num_siamese_clips']} clips x {s['frames']} frames at {s['size']} px per video, text {s['text_len']} "
            f"tokens, {s['num_answers']} answers; model_config {json.dumps(s['model_config']) or 'default (ResNet-50 + BERT-base)'}.\n"]
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
    args = parser.parse_args(argv)
    if not args.quick and not torch.cuda.is_available():
        raise SystemExit("bench_gpu needs a CUDA device (use --quick for the CPU smoke test)")
    return run(args.quick, args.out_dir, args.steps, args.max_batch, args.max_step_seconds)


if __name__ == "__main__":
    main()
