"""The `siasamrea` command line: predict, train, eval, make-synthetic, visualize, convert-clipbert, probe, pack,
transcode and demo.

A mistake the user can fix (a missing file or folder, an unknown key, an invalid value, a bad annotation row) is one
line, `siasamrea: error: <message>`, and exit status 2; any other failure is one line too, with exit status 1. The
traceback comes with `siasamrea --debug COMMAND ...` or `SIASAMREA_DEBUG=1`.
"""

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

DEFAULT_MODEL = "demo_output/model"
# what a user's input causes: missing files and folders, unknown keys, invalid values, unreadable annotations
USER_ERRORS = (ValueError, OSError, ImportError)


def check_model(name: str) -> None:
    """Fail before any Hub lookup when ``name`` is a local path: a missing folder, or one without config.json. A
    name that could be a Hub id and is no local folder is left to the Hub (see ``_load``)."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"{name} is not a model folder: it has no config.json (pass a folder that "
                                    "`siasamrea train` or save_pretrained wrote, or a Hub model id)")
        return
    if path.exists():
        raise FileNotFoundError(f"{name} is a file, not a model folder")
    if name == DEFAULT_MODEL:
        raise FileNotFoundError(f"model folder {name} does not exist: run `siasamrea demo` first, or pass --model "
                                "(a model folder or a Hub model id)")
    try:
        validate_repo_id(name)
    except HFValidationError:
        raise FileNotFoundError(f"model folder {name} does not exist") from None
    if path.parent != Path(".") and path.parent.is_dir():  # outputs/run: a folder of an existing folder
        raise FileNotFoundError(f"model folder {name} does not exist")


def _load(name: str, load: Callable):
    """``load(name)``; a Hub failure for a name that is no local folder says that too."""
    try:
        return load(name)
    except OSError as error:
        if Path(name).expanduser().exists():
            raise
        raise OSError(f"{name}: no local folder of that name, and loading it from the Hub failed: "
                      f"{str(error).splitlines()[0]}") from error


def _check_video(video: str) -> None:
    if "://" not in video and not os.path.exists(video):
        raise FileNotFoundError(f"video {video} does not exist")


def _predict(args: argparse.Namespace) -> None:
    _check_video(args.video)
    check_model(args.model)
    from transformers import pipeline

    import modeling_siasamrea  # noqa: F401  (registers the task and the local classes)

    vqa = _load(args.model, lambda name: pipeline("video-question-answering", model=name, trust_remote_code=True))
    result = vqa(video=args.video, question=args.question, choices=args.choices, task=args.task, top_k=args.top_k,
                 num_eval_clips=args.num_eval_clips, aggregation=args.aggregation)
    print(json.dumps(result, indent=2))


def _train(args: argparse.Namespace, extra: list[str]) -> None:
    if not os.path.isfile(args.config):
        raise FileNotFoundError(f"config file {args.config} does not exist")
    if not args.config.endswith((".yaml", ".yml", ".json")):
        raise ValueError(f"config file {args.config}: expected a .yaml, .yml or .json file")
    from training import run_videoqa

    run_videoqa.main([args.config, *extra])


def _eval(args: argparse.Namespace, extra: list[str]) -> None:
    check_model(args.model)
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
    _check_video(args.video)
    check_model(args.model)
    from modeling_siasamrea import SiaSamReaForVideoQuestionAnswering, SiaSamReaProcessor
    from training.visualize import visualize_siamese_example

    path = visualize_siamese_example(
        _load(args.model, SiaSamReaForVideoQuestionAnswering.from_pretrained),
        SiaSamReaProcessor.from_pretrained(args.model), args.video, args.question, label=args.label,
        choices=args.choices, output_path=args.output, seed=args.seed, task=args.task,
    )
    print(f"wrote {path}")


def _convert(extra: list[str]) -> int:
    from modeling_siasamrea.convert_clipbert_checkpoint import main

    return main(extra, prog="siasamrea convert-clipbert")


def _probe(args: argparse.Namespace) -> None:
    if not os.path.isdir(args.data_dir):
        raise FileNotFoundError(f"data_dir {args.data_dir} does not exist")
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
        prog="siasamrea",
        description="SiaSamRea VideoQA (NeurIPS 2021): train, evaluate and ask questions about videos.",
        epilog="Errors are one line; --debug (or SIASAMREA_DEBUG=1) shows the traceback.",
    )
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
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

    visualize = commands.add_parser("visualize",
                                    help="PNG of one example's siamese clips, knowledge Â and soft label Q")
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
    pack.add_argument("--quality", type=int, help="--frames jpeg: JPEG quality (default 90)")

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


def _run(argv: list[str]) -> int | None:
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


def report_errors(run: Callable[[list[str]], object], argv: list[str], prog: str = "siasamrea",
                  debug: bool = False) -> int:
    """``run(argv)``, with an error printed as one line (``<prog>: error: <message>``) and returned as the exit
    status: 2 for ``USER_ERRORS``, 1 for others (named by type); ``debug`` or SIASAMREA_DEBUG=1 re-raises it."""
    debug = debug or os.environ.get("SIASAMREA_DEBUG", "") not in ("", "0")
    try:
        status = run(argv)
        return status if isinstance(status, int) else 0
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if debug:
            raise
        message = " ".join(str(error).split("\n")).strip() or type(error).__name__
        if isinstance(error, USER_ERRORS):
            print(f"{prog}: error: {message}", file=sys.stderr)
            return 2
        print(f"{prog}: error: {type(error).__name__}: {message} (--debug shows the traceback)", file=sys.stderr)
        return 1


def main(argv: list[str] | None = None) -> int:
    """The `siasamrea` entry point; returns the exit status. ``--debug`` (before the command, or a bare flag anywhere)
    shows tracebacks."""
    argv = list(sys.argv[1:] if argv is None else argv)
    flags = [i for i, arg in enumerate(argv) if arg == "--debug" and (i == 0 or i + 1 == len(argv)
                                                                       or argv[i + 1][:1] == "-")]
    argv = [arg for i, arg in enumerate(argv) if i not in flags]  # a bare --debug: ours (the Trainer's takes a value)
    return report_errors(_run, argv, debug=bool(flags))


if __name__ == "__main__":
    sys.exit(main())
