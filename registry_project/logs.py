"""The service's log lines: one formatter for Django and the web server, and lines that no client can forge.

Production writes one JSON object a line (``LOG_FORMAT=json``) for log shippers, development readable text. Either
way a client's characters reach log messages (a percent-decoded path, a Host header, a model's name), and a line
break among them would let a client write a line of its own: an ``{"level": "CRITICAL", ...}`` that a shipper takes
for ours. The JSON formatter escapes every control character (``json.dumps`` with ``ensure_ascii``); the text
formatter escapes them in the record's line and indents the lines of a traceback below it, so that a line at the
margin is always the start of a record.

granian configures its own loggers (``_granian``, ``granian.access``) in its main process, and in each worker before
it loads the application, from ``server_logging.json`` (its ``--log-config``, given by registry_project/web.py),
which names the same formatter; Django's ``LOGGING`` (settings.py) configures everything else.
"""

from __future__ import annotations

import logging
import logging.config
import re
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from pythonjsonlogger.json import JsonFormatter

from registry_project.env import env_bool, env_str

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
FORMATS = ("json", "text")
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s"
JSON_FIELD_NAMES = {"asctime": "time", "levelname": "level", "name": "logger"}
TEXT_LINE = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
# Before each line of a traceback or a stack in text: whatever a client put in an exception's message stays off
# the margin, where only a record's first line starts.
TEXT_CONTINUATION = "    "
# C0 and C1 controls, DEL, and the Unicode line and paragraph separators: what starts a new line for some reader
# (a file, str.splitlines, JavaScript) or moves a terminal's cursor (ESC and CSI sequences).
_CONTROL_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def level_from_environment() -> str:
    level = (env_str("LOG_LEVEL", "info") or "info").upper()
    if level not in LEVELS:
        raise ImproperlyConfigured(f"LOG_LEVEL must be one of debug, info, warning, error, critical; got {level!r}.")
    return level


def format_from_environment(*, debug: bool) -> str:
    chosen = env_str("LOG_FORMAT", "text" if debug else "json") or "json"
    if chosen not in FORMATS:
        raise ImproperlyConfigured(f"LOG_FORMAT must be json or text; got {chosen!r}.")
    return chosen


def escape_control_characters(text: str) -> str:
    """``text`` with each control character written as its Python escape (``\\n``, ``\\x1b``, ``\\u2028``)."""
    return _CONTROL_CHARACTERS.sub(lambda found: found[0].encode("unicode_escape").decode("ascii"), text)


class EscapingTextFormatter(logging.Formatter):
    """``TEXT_LINE`` with control characters escaped; a traceback's lines below it, escaped and indented."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return escape_control_characters(super().formatMessage(record))

    def format(self, record: logging.LogRecord) -> str:
        # The record's own line has no line break left (formatMessage): what follows the first one is the
        # exception's and the stack's text, which may have been set by a filter (the credentials' redaction).
        line, _, details = super().format(record).partition("\n")
        if not details:
            return line
        return "\n".join([line, *(TEXT_CONTINUATION + escape_control_characters(text) for text in details.split("\n"))])


def line_formatter(log_format: str | None = None) -> logging.Formatter:
    """The formatter of every handler: ``log_format``, or the environment's ``LOG_FORMAT`` (for the web server)."""
    chosen = log_format or format_from_environment(debug=env_bool("DEBUG", False))
    if chosen == "json":
        return JsonFormatter(JSON_FIELDS, rename_fields=JSON_FIELD_NAMES)
    return EscapingTextFormatter(TEXT_LINE)


class DisallowedHostAsWarning(logging.Filter):
    """Django's ERROR with a traceback for a Host outside ALLOWED_HOSTS, as one WARNING line without it.

    Any client can send any Host header (scanners do), and is answered 400: no fault of the service's, and an ERROR
    with a traceback for each would bury the real ones and page someone.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        record.levelno, record.levelname = logging.WARNING, logging.getLevelName(logging.WARNING)
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        # The logger let the ERROR through; a WARNING must pass LOG_LEVEL too.
        return logging.getLogger(record.name).isEnabledFor(logging.WARNING)


def configure(config: dict[str, Any]) -> None:
    """settings.LOGGING_CONFIG: ``LOGGING``, and Python's warnings through it rather than raw on stderr."""
    logging.config.dictConfig(config)
    logging.captureWarnings(True)
