"""Store URLs in logs and status: the password masked whatever it holds (S16).

A password with an unencoded `/`, `#`, `?` or `@` used to stay in place (the URL parser ended
the authority early), and `?password=` was never masked. Property tests over such passwords,
and the run-wide sweep (tests/conftest.py) looks for the awkward ones in what the run wrote.
"""

from __future__ import annotations

import string
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from streamlearn.foundation.errors import StoreUnavailable
from streamlearn.foundation.settings import Settings
from streamlearn.foundation.store import Store, redact_url
from tests.conftest import register_secret

AWKWARD = string.ascii_letters + string.digits + "/#?@:&=%;!$ .-_~[]"
USERS = st.text(string.ascii_letters + string.digits + "_.-", max_size=12)
HOSTS = st.sampled_from(["ch", "clickhouse.internal", "127.0.0.1", "[::1]", "10.0.0.7"])
PORTS = st.sampled_from(["", ":8123", ":8443"])
TAILS = st.sampled_from(["", "/", "/streamlearn", "/db?secure=1", "/db#frag", "?x=1&y=2"])
PASSWORDS = st.text(AWKWARD, min_size=4, max_size=40)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://u:pa/ss@ch:8123/db", "http://u:***@ch:8123/db"),
        ("http://u:pa#ss@ch:8123/db", "http://u:***@ch:8123/db"),
        ("http://u:pa?ss@ch:8123/db", "http://u:***@ch:8123/db"),
        ("http://u:p@ss@ch:8123/db", "http://u:***@ch:8123/db"),
        ("http://u:a/b?c#d@e@[::1]:8123/db?secure=1", "http://u:***@[::1]:8123/db?secure=1"),
        ("http://ch:8123/db?user=u&password=s3cr/t", "http://ch:8123/db?user=u&password=***"),
        ("http://ch:8123/?password=s3cret&secure=1", "http://ch:8123/?password=***&secure=1"),
        ("http://ch:8123/db?PASSWORD=x", "http://ch:8123/db?PASSWORD=***"),
        ("http://ch:8123/db?password=", "http://ch:8123/db?password="),
        ("chdb:///var/lib/a:b@c/clickhouse", "chdb:///var/lib/a:b@c/clickhouse"),
        ("http://default@ch:8123/db", "http://default@ch:8123/db"),
    ],
)
def test_awkward_passwords_and_query_parameters_are_masked(url: str, expected: str) -> None:
    assert redact_url(url) == expected


@hyp_settings(max_examples=400, deadline=None)
@given(st.sampled_from(["http", "https"]), USERS, PASSWORDS, HOSTS, PORTS, TAILS)
def test_no_password_survives_redaction(
    scheme: str, user: str, password: str, host: str, port: str, tail: str
) -> None:
    without = f"{scheme}://{user}:@{host}{port}{tail}***"
    assume(password not in without)  # a password that is a piece of the rest proves nothing
    redacted = redact_url(f"{scheme}://{user}:{password}@{host}{port}{tail}")
    assert password not in redacted
    assert redacted.startswith(f"{scheme}://")


@hyp_settings(max_examples=200, deadline=None)
@given(HOSTS, PORTS, st.text(string.ascii_letters + string.digits + "/#?@:=%!$.-_~", min_size=4))
def test_no_password_parameter_survives_redaction(host: str, port: str, password: str) -> None:
    password = password.split("#", 1)[0]  # a '#' starts the fragment: the rest is not the value
    assume(len(password) >= 4 and password not in f"http://{host}{port}/db?user=u&password=***")
    url = f"http://{host}{port}/db?user=u&password={password}"
    assert password not in redact_url(url)


@pytest.mark.parametrize("password", ["pw/with/slashes#1", "pw?q=1@x#y", "p@ss:w0rd/x?y#z"])
def test_store_errors_and_settings_never_show_an_awkward_password(
    password: str, tmp_path: Path
) -> None:
    """What a user sees (store error, printed settings) holds no such password; the session's
    closing sweep greps the log written here too."""
    register_secret(password)
    url = f"http://analyst:{password}@127.0.0.1:1/streamlearn"
    with pytest.raises(StoreUnavailable) as err:
        Store(url)
    settings = Settings(clickhouse_url=url, state_dir=tmp_path)
    shown = [str(err.value), repr(settings), redact_url(url)]
    (tmp_path / "store-error.log").write_text("\n".join(shown) + "\n")
    for text in shown:
        assert password not in text, text
