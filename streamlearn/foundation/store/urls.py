"""Store URLs as logs and status may show them: the password masked."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def redact_url(url: str) -> str:
    """The store URL with any password masked, for logs and status (never raises)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    netloc = parts.netloc
    if "@" not in netloc:
        return url
    userinfo, host = netloc.rsplit("@", 1)
    user = userinfo.split(":", 1)[0]
    masked = f"{user}:***@{host}" if ":" in userinfo else netloc
    return urlunsplit(parts._replace(netloc=masked))
