#!/usr/bin/python3
"""Drive one NETCONF session with ncclient (a real manager) from a JSON job.

Run with Debian's /usr/bin/python3 (python3-ncclient). The job comes on stdin (or as the
path in argv[1]):

  {"host": "127.0.0.1", "port": 830, "username": "root",
   "password": null, "key_filename": null, "timeout": 20,
   "end": "drop" | "close-session",          # what to do after the steps (default drop)
   "stop_on_error": false,
   "steps": [{"op": "get-config", "source": "running", "filter": "<interfaces .../>"},
             {"op": "edit-config", "target": "candidate", "config": "<config ...>...</config>"},
             {"op": "lock", "target": "candidate", "retry_seconds": 10},
             {"op": "unlock", "target": "candidate"},
             {"op": "commit"}, {"op": "discard-changes"}, {"op": "validate", "source": "candidate"},
             {"op": "get", "filter": "..."}, {"op": "rpc", "xml": "<get-config>...</get-config>"},
             {"op": "close-session"}, {"op": "sleep", "seconds": 0.5}]}

It prints one JSON object on stdout:

  {"ok": bool, "connected": bool, "connect_ms": float, "session_id": str, "base": "1.1",
   "server_capabilities": [...], "steps": [{"op", "ok", "ms", "reply" | "error"}],
   "error": {"kind", "message"}, "channel_stderr": str}

Progress goes to stderr as it happens, so a caller can act while the session is open:
"NC_CONNECTED <session-id>" and "NC_STEP <index> <op> ok|failed".

Exit codes: 0 every step ok; 1 a step failed; 2 authentication failed; 3 any other failure
to establish the session (TCP, SSH negotiation, subsystem refused, hello). On 2 and 3 one
line "NC_AUTH_FAILED: ..." / "NC_CONNECT_FAILED: <kind>: ..." goes to stderr.
"""
import json
import logging
import os
import sys
import time

from lxml import etree
from ncclient import manager, transport
from ncclient.operations import RPCError, TimeoutExpiredError
from ncclient.transport.errors import AuthenticationError, SessionCloseError, SSHError, TransportError
from ncclient.xml_ import to_ele


def ms_since(t0):
    return round((time.monotonic() - t0) * 1000.0, 1)


def xml_of(reply):
    if reply is None:
        return None
    x = getattr(reply, "xml", None)
    if isinstance(x, str):
        return x
    if x is not None:
        return etree.tostring(x, encoding="unicode")
    return str(reply)


def channel_stderr(session):
    """What the server wrote on the channel's stderr (a gateway's one-line reason)."""
    ch = getattr(session, "_channel", None)
    if ch is None:
        return ""
    out = b""
    try:
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            if ch.recv_stderr_ready():
                out += ch.recv_stderr(65536)
            elif ch.exit_status_ready() or ch.closed:
                if not ch.recv_stderr_ready():
                    break
            else:
                time.sleep(0.02)
    except Exception:  # noqa: BLE001 - best effort diagnostics
        pass
    return out.decode("utf-8", "replace")


def classify_connect_error(exc):
    msg = str(exc) or exc.__class__.__name__
    if isinstance(exc, AuthenticationError):
        return "auth", msg
    if isinstance(exc, SSHError):
        if msg.startswith("Could not open socket"):
            return "tcp", msg
        if msg.startswith("Negotiation failed"):
            return "ssh-negotiation", msg
        if "subsystem" in msg:
            return "subsystem", msg
        return "ssh", msg
    if isinstance(exc, SessionCloseError):
        return "session-closed", msg
    if isinstance(exc, TransportError):
        return "transport", msg
    if isinstance(exc, OSError):
        return "tcp", msg
    if exc.__class__.__name__ == "SessionError":  # "Capability exchange timed out"
        return "hello", msg
    return "other", "%s: %s" % (exc.__class__.__name__, msg)


def connect(job):
    """manager.connect_ssh, but keeping the session so the channel's stderr can be read."""
    handler = manager.make_device_handler(None)
    session = transport.SSHSession(handler)
    kw = dict(
        host=job["host"],
        port=int(job.get("port", 830)),
        username=job["username"],
        password=job.get("password"),
        key_filename=job.get("key_filename"),
        hostkey_verify=False,
        allow_agent=False,
        look_for_keys=False,
        timeout=job.get("timeout", 20),
    )
    try:
        session.connect(**kw)
    except BaseException as exc:
        stderr = channel_stderr(session)
        try:
            if session.transport:
                session.close()
        except Exception:  # noqa: BLE001
            pass
        raise ConnectFailed(exc, stderr) from exc
    return manager.Manager(session, handler, timeout=job.get("timeout", 20))


