"""Store URLs as logs and status may show them: the password masked.

Written for URLs people actually type, not only well-formed ones: a password may hold an
unencoded `/`, `#`, `?`, `@` or `:`, which a URL parser takes for the end of the authority
(and then leaves the password in the path or fragment). So the user info is found by hand:
everything between `scheme://user:` and the last `@` that is followed by a plausible
host[:port] and the end of the URL or a `/`, `?`, `#`. When that is ambiguous, more is masked,
never less. `password=` query parameters are masked too.
"""

from __future__ import annotations

import re

MASK = "***"
# user (no ':' '/' '?' '#' '@'), ':', then the password up to the last '@' before a host.
_USERINFO = re.compile(
    r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^:/?#@]*):(?P<password>.*)@"
    r"(?P<rest>(?:\[[0-9A-Fa-f:.]*\](?::[0-9]*)?|[^/?#@\[\]\s]*)(?:[/?#][^@]*)?)$",
    re.DOTALL,
)
_USER = re.compile(r"[^:/?#@]*:")
# A password=... query parameter (also pass=, pwd=), up to the next '&', ';' or '#'.
_QUERY = re.compile(r"(?i)(?P<name>[?&;](?:password|passwd|pass|pwd)=)(?P<value>[^&;#]*)")


def redact_url(url: str) -> str:
    """The store URL with any password masked, for logs and status (never raises)."""
    if not isinstance(url, str):
        return "<not a URL>"
    spans = [q.span("value") for q in _QUERY.finditer(url) if q["value"]]
    m = _USERINFO.match(url)
    if m is not None:
        spans.append(m.span("password"))
    else:
        scheme, sep, after = url.partition("://")
        if sep and "@" in after and _USER.match(after):
            # user:password@ and nothing recognisable as a host after it: mask it all.
            spans.append((len(scheme) + 3, len(url)))
    # Both readings at once: what either takes for a secret is masked (overlaps merged).
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    out, pos = [], 0
    for start, end in merged:
        out += [url[pos:start], MASK]
        pos = end
    return "".join(out) + url[pos:]
