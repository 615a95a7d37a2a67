"""Shell completion: the shipped scripts are current, and completion requests are answered.

Everything runs the real ``chatctl`` console script as a child process, with HOME
pointed at a temporary folder so nothing can touch the user's shell rc files.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.support import FACTOR, ROOT, env, run_chatctl

GEN_SCRIPT = ROOT / "scripts" / "gen_completions.py"
COMPLETIONS = ROOT / "completions"
REGENERATE = "run `python scripts/gen_completions.py` and commit the result"


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    """Environment overrides that keep a child away from the real home and shell."""
    fake_home = tmp_path / "home"
    fake_home.mkdir()
    return {"HOME": str(fake_home), "SHELL": "/bin/bash", "XDG_CONFIG_HOME": str(fake_home)}


#: What the generator makes, once per test process: each script is a chatctl process
#: and the table a build of the app, and the tests below only need them to compare.
_MADE: dict[tuple[str, ...], str] = {}


def load_generator() -> ModuleType:
    """The generator, remembering what it made (``test_shipped_completion_scripts_are_current``
    runs it afresh, as a process)."""
    spec = importlib.util.spec_from_file_location("gen_completions", GEN_SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    generate, table = module.generate, module.table

    def remembered_generate(shell: str, executable: str) -> str:
        if (shell, executable) not in _MADE:
            _MADE[shell, executable] = generate(shell, executable)
        return _MADE[shell, executable]

    def remembered_table() -> str:
        if () not in _MADE:
            _MADE[()] = table()
        return _MADE[()]

    module.generate, module.table = remembered_generate, remembered_table
    return module


def complete(shell: str, words: str, home: dict[str, str]) -> list[str]:
    """Ask the console script for completions the way each shell's script does.

    Returns the candidates without their descriptions.
    """
    if shell == "bash":
        extra = {"COMP_WORDS": words, "COMP_CWORD": str(len(words.split(" ")) - 1)}
    elif shell == "fish":
        extra = {"_TYPER_COMPLETE_ARGS": words, "_TYPER_COMPLETE_FISH_ACTION": "get-args"}
    else:
        extra = {"_TYPER_COMPLETE_ARGS": words}
    result = run_chatctl(_CHATCTL_COMPLETE=f"complete_{shell}", **extra, **home)
    assert result.returncode == 0, result.stderr
    if shell == "zsh":  # _arguments '*: :(("serve":"Run a chat..." "status":"Show who..."))'
        return re.findall(r'^(?:_arguments .*?\(\()?"([^"]+)":', result.stdout, flags=re.M)
    # bash: one candidate per line; fish: "candidate<TAB>description" per line
    return [line.split("\t")[0] for line in result.stdout.splitlines()]


# --------------------------------------------------------------------------- shipped files


def test_shipped_completion_scripts_are_current() -> None:
    result = subprocess.run(
        [sys.executable, str(GEN_SCRIPT), "--check"],
        capture_output=True,
        text=True,
        timeout=60 * FACTOR,
        env=env(),
        check=False,
    )
    assert result.returncode == 0, (
        f"completions/ is stale, {REGENERATE}.\n{result.stdout}{result.stderr}"
    )


@pytest.mark.parametrize("filename", ["chatctl.bash", "_chatctl", "chatctl.fish"])
def test_shipped_script_matches_generator(filename: str) -> None:
    gen = load_generator()
    shell = next(s for s, f in gen.FILES.items() if f == filename)
    wanted = gen.generate(shell, gen.find_chatctl())
    assert (COMPLETIONS / filename).read_text(encoding="utf-8") == wanted, (
        f"completions/{filename} is stale, {REGENERATE}"
    )


def test_generated_scripts_are_machine_independent() -> None:
    for path in COMPLETIONS.iterdir():
        text = path.read_text(encoding="utf-8")
        assert text.endswith("\n")
        assert not text.endswith("\n\n")
        assert str(ROOT) not in text
        assert sys.prefix not in text
        assert str(Path.home()) not in text
    assert (COMPLETIONS / "_chatctl").read_text().startswith("#compdef chatctl\n"), (
        "zsh autoloads a completion file only if its first line is #compdef"
    )


@pytest.fixture
def generator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The generator, writing into copies of completions/ and of the table."""
    gen = load_generator()
    copy = tmp_path / "completions"
    shutil.copytree(COMPLETIONS, copy)
    table = tmp_path / "completion_data.py"
    shutil.copy(gen.TABLE, table)
    monkeypatch.setattr(gen, "COMPLETIONS", copy)
    monkeypatch.setattr(gen, "TABLE", table)
    return gen