class ConnectFailed(Exception):
    def __init__(self, exc, stderr):
        super().__init__(str(exc))
        self.exc = exc
        self.stderr = stderr


def run_step(m, step):
    op = step["op"]
    if op == "get-config":
        flt = ("subtree", step["filter"]) if step.get("filter") else None
        return m.get_config(source=step.get("source", "running"), filter=flt)
    if op == "get":
        flt = ("subtree", step["filter"]) if step.get("filter") else None
        return m.get(filter=flt)
    if op == "edit-config":
        kw = {}
        if step.get("default_operation"):
            kw["default_operation"] = step["default_operation"]
        return m.edit_config(target=step.get("target", "candidate"), config=step["config"], **kw)
    if op == "lock":
        # Tests share one netconfd: another session may hold the lock, or have a dirty
        # candidate for a moment. retry_seconds waits for it instead of failing at once.
        deadline = time.monotonic() + float(step.get("retry_seconds", 0))
        while True:
            try:
                return m.lock(target=step.get("target", "candidate"))
            except RPCError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.1)
    if op == "unlock":
        return m.unlock(target=step.get("target", "candidate"))
    if op == "commit":
        return m.commit()
    if op == "discard-changes":
        return m.discard_changes()
    if op == "validate":
        return m.validate(source=step.get("source", "candidate"))
    if op == "rpc":
        return m.dispatch(to_ele(step["xml"]))
    if op == "close-session":
        return m.close_session()
    if op == "sleep":
        time.sleep(float(step.get("seconds", 1)))
        return None
    raise ValueError("unknown step op %r" % op)


def main():
    logging.basicConfig(level=logging.DEBUG if os.environ.get("NC_CLIENT_DEBUG") else logging.CRITICAL)
    raw = open(sys.argv[1]).read() if len(sys.argv) > 1 else sys.stdin.read()
    job = json.loads(raw)
    out = {"ok": False, "connected": False, "steps": [], "server_capabilities": []}

    t0 = time.monotonic()
    try:
        m = connect(job)
    except ConnectFailed as cf:
        kind, msg = classify_connect_error(cf.exc)
        msg = " ".join(msg.split())
        out.update(connect_ms=ms_since(t0), error={"kind": kind, "message": msg}, channel_stderr=cf.stderr)
        print(json.dumps(out), flush=True)
        if kind == "auth":
            print("NC_AUTH_FAILED: %s" % msg, file=sys.stderr, flush=True)
            os._exit(2)
        print("NC_CONNECT_FAILED: %s: %s" % (kind, msg), file=sys.stderr, flush=True)
        os._exit(3)

    session = m._session
    out.update(
        connected=True,
        connect_ms=ms_since(t0),
        session_id=m.session_id,
        base="1.1" if getattr(session, "_base", None) == transport.NetconfBase.BASE_11 else "1.0",
        server_capabilities=list(m.server_capabilities),
    )

    print("NC_CONNECTED %s" % m.session_id, file=sys.stderr, flush=True)

    all_ok = True
    closed = False
    for index, step in enumerate(job.get("steps", [])):
        st = {"op": step["op"]}
        t1 = time.monotonic()
        try:
            reply = run_step(m, step)
            st.update(ok=True, reply=xml_of(reply))
            if step["op"] == "close-session":
                closed = True
        except RPCError as e:
            st.update(ok=False, error={"kind": "rpc-error", "tag": getattr(e, "_tag", None),
                                       "type": getattr(e, "_type", None),
                                       "message": getattr(e, "_message", None) or str(e),
                                       "xml": xml_of(e)})
        except TimeoutExpiredError as e:
            st.update(ok=False, error={"kind": "timeout", "message": str(e)})
        except TransportError as e:
            st.update(ok=False, error={"kind": "transport", "message": str(e) or e.__class__.__name__})
        except Exception as e:  # noqa: BLE001
            st.update(ok=False, error={"kind": "other", "message": "%s: %s" % (e.__class__.__name__, e)})
        st["ms"] = ms_since(t1)
        out["steps"].append(st)
        print("NC_STEP %d %s %s" % (index, step["op"], "ok" if st["ok"] else "failed"), file=sys.stderr, flush=True)
        if not st["ok"]:
            all_ok = False
            if job.get("stop_on_error") or st["error"]["kind"] == "transport":
                break

    try:
        if not closed and session.connected and job.get("end", "drop") == "close-session":
            m.close_session()
        else:
            session.close()
    except Exception:  # noqa: BLE001
        pass
    out["channel_stderr"] = ""
    out["ok"] = all_ok
    print(json.dumps(out), flush=True)
    os._exit(0 if all_ok else 1)


if __name__ == "__main__":
    main()
