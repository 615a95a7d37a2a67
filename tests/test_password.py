"""The room password, access lists and the exposure warning: real servers and processes.

The secrets used here are distinctive strings, so a test can search every log,
output and error for them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from chatctl import tls
from chatctl.client import ChatClient, Refused, fetch_status
from chatctl.exitcodes import ExitCode
from chatctl.protocol import ErrorCode, Hello, StatusRequest, encode
from chatctl.server.config import ServerConfig
from chatctl.ui.serverlog import exposure_warning
from tests.conftest import RecordingServer
from tests.support import ServeProcess, run_chatctl

PASSWORD = "correct-horse-7f3a9c"
WRONG = "wrong-guess-51d2e8"


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "room-password"
    path.write_text(PASSWORD + "\n")
    return path


def one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def test_password_file_env_and_wrong_and_missing_passwords(
    password_file: Path, tmp_path: Path
) -> None:
    server = ServeProcess("--password-file", str(password_file))
    port = str(server.port)
    outputs: list[str] = []
    try:
        server.log.wait_for(r"a password is required")
        missing = run_chatctl("join", "bob", "--port", port, input="hi\n")
        assert missing.returncode == ExitCode.PASSWORD, missing.stderr
        assert "needs a password" in one_error_line(missing.stderr)

        wrong = run_chatctl("join", "bob", "--port", port, input="hi\n", CHATCTL_PASSWORD=WRONG)
        assert wrong.returncode == ExitCode.PASSWORD
        assert "wrong password" in one_error_line(wrong.stderr)

        status_missing = run_chatctl("status", "--port", port)
        assert status_missing.returncode == ExitCode.PASSWORD
        assert "needs a password" in one_error_line(status_missing.stderr)

        by_env = run_chatctl(
            "join", "alice", "--port", port, input="by env\n", CHATCTL_PASSWORD=PASSWORD
        )
        assert by_env.returncode == 0, by_env.stderr
        by_file = run_chatctl(
            "join", "carol", "--port", port, "--password-file", str(password_file),
            input="by file\n",
        )  # fmt: skip
        assert by_file.returncode == 0, by_file.stderr
        assert re.search(r"carol: by file$", by_file.stdout, re.MULTILINE), by_file.stdout

        status = run_chatctl("status", "--port", port, "--json", CHATCTL_PASSWORD=PASSWORD)
        assert status.returncode == 0, status.stderr
        counters = json.loads(status.stdout)["server"]
        assert counters["messages_relayed"] == 2
        assert counters["leave_reasons"]["password_required"] == 2
        assert counters["leave_reasons"]["wrong_password"] == 1
        outputs += [r.stdout + r.stderr for r in (missing, wrong, status_missing)]
        outputs += [r.stdout + r.stderr for r in (by_env, by_file, status)]
        server.log.wait_for(r"refused 127\.0\.0\.1:\d+: wrong_password$")
    finally:
        server.stop()
    outputs.append(server.log.text())
    for output in outputs:
        assert PASSWORD not in output
        assert WRONG not in output


def test_no_secret_reaches_logs_outputs_or_errors_with_tls(
    password_file: Path, tmp_path: Path
) -> None:
    """Password and private key: in no server log line, client output or error text."""
    cert, key, _ = tls.self_signed(tmp_path / "server")
    fp = tls.certificate_fingerprint(cert)
    key_lines = [line for line in key.read_text().splitlines() if not line.startswith("-----")]
    server = ServeProcess(
        "--tls-cert", str(cert), "--tls-key", str(key), "--password-file", str(password_file),
        "--verbose",
    )  # fmt: skip
    port = str(server.port)
    config = {"CHATCTL_CONFIG_DIR": str(tmp_path / "client")}
    try:
        results = [
            run_chatctl("status", "--port", port, "--fingerprint", fp, **config),
            run_chatctl(
                "status", "--port", port, "--tls", "--json", CHATCTL_PASSWORD=PASSWORD, **config
            ),
            run_chatctl(
                "join",
                "bob",
                "--port",
                port,
                "--tls",
                input="hello\n",
                CHATCTL_PASSWORD=WRONG,
                **config,
            ),
            run_chatctl(
                "join",
                "alice",
                "--port",
                port,
                "--tls",
                input="hello\n",
                CHATCTL_PASSWORD=PASSWORD,
                **config,
            ),
            run_chatctl("status", "--port", port, **config),  # plain on a TLS port
            run_chatctl("serve", "--port", "0", "--tls-cert", str(key), "--tls-key", str(key)),
        ]
        assert [r.returncode for r in results] == [
            ExitCode.PASSWORD, 0, ExitCode.PASSWORD, 0, ExitCode.REFUSED, ExitCode.CANNOT_START,
        ]  # fmt: skip
        server.log.wait_for(r"- alice left \(quit\)")
    finally:
        server.stop()
    texts = [r.stdout + r.stderr for r in results] + [server.log.text()]
    for text in texts:
        assert "Traceback" not in text
        assert PASSWORD not in text
        assert WRONG not in text
        assert "PRIVATE KEY" not in text
        for line in key_lines:
            assert line not in text


def test_password_file_problems_are_one_line_usage_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n")
    for path in (empty, tmp_path / "missing"):
        result = run_chatctl("serve", "--port", "0", "--password-file", str(path))
        assert result.returncode == ExitCode.USAGE
        line = one_error_line(result.stderr)
        assert str(path) in line


# --------------------------------------------------------------------------- in process


@pytest.mark.server_config(password=PASSWORD, limit_loopback=False)
async def test_three_wrong_passwords_a_minute_then_throttled(server: RecordingServer) -> None:
    port = server.port
    for _ in range(3):
        with pytest.raises(Refused) as wrong:
            await ChatClient.join("127.0.0.1", port, "bob", password=WRONG)
        assert wrong.value.code == ErrorCode.WRONG_PASSWORD
    # The fourth attempt is not even compared, right password or not; status alike.
    with pytest.raises(Refused) as throttled:
        await ChatClient.join("127.0.0.1", port, "bob", password=PASSWORD)
    assert throttled.value.code == ErrorCode.THROTTLED
    assert throttled.value.retry_after is not None
    assert 0 < throttled.value.retry_after <= 60
    with pytest.raises(Refused) as status_throttled:
        await fetch_status("127.0.0.1", port, password=PASSWORD)
    assert status_throttled.value.code == ErrorCode.THROTTLED
    assert PASSWORD not in repr(server.events)
    assert WRONG not in repr(server.events)


@pytest.mark.server_config(password=PASSWORD)
async def test_the_right_password_joins_and_the_reply_never_echoes_it(
    server: RecordingServer,
) -> None:
    client = await ChatClient.join("127.0.0.1", server.port, "alice", password=PASSWORD)
    try:
        assert client.joined[0].users == ["alice"]
        reply = await fetch_status("127.0.0.1", server.port, password=PASSWORD)
        assert PASSWORD not in repr(reply)
    finally:
        await client.close()


def test_password_never_in_a_repr() -> None:
    assert PASSWORD not in repr(Hello(version=1, name="a", password=PASSWORD))
    assert PASSWORD not in repr(StatusRequest(password=PASSWORD))
    assert PASSWORD not in repr(ServerConfig(password=PASSWORD))
    # ...but it is on the wire, and absent when there is none.
    assert PASSWORD.encode() in encode(Hello(version=1, name="a", password=PASSWORD))
    assert b"password" not in encode(Hello(version=1, name="a"))
    assert encode(StatusRequest()) == b'{"type":"status"}\n'


# --------------------------------------------------------------------------- access lists


def test_an_address_outside_allow_is_refused_before_anything_is_read() -> None:
    server = ServeProcess("--allow", "10.0.0.0/8", "--allow", "192.168.0.0/16")
    try:
        server.log.wait_for(r"access list: allow 10\.0\.0\.0/8, allow 192\.168\.0\.0/16")
        for command in (["status"], ["join", "bob"]):
            result = run_chatctl(*command, "--port", str(server.port), input="x\n")
            assert result.returncode == ExitCode.REFUSED, result.stderr
            assert "may not use this server" in one_error_line(result.stderr)
        server.log.wait_for(r"refused 127\.0\.0\.1:\d+: access_denied$")
        refusals = [line for line in server.log.snapshot() if "access_denied" in line]
        assert len(refusals) == 2
    finally:
        server.stop()


def test_deny_wins_over_allow() -> None:
    server = ServeProcess("--allow", "127.0.0.0/8", "--deny", "127.0.0.1/32")
    try:
        result = run_chatctl("status", "--port", str(server.port))
        assert result.returncode == ExitCode.REFUSED
        server.log.wait_for(r"refused 127\.0\.0\.1:\d+: access_denied$")
    finally:
        server.stop()
    allowed = ServeProcess("--allow", "127.0.0.0/8")
    try:
        assert run_chatctl("status", "--port", str(allowed.port)).returncode == 0
    finally:
        allowed.stop()


def test_a_bad_network_is_a_usage_error() -> None:
    result = run_chatctl("serve", "--port", "0", "--allow", "10.0.0.0/33")
    assert result.returncode == ExitCode.USAGE
    assert "--allow" in result.stderr


# --------------------------------------------------------------------------- warning


def test_loud_warning_beyond_loopback_without_tls_or_password() -> None:
    lan = [("0.0.0.0", 5000)]
    warning = exposure_warning(lan, tls=False, password=False)
    assert warning is not None
    assert warning.startswith("WARNING")
    assert "--tls" in warning
    assert exposure_warning(lan, tls=True, password=False) is None
    assert exposure_warning(lan, tls=False, password=True) is None
    assert exposure_warning([("127.0.0.1", 5000), ("::1", 5000)], False, False) is None
