"""``--help`` as a user reads it: real ``chatctl`` processes, Click's plain help text.

Help shows what a user types (``--port PORT``, ``--allow CIDR``, a switch with nothing
after it, ``NAME``), never Typer's type names (``<bool>``, ``<str>``, ``{name}``), keeps
the panels the options name (Limits, Security) as sections, and ``serve``'s limit
options are exactly the ones declared in ``chatctl.server.config``. The text is at most
100 columns wide, so these tests read rows back whole from their wrapped lines.
"""

from __future__ import annotations

import re

import pytest

from chatctl.server.config import LIMITS, ServerConfig
from tests.support import run_chatctl, serve_process

WIDE = "250"
COMMANDS = [
    [],
    ["serve"],
    ["join"],
    ["send"],
    ["tail"],
    ["export"],
    ["status"],
    ["history"],
    ["forget"],
    ["bench"],
]


def help_of(*command: str, columns: str = WIDE) -> str:
    result = run_chatctl(*command, "--help", COLUMNS=columns)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout


def sections(text: str) -> dict[str, list[tuple[str, str]]]:
    """Each section (``Options:``, ``Limits:``, ...) and its rows as (term, help), unwrapped.

    A row starts two columns in: its term, then two spaces or more and its help; a line
    indented deeper continues the help (Click wraps at a hyphen too: ``self-`` ``signed``).
    """
    found: dict[str, list[tuple[str, str]]] = {}
    rows: list[tuple[str, str]] | None = None
    for line in text.splitlines():
        if re.fullmatch(r"[A-Z]\w*:", line):
            rows = found.setdefault(line[:-1], [])
        elif rows is None or not line.strip():
            rows = None
        elif re.match(r"  \S", line):
            term, _, help_text = line.strip().partition("  ")
            rows.append((term, " ".join(help_text.split())))
        else:
            term, before = rows[-1]
            glue = "" if re.search(r"\w-$", before) or not before else " "
            rows[-1] = (term, before + glue + " ".join(line.split()))
    return found


def row(text: str, flag: str) -> tuple[str, str]:
    """The (term, help) of the one row naming ``flag``, in whichever section it is."""
    found = [
        (term, help_text)
        for rows in sections(text).values()
        for term, help_text in rows
        if flag in re.split(r"[ ,]+", term)
    ]
    assert len(found) == 1, f"{flag}: {found}\n{text}"
    return found[0]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "chatctl")
def test_help_names_no_types(command: list[str]) -> None:
    text = help_of(*command)
    assert not re.search(r"<\w[^>]*>", text), text  # <bool>, <str>, <int range>, <list[str]>
    assert not re.search(r"\{\w+\}", text), text  # a required argument as {name}


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "chatctl")
def test_help_is_plain_text_that_fits(command: list[str]) -> None:
    wide, narrow = help_of(*command), help_of(*command, columns="80")
    for text, columns in ((wide, 100), (narrow, 80)):
        assert "\x1b" not in text, text  # no colour codes
        assert not re.search(r"[╭╰│─]", text), text  # no Rich boxes
        too_long = [line for line in text.splitlines() if len(line) > columns]
        assert not too_long, too_long
    assert sections(wide) == sections(narrow)  # the same rows, only wrapped differently


def test_options_show_what_to_type_and_switches_nothing() -> None:
    text = help_of("serve")
    assert row(text, "--port") == (
        "--port PORT",
        "TCP port. [env var: CHATCTL_PORT; default: 5000; 0<=x<=65535]",
    )
    assert row(text, "--allow") == (
        "--allow CIDR",
        "Only these networks may connect (CIDR, repeatable).",
    )
    assert row(text, "--tls-cert")[0] == "--tls-cert FILE"
    assert row(text, "--tls") == (
        "--tls",
        "Serve TLS; without --tls-cert, with a self-signed certificate made once and kept in "
        "the config folder. Logs its fingerprint.",
    )
    assert row(text, "--verbose") == ("-v, --verbose", "Also log the text of every message.")
    assert row(text, "--help") == ("-h, --help", "Show this message and exit.")
    root = help_of()
    for flag in ("--version", "--install-completion", "--show-completion"):
        term, help_text = row(root, flag)
        assert term == flag
        assert re.fullmatch(r"[A-Z][a-z]+ .*\.", help_text), help_text


