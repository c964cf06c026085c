"""Sampling + decoding benchmark: anchor + 8 siamese clips of B frames from a 10 s, 30 fps H.264 video, and from a
TGIF-sized animated GIF (120 frames, 250x188, a 256-colour palette per frame, 40-100 ms per frame).

    python -m benchmarks.bench_sampling            # full run (~2-3 min on 2 cores)
    python -m benchmarks.bench_sampling --quick    # smoke test (a 2 s, 64x64 video, a 24-frame 64x48 GIF)

Compared, for the same frame indices (a SiameseSampler draw, 9 clips x B frames):
    (a) union    the project's ``read_clips``: one decord ``get_batch`` of the sorted union of the 9 clips' frames,
                 gathered per clip (what ``VideoQATransform`` does for every training example);
    (b) floor    one bare decord ``get_batch`` of that same union on a fresh reader (no gather, no checks);
    (c) per-clip decord: one ``get_batch`` per clip on one reader (c1), or on a fresh reader per clip (c2);
    (d) per-clip PyAV, ClipBERT-style: per clip, open the container, seek to the keyframe before the clip's first
                 frame and decode forward to its last frame, keeping the sampled frames (our own code).
GIF (decord refuses GIFs; ``read_clips`` reads them with PyAV), for the same kind of draw:
    (a) union    ``read_clips``: count the frames by demuxing, then one sequential decode that stops after the last
                 frame of the union, keeping its frames, gathered per clip;
    (b) floor    one bare sequential PyAV decode up to the union's last frame, keeping its frames (no count, no gather);
    (c) per-clip one sequential decode from the first frame per clip (a GIF has no keyframes to seek to);
    (d) all      decode every frame of the GIF, then index (what loaders that read the whole GIF do).
Every method is timed round-robin in the same process (the order rotated every round), so background load hits
them alike; figures are medians over the repeats, and the targets are ratios of medians from the same run:
(a) <= 1.3x (b), and (a) >= 3x faster than (c) and (d) (for the GIF: than (c); (d) is shown, without a target,
since the union's last frame is often near the end). Results: benchmarks/results/sampling.{json,md,png}.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks._common import RESULTS_DIR, machine, markdown_table, median, write_results
from modeling_siasamrea.sampling import SiameseSampler
from modeling_siasamrea.video_io import count_frames, read_clips, write_video

TARGET_FLOOR_RATIO = 1.3
TARGET_SPEEDUP = 3.0


def moving_frames(num_frames: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """(L, H, W, 3) uint8 frames with moving content: a drifting gradient, bouncing squares, mild noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    frames = np.empty((num_frames, height, width, 3), dtype=np.uint8)
    pos = rng.uniform(0, 1, size=(5, 2)) * [height - 20, width - 20]
    vel = rng.uniform(-3, 3, size=(5, 2))
    colors = rng.integers(0, 256, size=(5, 3))
    for t in range(num_frames):
        base = 110 + 50 * np.sin(0.03 * x + 0.02 * y + 0.2 * t)
        frame = np.repeat(base[..., None], 3, axis=2) + rng.normal(0, 6, size=(height, width, 3))
        for (py, px), color in zip(pos.astype(int), colors):
            frame[py:py + 20, px:px + 20] = color
        pos = np.clip(pos + vel, 0, [height - 21, width - 21])
        frames[t] = np.clip(frame, 0, 255).astype(np.uint8)
    return frames


def make_test_video(path: Path, seconds: float, fps: int, height: int, width: int, seed: int = 0) -> int:
    """Write an H.264 video of ``moving_frames``; return L."""
    num_frames = int(round(seconds * fps))
    write_video(path, moving_frames(num_frames, height, width, seed), fps=fps)
    return num_frames


def make_test_gif(path: Path, num_frames: int, height: int, width: int, seed: int = 0) -> int:
    """Write an animated GIF of ``moving_frames`` as TGIF's are: a 256-colour palette per frame, 40-100 ms per frame."""
    from PIL import Image

    images = [Image.fromarray(frame).quantize(256) for frame in moving_frames(num_frames, height, width, seed)]
    images[0].save(path, save_all=True, append_images=images[1:], loop=0,
                   duration=[40 + 20 * (i % 4) for i in range(num_frames)])
    return num_frames


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def decord_floor(path: str, unique: np.ndarray) -> np.ndarray:
    """(b): one get_batch of the union on a fresh reader."""
    import decord

    return decord.VideoReader(path, ctx=decord.cpu(0)).get_batch(unique.tolist()).asnumpy()


