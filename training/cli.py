"""The `siasamrea` command line: predict, train, eval, make-synthetic, visualize, convert-clipbert, probe, pack,
transcode and demo."""

import argparse
import json
import sys

DEFAULT_MODEL = "demo_output/model"


def _predict(args: argparse.Namespace) -> None:
    from transformers import pipeline

    import modeling_siasamrea  # noqa: F401  (registers the task and the local classes)

    vqa = pipeline("video-question-answering", model=args.model, trust_remote_code=True)
    result = vqa(video=args.video, question=args.question, choices=args.choices, task=args.task, top_k=args.top_k,
                 num_eval_clips=args.num_eval_clips, aggregation=args.aggregation)
    print(json.dumps(result, indent=2))


def _train(args: argparse.Namespace, extra: list[str]) -> None:
    from training import run_videoqa

    run_videoqa.main([args.config, *extra])


def _eval(args: argparse.Namespace, extra: list[str]) -> None:
    from training import run_videoqa

    argv = ["--model_name_or_path", args.model, "--dataset_name", args.dataset_name, "--output_dir", args.output_dir,
            "--eval_split", args.split, "--num_eval_clips", str(args.num_eval_clips), "--do_train", "false"]
    for name in ("dataset_config", "data_dir", "num_frames", "predictions", "task"):
        if getattr(args, name) is not None:
            argv += [f"--{'predictions_file' if name == 'predictions' else name}", str(getattr(args, name))]
    metrics = run_videoqa.main(argv + extra)
    print(json.dumps(metrics, indent=2))


def _make_synthetic(args: argparse.Namespace, extra: list[str]) -> None:
    from datasets_scripts.synthetic import main

    main([args.output_dir, *extra])


def _visualize(args: argparse.Namespace) -> None:
    from modeling_siasamrea import SiaSamReaForVideoQuestionAnswering, SiaSamReaProcessor
    from training.visualize import visualize_siamese_example

    path = visualize_siamese_example(
        SiaSamReaForVideoQuestionAnswering.from_pretrained(args.model), SiaSamReaProcessor.from_pretrained(args.model),
        args.video, args.question, label=args.label, choices=args.choices, output_path=args.output, seed=args.seed,
        task=args.task,
    )
    print(f"wrote {path}")


def _convert(extra: list[str]) -> int:
    from modeling_siasamrea.convert_clipbert_checkpoint import main

    return main(extra, prog="siasamrea convert-clipbert")


def _probe(args: argparse.Namespace) -> None:
    from datasets_scripts.builders import write_video_manifest

    print(f"wrote {write_video_manifest(args.data_dir, video_dir=args.video_dir, num_proc=args.num_proc)}")


def _pack(args: argparse.Namespace) -> None:
    from datasets_scripts.streaming import pack_videoqa

    options = {"answer_vocab_size": args.answer_vocab_size} if args.answer_vocab_size else {}
    index = pack_videoqa(args.dataset_name, args.data_dir, args.output_dir, config=args.dataset_config,
                         splits=args.splits, max_shard_size=args.max_shard_size, num_shards=args.num_shards,
                         seed=args.seed, num_proc=args.num_proc, frames=args.frames,
                         max_image_size=args.max_image_size, quality=args.quality, **options)
    print(f"wrote {index}")


def _transcode(args: argparse.Namespace) -> None:
    from datasets_scripts.transcode import transcode_dataset

    record = transcode_dataset(args.data_dir, args.output_dir, args.max_image_size, quality=args.quality,
                               num_proc=args.num_proc)
    print(f"wrote {record}")


