"""Evaluation-only sets built from the public corpora in ../shared/data (see docs/evaluation-mapping.md).

These corpora are non-commercial or unlicensed: they are read at run time, never copied into the repo and NEVER used for
training. Each loader maps one corpus to (messages, reply, y) items by a fixed rule; a loader whose folder is missing is
skipped, so `load_public_sets` returns [] where ../shared/data is absent.

    python -m classifiers.training.public_sets [DATA_ROOT]   # prints per-set counts
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import random
import re
import sys
import tarfile
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DATA_ROOT = Path(__file__).resolve().parents[2].parent / "shared" / "data"

# ESConv: the "early window" is the first ESCONV_EARLY_BLOCKS supporter blocks (runs of consecutive supporter turns).
ESCONV_EARLY_BLOCKS = 5
# AnnoMI transcripts run to 100+ utterances; keep the last N merged messages before the judged turn.
ANNOMI_MAX_CONTEXT_MESSAGES = 20
# EmpatheticDialogues situation emotions (gold, 32 classes) counted as negative emotions.
ED_NEGATIVE_EMOTIONS = frozenset(
    "afraid angry annoyed anxious apprehensive ashamed devastated disappointed disgusted embarrassed furious guilty "
    "jealous lonely sad terrified".split()
)


@dataclass(frozen=True)
class EvalItem:
    messages: list[dict]  # OpenAI chat messages before the reply; the last one has role "user"
    reply: str  # the supporter/therapist/listener turn being judged
    y: int  # 1 = positive for the label, 0 = negative


@dataclass(frozen=True)
class EvalSet:
    name: str  # e.g. "esconv_rushed_advice"
    label: str  # "rushed_advice" | "pacification" | "sycophancy" | "all" (false_flag sets)
    kind: str  # "auroc" (both classes) or "false_flag" (all y=0: high-quality replies; report the flag rate)
    source: str  # dataset folder name under data_root
    items: list[EvalItem]

    def counts(self) -> dict[str, int]:
        pos = sum(i.y for i in self.items)
        return {"n": len(self.items), "pos": pos, "neg": len(self.items) - pos}


# ---------------------------------------------------------------------------------------------------------- helpers


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", (text or "").replace("_comma_", ",")).strip()


def _conversation(turns: Iterable[tuple[str, str]]) -> list[dict]:
    """(role, text) turns -> OpenAI messages, merging consecutive same-role turns (joined with a space)."""
    messages: list[dict] = []
    for role, text in turns:
        text = _clean(text)
        if not text:
            continue
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"] += " " + text
        else:
            messages.append({"role": role, "content": text})
    return messages


def _item(messages: list[dict], reply: str, y: int) -> EvalItem | None:
    reply = _clean(reply)
    if not reply or not messages or messages[-1]["role"] != "user":
        return None
    return EvalItem(messages=messages, reply=reply, y=y)


def _dedupe(items: Iterable[EvalItem | None]) -> list[EvalItem]:
    """Drop None and exact duplicates (same context and reply); the first occurrence wins."""
    seen: set[str] = set()
    out: list[EvalItem] = []
    for it in items:
        if it is None:
            continue
        key = json.dumps([it.messages, it.reply], sort_keys=True)
        if key not in seen:
            seen.add(key)
            out.append(it)
    return out


def _sample(items: list[EvalItem], max_items: int, seed: int, name: str) -> list[EvalItem]:
    """Deterministic down-sampling to max_items, stratified so the minority class keeps up to half the budget."""
    if len(items) <= max_items:
        return items
    rng = random.Random(f"{seed}:{name}")
    pos = [i for i, it in enumerate(items) if it.y == 1]
    neg = [i for i, it in enumerate(items) if it.y == 0]
    if not pos or not neg:
        keep = rng.sample(range(len(items)), max_items)
    else:
        small, big = (pos, neg) if len(pos) <= len(neg) else (neg, pos)
        n_small = min(len(small), max(max_items // 2, max_items - len(big)))
        keep = rng.sample(small, n_small) + rng.sample(big, max_items - n_small)
    return [items[i] for i in sorted(keep)]


def _read_csv(path: Path) -> list[dict[str, str]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


# ---------------------------------------------------------------------------------------------------------- loaders
# Each loader returns (name, label, kind, items) or None when its files are absent.


def _esconv(root: Path) -> list[EvalItem] | None:
    folder = root / "esconv"
    split = next((folder / f for f in ("hf_valid.json", "hf_test.json") if (folder / f).exists()), None)
    if split is None:
        return None
    reflective = {"Reflection of feelings", "Restatement or Paraphrasing"}
    items: list[EvalItem | None] = []
    with open(split, encoding="utf-8") as f:
        dialogs = [json.loads(line) for line in f if line.strip()]
    for d in dialogs:
        # Blocks of consecutive same-speaker utterances; a supporter block is judged as one reply.
        blocks: list[tuple[str, list[dict]]] = []
        for t in d["dialog"]:
            if blocks and blocks[-1][0] == t["speaker"]:
                blocks[-1][1].append(t)
            else:
                blocks.append((t["speaker"], [t]))
        reflected = False
        n_sys = 0
        for bi, (speaker, turns) in enumerate(blocks):
            if speaker != "sys":
                continue
            n_sys += 1
            if n_sys > ESCONV_EARLY_BLOCKS:
                break
            strategies = {t.get("strategy") for t in turns}
            y = None
            if "Providing Suggestions" in strategies and not reflected and not (strategies & reflective):
                y = 1
            elif strategies <= {"Question", "Reflection of feelings"}:
                y = 0
            if y is not None:
                context = [
                    ("user" if sp == "usr" else "assistant", t["text"]) for sp, ts in blocks[:bi] for t in ts
                ]
                items.append(_item(_conversation(context), " ".join(t["text"] for t in turns), y))
            reflected = reflected or bool(strategies & reflective)
    return _dedupe(items)


MI_POSITIVE = {"Advise without Permission"}
MI_NEGATIVE = {"Advise with Permission", "Simple Reflection", "Complex Reflection", "Open Question", "Closed Question"}


def _mi_welivita(root: Path) -> list[EvalItem] | None:
    path = root / "mi_strategy_welivita" / "CC_Augmented.csv.gz"
    if not path.exists():
        return None
    rows = _read_csv(path)
    posts: dict[str, str] = {}
    for r in rows:
        if r["author"] == "speaker":
            title, text = _clean(r["title"]), _clean(r["text"])
            posts[r["dialog_id"]] = text if not title or text.startswith(title) else f"{title}\n\n{text}"
    items: list[EvalItem | None] = []
    for r in rows:
        label = (r["Union (without disambiguities)"] or "").strip()
        if r["author"] != "listener" or r["dialog_id"] not in posts or label not in MI_POSITIVE | MI_NEGATIVE:
            continue
        messages = [{"role": "user", "content": posts[r["dialog_id"]]}]
        items.append(_item(messages, r["text"], int(label in MI_POSITIVE)))
    return _dedupe(items)


def _annomi_category(r: dict[str, str]) -> int | None:
    main = r["main_therapist_behaviour"]
    if main == "therapist_input" and r["therapist_input_subtype"] == "advice":
        return 1
    if r["therapist_input_exists"] == "True":
        return None
    if (main == "reflection" and r["reflection_subtype"] == "complex") or (
        main == "question" and r["question_subtype"] == "open"
    ):
        return 0
    return None


def _annomi(root: Path) -> list[EvalItem] | None:
    path = root / "annomi" / "AnnoMI-full.csv.gz"
    if not path.exists():
        return None
    by_utt: dict[tuple[str, int], list[dict[str, str]]] = defaultdict(list)
    for r in _read_csv(path):
        by_utt[(r["transcript_id"], int(r["utterance_id"]))].append(r)
    transcripts: dict[str, list[tuple[int, list[dict[str, str]]]]] = defaultdict(list)
    for (tid, uid), annotations in by_utt.items():
        transcripts[tid].append((uid, annotations))
    items: list[EvalItem | None] = []
    for tid in sorted(transcripts, key=int):
        utts = sorted(transcripts[tid], key=lambda u: u[0])
        for k, (_, annotations) in enumerate(utts):
            first = annotations[0]
            if first["interlocutor"] != "therapist" or k == 0 or utts[k - 1][1][0]["interlocutor"] != "client":
                continue
            # Multiply-annotated transcripts: strict majority of the annotators' categories, else skip.
            votes = Counter(_annomi_category(a) for a in annotations)
            y, n = votes.most_common(1)[0]
            if y is None or n * 2 <= len(annotations):
                continue
            context = [
                ("user" if u[1][0]["interlocutor"] == "client" else "assistant", u[1][0]["utterance_text"])
                for u in utts[:k]
            ]
            messages = _conversation(context)[-ANNOMI_MAX_CONTEXT_MESSAGES:]
            items.append(_item(messages, first["utterance_text"], y))
    return _dedupe(items)


def _pair(root: Path) -> list[EvalItem] | None:
    path = root / "pair_reflections" / "pair_data.csv"
    if not path.exists():
        return None
    items = []
    for r in _read_csv(path):
        messages = _conversation([("user", r["prompt"])])
        items.extend(_item(messages, r[k], 0) for k in ("hq1", "hq2"))
    return _dedupe(items)


def _epitome(root: Path) -> list[EvalItem] | None:
    path = root / "epitome" / "explorations-reddit.csv.gz"
    if not path.exists():
        return None
    items = [
        _item(_conversation([("user", r["seeker_post"])]), r["response_post"], 0)
        for r in _read_csv(path)
        if r["level"].strip() == "2"
    ]
    return _dedupe(items)


def _iter_ed_dialogs(path: Path) -> Iterator[list[dict[str, str]]]:
    """EmpatheticIntents annotated csvs (one per situation emotion) -> rows grouped by Dialog_ID, in file order."""
    with tarfile.open(path) as tar:
        members = sorted((m for m in tar.getmembers() if m.isfile() and m.name.endswith(".csv")), key=lambda m: m.name)
        for m in members:
            f = tar.extractfile(m)
            assert f is not None
            groups: dict[str, list[dict[str, str]]] = {}
            for r in csv.DictReader(io.TextIOWrapper(f, encoding="utf-8", newline="")):
                groups.setdefault(r["Dialog_ID"], []).append(r)
            yield from groups.values()


def _empathetic_intents(root: Path) -> list[EvalItem] | None:
    path = root / "empathetic_intents" / "empatheticdialogues_annotated.tar.gz"
    if not path.exists():
        return None
    items: list[EvalItem | None] = []
    for rows in _iter_ed_dialogs(path):
        situation = next((r for r in rows if r["Type"] == "situation"), None)
        if situation is None or situation["Label"].strip() not in ED_NEGATIVE_EMOTIONS:
            continue
        utts = [r for r in rows if r["Type"] == "utterance"]
        # Judge only the FIRST listener turn: the speaker has disclosed, nothing has been explored yet.
        k = next((i for i, r in enumerate(utts) if r["Actor"] == "listener"), None)
        if k is None or k == 0:
            continue
        intent = utts[k]["Label"].strip()
        y = 1 if intent in ("consoling", "encouraging") else 0 if intent == "questioning" else None
        if y is None:
            continue
        messages = _conversation(("user", r["Text"]) for r in utts[:k])
        items.append(_item(messages, utts[k]["Text"], y))
    return _dedupe(items)


_LOADERS: list[tuple[str, str, str, str, Callable[[Path], list[EvalItem] | None]]] = [
    # name, label, kind, source folder, loader
    ("esconv_rushed_advice", "rushed_advice", "auroc", "esconv", _esconv),
    ("mi_strategy_welivita_rushed_advice", "rushed_advice", "auroc", "mi_strategy_welivita", _mi_welivita),
    ("annomi_rushed_advice", "rushed_advice", "auroc", "annomi", _annomi),
    ("empathetic_intents_pacification", "pacification", "auroc", "empathetic_intents", _empathetic_intents),
    ("pair_reflections_false_flag", "all", "false_flag", "pair_reflections", _pair),
    ("epitome_explorations_false_flag", "all", "false_flag", "epitome", _epitome),
]


def load_public_sets(
    data_root: Path = DEFAULT_DATA_ROOT, max_items_per_set: int = 1500, seed: int = 13
) -> list[EvalSet]:
    """The evaluation sets whose files exist under data_root, each deterministically sampled to <= max_items_per_set."""
    data_root = Path(data_root)
    if not data_root.is_dir():
        return []
    sets = []
    for name, label, kind, source, loader in _LOADERS:
        items = loader(data_root)
        if not items:
            continue
        sets.append(EvalSet(name, label, kind, source, _sample(items, max_items_per_set, seed, name)))
    return sets


def main(argv: list[str]) -> int:
    root = Path(argv[1]) if len(argv) > 1 else DEFAULT_DATA_ROOT
    sets = load_public_sets(root)
    if not sets:
        print(f"no public data under {root}; nothing to load")
        return 0
    print(f"{'set':40} {'label':14} {'kind':10} {'n':>6} {'pos':>6} {'neg':>6}")
    for s in sets:
        c = s.counts()
        print(f"{s.name:40} {s.label:14} {s.kind:10} {c['n']:>6} {c['pos']:>6} {c['neg']:>6}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
