"""Structured logging on the standard library: one JSON object per line.

``log.info("call answered", extra={"call_id": ..., "dnis": ...})`` puts the
extra fields into the JSON object, so log lines can be filtered by field.
"""

from __future__ import annotations

import json
import logging
import sys
import time

_STD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def setup_logging(level: str = "INFO", fmt: str = "json", node: str = "") -> None:
    """``node``: the cluster node id (callcenter/cluster), put on every line when set."""
    handler = logging.StreamHandler(sys.stderr)
    if node:
        from callcenter.cluster.node import NodeFilter

        handler.addFilter(NodeFilter(node))
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        tag = f" [{node}]" if node else ""
        handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s{tag} %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
