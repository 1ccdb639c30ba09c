# SPDX-License-Identifier: AGPL-3.0-or-later
"""Which asyncio event loop servers (and the benchmarks' clients) run on.

uvloop is optional (``pip install 'voltdb_py[fast]'``). When it is installed, servers use
it unless ``VOLTDB_PY_EVENT_LOOP=asyncio`` is set.
"""

from __future__ import annotations

import asyncio

from voltdb_py.errors import VoltError

#: Environment variable a server reads: "auto" (uvloop when installed), "uvloop" or
#: "asyncio".
EVENT_LOOP_ENV = "VOLTDB_PY_EVENT_LOOP"


def use_event_loop(kind: str = "auto") -> str:
    """Set the event loop policy of this process; return the loop now used.

    :param kind: "auto", "uvloop" or "asyncio".
    :raises VoltError: kind is not one of those, or "uvloop" is asked for and is not
        installed.
    """
    kind = (kind or "auto").strip().lower()
    if kind not in ("auto", "uvloop", "asyncio"):
        raise VoltError(f"{EVENT_LOOP_ENV}={kind!r}: expected auto, uvloop or asyncio")
    if kind == "asyncio":
        asyncio.set_event_loop_policy(None)
        return "asyncio"
    try:
        import uvloop
    except ImportError:
        if kind == "uvloop":
            raise VoltError(f"{EVENT_LOOP_ENV}=uvloop, but uvloop is not installed "
                            "(pip install 'voltdb_py[fast]')") from None
        asyncio.set_event_loop_policy(None)
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"
