"""How often the crisis floor fires, explicit phrases and warning signs apart, on crisis and non-crisis user turns, and
how often the ceiling for grief and idioms (classifiers/crisis_ceiling.py) applies.

The floor (classifiers/crisis_signs.crisis_evidence) puts resources on a reply at once, so its false alarms on
grieving, angry or worried people matter as much as its recall. Pools, each a conversation's last three user turns:
- the project's labelled data (train, dev and test splits), crisis and non-crisis, and the distressed non-crisis among
  them (near-misses);
- the public evaluation corpora's user turns in ../shared/data, and two larger pools of everyday feelings from there:
  every EmpatheticDialogues speaker's turns and ESConv seekers' turns three at a time (no crisis labels: every
  warning-sign hit is listed, to be read);
- the real-register holdout (classifiers/data/holdout), which no pattern was written from: its figures are the claim.

    .venv/bin/python bench/crisis_signs.py [--data-root ../shared/data] [--show 20]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import tarfile
from collections.abc import Sequence
from pathlib import Path

from classifiers.crisis_ceiling import below_resources
from classifiers.crisis_lexicon import RECENT_USER_TURNS, crisis_phrase
from classifiers.crisis_signs import warning_sign
from classifiers.inputs import view_of
from classifiers.training.dataset import DATA_DIR, load_file
from classifiers.training.public_sets import DEFAULT_DATA_ROOT, load_public_sets

Turns = list[str]


def _recent_user_turns(messages: Sequence[dict]) -> Turns:
    """The turns the crisis rules read at run time (classifiers/runtime.py)."""
    return view_of(messages).user_turns[-RECENT_USER_TURNS:]


def _own(files: Sequence[Path]) -> tuple[list[Turns], list[Turns], list[Turns]]:
    crisis, other, near_miss = [], [], []
    for path in files:
        for example in load_file(path):
            turns = _recent_user_turns(example.messages)
            if example.labels["crisis"]:
                crisis.append(turns)
            else:
                other.append(turns)
                if example.labels["distress"]:
                    near_miss.append(turns)
    return crisis, other, near_miss


def _empathetic_dialogues(data_root: Path) -> list[Turns]:
    archive = data_root / "empathetic_intents" / "empatheticdialogues_annotated.tar.gz"
    if not archive.exists():
        return []
    conversations: dict[str, Turns] = {}
    with tarfile.open(archive) as tar:
        for member in tar:
            if not member.name.endswith(".csv") or (raw := tar.extractfile(member)) is None:
                continue
            for row in csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8", errors="replace")):
                if row["Type"] == "utterance" and row["Actor"] == "speaker":
                    conversations.setdefault(row["Dialog_ID"], []).append(row["Text"].replace("_comma_", ","))
    return [turns[-3:] for turns in conversations.values()]


def _esconv_seekers(data_root: Path) -> list[Turns]:
    path = data_root / "esconv" / "hf_train.json.gz"
    if not path.exists():
        return []
    pools = []
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            dialog = record.get("dialog") or []
            seeker = [u["text"] for u in dialog if u.get("speaker") == "usr"]
            pools += [seeker[i : i + 3] for i in range(0, len(seeker), 3)]
    return pools


def _row(name: str, pool: list[Turns]) -> tuple[str, list[tuple[str, Turns]]]:
    phrases, sign_only, capped = 0, [], {"grief for another": 0, "an idiom": 0}
    for turns in pool:
        if any(crisis_phrase(turn) for turn in turns):
            phrases += 1
        elif (sign := warning_sign(turns)) is not None:
            sign_only.append((sign, turns))
        elif (reason := below_resources(turns)) is not None:
            capped[reason] += 1
    floored = phrases + len(sign_only)
    rate = f"{floored / len(pool):.1%}" if pool else "-"
    return (f"| {name} | {len(pool)} | {phrases} | {len(sign_only)} | {floored} ({rate}) | {capped['grief for another']} / "
            f"{capped['an idiom']} |", sign_only)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT)
    parser.add_argument("--show", type=int, default=20, help="sign-only hits to list for non-crisis and public pools")
    args = parser.parse_args()

    own_files = [*sorted((DATA_DIR / "train").glob("*.jsonl")), DATA_DIR / "dev" / "written.jsonl", DATA_DIR / "test" / "test.jsonl"]
    crisis, other, near_miss = _own(own_files)
    held_crisis, held_other, held_near_miss = _own([DATA_DIR / "holdout" / "holdout.jsonl"])
    public = list({tuple(_recent_user_turns(i.messages)): None for s in load_public_sets(args.data_root) for i in s.items})

    print("| pool | n | explicit phrase | warning sign only | floored | capped: grief for another / idiom |\n|---|---|---|---|---|---|")
    listed = []
    for name, pool in (("own data, crisis", crisis), ("own data, not crisis", other), ("own data, near-misses", near_miss),
                       ("public corpora, user turns (unlabelled)", [list(t) for t in public]),
                       ("EmpatheticDialogues speakers (unlabelled)", _empathetic_dialogues(args.data_root)),
                       ("ESConv seekers (unlabelled)", _esconv_seekers(args.data_root)),
                       ("holdout, crisis", held_crisis), ("holdout, not crisis", held_other),
                       ("holdout, near-misses", held_near_miss)):
        line, sign_only = _row(name, pool)
        print(line)
        if not name.endswith(", crisis"):
            listed += [(name, s, t) for s, t in sign_only[: args.show]]
    print("\nWarning-sign-only hits outside the crisis pools (read each):")
    for name, sign, turns in listed:
        print(f"- {name}: {sign} | {' || '.join(turns)[-200:]!r}")


if __name__ == "__main__":
    main()
