"""The ``mmenc`` command line. Parsing imports no torch, so ``mmenc --help`` answers at once."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mmenc.embed_job import DEFAULT_CHUNK
from mmenc.errors import MmencError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mmenc",
        description="Embed texts and images with any registered encoder, and compare them.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    listing = commands.add_parser("list", help="list registered encoders")
    listing.add_argument("pattern", nargs="?", default="*", help="fnmatch pattern, e.g. 'tiny-*'")
    listing.add_argument("--family", help="only this family (bert, vit, clip, blip, gpt ...)")
    listing.add_argument("--modality", choices=["text", "image"], help="only encoders of this")

    info = commands.add_parser("info", help="describe one encoder name")
    info.add_argument("name")

    plugins = commands.add_parser(
        "plugins",
        help="list plugins, with the error of each that failed",
        description="List the installed plugins, with the error of each that failed. Listing "
        "calls no factory; --check also loads every encoder the plugins register (on cpu, never "
        "downloading) to find one that crashes or hangs, and exits with 1 if a plugin failed.",
    )
    plugins.add_argument(
        "--check",
        nargs="*",
        metavar="PLUGIN",
        help="load each registered encoder of every plugin, or of the named ones (slow: it "
        "loads the models; one not downloaded is skipped)",
    )
    plugins.add_argument(
        "--timeout",
        type=float,
        metavar="S",
        help="with --check: seconds each encoder may take (MMENC_LOAD_TIMEOUT, else 60)",
    )

    embed = commands.add_parser("embed", help="embed texts or image files into .npy or .jsonl")
    _model_options(embed)
    source = embed.add_mutually_exclusive_group(required=True)
    source.add_argument("--text", nargs="+", metavar="T", help="texts to embed")
    source.add_argument(
        "--texts-file", type=Path, metavar="F", help="a UTF-8 file, one text a line"
    )
    source.add_argument("images", nargs="*", default=[], metavar="IMAGE", help="image files")
    _input_option(source)
    embed.add_argument(
        "--out",
        "--output",
        dest="out",
        required=True,
        help="output FILE.npy or FILE.jsonl; with --engine ray, a DIR.parquet folder",
    )
    embed.add_argument("--batch-size", type=int, default=32)
    embed.add_argument("--no-normalize", action="store_true", help="keep raw embedding norms")
    embed.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    embed.add_argument(
        "--chunk-size",
        type=int,
        default=DEFAULT_CHUNK,
        metavar="N",
        help=f"inputs embedded and saved at a time: a stopped run loses at most one chunk "
        f"({DEFAULT_CHUNK})",
    )
    embed.add_argument(
        "--resume",
        action="store_true",
        help="go on from the rows an interrupted run saved in OUT.partial, embedding only the rest",
    )
    _engine_options(embed)

    similarity = commands.add_parser(
        "similarity",
        help="cosine similarity table; an argument that is an image file is an image",
        description="Print the cosine similarity of A (one or more texts or image files) against "
        "B (--to ...), or of the two items A B.",
    )
    _model_options(similarity)
    similarity.add_argument("items", nargs="+", metavar="A")
    similarity.add_argument("--to", nargs="+", metavar="B", help="items to compare against")

    commands.add_parser("tasks", help="list pipeline tasks and their default models")
    run = commands.add_parser(
        "run",
        help='run a task pipeline, e.g. `mmenc run sentiment-analysis "I love it"`',
        description="Run a task pipeline on texts or image files and print the results.",
    )
    run.add_argument("task", help="a task name (see `mmenc tasks`), e.g. translation_en_to_fr")
    run.add_argument("inputs", nargs="*", metavar="INPUT", help="texts, or image files")
    run.add_argument("--model", "-m", help="registry name, hub id or folder (default: the task's)")
    run.add_argument("--device", help="cpu, cuda, mps (default: best available)")
    run.add_argument("--dtype", choices=["float32", "bfloat16", "float16"])
    run.add_argument("--batch-size", type=int)
    run.add_argument("--file", type=Path, metavar="F", help="more inputs, one per line")
    run.add_argument("--question", help="question-answering: the question")
    run.add_argument("--context", help="question-answering: the context")
    run.add_argument("--labels", help="zero-shot tasks: candidate labels, comma-separated")
    run.add_argument(
        "--option",
        "-o",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a task option; VALUE is read as JSON when it parses (top_k=3, multi_label=true)",
    )
    run.add_argument("--json", action="store_true", help="print the results as JSON")
    _zero_shot_parser(commands)
    _compare_parser(commands)
    _train_parser(commands)
    return parser


def _zero_shot_parser(commands: Any) -> None:
    zero_shot = commands.add_parser(
        "zero-shot",
        help='classify images or texts into labels, e.g. `--labels "cat,dog" photo.jpg`',
        description="Classify image files (or every image in a folder) or texts (--text) "
        "into the given labels with one encoder, zero-shot, and print a table per input.",
    )
    _model_options(zero_shot)
    zero_shot.add_argument(
        "--labels", required=True, help='candidate labels, comma-separated: "cat,dog,car"'
    )
    source = zero_shot.add_mutually_exclusive_group(required=True)
    source.add_argument("--text", nargs="+", metavar="T", help="texts to classify")
    source.add_argument(
        "inputs", nargs="*", default=[], metavar="INPUT", help="image files or folders of images"
    )
    _input_option(source)
    _method_options(zero_shot)
    zero_shot.add_argument("--top-k", type=int, default=5, help="labels shown per input (5)")
    zero_shot.add_argument("--batch-size", type=int, default=32)
    zero_shot.add_argument("--json", action="store_true", help="print the results as JSON")
    zero_shot.add_argument(
        "--out", "--output", dest="out", help="with --engine ray: the output DIR.parquet folder"
    )
    zero_shot.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    _engine_options(zero_shot)


def _compare_parser(commands: Any) -> None:
    compare = commands.add_parser(
        "compare",
        help="compare models zero-shot on a labelled dataset; write a report with plots",
        description="Run each model (and method) zero-shot on a labelled dataset, print the "
        "metrics table and write report.md, results.csv, results.json and PNG plots to --out.",
    )
    compare.add_argument(
        "--dataset",
        "-d",
        action="append",
        required=True,
        metavar="DATASET",
        help="digits, digits-words, shapes, topics, an ImageFolder directory, or a .csv/.jsonl "
        "file; repeat for datasets of several modalities that share their labels",
    )
    compare.add_argument(
        "--model", "-m", action="append", required=True, help="a model to compare; repeat"
    )
    _method_options(compare, several=True)
    compare.add_argument("--labels", help="the label set, comma-separated (default: the data's)")
    compare.add_argument("--limit", type=int, help="a seeded, class-balanced subset of N examples")
    compare.add_argument("--out", type=Path, default=Path("mmenc-report"), metavar="DIR",
                         help="report folder (default: ./mmenc-report)")  # fmt: skip
    compare.add_argument("--batch-size", type=int, default=32)
    compare.add_argument("--device", help="cpu, cuda, mps (default: best available)")
    compare.add_argument("--dtype", choices=["float32", "bfloat16", "float16"])
    compare.add_argument("--quiet", "-q", action="store_true", help="no progress bars")


def _train_parser(commands: Any) -> None:
    train = commands.add_parser(
        "train", help="train a model (lit: an image tower for a text encoder)"
    )
    kinds = train.add_subparsers(dest="trainer", required=True, metavar="TRAINER")
    lit = kinds.add_parser(
        "lit",
        help="train a LiT image tower against a frozen text encoder",
        description="Locked-image text tuning: train a timm image backbone plus a projection so "
        "that images land where the frozen text encoder puts their captions. The result opens "
        "with `mmenc.load(OUT)` and classifies images zero-shot with any label text.",
    )
    lit.add_argument("backbone", help="a timm architecture, e.g. mobilenetv3_small_050")
    lit.add_argument(
        "--dataset",
        "-d",
        required=True,
        help="an ImageFolder directory, a .csv/.jsonl file, digits or shapes",
    )
    lit.add_argument("--out", type=Path, required=True, metavar="DIR", help="the model folder")
    lit.add_argument("--text-encoder", default="minilm-l6", help="a text encoder (minilm-l6)")
    lit.add_argument(
        "--templates",
        "-t",
        action="append",
        metavar="T",
        help="caption templates with {} (repeat) or a template set name",
    )
    lit.add_argument("--epochs", type=int, default=10)
    lit.add_argument("--batch-size", type=int, default=64)
    lit.add_argument("--lr", type=float, default=1e-3)
    lit.add_argument("--seed", type=int, default=0)
    lit.add_argument("--image-size", type=int, help="input side in pixels (the backbone's own)")
    lit.add_argument("--pretrained", action="store_true", help="start from timm's weights")
    lit.add_argument(
        "--validation",
        type=float,
        default=0.1,
        help="fraction of each class held out for validation (0.1)",
    )
    lit.add_argument("--resume", action="store_true", help="continue from the last epoch saved")
    lit.add_argument("--device", help="cpu, cuda, mps (default: best available)")
    lit.add_argument("--quiet", "-q", action="store_true", help="no progress bars")


def _method_options(parser: argparse.ArgumentParser, several: bool = False) -> None:
    parser.add_argument(
        "--templates",
        "-t",
        action="append",
        metavar="T",
        help="a template set (photo, openai-imagenet, simple, text) or, repeated, format "
        "strings with {} (default: photo for images, text for texts)",
    )
    parser.add_argument(
        "--method",
        action="append" if several else "store",
        help="similarity (default), nli, likelihood or itm" + ("; repeat" if several else ""),
    )


def _input_option(source: Any) -> None:
    source.add_argument(
        "--input",
        metavar="PATH",
        help="with --engine ray: a Parquet, CSV or JSON Lines file, a glob or folder of them, "
        "or a folder of images",
    )


def _engine_options(parser: argparse.ArgumentParser) -> None:
    ray = parser.add_argument_group("engine", "run on Ray Data (pip install 'mmenc[ray]')")
    ray.add_argument(
        "--engine",
        choices=["local", "ray"],
        default="local",
        help="local: this process (default); ray: Ray actors, on a local Ray instance or the "
        "cluster at --address, reading --input and writing --out DIR.parquet",
    )
    ray.add_argument("--address", help="join this Ray cluster (auto, HOST:6379, ray://HOST:10001)")
    ray.add_argument(
        "--column", help="the column of --input holding the inputs (text; bytes for images)"
    )
    ray.add_argument(
        "--modality",
        choices=["text", "image"],
        help="what the column holds (default: image for a folder of images, else text)",
    )
    ray.add_argument(
        "--concurrency", type=int, default=1, help="Ray actors, each with its own model (1)"
    )
    ray.add_argument("--num-gpus", type=float, default=0, help="GPUs per actor (0: CPU)")
    ray.add_argument("--preserve-order", action="store_true", help="write the rows in input order")


def _model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", "-m", required=True, help="registry name, hf:ORG/NAME, path...")
    parser.add_argument("--device", help="cpu, cuda, mps (default: best available)")
    parser.add_argument("--dtype", choices=["float32", "bfloat16", "float16"])


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command in ("run", "zero-shot") and not any(e.startswith("-") for e in extra):
        args.inputs += extra  # inputs after options: `mmenc run TASK --model M "text"`
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return int(COMMANDS[args.command](args) or 0)
    except MmencError as exc:
        print(f"mmenc: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0


def cmd_list(args: argparse.Namespace) -> None:
    import mmenc

    names = mmenc.list_encoders(args.pattern, family=args.family, modality=args.modality)
    rows = [
        (spec.name, spec.family, ",".join(sorted(spec.modalities)), spec.description)
        for spec in map(mmenc.get_spec, names)
    ]
    _print_table(["name", "family", "modalities", "description"], rows)


def cmd_info(args: argparse.Namespace) -> None:
    import mmenc

    spec = mmenc.get_spec(args.name)
    for field in ("name", "family", "description", "source", "plugin"):
        print(f"{field:<11} {getattr(spec, field)}")
    print(f"{'modalities':<11} {', '.join(sorted(spec.modalities))}")
    print(f"{'aliases':<11} {', '.join(spec.aliases) or '-'}")


def cmd_plugins(args: argparse.Namespace) -> int:
    """The plugin table; ``--check`` loads each plugin's encoders too (exit 1 if one failed)."""
    import mmenc

    plugins = mmenc.list_plugins()
    if args.check is not None:
        return _check_plugins(plugins, args.check, args.timeout)
    rows = [(*_plugin_cells(p), p.error or "") for p in plugins]
    _print_table(["plugin", "distribution", "version", "status", "error"], rows)
    return 0


