"""Run `heedful serve` with a probe thread that logs where the process's memory is, every 30 s, as JSON lines.

    python bench/soak_probe.py OUT.jsonl serve --port 8080 ...      (bench/soak.py --probe starts it this way)

Each line: RSS and anonymous memory (/proc/self/smaps_rollup), glibc's mallinfo2 (bytes in use and free inside malloc's
arenas, bytes in mmapped chunks), Python's allocated blocks and, with SOAK_PROBE_TRACE=1, the Python allocations made
since tracing started after the 60 s warm-up that are still alive, and the source lines that hold most of them. Diagnostics only: not used by the server.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import sys
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def _mallinfo() -> dict[str, float]:
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.mallinfo2.restype = MallInfo2
    info = libc.mallinfo2()
    mib = 2**20
    return {"malloc_heap_mib": info.arena / mib, "malloc_mmapped_mib": info.hblkhd / mib,
            "malloc_in_use_mib": info.uordblks / mib, "malloc_free_mib": info.fordblks / mib}


def _smaps() -> dict[str, float]:
    fields = {}
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines()[1:]:
        name, value = line.split(":", 1)
        fields[name] = int(value.split()[0]) / 1024
    return {"rss_mib": fields["Rss"], "anonymous_mib": fields["Anonymous"]}


def _probe(out: Path, every_s: float, trace: bool) -> None:
    started, first = time.monotonic(), None
    while True:
        row: dict[str, Any] = {"seconds": round(time.monotonic() - started), **_smaps(), **_mallinfo(),
                               "python_blocks": sys.getallocatedblocks(),
                               "threads": threading.active_count()}
        if trace and not tracemalloc.is_tracing() and row["seconds"] >= 60:
            tracemalloc.start(8)  # after the warm-up: startup is not slowed, and what is traced is what came after
        if tracemalloc.is_tracing():
            snapshot = tracemalloc.take_snapshot()
            row["traced_mib"] = tracemalloc.get_traced_memory()[0] / 2**20
            if first is None:
                first = snapshot
            else:
                row["grew"] = [f"{stat.size_diff / 1024:+.0f} KiB {stat.count_diff:+d} {stat.traceback.format()[-1].strip()} <- "
                               + " <- ".join(f"{f.filename.rsplit('/', 2)[-1]}:{f.lineno}" for f in list(stat.traceback)[::-1][1:5])
                               for stat in snapshot.compare_to(first, "traceback")[:10]]
        with out.open("a") as stream:
            stream.write(json.dumps(row) + "\n")
        time.sleep(every_s)


def main() -> None:
    out = Path(sys.argv[1])
    out.write_text("")
    threading.Thread(target=_probe, args=(out, 30.0, os.environ.get("SOAK_PROBE_TRACE") == "1"), daemon=True, name="soak-probe").start()
    from app.cli import main as cli_main

    cli_main(sys.argv[2:])


if __name__ == "__main__":
    main()