def decord_per_clip(path: str, indices: np.ndarray, fresh_reader: bool) -> np.ndarray:
    """(c1)/(c2): one get_batch per clip, on one reader or on a fresh reader per clip."""
    import decord

    reader = None
    clips = []
    for clip in indices:
        if reader is None or fresh_reader:
            reader = decord.VideoReader(path, ctx=decord.cpu(0))
        clips.append(reader.get_batch(clip.tolist()).asnumpy())
    return np.stack(clips)


def pyav_per_clip(path: str, indices: np.ndarray) -> np.ndarray:
    """(d) ClipBERT-style PyAV decoding: per clip, open, seek to the keyframe before its first frame, decode forward."""
    import av

    clips = []
    for clip in indices:
        wanted = {int(i): n for n, i in enumerate(clip)}  # frame index -> position (repeated indices handled below)
        frames: dict[int, np.ndarray] = {}
        with av.open(path) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            rate = float(stream.average_rate)
            time_base = float(stream.time_base)
            start_pts = int(clip.min() / rate / time_base)
            container.seek(start_pts, stream=stream, backward=True, any_frame=False)
            last = int(clip.max())
            for frame in container.decode(stream):
                index = int(round(frame.pts * time_base * rate))
                if index in wanted:
                    frames[index] = frame.to_ndarray(format="rgb24")
                if index >= last:
                    break
        clips.append(np.stack([frames[int(i)] for i in clip]))
        del wanted
    return np.stack(clips)


def pyav_one_pass(path: str, unique: np.ndarray) -> np.ndarray:
    """GIF (b): one bare sequential PyAV decode up to the last of the sorted ``unique`` frames, keeping those frames."""
    import av

    wanted, last = set(unique.tolist()), int(unique[-1])
    frames = []
    with av.open(path) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index in wanted:
                frames.append(frame.to_ndarray(format="rgb24"))
            if index == last:
                break
    return np.stack(frames)


def pyav_per_clip_from_start(path: str, indices: np.ndarray) -> np.ndarray:
    """GIF (c): per clip, one sequential decode from the first frame to the clip's last."""
    clips = []
    for clip in indices:
        unique, inverse = np.unique(clip, return_inverse=True)
        clips.append(pyav_one_pass(path, unique)[inverse])
    return np.stack(clips)


def pyav_decode_all(path: str, indices: np.ndarray) -> np.ndarray:
    """GIF (d): decode every frame, then index."""
    import av

    with av.open(path) as container:
        frames = np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])
    return frames[indices]


def _round_robin(methods: dict, draws: list[np.ndarray]) -> dict[str, list[float]]:
    """Time every method on every draw after one warm-up call each, rotating the order every round: no method always
    runs right after the same one (PyAV leaves threads and freed buffers behind; a fixed order inflated whichever
    method came next)."""
    for fn in methods.values():  # warm-up (file cache, library init)
        fn(draws[0])
    times: dict[str, list[float]] = {name: [] for name in methods}
    names = list(methods)
    for r, ind in enumerate(draws):
        for name in names[r % len(names):] + names[:r % len(names)]:
            start = time.perf_counter()
            methods[name](ind)
            times[name].append(time.perf_counter() - start)
    return times


def measure_gif(path: Path, num_frames: int, b: int, repeats: int, num_siamese_clips: int) -> dict:
    """All GIF methods for one B (in a fresh process, as ``measure_frames_per_clip``)."""
    sampler = SiameseSampler(num_frames=b, num_siamese_clips=num_siamese_clips)
    draws = [sampler.sample(num_frames, np.random.default_rng(seed)) for seed in range(repeats)]
    methods = {
        "a_union_read_clips": lambda ind: read_clips(str(path), ind),
        "b_floor_one_pass": lambda ind: pyav_one_pass(str(path), np.unique(ind)),
        "c_per_clip_pass": lambda ind: pyav_per_clip_from_start(str(path), ind),
        "d_decode_all": lambda ind: pyav_decode_all(str(path), ind),
    }
    reference = read_clips(str(path), draws[0])  # every method returns exactly these frames
    unique, inverse = np.unique(draws[0], return_inverse=True)
    assert np.array_equal(methods["b_floor_one_pass"](draws[0])[inverse.reshape(draws[0].shape)], reference)
    assert np.array_equal(methods["c_per_clip_pass"](draws[0]), reference)
    assert np.array_equal(methods["d_decode_all"](draws[0]), reference)
    times = _round_robin(methods, draws)
    med = {name: median(t) for name, t in times.items()}
    a = med["a_union_read_clips"]
    row = {
        "frames_per_clip": b, "frames_requested": int(draws[0].size),
        "unique_frames_mean": float(np.mean([np.unique(d).size for d in draws])),
        "last_frame_mean": float(np.mean([d.max() for d in draws])),
        "median_s": med, "times_s": times,
        "count_frames_s": median([_timed(lambda: count_frames(str(path))) for _ in range(max(3, repeats))]),
        "union_over_floor": a / med["b_floor_one_pass"],
        "speedup_vs_per_clip": med["c_per_clip_pass"] / a,
        "speedup_vs_decode_all": med["d_decode_all"] / a,
    }
    row["targets_met"] = {
        f"union <= {TARGET_FLOOR_RATIO}x floor": row["union_over_floor"] <= TARGET_FLOOR_RATIO,
        f"union >= {TARGET_SPEEDUP}x faster than per-clip passes": row["speedup_vs_per_clip"] >= TARGET_SPEEDUP,
    }
    return row