def _demo(args: argparse.Namespace) -> None:
    from training.demo import run_demo

    run_demo(args.output_dir, quick=args.quick)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="siasamrea", description="SiaSamRea VideoQA (NeurIPS 2021): train, evaluate and ask questions about videos."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    predict = commands.add_parser("predict", help="answer a question about a video (anchor clip only by default)")
    predict.add_argument("video", help="video file, folder of frames")
    predict.add_argument("question")
    predict.add_argument("--choices", nargs="+", help="answer choices (multiple-choice tasks)")
    predict.add_argument("--task", help="which task of a joint model answers (e.g. count); one-task models need none")
    predict.add_argument("--model", default=DEFAULT_MODEL, help=f"model folder or Hub id (default: {DEFAULT_MODEL})")
    predict.add_argument("--top_k", type=int, default=5, help="answers to show (open-ended)")
    predict.add_argument("--num_eval_clips", type=int, default=1, help="1 = anchor clip only; >1 = dense inference")
    predict.add_argument("--aggregation", default="mean", choices=["mean", "max", "lse"], help="dense inference")

    train = commands.add_parser("train", help="fine-tune: training/run_videoqa.py CONFIG [--key value ...]",
                                description="Any further --key value overrides the config (see run_videoqa.py).")
    train.add_argument("config", help="YAML/JSON config, e.g. training/configs/synthetic.yaml")

    evaluate = commands.add_parser("eval", help="evaluate a saved model on a dataset split",
                                   description="Any further --key value goes to run_videoqa.py.")
    evaluate.add_argument("--model", default=DEFAULT_MODEL)
    evaluate.add_argument("--dataset_name", default="synthetic")
    evaluate.add_argument("--dataset_config")
    evaluate.add_argument("--data_dir")
    evaluate.add_argument("--split", default="val")
    evaluate.add_argument("--num_frames")
    evaluate.add_argument("--num_eval_clips", type=int, default=1, help=">1: dense evaluation")
    evaluate.add_argument("--output_dir", default="outputs/eval")
    evaluate.add_argument("--task", help="the joint model's task that answers single-task data (e.g. count)")
    evaluate.add_argument("--predictions", metavar="FILE",
                          help="write one JSON line per question: question_id, answer_type, prediction, score, label, "
                               "correct")

    synthetic = commands.add_parser("make-synthetic", help="write the synthetic VideoQA dataset",
                                    description="Options: --num-videos --seed --image-size --min-frames ...")
    synthetic.add_argument("output_dir")

    visualize = commands.add_parser("visualize", help="PNG of one example's siamese clips, knowledge Â and soft label Q")
    visualize.add_argument("video")
    visualize.add_argument("question")
    visualize.add_argument("--label", help="ground-truth answer (or choice, or count)")
    visualize.add_argument("--choices", nargs="+")
    visualize.add_argument("--task", help="which task of a joint model")
    visualize.add_argument("--model", default=DEFAULT_MODEL)
    visualize.add_argument("--output", default="siamese_example.png")
    visualize.add_argument("--seed", type=int, default=0)

    commands.add_parser("convert-clipbert", add_help=False, help="convert a ClipBERT .pt checkpoint (see --help)")

    probe = commands.add_parser("probe", help="probe every video of DATA_DIR once: frame counts -> video_manifest.json",
                                description="Builders then read frame counts from DATA_DIR/video_manifest.json "
                                            "instead of opening every video; a rerun probes only new or changed files.")
    probe.add_argument("data_dir")
    probe.add_argument("--video_dir", help="videos folder (default: videos/, video/ and gifs/ of DATA_DIR)")
    probe.add_argument("--num_proc", type=int, help="probing processes (default: 1)")

    pack = commands.add_parser("pack", help="write a dataset as tar shards for streaming (load_videoqa streaming=True)",
                               description="One sample per video (its bytes once, its questions beside it); see "
                                           "datasets_scripts/streaming.py.")
    pack.add_argument("dataset_name")
    pack.add_argument("data_dir")
    pack.add_argument("output_dir")
    pack.add_argument("--dataset_config")
    pack.add_argument("--splits", nargs="+", help="default: every split")
    pack.add_argument("--max_shard_size", default="1GB", help="bytes of video per shard (default 1GB)")
    pack.add_argument("--num_shards", type=int, help="exactly this many shards per split instead (a multiple of "
                                                     "processes x DataLoader workers)")
    pack.add_argument("--seed", type=int, default=0, help="order of the videos across shards")
    pack.add_argument("--answer_vocab_size", type=int, help="open-ended: K of the top-K answers (default 1000)")
    pack.add_argument("--num_proc", type=int, help="processes that probe (and transcode) the videos")
    pack.add_argument("--frames", choices=["source", "jpeg"], default="source",
                      help="source: the video files' bytes (default); jpeg: every frame as a JPEG at --max_image_size "
                           "(an AVI per video), which a training sample decodes ~10x faster")
    pack.add_argument("--max_image_size", type=int, help="--frames jpeg: the longer frame side (the model's, e.g. 448)")
    pack.add_argument("--quality", type=int, default=90, help="--frames jpeg: JPEG quality (default 90)")

    transcode = commands.add_parser(
        "transcode", help="copy a dataset folder with its videos stored as JPEG frames at the model's size",
        description="Every video of DATA_DIR becomes an AVI of one JPEG per frame at --max_image_size (the source's "
                    "frames, count and rate), with the manifest builders read: load_videoqa(NAME, OUT_DIR) reads it "
                    "as DATA_DIR; see datasets_scripts/transcode.py.")
    transcode.add_argument("data_dir")
    transcode.add_argument("output_dir")
    transcode.add_argument("--max_image_size", type=int, required=True, help="the longer frame side (the model's: 448)")
    transcode.add_argument("--quality", type=int, default=90, help="JPEG quality (default 90)")
    transcode.add_argument("--num_proc", type=int, help="transcoding processes (default: 1)")

    demo = commands.add_parser("demo", help="synthetic videos -> train -> evaluate -> answer questions -> figure")
    demo.add_argument("--output_dir", default="demo_output")
    demo.add_argument("--quick", action="store_true", help="a few training steps only")
    return parser


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["convert-clipbert"]:
        return _convert(argv[1:])
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command in ("train", "eval", "make-synthetic"):
        {"train": _train, "eval": _eval, "make-synthetic": _make_synthetic}[args.command](args, extra)
        return None
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    {"predict": _predict, "visualize": _visualize, "demo": _demo, "probe": _probe, "pack": _pack,
     "transcode": _transcode}[args.command](args)
    return None


if __name__ == "__main__":
    main()
