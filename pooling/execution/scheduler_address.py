"""The address of a Dask distributed scheduler (`--scheduler`), checked before
any work: its form when an ExecutionPlan is made, and, from the command line,
that a Dask scheduler answers there, within a connect and a handshake timeout.

Accepted (docs/formats.md, "Limits"):

- ``tcp://HOST:PORT`` or ``HOST:PORT`` (Dask's default scheme), or either
  without ``:PORT`` (Dask's scheduler port, 8786); HOST a name, an IPv4
  address or a bracketed IPv6 address;
- ``inproc://ID``: a scheduler in this same process (a
  ``LocalCluster(processes=False)`` of the Python API).

Refused, with the reason: ``tls://`` (pooling passes no certificates: use a
tcp address on a trusted network or through an SSH tunnel), ``ucx://`` (needs
UCX-Py and a GPU cluster setup pooling does not make), ``ws://`` and
``wss://`` (websockets: needs the scheduler's HTTP stack and, for wss,
certificates), and anything else.
"""

from __future__ import annotations

import re
import threading

from pooling.errors import InputError

DEFAULT_PORT = 8786
"""Dask's scheduler port, used by Dask itself when an address has none."""
CONNECT_TIMEOUT = 10.0
"""Seconds to open the connection (TCP and Dask's comm handshake): a machine
that is up answers in milliseconds, one that drops packets never does."""
HANDSHAKE_TIMEOUT = 10.0
"""Seconds for the scheduler to answer an identity request once connected: a
port that accepts connections but does not speak Dask (a web server, say)
otherwise kept `Client` waiting for ever."""
REFUSED_SCHEMES = {
    "tls": "TLS needs certificates, which pooling does not pass to Dask; use a tcp:// address on a "
           "trusted network or through an SSH tunnel",
    "ucx": "UCX needs UCX-Py and a cluster set up for it, which pooling does not do; use a tcp:// address",
    "ws": "websocket comms are not supported; use a tcp:// address",
    "wss": "websocket comms are not supported; use a tcp:// address",
}
_HOST = re.compile(r"^(?:[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?|\[[0-9A-Fa-f:.]+\])$")
_reached: set[str] = set()
"""Addresses a scheduler answered at, in this process (checked once per run)."""


def _fail(address: str, why: str) -> InputError:
    return InputError(f"--scheduler {address!r}: {why} (accepted: tcp://HOST:PORT, HOST:PORT or inproc://ID)")


def parse_scheduler_address(address: object) -> str:
    """The address in Dask's form (``tcp://HOST:PORT`` or ``inproc://ID``), or
    an InputError saying what is wrong with it. Pure: nothing is contacted."""
    if not isinstance(address, str) or not address.strip():
        raise InputError(f"scheduler must be the address of a Dask scheduler, got {address!r}")
    text = address.strip()
    scheme, sep, location = text.rpartition("://")
    scheme = scheme.lower() if sep else "tcp"
    if scheme in REFUSED_SCHEMES:
        raise _fail(address, f"{scheme}:// is not supported: {REFUSED_SCHEMES[scheme]}")
    if scheme == "inproc":
        if not location or any(c.isspace() for c in location):
            raise _fail(address, "inproc:// needs the id of a scheduler in this process")
        return f"inproc://{location}"
    if scheme != "tcp":
        raise _fail(address, f"unknown scheme {scheme + '://'!r}")
    host, port = location, str(DEFAULT_PORT)
    match = re.fullmatch(r"(.*):([0-9]+)", location)
    if match and (not location.startswith("[") or match.group(1).endswith("]")):
        host, port = match.group(1), match.group(2)
    elif location.count(":") > 0 and not (location.startswith("[") and location.endswith("]")):
        raise _fail(address, "the port must be a number after the last ':' (IPv6 hosts go in brackets)")
    if not _HOST.fullmatch(host):
        raise _fail(address, f"{host!r} is not a host name or IP address")
    if not 1 <= int(port) <= 65535:
        raise _fail(address, f"port {port} is not in [1, 65535]")
    return f"tcp://{host}:{int(port)}"


def check_scheduler(address: str, connect_timeout: float | None = None,
                    handshake_timeout: float | None = None) -> str:
    """Parse `address` and make sure a Dask scheduler answers there: connect
    within `connect_timeout` seconds, then ask its identity and get the answer
    within `handshake_timeout`. Returns the parsed address; InputError (exit 2
    from the CLI) when Dask is missing or no scheduler answers in time. Done
    once per address and process."""
    parsed = parse_scheduler_address(address)
    if parsed in _reached:
        return parsed
    import asyncio  # here, not at import: 30-90 ms every run without --scheduler would pay

    try:
        from distributed.comm import connect
    except ImportError:
        raise InputError("--scheduler needs Dask distributed: pip install 'pooling[distributed]'") from None
    connect_timeout = CONNECT_TIMEOUT if connect_timeout is None else connect_timeout
    handshake_timeout = HANDSHAKE_TIMEOUT if handshake_timeout is None else handshake_timeout
    outcome: dict[str, object] = {}

    async def probe() -> None:
        stage = "connect"
        try:
            comm = await asyncio.wait_for(connect(parsed, timeout=connect_timeout), connect_timeout)
            try:
                stage = "handshake"
                await asyncio.wait_for(comm.write({"op": "identity", "reply": True}), handshake_timeout)
                outcome["identity"] = await asyncio.wait_for(comm.read(), handshake_timeout)
            finally:
                comm.abort()
        except TimeoutError:
            outcome["error"] = (f"no answer within the {stage} timeout of "
                                f"{connect_timeout if stage == 'connect' else handshake_timeout:g} s")
        except Exception as exc:   # any failure to talk to it is the address's fault, not ours
            outcome["error"] = f"{stage} failed: {type(exc).__name__}: {exc}"

    # In a thread of its own with its own event loop: the caller may be inside
    # one already (a notebook), where asyncio.run would refuse to start.
    thread = threading.Thread(target=lambda: asyncio.run(probe()), name="pooling-scheduler-probe", daemon=True)
    thread.start()
    thread.join(connect_timeout + 2.0 * handshake_timeout + 5.0)
    if thread.is_alive():
        raise _fail(address, "the scheduler did not answer in time")
    if "error" in outcome:
        raise InputError(f"cannot reach a Dask scheduler at {address!r}: {outcome['error']}")
    identity = outcome.get("identity")
    if not isinstance(identity, dict) or identity.get("type") != "Scheduler":
        kind = identity.get("type") if isinstance(identity, dict) else type(identity).__name__
        raise InputError(f"--scheduler {address!r}: what answers there is not a Dask scheduler "
                         f"(it says it is {kind!r})")
    _reached.add(parsed)
    return parsed
