"""Heedful: the guard proxy, its policies and its tools."""

import sys
import types

# httpx's package __init__ imports its command-line client (rich, pygments: about a tenth of the proxy's start-up) unless
# that import fails, in which case it defines a stub. Nothing here uses the httpx command, so it is left out on purpose.
if "httpx" not in sys.modules:
    sys.modules.setdefault("httpx._main", types.ModuleType("httpx._main"))