def _plugin_cells(plugin: Any) -> tuple[str, ...]:
    return (plugin.name, plugin.distribution or "-", plugin.version or "-", plugin.status)


def _check_plugins(plugins: list[Any], names: list[str], timeout: float | None) -> int:
    """Load the encoders of ``names`` (every plugin if empty); 1 if a plugin failed, else 0."""
    from mmenc.registry import check_plugin, load_timeout

    unknown = sorted(set(names) - {p.name for p in plugins})
    if unknown:
        known = ", ".join(p.name for p in plugins)
        raise SystemExit(f"mmenc: error: no plugin named {', '.join(unknown)} (known: {known})")
    try:
        load_timeout(timeout)
    except ValueError as exc:
        raise SystemExit(f"mmenc: error: --timeout: {exc}") from None
    plugins = [p for p in plugins if not names or p.name in names]
    loaded = [p.name for p in plugins if p.status == "loaded"]
    checks = {name: check_plugin(name, timeout=timeout) for name in loaded}
    rows = []
    for p in plugins:
        check = checks.get(p.name)
        verdict, error = (check.status, check.error) if check else ("-", None)
        rows.append((*_plugin_cells(p), verdict, error or p.error or ""))
    _print_table(["plugin", "distribution", "version", "status", "check", "error"], rows)
    skipped = sorted(name for check in checks.values() for name in check.not_downloaded)
    if skipped:
        note = f"not checked, not downloaded (--check never downloads): {', '.join(skipped)}"
        print(note, file=sys.stderr)
    statuses = [p.status for p in plugins] + [check.status for check in checks.values()]
    return 1 if "failed" in statuses else 0


