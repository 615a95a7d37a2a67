"""Documentation that cannot drift: README commands, exit codes, error codes, changelog."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from chatctl.exitcodes import ExitCode
from chatctl.protocol import ErrorCode
from tests.support import ROOT

README = (ROOT / "README.md").read_text()


def _readme_commands() -> list[str]:
    blocks = re.findall(r"```sh\n(.*?)```", README, flags=re.S)
    return [
        line.strip()
        for block in blocks[:2]
        for line in block.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def test_readme_starts_with_the_two_setup_commands() -> None:
    serve_cmd, test_cmd = _readme_commands()
    assert serve_cmd.endswith("chatctl serve")
    assert "pip install" in serve_cmd
    assert "pip install" in test_cmd
    assert "pytest" in test_cmd


def test_ci_runs_the_readmes_test_command_verbatim() -> None:
    test_cmd = _readme_commands()[1]
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert test_cmd in ci_lines


def test_every_exit_code_is_documented() -> None:
    rows = dict(re.findall(r"^\| (\d+) \| (.+) \|$", README, flags=re.M))
    assert {int(code) for code in rows} == {int(code) for code in ExitCode}


def test_every_error_code_is_documented_in_the_protocol() -> None:
    protocol_doc = (ROOT / "docs" / "protocol.md").read_text()
    missing = [code.value for code in ErrorCode if f"`{code.value}`" not in protocol_doc]
    assert not missing, f"undocumented error codes in docs/protocol.md: {missing}"


def test_changelog_has_an_unreleased_section() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert changelog.startswith("# Changelog")
    assert "## [Unreleased]" in changelog


def _without_times(text: str) -> list[str]:
    return [re.sub(r'"time":[0-9.]+', '"time":T', line) for line in text.splitlines()]


@pytest.mark.timeout(60)
def test_the_protocols_example_session_is_what_the_server_says_today() -> None:
    """docs/protocol.md's nc session is scripts/transcript.py's output, times aside: it went
    stale twice (room order, `op`) with nobody the wiser."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "transcript.py")],
        capture_output=True, text=True, timeout=50, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    doc = (ROOT / "docs" / "protocol.md").read_text()
    [session] = re.findall(r"```text\n\$ nc 127\.0\.0\.1 5000\n(.*?)```", doc, flags=re.S)
    assert _without_times(session) == _without_times(done.stdout), (
        "docs/protocol.md's example session is stale: run scripts/transcript.py and paste it"
    )