def measure_frames_per_clip(path: Path, num_frames: int, b: int, repeats: int, num_siamese_clips: int) -> dict:
    """All methods for one B; ``run`` calls it in a fresh process per B, so one pass's allocations and threads cannot
    affect the next (the B = 16 union/floor ratio read 1.43-1.65x after a B = 8 pass, 1.13x alone, in one run)."""
    sampler = SiameseSampler(num_frames=b, num_siamese_clips=num_siamese_clips)
    draws = [sampler.sample(num_frames, np.random.default_rng(seed)) for seed in range(repeats)]
    methods = {
        "a_union_read_clips": lambda ind: read_clips(str(path), ind),
        "b_floor_one_get_batch": lambda ind: decord_floor(str(path), np.unique(ind)),
        "c1_per_clip_decord_one_reader": lambda ind: decord_per_clip(str(path), ind, fresh_reader=False),
        "c2_per_clip_decord_fresh_reader": lambda ind: decord_per_clip(str(path), ind, fresh_reader=True),
        "d_per_clip_pyav_clipbert_style": lambda ind: pyav_per_clip(str(path), ind),
    }
    # correctness: every method returns the same frames (PyAV's RGB conversion may differ by a few levels)
    reference = read_clips(str(path), draws[0])
    assert np.array_equal(methods["c1_per_clip_decord_one_reader"](draws[0]), reference)
    unique, inverse = np.unique(draws[0], return_inverse=True)
    assert np.array_equal(methods["b_floor_one_get_batch"](draws[0])[inverse.reshape(draws[0].shape)], reference)
    pyav_diff = float(np.abs(methods["d_per_clip_pyav_clipbert_style"](draws[0]).astype(int) - reference).mean())
    times = _round_robin(methods, draws)
    med = {name: median(t) for name, t in times.items()}
    a = med["a_union_read_clips"]
    # what (a) does beyond (b): gathering the decoded union into per-clip arrays (a fresh copy of every frame)
    union_frames = decord_floor(str(path), np.unique(draws[0]))
    gather_inverse = np.unique(draws[0], return_inverse=True)[1].reshape(draws[0].shape)
    gather_s = median([_timed(lambda: union_frames[gather_inverse]) for _ in range(max(3, repeats))])
    row = {
        "frames_per_clip": b, "stride": sampler.stride(num_frames),
        "pace": int(abs(sampler.siamese_offsets(num_frames)[0])), "frames_requested": int(draws[0].size),
        "unique_frames_mean": float(np.mean([np.unique(d).size for d in draws])),
        "median_s": med, "times_s": times, "pyav_mean_abs_pixel_diff": pyav_diff, "gather_only_s": gather_s,
        "union_over_floor": a / med["b_floor_one_get_batch"],
        "speedup_vs_per_clip_decord": med["c1_per_clip_decord_one_reader"] / a,
        "speedup_vs_per_clip_decord_fresh": med["c2_per_clip_decord_fresh_reader"] / a,
        "speedup_vs_per_clip_pyav": med["d_per_clip_pyav_clipbert_style"] / a,
    }
    row["targets_met"] = {
        f"union <= {TARGET_FLOOR_RATIO}x floor": row["union_over_floor"] <= TARGET_FLOOR_RATIO,
        f"union >= {TARGET_SPEEDUP}x faster than per-clip decord": row["speedup_vs_per_clip_decord"] >= TARGET_SPEEDUP,
        f"union >= {TARGET_SPEEDUP}x faster than per-clip PyAV": row["speedup_vs_per_clip_pyav"] >= TARGET_SPEEDUP,
    }
    return row