def cmd_embed(args: argparse.Namespace) -> None:
    import mmenc
    from mmenc.embed_job import EmbedJob, PartialOutput, embed_to_file
    from mmenc.runtime import stream_memory

    if _check_engine(args) == "ray":
        return _run_on_ray(args, "embed")
    args.out = Path(args.out)
    if args.out.suffix not in (".npy", ".jsonl"):
        raise SystemExit(f"mmenc: error: --out must end in .npy or .jsonl, not {args.out.name!r}")
    if not args.out.parent.is_dir():
        raise SystemExit(f"mmenc: error: the folder of --out does not exist: {args.out.parent}")
    if args.chunk_size < 1:
        raise SystemExit(f"mmenc: error: --chunk-size must be at least 1, not {args.chunk_size}")
    PartialOutput(args.out).check(args.resume)
    count, inputs = _embed_inputs(args)
    stream_memory()
    encoder = mmenc.load(args.model, device=args.device, dtype=args.dtype)
    job = EmbedJob(
        model=encoder.name,
        device=str(encoder.device),
        dtype=str(encoder.dtype).removeprefix("torch."),
        modality="image" if args.images else "text",
        normalize=not args.no_normalize,
        batch_size=args.batch_size,
        chunk_size=args.chunk_size,
        dim=encoder.embed_dim,
        suffix=args.out.suffix,
    )
    encode = encoder.encode_image if args.images else encoder.encode_text
    rows, reused = embed_to_file(
        encode, inputs, count, args.out, job, resume=args.resume, progress=not args.no_progress
    )
    if rows != count:  # the output holds what was read, and says so in its shape
        print(
            f"mmenc: note: {args.texts_file} changed while it was read: {count} lines when "
            f"counted, {rows} when embedded",
            file=sys.stderr,
        )
    resumed = f" ({reused:,} reused from the interrupted run)" if args.resume else ""
    print(f"wrote {rows} x {encoder.embed_dim} embeddings to {args.out}{resumed}", file=sys.stderr)


