"""Grouped training batches: one task / one clip length per batch, the same for every process, worker and resume."""

import json
from pathlib import Path

from datasets_scripts import make_synthetic_videoqa
from training import run_videoqa
from training.sampler import GroupedBatchSampler

REPO = Path(__file__).resolve().parents[1]


def test_every_batch_holds_one_key_and_every_example_comes_once_per_epoch():
    keys = ["a"] * 7 + ["b"] * 4 + ["c"]
    sampler = GroupedBatchSampler(keys, batch_size=3, seed=1)
    batches = list(sampler)
    assert all(len({keys[i] for i in batch}) == 1 for batch in batches)
    assert sorted(i for batch in batches for i in batch) == list(range(len(keys)))
    assert len(batches) == len(sampler) == 3 + 2 + 1


def test_the_order_is_a_function_of_seed_and_epoch_alone():
    keys = [i % 3 for i in range(30)]
    first = list(GroupedBatchSampler(keys, batch_size=4, seed=7))
    assert list(GroupedBatchSampler(keys, batch_size=4, seed=7)) == first  # a resumed run draws the same batches
    later = GroupedBatchSampler(keys, batch_size=4, seed=7)
    later.set_epoch(1)
    assert list(later) != first


def test_processes_take_disjoint_batches_and_the_same_number_of_steps():
    keys = [i % 2 for i in range(21)]  # 11 batches of 2 for 2 processes: one process repeats a batch
    ranks = [list(GroupedBatchSampler(keys, batch_size=2, seed=0, rank=r, world_size=2)) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) == 6
    seen = [{i for batch in rank for i in batch} for rank in ranks]
    assert seen[0] | seen[1] == set(range(21)) and len(seen[0] & seen[1]) <= 2


def test_training_with_num_frames_auto_takes_batches_of_several_videos(tmp_path):
    data_dir = make_synthetic_videoqa(tmp_path / "synthetic", num_videos=16, seed=4)  # videos of 48-96 frames
    run_videoqa.main([str(REPO / "training" / "configs" / "synthetic.yaml"), "--data_dir", str(data_dir),
                      "--output_dir", str(tmp_path / "run"), "--num_frames", "auto", "--num_siamese_clips", "1",
                      "--per_device_train_batch_size", "3", "--max_steps", "3", "--eval_strategy", "no",
                      "--save_strategy", "no", "--load_best_model_at_end", "false", "--max_image_size", "32",
                      "--do_eval", "false", "--logging_steps", "1", "--disable_tqdm", "true"])
    state = json.loads((tmp_path / "run" / "trainer_state.json").read_text())
    assert state["global_step"] == 3