def run_video(frames_per_clip: list[int], seconds: float, fps: int, height: int, width: int, repeats: int,
              num_siamese_clips: int, work_dir: Path) -> dict:
    """The H.264 rows, one fresh process per B."""
    path = work_dir / f"bench_{width}x{height}_{fps}fps.mp4"
    num_frames = make_test_video(path, seconds, fps, height, width)
    results = {"machine": machine(), "video": {"seconds": seconds, "fps": fps, "num_frames": num_frames,
                                                "height": height, "width": width,
                                                "codec": "h264 (x264 ultrafast, crf 18)"},
               "repeats": repeats, "num_siamese_clips": num_siamese_clips, "rows": []}
    context = multiprocessing.get_context("spawn")
    for b in frames_per_clip:
        with context.Pool(1) as pool:
            row = pool.apply(measure_frames_per_clip, (path, num_frames, b, repeats, num_siamese_clips))
        results["rows"].append(row)
        med = row["median_s"]
        print(f"B={b}: " + ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in med.items()), flush=True)
        print(f"  union/floor {row['union_over_floor']:.2f}x | "
              f"speed-up vs per-clip decord {row['speedup_vs_per_clip_decord']:.2f}x "
              f"(fresh readers {row['speedup_vs_per_clip_decord_fresh']:.2f}x) | "
              f"vs per-clip PyAV {row['speedup_vs_per_clip_pyav']:.2f}x",
              flush=True)
    return results


def run_gif(frames_per_clip: list[int], num_frames: int, height: int, width: int, repeats: int, num_siamese_clips: int,
            work_dir: Path) -> dict:
    """The GIF rows, one fresh process per B."""
    path = work_dir / f"bench_{width}x{height}.gif"
    make_test_gif(path, num_frames, height, width)
    results = {"machine": machine(), "video": {"num_frames": num_frames, "height": height, "width": width,
                                                "bytes": path.stat().st_size}, "repeats": repeats, "rows": []}
    context = multiprocessing.get_context("spawn")
    for b in frames_per_clip:
        with context.Pool(1) as pool:
            row = pool.apply(measure_gif, (path, num_frames, b, repeats, num_siamese_clips))
        results["rows"].append(row)
        print(f"GIF B={b}: " + ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in row["median_s"].items()), flush=True)
        print(f"  union/floor {row['union_over_floor']:.2f}x | "
              f"speed-up vs per-clip passes {row['speedup_vs_per_clip']:.2f}x "
              f"| vs decoding all {row['speedup_vs_decode_all']:.2f}x", flush=True)
    return results


def write(results: dict, out_dir: str | None) -> None:
    write_results("sampling", results, to_markdown(results), out_dir)
    if out_dir is None or Path(out_dir).exists():
        plot(results, Path(out_dir) if out_dir else None)


