"""Run by the tests under `accelerate launch` (training/accelerate/cpu_2proc.yaml): the real training entry point on
CPU with DDP, recording which training examples each rank saw and a checksum of its parameters. Arguments: the data
folder, the output folder, then any run_videoqa arguments that replace the defaults below."""

import json
import sys
from pathlib import Path

import torch

from training import run_videoqa

record: dict = {"question_ids": [], "tasks": []}


def checksum(model: torch.nn.Module) -> str:
    total = sum(float(p.detach().double().abs().sum()) + 0.5 * float(p.detach().double().sum())
                for p in model.parameters())
    return repr(total)


class RecordingTransform(run_videoqa.VideoQATransform):
    def __call__(self, batch):
        if self.train:
            record["question_ids"].extend(batch["question_id"])
            record["tasks"].extend(batch.get("task", [None] * len(batch["question_id"])))
        return super().__call__(batch)


class CheckedTrainer(run_videoqa.SiaSamReaTrainer):
    def train(self, *args, **kwargs):
        record["initial_checksum"] = checksum(self.model)
        record["num_examples"] = len(self.train_dataset)
        result = super().train(*args, **kwargs)
        record["checksum"] = checksum(self.model)
        record["world_size"] = self.accelerator.num_processes
        record["rank"] = self.accelerator.process_index
        return result


def main() -> None:
    data_dir, out_dir = Path(sys.argv[1]), Path(sys.argv[2])
    run_videoqa.VideoQATransform = RecordingTransform
    run_videoqa.SiaSamReaTrainer = CheckedTrainer
    run_videoqa.main([
        str(Path(run_videoqa.__file__).parent / "configs" / "synthetic.yaml"), "--data_dir", str(data_dir),
        "--output_dir", str(out_dir / "run"), "--num_siamese_clips", "2", "--num_frames", "4",
        "--max_train_samples", "16", "--per_device_train_batch_size", "4", "--num_train_epochs", "1",
        "--eval_strategy", "no", "--save_strategy", "no", "--load_best_model_at_end", "false", "--do_eval", "false",
        "--disable_tqdm", "true", "--use_cpu", "true", *sys.argv[3:],
    ])
    (out_dir / f"rank{record['rank']}.json").write_text(json.dumps(record))


if __name__ == "__main__":
    main()
