"""Structured JSON logs; anything that looks like a credential is redacted before it is written."""

from __future__ import annotations

import json
import logging
import re
import sys
import time

_SECRET = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._\-]+|\b(sk-[A-Za-z0-9_\-]{6,})|(authorization|api[_-]?key)([\"']?\s*[:=]\s*[\"']?)[^\s,\"'}]+")
# uvicorn adds `color_message` (the message with ANSI colour codes) for its own console format; JSON logs drop it.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime", "color_message"}


# Credentials inside URLs: user:password@ and secret-looking query parameters (?key=, &token=, ...).
_URL_USERINFO = re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://)[^/\s@:]+:[^/\s@]*@")
_URL_QUERY_SECRET = re.compile(r"(?i)([?&](?:api[_-]?key|key|token|access_token|secret|password|sig|signature)=)[^&\s\"']+")


def redact(text: str) -> str:
    text = _URL_QUERY_SECRET.sub(r"\1[redacted]", _URL_USERINFO.sub(r"\1[redacted]@", text))
    return _SECRET.sub(lambda m: (m.group(1) or "") + "[redacted]" if m.group(1) or m.group(2)
                       else f"{m.group(3)}{m.group(4)}[redacted]", text)


class RedactingFilter(logging.Filter):
    """Redacts a library's log lines before any handler sees them (httpx logs each request's full URL at INFO)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def redact_http_client_logs() -> None:
    """Install the filter on the HTTP client's loggers once, whoever configured logging (tests, embedders)."""
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(RedactingFilter())


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {"ts": round(time.time(), 3), "level": record.levelname.lower(), "logger": record.name,
                   "message": record.getMessage()}
        payload.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return redact(json.dumps(payload, default=str))


def configure(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
