"""The house rules: dependencies point one way, and light commands stay light."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _modules_after_import(module: str) -> set[str]:
    code = f"import sys, {module}; print('\\n'.join(sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    return set(out.split())


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
