"""Secrets never reach a message: ``mask_url`` hides the password of any URL, ``host_only`` keeps just the
scheme and host of a webhook (whose path often is the token), ``mask_urls_in`` does it to every URL in a text.

Written without a strict URL parser on purpose: a URL that a parser rejects (an unencoded ``/`` or ``@`` in the
password) is exactly the one whose message must still not show the password.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import urlsplit

MASK = "***"

# scheme://user:password@host... ; the password runs to the last '@' that is followed by a host (no @ / ? #) and
# then the end, a path, a query or a fragment, so an unencoded '@' or '/' inside it is still covered. An '@' in a
# path or query after a password masks more than needed, never less.
_USERINFO = re.compile(
    r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<user>[^:/?#@]*):(?P<password>.+)@(?P<host>[^@/?#]*)"
    r"(?P<tail>[/?#].*)?$",
    re.S,
)
# Query parameters whose value is a credential (libpq's password=, sslpassword=, webhook ?token=, ?api_key=, ?sig=).
_SECRET_PARAM = re.compile(
    r"(?P<name>[?&;][^=&#;]*?(?:pass|pwd|token|secret|key|sig|auth|credential)[^=&#;]*=)(?P<value>[^&#;]*)",
    re.I,
)
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>]+")


def mask_url(url: str) -> str:
    """``url`` with the password of its user info and the values of credential query parameters replaced by ***;
    anything without them (a Kafka bootstrap list, a SQLite path) is returned unchanged."""
    match = _USERINFO.match(url)
    if match and match["password"]:
        url = f"{match['scheme']}{match['user']}:{MASK}@{match['host']}{match['tail'] or ''}"
    return _SECRET_PARAM.sub(lambda m: m["name"] + (MASK if m["value"] else ""), url)


def host_only(url: str) -> str:
    """``scheme://host[:port]`` of ``url``: how a webhook is named in logs (its path and query may be the
    token, as with chat-service hooks)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError:
        return "<unparsable URL>"
    if not host:
        return "<unparsable URL>"
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}{f':{port}' if port else ''}"


def mask_urls_in(text: str) -> str:
    """``text`` with every URL in it masked (library error messages that quote the URL they were given)."""
    return sub_urls(text, mask_url)


def sub_urls(text: str, replace: Callable[[str], str]) -> str:
    """``text`` with each URL in it replaced by ``replace(url)``."""
    return _URL_IN_TEXT.sub(lambda m: replace(m.group(0)), text)


_SECRET_NAME = re.compile(r"pass|token|secret|credential", re.I)


def redact_setting(name: str, value: object) -> object:
    """A setting's value as a settings repr shows it: secrets (``*password``, ``*token``) as ***, URLs masked,
    webhook URLs by host only."""
    if isinstance(value, str) and value and _SECRET_NAME.search(name):
        return MASK
    if "webhook" in name and isinstance(value, list | tuple):
        return [host_only(v) if isinstance(v, str) else v for v in value]
    if isinstance(value, str):
        return mask_url(value)
    if isinstance(value, list | tuple):
        return [mask_url(v) if isinstance(v, str) else v for v in value]
    return value
