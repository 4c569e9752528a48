"""A local emulator of the upstream mobile status API (no account needed).

The sandbox speaks the upstream's wire format over real HTTP on 127.0.0.1,
answers each number deterministically, and can produce every gateway error
and transport fault a client has to survive::

    from mobilestatus.sandbox import Sandbox, SCENARIOS

    with Sandbox() as sb:
        sb.base_url                     # "http://127.0.0.1:PORT"
        sb.appcode                      # the AppCode it accepts
        sb.url(latency=0.2)             # a base_url whose answers wait 200 ms
        sb.url(fault="stall_body")      # a base_url whose answers stall
        SCENARIOS["quota_exhausted"]    # a number answered 403 Quota Exhausted
        sb.count("13800138000"), sb.total, sb.connections, sb.reset()

The rules (which number gets which answer) and every fault mode are listed in
``docs/sandbox.md``.  ``python -m mobilestatus sandbox`` runs one in the
foreground (see :func:`serve`); the pytest plugin gives the fixture
``mobilestatus_sandbox``.

This package never imports the client or the C core: it talks to them only
over HTTP, exactly like the real upstream.
"""

from __future__ import annotations

from ._scenarios import FAULTS, SCENARIOS
from ._server import RecordedRequest, Sandbox, serve

__all__ = ["FAULTS", "SCENARIOS", "RecordedRequest", "Sandbox", "serve"]
