"""The interactive ``chatctl join``: a prompt that stays usable while the connection comes and goes.

How the prompt and the receive loop share the terminal: prompt_toolkit's
``prompt_async`` owns the input line and ``patch_stdout(raw=True)`` turns every
write to stdout into "erase the prompt, print, redraw the prompt with what was
typed so far". The receive loop therefore just prints Rich output to stdout.
``raw=True`` lets Rich's colour codes through; that is safe only because every
untrusted string was escaped by ``protocol.clean_frame`` before it got here.

When the connection is lost, or the server shuts down, the client keeps the
prompt and rejoins under the same name, waiting 1, 2, 4, 8, 16, then 30 seconds
between attempts (``client.backoff``). Nothing is silently lost: lines the lost
connection never relayed (``client.Unconfirmed``) are listed as not sent, and
lines typed while offline are not queued but reported at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from rich.console import Console

from chatctl.client import (
    ChatClient,
    ClientError,
    Refused,
    TlsOptions,
    backoff,
    worth_retrying,
)
from chatctl.exitcodes import ExitCode, exit_code_for
from chatctl.protocol import ErrorCode
from chatctl.ui.chat import QUIT_WORDS, Show, notice_line_now, receive, send
from chatctl.ui.render import unsent_line, welcome_line

if TYPE_CHECKING:
    from prompt_toolkit import PromptSession
    from prompt_toolkit.formatted_text import FormattedText

#: Seconds to wait for the server to close after we said goodbye.
LEAVE_TIMEOUT = 2.0


async def run_interactive(
    client: ChatClient,
    host: str,
    port: int,
    *,
    tls: TlsOptions | None = None,
    password: str | None = None,
) -> int:
    """Chat at a prompt until the user leaves or rejoining is pointless; the exit code."""
    from prompt_toolkit import PromptSession
    from prompt_toolkit.formatted_text import FormattedText
    from prompt_toolkit.patch_stdout import patch_stdout

    # file=None: Rich looks up sys.stdout at each print, i.e. the patched proxy.
    console = Console(force_terminal=True, highlight=False, soft_wrap=True)
    show = Show(console)
    session: PromptSession[str] = PromptSession(erase_when_done=True)
    prompt = FormattedText([("bold", f"{client.name}"), ("", "> ")])
    link = _Link(client, host, port, show, tls, password)
    # Raw mode for the whole session, not only while a prompt runs: keys typed between
    # one Enter and the next prompt would otherwise be echoed by the terminal itself.
    with session.input.raw_mode(), patch_stdout(raw=True):
        show(welcome_line(client.welcome))
        keeper = asyncio.create_task(link.keep())
        try:
            while True:
                asking = asyncio.ensure_future(_ask(session, prompt))
                await asyncio.wait({asking, keeper}, return_when=asyncio.FIRST_COMPLETED)
                if keeper.done():
                    asking.cancel()
                    await asyncio.gather(asking, return_exceptions=True)
                    return keeper.result()
                line = asking.result()
                if line is None or line.strip() in QUIT_WORDS:
                    return await link.leave()
                await link.send(line)
        finally:
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)
            await link.close()


async def _ask(session: PromptSession[str], prompt: FormattedText) -> str | None:
    """One line from the user; None for Ctrl-D or Ctrl-C.

    Caught here because a KeyboardInterrupt escaping a task stops the whole loop.
    """
    try:
        return await session.prompt_async(prompt)
    except (EOFError, KeyboardInterrupt):
        return None


class _Link:
    """The connection behind the prompt: ``client`` is None while offline."""

    def __init__(
        self,
        client: ChatClient,
        host: str,
        port: int,
        show: Show,
        tls: TlsOptions | None = None,
        password: str | None = None,
    ) -> None:
        self.client: ChatClient | None = client
        self.host = host
        self.port = port
        self.tls = tls
        self.password = password
        self.name = client.name
        self.show = show

    async def keep(self) -> int:
        """Show what arrives; after each loss, rejoin. Returns when we left or must stop."""
        while True:
            client = self.client
            assert client is not None  # noqa: S101  narrows: keep() runs only while connected
            error = await receive(client, self.show)
            if client.leaving:
                return ExitCode.OK
            # Offline from here: report the loss before anything else can print.
            self.client = None
            delays = backoff()
            delay = next(delays)
            why = str(error) if error else f"connection to {client.where} closed by the server"
            self.show(notice_line_now(f"{why}; reconnecting in {delay:g} s…", "yellow"))
            for line in client.unconfirmed.take():
                self.show(unsent_line(time.time(), line))
            await client.close()
            code = await self._rejoin(delay, delays)
            if code is not None:
                return code

    async def _rejoin(self, delay: float, delays: Iterator[float]) -> int | None:
        """Try to join again until it works (None) or cannot work (the exit code)."""
        attempt = 0
        while True:
            await asyncio.sleep(delay)
            attempt += 1
            try:
                self.client = await ChatClient.join(
                    self.host, self.port, self.name, tls=self.tls, password=self.password
                )
            except ClientError as exc:
                if not worth_retrying(exc):
                    self.show(notice_line_now(f"cannot rejoin: {exc}", "bold red"))
                    return exit_code_for(exc)
                delay = next(delays)
                why = exc.reason
                if isinstance(exc, Refused):
                    delay = max(delay, exc.retry_after or 0.0)
                    if exc.code == ErrorCode.NAME_TAKEN:
                        why += " (the old session may still be open)"
                self.show(
                    notice_line_now(
                        f"attempt {attempt} failed: {why}; retrying in {delay:g} s…", "yellow"
                    )
                )
                continue
            self.show(welcome_line(self.client.welcome, hint=False, again=True))
            return None

    async def send(self, line: str) -> None:
        if not line.strip():
            return
        if self.client is None:
            self.show(unsent_line(time.time(), line, offline=True))
            return
        await send(self.client, line, self.show)

    async def leave(self) -> int:
        """Say goodbye if connected, and wait (a little) for the server to close."""
        client = self.client
        if client is not None and not client.ended:
            await client.leave()
            await client.wait_ended(LEAVE_TIMEOUT)
        return ExitCode.OK

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()
