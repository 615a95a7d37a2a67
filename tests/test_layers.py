"""The house rules: dependencies point one way, and light commands stay light."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.support import FACTOR, chatctl_command, env

#: What start-up must not pay for: the event loop, TLS, the cores, the interactive terminal,
#: and pydantic (Typer's coercion, deferred until a value needs it).
HEAVY = {"asyncio", "ssl", "chatctl.server.core", "chatctl.client", "prompt_toolkit", "pydantic"}


def _modules_after_import(module: str) -> set[str]:
    code = f"import sys, {module}; print('\\n'.join(sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    return set(out.split())


def _modules_loaded_by(*args: str, exit_code: int = 0, **env_extra: str) -> set[str]:
    """Every module a real ``chatctl`` process imports, read from ``-X importtime``."""
    result = subprocess.run(
        [*chatctl_command(), *args],
        env=env(PYTHONPROFILEIMPORTTIME="1", COLUMNS="100", **env_extra),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30 * FACTOR,
        check=False,
    )
    assert result.returncode == exit_code, result.stderr[-2000:]
    modules = set(re.findall(r"^import time:\s+\d+ \|\s+\d+ \| +(\S+)$", result.stderr, re.M))
    assert "chatctl.cli" in modules, result.stderr[-2000:]  # the listing is what we think
    return modules


def _top_level(modules: set[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}


def test_protocol_is_pure() -> None:
    loaded = _top_level(_modules_after_import("chatctl.protocol"))
    assert not loaded & {"asyncio", "socket", "rich", "prompt_toolkit", "typer", "selectors"}


@pytest.mark.parametrize("core", ["chatctl.server.listener", "chatctl.client", "chatctl.eventloop"])
def test_cores_have_no_terminal_code(core: str) -> None:
    loaded = _top_level(_modules_after_import(core))
    assert not loaded & {"rich", "prompt_toolkit", "typer"}


def test_status_and_the_cli_do_not_load_prompt_toolkit() -> None:
    loaded = _modules_after_import("chatctl.cli, chatctl.ui.status")
    assert "prompt_toolkit" not in _top_level(loaded)


def test_importing_the_cli_loads_no_core_and_no_terminal_code() -> None:
    loaded = _modules_after_import("chatctl.cli")
    assert not loaded & HEAVY
    assert not _top_level(loaded) & {"asyncio", "ssl", "prompt_toolkit", "pydantic", "rich"}


def test_the_completion_fast_path_loads_no_typer_click_or_rich() -> None:
    for module in ("chatctl.cli", "chatctl.cli.quickcomplete"):
        loaded = _top_level(_modules_after_import(module))
        assert not loaded & {"typer", "click", "rich", "pydantic", "asyncio", "shlex"}, module


def test_exit_codes_load_without_the_client() -> None:
    loaded = _modules_after_import("chatctl.exitcodes")
    assert not loaded & HEAVY


COMPLETE_S = {"_CHATCTL_COMPLETE": "complete_bash", "COMP_WORDS": "chatctl s", "COMP_CWORD": "1"}
#: Help and usage errors are Click's plain text: Typer's Rich help module alone imports
#: rich.markdown, markdown_it and pygments, more than the rest of `--help` put together.
RICH = {"rich", "typer.rich_utils", "markdown_it", "pygments"}


@pytest.mark.parametrize(
    ("args", "extra_env", "also_not"),
    [
        ([], COMPLETE_S, {"typer", "rich", "chatctl.cli.app"}),
        (["--version"], {}, {"rich"}),
        (["--help"], {}, RICH),
        (["-h"], {}, RICH),
        (["serve", "--help"], {}, RICH),
        (["join", "--help"], {}, RICH),
        (["status", "--help"], {}, RICH),
        (["export", "--help"], {}, RICH),
        (["history", "--help"], {}, RICH),
        (["forget", "--help"], {}, RICH),
        (["bench", "--help"], {}, {"chatctl.bench"} | RICH),
    ],
    ids=[
        "completion",
        "version",
        "help",
        "h",
        "serve-help",
        "join-help",
        "status-help",
        "export-help",
        "history-help",
        "forget-help",
        "bench-help",
    ],
)
def test_light_commands_stay_light(
    args: list[str], extra_env: dict[str, str], also_not: set[str]
) -> None:
    heavy = HEAVY | also_not
    loaded = _modules_loaded_by(*args, **extra_env)
    assert not loaded & heavy
    assert not _top_level(loaded) & {m for m in heavy if "." not in m}  # nor their submodules


@pytest.mark.parametrize(
    "args",
    [[], ["--no-such-option"], ["no-such-command"], ["serve", "--no-such-option"], ["join"]],
    ids=["bare", "root-option", "command", "serve-option", "join-missing-name"],
)
def test_bare_chatctl_and_usage_errors_stay_light(args: list[str]) -> None:
    loaded = _modules_loaded_by(*args, exit_code=2)
    heavy = HEAVY | RICH
    assert not loaded & heavy
    assert not _top_level(loaded) & {m for m in heavy if "." not in m}


@pytest.mark.parametrize(
    "args",
    [
        ["status", "--host", "127.0.0.1", "--port", "1", "--json"],
        ["export", "--port", "1", "--room", "#lobby", "--format", "md", "--since", "1h"],
    ],
    ids=["status", "export"],
)
def test_plain_option_values_do_not_load_pydantic(args: list[str]) -> None:
    """Typer's pydantic coercion is for values chatctl cannot coerce plainly (tests/test_cli)."""
    loaded = _modules_loaded_by(*args, exit_code=3)  # 3: nothing listens on port 1
    assert "pydantic" not in _top_level(loaded)
