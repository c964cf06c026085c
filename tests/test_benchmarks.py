"""Smoke tests: every benchmark script runs end to end in its --quick mode and writes its result files.

No timing is asserted (the figures are measured by the scripts themselves, on a quiet machine).
"""

import json

from benchmarks import bench_dataloader, bench_gpu, bench_inference, bench_sampling, bench_train_step


def _written(out, name):
    data = json.loads((out / f"{name}.json").read_text())
    assert (out / f"{name}.md").read_text().startswith("#")
    return data


def test_bench_sampling_quick(tmp_path):
    bench_sampling.main(["--quick", "--out-dir", str(tmp_path)])
    row = _written(tmp_path, "sampling")["rows"][0]
    assert set(row["median_s"]) == {"a_union_read_clips", "b_floor_one_get_batch", "c1_per_clip_decord_one_reader",
                                    "c2_per_clip_decord_fresh_reader", "d_per_clip_pyav_clipbert_style"}
    assert row["pyav_mean_abs_pixel_diff"] < 10  # the ClipBERT-style decoder returns the same frames
    assert (tmp_path / "sampling.png").is_file()
    gif_row = _written(tmp_path, "sampling")["gif"]["rows"][0]  # every GIF method returned the same frames
    assert set(gif_row["median_s"]) == {"a_union_read_clips", "b_floor_one_pass", "c_per_clip_pass", "d_decode_all"}
    assert "## Animated GIF" in (tmp_path / "sampling.md").read_text()


def test_bench_dataloader_quick(tmp_path):
    bench_dataloader.main(["--quick", "--workers", "1", "--gpu-results", str(tmp_path / "none.json"),
                           "--out-dir", str(tmp_path)])
    results = _written(tmp_path, "dataloader")
    samples = results["per_sample"]
    assert (samples["before"]["payload_dtype"], samples["after"]["payload_dtype"]) == ("torch.float32", "torch.uint8")
    assert samples["after"]["payload_shape"] == [1, 3, 4, 24, 32, 3]  # 128x96 decoded straight to 32x24
    assert [(r["mode"], r["workers"]) for r in results["loader"]] == [("before", 1), ("after", 1)]
    assert results["gpu_source"].startswith("estimate") and results["cpu_cores_per_gpu"]["after"] > 0
    (profile,) = results["forms"]["profiles"]  # every stored form of the quick profile, the same draws
    assert set(profile["rows"]) == set(bench_dataloader.FORM_LABELS) and profile["stored_size"] == [24, 32]
    rows = profile["rows"]
    assert rows["device_decode"]["shipped_bytes"] < rows["jpeg_avi"]["shipped_bytes"]  # JPEG bytes, not pixels
    assert all(row["cpu_s"] > 0 and row["disk_bytes_per_minute"] > 0 for row in rows.values())
    assert "## Stored forms" in (tmp_path / "dataloader.md").read_text()


def test_bench_train_step_quick(tmp_path):
    bench_train_step.main(["--quick", "--out-dir", str(tmp_path)])
    rows = _written(tmp_path, "train_step")["setups"]["tiny"]["rows"]
    assert [r["num_siamese_clips"] for r in rows] == [0, 1]
    assert set(rows[1]["median_s"]) == {"default", "supervised", "loop"}
    assert 0 < rows[1]["head_forward_share_of_default_step"] < 1


def test_loop_reference_computes_the_models_loss():
    """The per-clip loop baseline optimises the same objective as the model's batched forward."""
    import torch

    setup = bench_train_step.tiny_setup()
    setup.update(batch=2, frames=2, size=32)
    model, inputs = bench_train_step.build(setup, 2)
    model.eval()  # no dropout, BatchNorm statistics fixed: both paths see the same network
    with torch.no_grad():
        torch.testing.assert_close(bench_train_step.loop_loss(model, inputs), model(**inputs).loss)


def test_bench_inference_quick(tmp_path):
    bench_inference.main(["--quick", "--out-dir", str(tmp_path)])
    rows = _written(tmp_path, "inference")["setups"]["tiny"]["rows"]
    assert [r["num_clips"] for r in rows] == [1, 4]


def test_bench_gpu_quick_on_cpu(tmp_path):
    bench_gpu.main(["--quick", "--out-dir", str(tmp_path)])
    settings = _written(tmp_path, "gpu")["settings"]
    assert [s["gradient_checkpointing"] for s in settings] == [True, False]
    jpeg = _written(tmp_path, "gpu_jpeg")  # the device decoder's CPU implementation: the workers' pixels
    assert jpeg["device"] == "cpu" and jpeg["rows"][0]["max_abs_diff_vs_cpu"] == 0 and "cpu_pil" in jpeg
