"""The closing password sweep of a test run finds a leak in a log and ignores private files."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import leaked_secrets


def test_the_sweep_finds_a_password_in_a_log_and_skips_private_files(tmp_path: Path) -> None:
    secret = "pw-0123456789abcdef"
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "worker.log").write_text(f"connecting with password={secret}\n")
    (tmp_path / "w" / "clean.log").write_text("nothing to see\n")
    (tmp_path / "server.properties").write_text(f"sasl.password={secret}\n")  # private, 0600
    (tmp_path / "00000000000000000000.log").write_bytes(secret.encode())  # a Kafka segment
    assert leaked_secrets(tmp_path, {secret}) == [str(tmp_path / "w" / "worker.log")]
    assert leaked_secrets(tmp_path, {"pw-never-written"}) == []