def _embed_inputs(args: argparse.Namespace) -> tuple[int, Iterable[str]]:
    """How many inputs ``mmenc embed`` has, and the inputs. A --texts-file is read twice, line
    by line (to count, then to embed), so that it is never held whole."""
    if args.texts_file is None:
        items: list[str] = args.text or [str(p) for p in args.images]
        return len(items), items
    return sum(1 for _ in _text_lines(args.texts_file)), _text_lines(args.texts_file)


def _check_engine(args: argparse.Namespace) -> str:
    """The engine, once its options agree: --input and --address are for Ray, which reads
    only --input and needs --out DIR.parquet."""
    if args.engine == "local":
        for option in ("input", "address"):
            if getattr(args, option) is not None:
                raise SystemExit(f"mmenc: error: --{option} is for --engine ray")
        return "local"
    if getattr(args, "resume", False):
        raise SystemExit(
            "mmenc: error: --resume is for --engine local; a Ray job writes its Parquet "
            "folder in one go"
        )
    if args.input is None:
        raise SystemExit(
            "mmenc: error: --engine ray reads --input PATH (a Parquet, CSV or JSON Lines file, a "
            "glob or folder of them, or a folder of images), not texts or files listed"
        )
    if args.out is None or not str(args.out).rstrip("/").endswith(".parquet"):
        raise SystemExit(f"mmenc: error: --engine ray writes --out DIR.parquet, not {args.out!r}")
    if args.device is not None:
        raise SystemExit("mmenc: error: with --engine ray, actors use a GPU when --num-gpus > 0")
    local = None if "://" in args.out else Path(args.out)
    if local is not None and local.exists() and (local.is_file() or any(local.iterdir())):
        raise SystemExit(f"mmenc: error: --out {args.out} exists; remove it or choose another")
    return "ray"


