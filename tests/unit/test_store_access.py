"""Who may use the worker's store endpoints (pure checks; over HTTP in
tests/integration/test_store_access.py): the token, the Host, the Origin, the Content-Type."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from streamlearn.foundation.errors import StoreBusy
from streamlearn.foundation.settings import Settings
from streamlearn.foundation.store.access import TOKEN_HEADER, create_token, read_token
from streamlearn.streams.store_access import request_refusal

PORT = 6066
TOKEN = "t0ken-abc"
GOOD = {
    "Host": f"127.0.0.1:{PORT}",
    "Content-Type": "application/json",
    TOKEN_HEADER: TOKEN,
}


def status(**changes: str | None) -> int | None:
    headers = {k: v for k, v in {**GOOD, **changes}.items() if v is not None}
    refused = request_refusal(headers, PORT, TOKEN, peer="127.0.0.1")
    return refused[0] if refused else None


def test_the_cli_s_request_passes() -> None:
    assert status() is None
    assert status(Host=f"localhost:{PORT}") is None
    assert status(Host=f"[::1]:{PORT}") is None
    assert status(Host="127.0.0.1") is None
    assert status(**{"Content-Type": "application/json; charset=utf-8"}) is None
    assert status(Origin=f"http://127.0.0.1:{PORT}") is None


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({TOKEN_HEADER: None}, 401),
        ({TOKEN_HEADER: "wrong"}, 401),
        ({TOKEN_HEADER: TOKEN + "x"}, 401),
        ({"Host": f"evil.example:{PORT}"}, 403),  # DNS rebinding: evil.example -> 127.0.0.1
        ({"Host": f"127.0.0.1.evil.example:{PORT}"}, 403),
        ({"Host": "127.0.0.1:1234"}, 403),
        ({"Host": None}, 403),
        ({"Origin": "https://evil.example"}, 403),
        ({"Origin": "null"}, 403),
        ({"Origin": f"http://127.0.0.1:{PORT + 1}"}, 403),
        ({"Content-Type": "text/plain"}, 415),  # what a cross-site form or fetch can send
        ({"Content-Type": "application/x-www-form-urlencoded"}, 415),
        ({"Content-Type": None}, 415),
    ],
)
def test_each_refusal(changes: dict[str, str | None], code: int) -> None:
    assert status(**changes) == code


def test_the_token_file_is_0600_new_at_each_start_and_read_by_the_cli(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path / "state")
    first = create_token(settings)
    path = settings.state_dir / "worker.token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(first) >= 40
    path.chmod(0o644)  # a file another version left readable: narrowed again
    second = create_token(settings)
    assert second != first and read_token(settings) == second
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_user_who_cannot_read_the_token_gets_one_line(tmp_path: Path) -> None:
    with pytest.raises(StoreBusy, match="cannot read the worker's access token") as err:
        read_token(Settings(state_dir=tmp_path / "nothing"))
    assert "\n" not in str(err.value)
