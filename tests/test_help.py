"""``--help`` as a user reads it: real ``chatctl`` processes, a wide terminal so no row wraps.

Help shows what a user types (``--port PORT``, ``--allow CIDR``, a switch with nothing
after it, ``NAME``), never Typer's type names (``<bool>``, ``<str>``, ``{name}``), and
``serve``'s limit options are exactly the ones declared in ``chatctl.server.config``.
"""

from __future__ import annotations

import re

import pytest

from chatctl.server.config import LIMITS, ServerConfig
from tests.support import run_chatctl, serve_process

WIDE = "250"
COMMANDS = [[], ["serve"], ["join"], ["status"], ["bench"]]


def help_of(*command: str) -> str:
    result = run_chatctl(*command, "--help", COLUMNS=WIDE)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout


def row(text: str, flag: str) -> str:
    """The help row of ``flag``, its box borders and padding stripped."""
    rows = [line.strip("│ ") for line in text.splitlines() if line.startswith(f"│ {flag} ")]
    assert len(rows) == 1, f"{flag}: {rows}\n{text}"
    return rows[0]


def panel(text: str, title: str) -> list[str]:
    """The rows of the help panel called ``title``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(rf"╭─ {title} ─", line))
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("╰"))
    return [line.strip("│ ") for line in lines[start + 1 : end]]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "chatctl")
def test_help_names_no_types(command: list[str]) -> None:
    text = help_of(*command)
    assert not re.search(r"<\w[^>]*>", text), text  # <bool>, <str>, <int range>, <list[str]>
    assert not re.search(r"\{\w+\}", text), text  # a required argument as {name}


def test_options_show_what_to_type_and_switches_nothing() -> None:
    text = help_of("serve")
    assert re.fullmatch(r"--port\s+PORT \[0<=x<=65535\]\s+TCP port\. .*", row(text, "--port"))
    assert re.fullmatch(r"--allow\s+CIDR\s+Only these networks .*", row(text, "--allow"))
    assert re.fullmatch(r"--tls-cert\s+FILE\s+Certificate .*", row(text, "--tls-cert"))
    assert re.fullmatch(r"--verbose\s+-v\s+Also log the text .*", row(text, "--verbose"))
    assert re.fullmatch(r"--help\s+-h\s+Show this message and exit\.", row(text, "--help"))
    root = help_of()
    for flag in ("--version", "--install-completion", "--show-completion"):
        assert re.fullmatch(rf"{flag}\s+[A-Z][a-z]+ .*", row(root, flag)), row(root, flag)


def test_arguments_show_as_typed() -> None:
    join = help_of("join")
    assert "Usage: chatctl join [OPTIONS] NAME" in join
    assert re.search(r"^│ \*\s+NAME\s+Your name: ", join, re.M), join
    bench = help_of("bench")
    assert "Usage: chatctl bench [OPTIONS] [SCENARIO]" in bench
    scenarios = r"^│\s+SCENARIO\s+fanout\|rate\|idle\|stuck\|rooms\s+fanout: "
    assert re.search(scenarios, bench, re.M), bench


def test_serve_has_one_limit_option_per_declared_limit() -> None:
    defaults = ServerConfig()
    rows = panel(help_of("serve"), "Limits")
    assert len(rows) == len(LIMITS), rows
    for limit, line in zip(LIMITS, rows, strict=True):
        default = getattr(defaults, limit.name)
        if isinstance(default, bool):
            assert re.fullmatch(rf"{limit.flag}\s+{re.escape(limit.help)}", line), line
            continue
        wanted = (
            rf"{limit.flag}\s+{limit.metavar} \[x>={limit.minimum}\]\s+"
            rf"{re.escape(limit.help)} \[default: {default}\]"
        )
        assert re.fullmatch(wanted, line), f"{line!r} !~ {wanted!r}"


def test_serve_panels_keep_their_order_and_members() -> None:
    text = help_of("serve")
    titles = re.findall(r"^╭─ (\w+) ─", text, re.M)
    assert titles == ["Options", "Limits", "Security", "History"]
    flags = [line.split()[0] for line in panel(text, "Security")]
    assert flags == ["--tls", "--tls-cert", "--tls-key", "--password-file", "--allow", "--deny"]
    flags = [line.split()[0] for line in panel(text, "History")]
    assert flags == ["--history", "--no-history", "--keep", "--keep-messages"]


def test_every_limit_option_reaches_the_server() -> None:
    defaults = ServerConfig()
    args: list[str] = []
    for limit in LIMITS:
        default = getattr(defaults, limit.name)
        args += [limit.flag] if isinstance(default, bool) else [limit.flag, str(default * 2)]
    with serve_process(*args) as server:
        server.log.wait_for(rf"--max-clients {defaults.max_clients * 2}\b")


@pytest.mark.parametrize(
    ("flag", "value"), [("--max-frame", "63"), ("--tls-handshake-timeout", "0")]
)
def test_a_limit_below_its_minimum_is_a_usage_error(flag: str, value: str) -> None:
    result = run_chatctl("serve", "--port", "0", flag, value, COLUMNS=WIDE, timeout=10)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"Invalid value for '{flag}'" in result.stderr
