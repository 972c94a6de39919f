"""heedful calibrate: thresholds from reviewed decisions, as a proposed policy, its diff and an HTML report."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from app.policy.errors import PolicyError


def _share(text: str) -> float:
    value = float(text)
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a share between 0 and 1 (e.g. 0.8)")
    return value


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from classifiers import DEFAULT_MODEL_DIR

    parser = commands.add_parser(
        "calibrate", help="propose thresholds from reviewed decisions (docs/calibration.md)",
        description="Read reviewed decisions (`heedful review export` JSON lines) and propose, for a target precision or a "
        "maximum action rate, a threshold per label (the model's flags) and per rule of the policy (the number its "
        "condition compares its own label's score with). Prints precision, recall and action rate now and as proposed, "
        "with 95% intervals and counts; writes the proposed policy file, its `heedful policy diff`, a self-contained "
        "HTML report with the curves and summary.json into --out. Labels with fewer than 30 positive or 30 negative "
        "reviews get no proposal. Nothing is changed in place.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--reviews", type=Path, help="reviewed decisions: JSON lines from `heedful review export`")
    source.add_argument("--db-url", help="read the reviewed decisions from the review console's database instead "
                        "(e.g. sqlite:///heedful-console.db)")
    parser.add_argument("--shadow", type=Path,
                        help="an unreviewed traffic sample (`heedful score` output lines or audit records) for action rates "
                        "as traffic has them")
    parser.add_argument("--policy", type=Path, required=True, help="the policy file in use")
    goal = parser.add_mutually_exclusive_group(required=True)
    goal.add_argument("--target-precision", type=_share, help="the share of actions that should be right, e.g. 0.8")
    goal.add_argument("--max-action-rate", type=_share, help="the largest share of decisions to act on, e.g. 0.05")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR, help="the model folder whose thresholds.json sets the flags")
    parser.add_argument("--out", type=Path, default=Path("calibration"), help="folder for the outputs (default: calibration/)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from app.policy.loader import load_policy_file
    from app.policy_tools.calibrate.html import render
    from app.policy_tools.calibrate.propose import Move, propose
    from app.policy_tools.calibrate.reviews import ReviewsError, read_reviews, read_shadow, reviews_in_database
    from app.policy_tools.calibrate.run import Goal, calibrate
    from app.policy_tools.calibrate.summary import as_json, text
    from classifiers import ModelFilesError
    from classifiers.artifacts import load_model_info

    try:
        policy = load_policy_file(args.policy)
    except PolicyError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2
    try:
        thresholds = load_model_info(args.model).thresholds
        reviewed = read_reviews(args.reviews) if args.reviews else reviews_in_database(args.db_url)
        shadow = read_shadow(args.shadow) if args.shadow else None
    except (ReviewsError, ModelFilesError) as exc:
        print(f"heedful calibrate: {exc}", file=sys.stderr)
        return 2
    if not reviewed:
        print(f"heedful calibrate: {args.reviews or args.db_url} holds no reviewed decisions", file=sys.stderr)
        return 2
    goal = Goal(args.target_precision, args.max_action_rate)
    result = calibrate(policy, reviewed, shadow, thresholds, goal)
    print(text(result))

    args.out.mkdir(parents=True, exist_ok=True)
    moves = [Move(i.target, i.proposed.threshold, f"calibrated for {goal}: {i.current_threshold:g} -> "
                  f"{i.proposed.threshold:g} ({i.positives + i.negatives} reviews)")
             for i in result.rules if i.moves and i.target is not None and i.proposed is not None]
    proposed_file: str | None = None
    diff_lines: list[str] = []
    if moves:
        proposed_path = args.out / f"{Path(policy.file).stem}.proposed.yaml"
        try:
            proposal, _, diff_lines = propose(policy, moves, str(proposed_path))
        except (PolicyError, ValueError) as exc:
            print(f"heedful calibrate: the proposed policy does not load, so none was written:\n{exc}", file=sys.stderr)
            return 1
        proposed_path.write_text(proposal, encoding="utf-8")
        proposed_file = str(proposed_path)
        (args.out / "policy.diff").write_text("".join(f"{line}\n" for line in diff_lines), encoding="utf-8")
        print(f"\nproposed policy: {proposed_path} (heedful policy diff {policy.file} {proposed_path}):")
        print("\n".join(f"  {line}" for line in diff_lines))
    else:
        print("\nno rule threshold moves; no policy file proposed")
    moved_labels = {i.name: i.proposed.threshold for i in result.labels if i.moves and i.proposed is not None}
    if moved_labels:
        stored = json.loads((args.model / "thresholds.json").read_text())
        stored["thresholds"] = stored["thresholds"] | moved_labels
        stored["rule"] = f"calibrated by heedful calibrate for {goal} on {result.reviewed} reviewed decisions"
        (args.out / "thresholds.proposed.json").write_text(json.dumps(stored, indent=2) + "\n", encoding="utf-8")
        print(f"proposed model thresholds: {args.out / 'thresholds.proposed.json'} (in a copy of {args.model})")
    (args.out / "summary.json").write_text(json.dumps(as_json(result), indent=2) + "\n", encoding="utf-8")
    (args.out / "report.html").write_text(render(result, proposed_file, diff_lines), encoding="utf-8")
    print(f"report: {args.out / 'report.html'}", file=sys.stderr)
    return 0