def to_markdown(results: dict) -> str:
    v = results["video"]
    text = [f"# Sampling + decoding: anchor + {results['num_siamese_clips']} siamese clips\n",
            f"Video: {v['seconds']:g} s, {v['fps']} fps ({v['num_frames']} frames), {v['width']}x{v['height']}, "
            f"{v['codec']}. Median of {results['repeats']} draws (different anchor positions), "
            "methods timed round-robin in one process. "
            f"Machine: {results['machine']['cpu_count']} CPUs, load {results['machine'].get('load_average_1m')}.\n"]
    header = ["B", "unique frames", "(a) union ms", "(b) floor ms", "(c1) per-clip decord ms",
              "(c2) per-clip, fresh reader ms", "(d) per-clip PyAV ms", "(a)/(b)", "(c1)/(a)", "(d)/(a)",
              "gather alone ms"]
    rows = []
    for r in results["rows"]:
        m = r["median_s"]
        rows.append([r["frames_per_clip"], f"{r['unique_frames_mean']:.0f}", *(f"{m[k] * 1e3:.1f}" for k in m),
                     f"{r['union_over_floor']:.2f}", f"{r['speedup_vs_per_clip_decord']:.1f}",
                     f"{r['speedup_vs_per_clip_pyav']:.1f}", f"{r['gather_only_s'] * 1e3:.1f}"])
    text.append(markdown_table(header, rows))
    text.append(f"\nTargets: (a) <= {TARGET_FLOOR_RATIO}x (b); (a) >= {TARGET_SPEEDUP}x faster than (c) and (d).\n")
    for r in results["rows"]:
        text.append(f"- B={r['frames_per_clip']}: "
                    + "; ".join(f"{k}: {'met' if ok else 'MISSED'}" for k, ok in r["targets_met"].items()))
    if results.get("gif"):
        g, gm = results["gif"]["video"], results["gif"]["machine"]
        text.append(f"\n## Animated GIF (TGIF-QA), read with PyAV\n\n"
                    f"GIF: {g['num_frames']} frames, {g['width']}x{g['height']}, "
                    f"a 256-colour palette per frame, 40-100 ms per frame ({g['bytes'] / 1e6:.1f} MB). Median of "
                    f"{results['gif']['repeats']} draws, timed as above. Machine: {gm['cpu_count']} CPUs, load "
                    f"{gm.get('load_average_1m')}.\n")
        header = ["B", "unique frames", "last frame (mean)", "(a) union ms", "(b) floor: one pass ms",
                  "(c) per-clip passes ms", "(d) decode all ms", "(a)/(b)", "(c)/(a)", "(d)/(a)", "count_frames ms"]
        rows = [[r["frames_per_clip"], f"{r['unique_frames_mean']:.0f}", f"{r['last_frame_mean']:.0f}",
                 *(f"{r['median_s'][k] * 1e3:.1f}" for k in r["median_s"]), f"{r['union_over_floor']:.2f}",
                 f"{r['speedup_vs_per_clip']:.1f}", f"{r['speedup_vs_decode_all']:.2f}",
                 f"{r['count_frames_s'] * 1e3:.1f}"]
                for r in results["gif"]["rows"]]
        text.append(markdown_table(header, rows))
        text.append(f"\nTargets: (a) <= {TARGET_FLOOR_RATIO}x (b); (a) >= {TARGET_SPEEDUP}x faster than (c).\n")
        for r in results["gif"]["rows"]:
            text.append(f"- B={r['frames_per_clip']}: "
                        + "; ".join(f"{k}: {'met' if ok else 'MISSED'}" for k, ok in r["targets_met"].items()))
    text.append("")
    return "\n".join(text) + "\n"


def plot(results: dict, out_dir: Path | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = ["(a) union", "(b) floor", "(c1) per-clip\ndecord", "(c2) per-clip\nfresh reader", "(d) per-clip\nPyAV"]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    width = 0.8 / len(results["rows"])
    for i, r in enumerate(results["rows"]):
        values = [t * 1e3 for t in r["median_s"].values()]
        ax.bar(np.arange(len(names)) + i * width, values, width, label=f"B={r['frames_per_clip']}")
    ax.set_xticks(np.arange(len(names)) + width * (len(results["rows"]) - 1) / 2, names, fontsize=8)
    ax.set_ylabel("ms per training example (median)")
    ax.set_title(f"Decoding anchor + {results['num_siamese_clips']} siamese clips, "
                 f"{results['video']['seconds']:g} s {results['video']['fps']} fps H.264")
    ax.legend()
    fig.tight_layout()
    fig.savefig((out_dir or RESULTS_DIR) / "sampling.png", dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke test: a 2 s 64x64 video, B=4, 2 repeats")
    parser.add_argument("--frames", type=int, nargs="+", default=[8, 16], help="frames per clip B")
    parser.add_argument("--size", type=int, nargs=2, default=[240, 320], metavar=("H", "W"))
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--num-siamese-clips", type=int, default=8)
    parser.add_argument("--gif-frames", type=int, default=120, help="frames of the TGIF-sized GIF")
    parser.add_argument("--gif-size", type=int, nargs=2, default=[188, 250], metavar=("H", "W"))
    parser.add_argument("--gif-only", action="store_true",
                        help="measure the GIF rows only, keeping the video rows of the results file in --out-dir")
    parser.add_argument("--out-dir", default=None, help="where to write the results (default benchmarks/results)")
    args = parser.parse_args(argv)
    if args.quick:
        args.frames, args.size, args.seconds, args.repeats = [4], [64, 64], 2.0, 2
        args.gif_frames, args.gif_size = 24, [48, 64]
    with tempfile.TemporaryDirectory() as tmp:
        if args.gif_only:
            results = json.loads((Path(args.out_dir or RESULTS_DIR) / "sampling.json").read_text())
        else:
            results = run_video(args.frames, args.seconds, args.fps, args.size[0], args.size[1], args.repeats,
                                args.num_siamese_clips, Path(tmp))
        results["gif"] = run_gif(args.frames, args.gif_frames, args.gif_size[0], args.gif_size[1], args.repeats,
                                 args.num_siamese_clips, Path(tmp))
    write(results, args.out_dir)
    return results


if __name__ == "__main__":
    main()
