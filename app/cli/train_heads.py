"""heedful train-heads: the shipped model with its output head retrained on your reviewed labels (the `train` extra).

Only argument handling lives here; the training is classifiers/training/own_heads.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from classifiers import DEFAULT_MODEL_DIR

    parser = commands.add_parser(
        "train-heads", help="retrain the model's output head on your reviewed labels (needs the train extra)",
        description="Train the output head of the shipped model (its last layer, over the fine-tuned encoder's features) on "
        "your reviewed labels plus a sample of the shipped training data, starting from the shipped head; calibrate it, "
        "pick thresholds, and evaluate it against the shipped model on a held-out part of your labels (per label AUROC "
        "and F1 side by side). Writes a model folder in the shipped layout (model.onnx, tokenizer.json, calibration.json, "
        "thresholds.json, metrics.json, MODEL_CARD.md) that `heedful serve --model-path DIR` serves. The export must hold "
        "texts (the policy's audit.include_texts); labels with fewer than 40 positive or 40 negative reviews keep the "
        "shipped head's output for that label, and with no label above that the command refuses.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--reviews", type=Path, help="reviewed decisions with texts (`heedful review export`)")
    source.add_argument("--db-url", help="read them from the review console's database instead")
    parser.add_argument("--out", type=Path, required=True, help="the new model folder (must not exist or be empty)")
    parser.add_argument("--base-model", type=Path, default=DEFAULT_MODEL_DIR, help="the model to start from (default: shipped)")
    parser.add_argument("--holdout", type=float, default=0.25, help="share of your labels held out for the evaluation (default 0.25)")
    parser.add_argument("--shipped-sample", type=int, default=3000,
                        help="shipped training examples mixed in, so the head keeps what it knew (default 3000; 0: none)")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (default 2)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from classifiers.training import own_heads

    try:
        reviews = args.reviews
        if args.db_url:
            from app.console.db import iter_reviewed

            reviews = own_heads.reviewed_from(((f"{args.db_url}: decision {row.get('id')}", row)
                                               for row in iter_reviewed(args.db_url, with_texts_only=True)), args.db_url)
        report = own_heads.train_heads(reviews, args.out, args.base_model, holdout=args.holdout,
                                       shipped_sample=args.shipped_sample, seed=args.seed, threads=args.threads,
                                       progress=lambda line: print(line, file=sys.stderr))
    except own_heads.CannotTrain as exc:
        print(f"heedful train-heads: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"heedful train-heads: {exc}", file=sys.stderr)
        return 2
    except ImportError as exc:
        print(f"heedful train-heads: needs the train extra ({exc.name or exc} is not installed): "
              "pip install 'heedful[train]'", file=sys.stderr)
        return 2
    print(report)
    print(f"model: {args.out} (MODEL_CARD.md, metrics.json); serve it with heedful serve --model-path {args.out}",
          file=sys.stderr)
    return 0