def _run_on_ray(args: argparse.Namespace, command: str) -> None:
    """Embed or classify --input on Ray, write --out, and report the rows and the bad rows."""
    import logging

    try:
        import ray.data

        from mmenc.integrations import ray as engine
    except ImportError as exc:
        raise SystemExit(
            f"mmenc: error: --engine ray needs Ray Data ({exc}): pip install 'mmenc[ray]'"
        ) from None
    if getattr(args, "method", None) not in (None, "similarity"):
        raise SystemExit("mmenc: error: --engine ray classifies by similarity only")
    out = args.out if "://" in args.out else str(Path(args.out).resolve())
    engine.connect(args.address)
    ray.data.DataContext.get_current().enable_progress_bars = not args.no_progress
    logging.getLogger("ray.data").setLevel(logging.WARNING)  # not a line per operator
    options = dict(
        column=args.column,
        modality=args.modality,
        batch_size=args.batch_size,
        concurrency=args.concurrency,
        num_gpus=args.num_gpus,
        dtype=args.dtype,
        preserve_order=args.preserve_order,
    )
    with _argument_errors(FileNotFoundError), _ray_errors():
        if command == "embed":
            dataset = engine.embed(
                args.input, args.model, normalize=not args.no_normalize, **options
            )
        else:
            dataset = engine.classify(
                args.input,
                args.model,
                _split_labels(args.labels),
                templates=_templates(args.templates),
                **options,
            )
        engine.write_parquet(dataset, out)
    if "://" not in out and not Path(out).is_dir():  # Ray writes no folder for no rows
        summary = engine.Summary(0, 0)
    else:
        summary = engine.summarize(ray.data.read_parquet(out))  # reads the error column
    what = "embedding" if command == "embed" else "label and score"
    print(
        f"wrote {summary.rows} rows to {out}; {summary.bad} bad rows (null {what}, the reason in "
        f"the {engine.ERROR_COLUMN} column)",
        file=sys.stderr,
    )
    for reason in summary.reasons:
        print(f"  e.g. {reason}", file=sys.stderr)


@contextmanager
def _ray_errors() -> Iterator[None]:
    """An mmenc error raised on a Ray actor (an unknown model, weights missing on a worker) as
    itself, without Ray's wrapping and remote traceback."""
    from ray.exceptions import RayError

    try:
        yield
    except RayError as exc:
        cause = _original_error(exc)
        if cause is not None and cause is not exc:
            raise cause from None
        reason = _remote_reason(str(exc))
        if reason is None:
            raise
        raise MmencError(reason) from None  # an actor died in __init__: only its message came


def _remote_reason(text: str) -> str | None:
    """The message of the last ``module.SomeError: message`` line of a remote traceback."""
    for line in reversed(text.splitlines()):
        found = re.match(r"([\w.]+(?:Error|Exception)): (.+)", line.strip())
        if found and not found.group(1).startswith("ray."):
            return found.group(2)
    return None


def _original_error(exc: BaseException) -> BaseException | None:
    """The mmenc error or ValueError inside Ray's wrappers (RayTaskError, UserCodeException),
    or None when there is none."""
    found: BaseException | None = None
    current: BaseException | None = exc
    for _ in range(10):  # wrappers nest a few levels at most
        if current is None:
            break
        if isinstance(current, (MmencError, ValueError)):
            found = current
        inner = getattr(current, "cause", None)
        current = inner if isinstance(inner, BaseException) else current.__cause__
    return found