def test_root_lists_each_command_with_its_whole_summary() -> None:
    # Click's own short help would stop at the first full stop: "Join the chat as NAME."
    assert sections(help_of())["Commands"] == [
        ("serve", "Run a chat server and show its live connection log (Ctrl-C stops it)."),
        (
            "join",
            "Join the chat as NAME. Piped stdin: each line is a message "
            "(--commands: or a command).",
        ),
        ("send", "Send one message; exit 0 once the server relayed it, 14 if it refused it."),
        ("tail", "Print a room's last messages (--since AGE: all of them), then follow (-f)."),
        ("export", "Write a room's history as a timeline: exit 15 if the server keeps none."),
        ("status", "Show who is connected and the server's counters, without joining."),
        (
            "history",
            "Show the server's history file: messages, size, oldest; exit 15 if it keeps none.",
        ),
        ("forget", "Give up a name claimed from here: anyone may use it after."),
        ("bench", "Measure a server under load: deliveries/s, latency, loss, CPU and memory."),
    ]


def test_arguments_show_as_typed() -> None:
    join = help_of("join")
    assert "Usage: chatctl join [OPTIONS] NAME" in join
    assert sections(join)["Arguments"] == [
        ("NAME", "Your name: 1-32 of A-Z a-z 0-9 _ - . (unique, any case). [required]")
    ]
    bench = help_of("bench")
    assert "Usage: chatctl bench [OPTIONS] [SCENARIO]" in bench
    [(term, help_text)] = sections(bench)["Arguments"]
    assert term == "SCENARIO fanout|rate|idle|stuck|rooms"
    assert help_text.startswith("fanout: "), help_text
    assert help_text.endswith("[default: fanout]"), help_text


def test_serve_has_one_limit_option_per_declared_limit() -> None:
    defaults = ServerConfig()
    rows = sections(help_of("serve"))["Limits"]
    assert len(rows) == len(LIMITS), rows
    for limit, (term, help_text) in zip(LIMITS, rows, strict=True):
        default = getattr(defaults, limit.name)
        if isinstance(default, bool):
            assert (term, help_text) == (limit.flag, limit.help)
            continue
        assert term == f"{limit.flag} {limit.metavar}"
        assert help_text == f"{limit.help} [default: {default}; x>={limit.minimum}]"


def test_serve_sections_keep_their_order_and_members() -> None:
    found = sections(help_of("serve"))
    assert list(found) == [
        "Options",
        "Limits",
        "Security",
        "History",
        "Moderation",
        "Cluster",
        "Monitoring",
    ]
    assert found["Cluster"][0][0].split()[0] == "--backplane"
    flags = [term.split()[0] for term, _ in found["Security"]]
    assert flags == ["--tls", "--tls-cert", "--tls-key", "--password-file", "--allow", "--deny"]
    flags = [term.split()[0] for term, _ in found["History"]]
    assert flags == ["--history", "--no-history", "--keep", "--keep-messages", "--no-pm-history"]
    flags = [term.split()[0] for term, _ in found["Moderation"]]
    assert flags == ["--op", "--ops-file", "--no-room-founders"]
    assert [term for term, _ in found["Monitoring"]] == [
        "--log-format text|json",
        "--metrics [HOST:]PORT",
    ]
    assert [term.split()[-1] for term, _ in found["Options"]] == [
        "HOST",
        "PORT",
        "[HOST:]PORT",
        "--verbose",
        "--help",
    ]


@pytest.mark.parametrize(
    "command", [["join"], ["status"], ["export"], ["history"], ["forget"]], ids=" ".join
)
def test_client_commands_put_security_options_apart(command: list[str]) -> None:
    found = sections(help_of(*command))
    flags = [term.split()[0] for term, _ in found["Security"]]
    assert flags == ["--tls", "--tls-ca", "--fingerprint", "--password-file"]
    assert not {term.split()[0] for term, _ in found["Options"]} & set(flags)


def test_bare_chatctl_prints_the_help_on_stdout_and_exits_2() -> None:
    result = run_chatctl(COLUMNS=WIDE)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr == ""
    assert result.stdout == help_of()


def test_a_usage_error_is_clicks_plain_one() -> None:
    result = run_chatctl("serve", "--no-such-option", COLUMNS=WIDE, timeout=10)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "Usage: chatctl serve [OPTIONS]",
        "Try 'chatctl serve -h' for help.",
        "",
        "Error: No such option: --no-such-option",
    ]


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
