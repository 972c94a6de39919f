"""heedful score: the batch-scoring contract over a JSONL file."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from classifiers import DEFAULT_MODEL_DIR, Scorer
from classifiers.batch import InputLineError, read_items, score_items


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "score", help="score a JSONL file of conversations and draft replies",
        description="Each input line: {\"id\": ..., \"messages\": [...], \"reply\": \"...\"}. Each output line, in input "
        "order: {\"id\", \"scores\", \"context\", \"flags\"}. A malformed line stops the run (exit 2) before anything is written.",
    )
    parser.add_argument("--input", type=Path, required=True, help="JSONL file to score ('-' for standard input)")
    parser.add_argument("--output", type=Path, help="where to write JSONL (default: standard output)")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR, help="model folder")
    parser.add_argument("--threads", type=int, default=2, help="onnxruntime intra-op threads")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (it shows on a terminal only)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        if str(args.input) == "-":
            items = read_items(sys.stdin)
        else:
            with args.input.open(encoding="utf-8") as stream:
                items = read_items(stream)
    except InputLineError as exc:
        print(f"heedful score: {args.input}:{exc.line}: {exc.problem}", file=sys.stderr)
        return 2
    except (OSError, UnicodeDecodeError) as exc:
        print(f"heedful score: cannot read {args.input}: {exc}", file=sys.stderr)
        return 2
    scorer = Scorer(args.model, threads=args.threads)
    out = args.output.open("w", encoding="utf-8") if args.output else sys.stdout
    try:
        from tqdm import tqdm

        with tqdm(total=len(items), unit=" lines", desc="score", file=sys.stderr, dynamic_ncols=True,
                  disable=args.no_progress or not sys.stderr.isatty()) as bar:
            for row in score_items(scorer, items):
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
                bar.update(1)
    finally:
        if args.output:
            out.close()
    return 0