def cmd_similarity(args: argparse.Namespace) -> None:
    import mmenc

    if args.to is None and len(args.items) != 2:
        raise SystemExit("mmenc: error: give two items A B, or items A ... --to B ...")
    left, right = (args.items, args.to) if args.to else (args.items[:1], args.items[1:])
    encoder = mmenc.load(args.model, device=args.device, dtype=args.dtype)
    left_inputs, right_inputs = _as_inputs(left), _as_inputs(right)
    table = encoder.similarity(left_inputs, right_inputs)
    rows = [
        (_label(item), *(f"{v:.4f}" for v in row))
        for item, row in zip(left_inputs, table.tolist(), strict=True)
    ]
    _print_table(["", *map(_label, right_inputs)], rows)


def cmd_tasks(args: argparse.Namespace) -> None:
    import mmenc

    rows = [
        (t.name, ", ".join(t.aliases) or "-", t.inputs, t.default_model or "-", t.description)
        for t in mmenc.list_tasks()
    ]
    _print_table(["task", "aliases", "inputs", "default model", "description"], rows)


def cmd_run(args: argparse.Namespace) -> None:
    import mmenc

    spec, _ = mmenc.get_task(args.task)
    inputs: list[Any] = list(args.inputs) + (_read_lines(args.file) if args.file else [])
    if spec.inputs == "image":
        inputs = [Path(item) for item in inputs]
    if args.question is not None or args.context is not None:
        inputs.append({"question": args.question or "", "context": args.context or ""})
    if not inputs:
        raise SystemExit(f"mmenc: error: give {args.task} at least one INPUT (or --file)")
    options = dict(_option(text) for text in args.option)
    if args.labels is not None:
        options["candidate_labels"] = [label.strip() for label in args.labels.split(",")]
    pipe = mmenc.pipeline(
        args.task,
        args.model,
        device=args.device,
        dtype=args.dtype,
        batch_size=args.batch_size,
    )
    results = pipe(inputs, **options)
    if args.json:
        print(json.dumps(results, ensure_ascii=False, default=_jsonable, indent=2))
        return
    for item, result in zip(inputs, results, strict=True):
        print(_label(item["question"] if isinstance(item, dict) else item, 72))
        print(f"  {json.dumps(_rounded(result), ensure_ascii=False, default=_jsonable)}")


def cmd_zero_shot(args: argparse.Namespace) -> None:
    from mmenc.zeroshot import ZeroShotClassifier

    if _check_engine(args) == "ray":
        return _run_on_ray(args, "zero-shot")
    if args.out is not None:
        raise SystemExit("mmenc: error: --out is for --engine ray; the local engine prints")
    inputs: list[Any] = args.text or _image_files(args.inputs)
    with _argument_errors():
        classifier = ZeroShotClassifier(
            args.model,
            _split_labels(args.labels),
            templates=_templates(args.templates),
            method=args.method or "similarity",
            device=args.device,
            dtype=args.dtype,
            batch_size=args.batch_size,
        )
    results = classifier.predict(inputs, top_k=args.top_k)
    if args.json:
        rows = [
            {"input": str(item), "predictions": result}
            for item, result in zip(inputs, results, strict=True)
        ]
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for n, (item, result) in enumerate(zip(inputs, results, strict=True)):
        print(("\n" if n else "") + _label(item, 72))
        _print_table(["label", "score"], [(r["label"], f"{r['score']:.4f}") for r in result])


def cmd_compare(args: argparse.Namespace) -> None:
    from mmenc.comparison.harness import compare

    if args.limit is not None and args.limit < 1:
        raise SystemExit(f"mmenc: error: --limit must be at least 1, got {args.limit}")
    if args.quiet:  # the Hugging Face libraries' bars too (read when they are imported)
        os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    with _argument_errors():
        report = compare(
            args.model,
            args.dataset if len(args.dataset) > 1 else args.dataset[0],
            labels=_split_labels(args.labels) if args.labels else None,
            templates=_templates(args.templates),
            methods=args.method,
            batch_size=args.batch_size,
            limit=args.limit,
            progress=False if args.quiet else None,
            device=args.device,
            dtype=args.dtype,
        )
    print(report.table())
    written = report.save(args.out)
    plots = sum(path.suffix == ".png" for path in written.values())
    print(f"\nwrote report.md, results.csv, results.json and {plots} PNG plots to {args.out}/")