def test_check_reports_stale_file_and_regeneration_fixes_it(
    generator: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = generator.COMPLETIONS
    (copy / "chatctl.fish").write_text("# stale\n")

    assert generator.main(["--check"]) == 1
    err = capsys.readouterr().err
    assert "chatctl.fish" in err
    assert "_chatctl" not in err
    assert "completion_data" not in err
    assert "gen_completions.py" in err
    assert (copy / "chatctl.fish").read_text() == "# stale\n", "--check must not write"

    assert generator.main([]) == 0
    assert generator.main(["--check"]) == 0
    assert (copy / "chatctl.fish").read_bytes() == (COMPLETIONS / "chatctl.fish").read_bytes()


def test_check_reports_a_stale_table_and_regeneration_fixes_it(
    generator: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    table: Path = generator.TABLE
    current = table.read_text()
    table.write_text(current.replace('"--max-clients"', '"--max-client"'))

    assert generator.main(["--check"]) == 1
    err = capsys.readouterr().err
    assert "completion_data.py (table)" in err
    assert "chatctl.fish" not in err

    assert generator.main([]) == 0
    assert table.read_text() == current


def test_the_table_is_what_the_app_makes() -> None:
    gen = load_generator()
    assert gen.TABLE.read_text(encoding="utf-8") == gen.table(), (
        f"chatctl/cli/completion_data.py is stale, {REGENERATE}"
    )


# --------------------------------------------------------------------------- requests


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completing_s_offers_serve_send_and_status(shell: str, home: dict[str, str]) -> None:
    assert complete(shell, "chatctl s", home) == ["serve", "send", "status"]


def test_bash_completion_lists_exactly_the_matching_commands(home: dict[str, str]) -> None:
    assert complete("bash", "chatctl s", home) == ["serve", "send", "status"]
    assert complete("bash", "chatctl j", home) == ["join"]


def test_bash_completion_offers_the_bench_scenarios(home: dict[str, str]) -> None:
    assert complete("bash", "chatctl bench ", home) == ["fanout", "rate", "idle", "stuck", "rooms"]
    assert complete("bash", "chatctl bench s", home) == ["stuck"]


def test_bash_completion_offers_options_of_a_command(home: dict[str, str]) -> None:
    options = complete("bash", "chatctl status --", home)
    assert {"--host", "--port", "--json"} <= set(options)
    assert "--verbose" not in options


# --------------------------------------------------------------------------- shells


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_shipped_bash_script_completes_in_bash(home: dict[str, str]) -> None:
    script = (
        f"source {COMPLETIONS / 'chatctl.bash'}\n"
        "COMP_WORDS=(chatctl s); COMP_CWORD=1\n"
        "_chatctl_completion chatctl\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    result = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", script],
        capture_output=True,
        text=True,
        timeout=30 * FACTOR,
        env=env(PATH=_path_with_chatctl(), **home),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["serve", "send", "status"]


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed")
def test_shipped_fish_script_completes_in_fish(home: dict[str, str]) -> None:
    script = f"source {COMPLETIONS / 'chatctl.fish'}; complete -C 'chatctl s'"
    result = subprocess.run(
        ["fish", "--no-config", "-c", script],
        capture_output=True,
        text=True,
        timeout=30 * FACTOR,
        env=env(PATH=_path_with_chatctl(), **home),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    offered = [line.split("\t")[0] for line in result.stdout.splitlines()]
    assert sorted(offered) == ["send", "serve", "status"]  # fish sorts them its own way


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
def test_shipped_zsh_script_parses(home: dict[str, str]) -> None:
    result = subprocess.run(
        ["zsh", "-f", "-n", str(COMPLETIONS / "_chatctl")],
        capture_output=True,
        text=True,
        timeout=30 * FACTOR,
        env=env(**home),
        check=False,
    )
    assert result.returncode == 0, result.stderr


def _path_with_chatctl() -> str:
    """PATH with the venv's bin first, so the scripts' bare ``chatctl`` is this one."""
    return f"{Path(sys.executable).parent}:{env()['PATH']}"


# --------------------------------------------------------------------------- typer options


def test_show_completion_prints_a_bash_script(home: dict[str, str]) -> None:
    result = run_chatctl("--show-completion", "bash", **home)
    assert result.returncode == 0, result.stderr
    assert "complete -o default -F _chatctl_completion chatctl" in result.stdout
    assert "_CHATCTL_COMPLETE=complete_bash" in result.stdout
    assert result.stdout.strip() == (COMPLETIONS / "chatctl.bash").read_text().strip()
    assert not any(Path(home["HOME"]).iterdir()), "--show-completion must write nothing"


def test_install_completion_stays_inside_home(home: dict[str, str]) -> None:
    result = run_chatctl("--install-completion", "bash", **home)
    assert result.returncode == 0, result.stderr
    fake_home = Path(home["HOME"])
    installed = fake_home / ".bash_completions" / "chatctl.sh"
    assert installed.is_file()
    assert f"source '{installed}'" in (fake_home / ".bashrc").read_text()
