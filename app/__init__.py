"""Heedful: the guard proxy, its policies and its tools."""

import sys
import types

# Two dependencies import an interactive command-line tool from their package __init__ that the proxy never uses:
# httpx its client (rich, pygments; it defines a stub when the import fails) and cel its shell (typer, prompt_toolkit).
# Together about a third of the proxy's start-up; an empty module stands in for each before the package first loads.
for _unused_cli in ("httpx._main", "cel.cli"):
    if _unused_cli.partition(".")[0] not in sys.modules:
        sys.modules.setdefault(_unused_cli, types.ModuleType(_unused_cli))