def cmd_train(args: argparse.Namespace) -> None:
    import logging

    import mmenc.train

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    with _argument_errors(FileExistsError):
        result = mmenc.train.lit(
            args.backbone,
            args.text_encoder,
            args.dataset,
            out_dir=args.out,
            captions=_templates(args.templates) or mmenc.train.DEFAULT_CAPTIONS,
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            seed=args.seed,
            image_size=args.image_size,
            pretrained=args.pretrained,
            validation=args.validation,
            resume=args.resume,
            progress=not args.quiet,
            device=args.device,
        )
    last = result.history[-1] if result.history else {}
    top1 = last.get("val_top1")
    print(
        f"wrote {result.path}: {len(result.history)} epochs, final loss {last.get('loss')}, "
        f"held-out zero-shot top-1 {'n/a' if top1 is None else f'{top1:.1%}'}; "
        f"{len(result.skipped)} unreadable image(s) skipped"
    )
    print(f"use it: mmenc.load({str(result.path)!r})  or  mmenc compare --model {result.path} ...")


@contextmanager
def _argument_errors(*also: type[Exception]) -> Iterator[None]:
    """A ValueError about the arguments (labels, templates, method, batch size), or one of the
    ``also`` errors, as a one-line message, not a traceback; mmenc's own errors go on to
    ``main``."""
    caught: tuple[type[Exception], ...] = (ValueError, *also)
    try:
        yield
    except MmencError:
        raise
    except caught as exc:
        raise SystemExit(f"mmenc: error: {exc}") from None


def _split_labels(text: str) -> list[str]:
    """Comma-separated labels; blanks are kept, so that the classifier names them."""
    return [label.strip() for label in text.split(",")]


def _templates(values: list[str] | None) -> str | list[str] | None:
    """One --templates value without {} is a set name; otherwise the values are templates."""
    if values and len(values) == 1 and "{}" not in values[0]:
        return values[0]
    return values


def _image_files(inputs: list[str]) -> list[Path]:
    """The image files named, with a folder standing for the image files inside it (sorted,
    recursively)."""
    files: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            found = sorted(p for p in item.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise SystemExit(f"mmenc: error: no image files in the folder {item}")
            files += found
        elif item.is_file():
            files.append(item)
        else:
            raise SystemExit(f"mmenc: error: no such file or folder: {item}")
    return files


def _option(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise SystemExit(f"mmenc: error: --option wants KEY=VALUE, not {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def _rounded(value: Any) -> Any:
    """Scores to 4 decimals, for reading."""
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def _jsonable(value: Any) -> Any:
    """Tensors and arrays in results (feature extraction) as nested lists."""
    return value.tolist() if hasattr(value, "tolist") else str(value)


def _as_inputs(items: list[str]) -> list[Any]:
    """Arguments naming an existing image file are images (as Path); the rest are texts."""
    return [
        Path(i) if Path(i).suffix.lower() in IMAGE_SUFFIXES and Path(i).is_file() else i
        for i in items
    ]


def _read_lines(path: Path) -> list[str]:
    return list(_text_lines(path))


def _text_lines(path: Path) -> Iterator[str]:
    """The lines of a UTF-8 file, read one at a time and split as ``str.splitlines`` splits."""
    if not path.is_file():
        raise SystemExit(f"mmenc: error: --texts-file not found: {path}")
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, 1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise SystemExit(
                    f"mmenc: error: {path} is not UTF-8 text: line {number}, byte "
                    f"{exc.start + 1}: {exc.reason}"
                ) from None
            yield from text.splitlines()


def _label(item: str | Path, width: int = 28) -> str:
    """A table heading: an image's file name, or a text cut to ``width``."""
    text = item.name if isinstance(item, Path) else item
    return text if len(text) <= width else text[: width - 1] + "…"


def _print_table(header: list[str], rows: list[tuple[Any, ...]]) -> None:
    cells = [header, *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for n, row in enumerate(cells):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))


COMMANDS = {
    "list": cmd_list,
    "info": cmd_info,
    "plugins": cmd_plugins,
    "embed": cmd_embed,
    "similarity": cmd_similarity,
    "tasks": cmd_tasks,
    "run": cmd_run,
    "zero-shot": cmd_zero_shot,
    "compare": cmd_compare,
    "train": cmd_train,
}

if __name__ == "__main__":
    sys.exit(main())
