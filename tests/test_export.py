"""``chatctl export`` and ``chatctl history``: real servers, real processes, real history files.

The Markdown is read back with markdown-it (CommonMark, plus GFM's tables and
strikethrough; Rich depends on it): whatever a message holds, the only HTML that comes
out is the timeline's own (headings, the list, bold names), and each item's text is the
message as it was sent. The children run in a zone of UTC+05:30 (a POSIX ``TZ`` that needs
no tz database), so local times are checked as local, not as UTC.
"""

from __future__ import annotations

import asyncio
import html
import json
import re
import time
import typing
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from chatctl.cli.export import Format
from chatctl.client import ChatClient, Refused, past
from chatctl.exitcodes import ExitCode
from chatctl.protocol import ErrorCode, Message, clean_line
from chatctl.server.config import ServerConfig
from chatctl.server.history import History
from chatctl.server.listener import ChatServer
from chatctl.server.store import Store
from chatctl.ui.timeline import FORMATS, markdown, markdown_text
from tests.support import FACTOR, run_chatctl, serve_process

#: The children's zone: India, 5 h 30 min east of UTC, no summer time.
ZONE = "IST-5:30"
OFFSET = 5.5 * 3600
MARKDOWN = MarkdownIt("commonmark").enable(["table", "strikethrough"])
#: The only elements an export's Markdown may turn into.
OWN_TAGS = {"h1", "h2", "p", "ul", "li", "strong", "br"}


def local(timestamp: float, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    """``timestamp`` as the children show it, in ZONE."""
    return time.strftime(fmt, time.gmtime(timestamp + OFFSET))


def day(timestamp: float) -> str:
    t = time.gmtime(timestamp + OFFSET)
    return f"{time.strftime('%A', t)} {t.tm_mday} {time.strftime('%B %Y', t)}"


def export(port: int, *args: str) -> tuple[int, str, str]:
    result = run_chatctl("export", "--port", str(port), "--as", "reader", *args, TZ=ZONE)
    return result.returncode, result.stdout, result.stderr


def items(rendered: str) -> list[str]:
    """The text of each list item of the HTML, tags dropped, entities decoded."""
    return [
        html.unescape(re.sub(r"<[^>]+>", "", item)).replace("\n", "⏎")
        for item in re.findall(r"<li>(.*?)</li>", rendered, flags=re.S)
    ]


def tags(rendered: str) -> set[str]:
    return set(re.findall(r"</?([a-zA-Z0-9]+)", rendered))


def seed(path: Path, room: str, messages: list[tuple[float, str, str]]) -> None:
    """Write (time, name, text) messages into a history file, as a server would have."""
    store = Store.open(path)
    history = History(store)
    history.room_seq(room)
    for seq, (when, name, text) in enumerate(messages, start=1):
        history.add(Message(seq, when, name, text, room))
    history.mark(room, len(messages))
    history.commit()
    history.close()
    store.close()


# --------------------------------------------------------------------------- the formats


def test_the_formats_typer_offers_are_the_timelines() -> None:
    assert set(typing.get_args(Format)) == set(FORMATS)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(
                [
                    *r"\`*_[]<>#!|~&$@-+=.):{}^",
                    *(" ", "    ", "1", "&amp;", "&#x41;", "```", "~~~", "http://x.y"),
                    *("<a href=x>", "![i](u)", "[r]: /u", "- ", "1. ", "> "),
                ]
            ),
            st.text(st.characters(codec="utf-8"), max_size=3),
        ),
        max_size=12,
    ).map("".join)
)
def test_any_line_shows_as_it_is_and_makes_no_markup(raw: str) -> None:
    line = clean_line(raw)  # what the client core hands on: controls escaped
    rendered = MARKDOWN.render(markdown_text(line))
    text = html.unescape(re.sub(r"</?p>", "", rendered))
    assert tags(rendered) <= {"p"}, rendered
    assert text.split() == line.split(), rendered  # the words; Markdown trims the ends
    lead = len(line) - len(line.lstrip(" "))
    if line.strip():
        assert text.startswith("\xa0" * lead), rendered  # indentation kept


def test_markdown_dates_each_day_and_keeps_multi_line_messages_in_their_item() -> None:
    first, second = 1_796_000_000.0, 1_796_000_000.0 + 2 * 86400
    messages = [
        Message(1, first, "alice", "one\n\n- two\n    three\n# four", "#ops"),
        Message(2, first + 60, "bob_", "waves *hard*", "#ops", action=True),
        Message(3, second, "carol", "next day", "#ops"),
    ]
    text = "".join(markdown("#ops", messages, None, second + 5))
    rendered = MARKDOWN.render(text)
    assert tags(rendered) <= OWN_TAGS, rendered
    days = [time.localtime(t) for t in (first, second)]
    assert re.findall(r"<h2>(.*?)</h2>", rendered) == [
        f"{time.strftime('%A', d)} {d.tm_mday} {time.strftime('%B %Y', d)}" for d in days
    ]
    clock = [time.strftime("%H:%M:%S", time.localtime(m.time)) for m in messages]
    assert items(rendered) == [
        f"{clock[0]} alice: one⏎\xa0⏎- two⏎\xa0\xa0\xa0\xa0three⏎# four",
        f"{clock[1]} * bob_ waves *hard*",
        f"{clock[2]} carol: next day",
    ]


# --------------------------------------------------------------------------- paging (in process)


async def test_paging_stops_at_the_limit_says_older_ones_match_and_refuses_other_rooms(
    tmp_path: Path,
) -> None:
    path = tmp_path / "h.sqlite3"
    start = time.time() - 3600
    seed(path, "#ops", [(start + n, "alice", f"m{n}") for n in range(1, 1101)])
    config = ServerConfig(host="127.0.0.1", port=0, history=str(path))
    async with ChatServer(config, lambda event: None) as server:
        client = await ChatClient.join("127.0.0.1", server.port, "reader", rooms=["#ops"])
        frames = aiter(client)
        try:
            async with asyncio.timeout(20 * FACTOR):
                newest = await past(client, frames, "#ops", 700)
                assert [m.text for m in newest.messages] == [f"m{n}" for n in range(401, 1101)]
                assert newest.more
                everything = await past(client, frames, "#ops", 5000)
                assert [m.seq for m in everything.messages] == list(range(1, 1101))
                assert not everything.more
                exact = await past(client, frames, "#ops", 1100)
                assert len(exact.messages) == 1100
                assert not exact.more
                since = await past(client, frames, "#ops", 5000, since=start + 1001)
                assert [m.text for m in since.messages] == [f"m{n}" for n in range(1001, 1101)]
                with pytest.raises(Refused) as refused:
                    await past(client, frames, "#elsewhere", 10)
                assert refused.value.code == ErrorCode.NOT_IN_ROOM
        finally:
            await client.leave()
            await client.close()


# --------------------------------------------------------------------------- real processes

HOSTILE_ALICE = [
    "**bold** _it_ [link](http://evil.example/) ![img](http://evil.example/t.png) `code`",
    "/me deploys v2.1 *now*",
    "esc \x1b[31mred\x1b[0m title \x1b]0;pwned\x07 done <script>x</script> &amp;",
]
HOSTILE_BOB = ["# not a heading", "- not a list | a | b |", "1. nor this ~~strike~~ $x$ @team"]


def test_export_in_each_format_keeps_hostile_text_inert(tmp_path: Path) -> None:
    with serve_process("--history", str(tmp_path / "h.sqlite3"), "--rate", "0") as serve:
        port = str(serve.port)
        for name, lines in (("alice", HOSTILE_ALICE), ("bob", HOSTILE_BOB)):
            said = run_chatctl(
                "join", name, "--port", port, "-r", "ops", "--commands", input="\n".join(lines)
            )
            assert said.returncode == 0, said.stderr

        code, out, err = export(serve.port, "--room", "ops", "--format", "json")
        assert (code, err) == (0, "")
        frames = [json.loads(line) for line in out.splitlines()]
        assert [(f["name"], f["text"]) for f in frames] == [
            ("alice", HOSTILE_ALICE[0]),
            ("alice", "deploys v2.1 *now*"),
            (
                "alice",
                r"esc \x1b[31mred\x1b[0m title \x1b]0;pwned\x07 done <script>x</script> &amp;",
            ),
            *(("bob", line) for line in HOSTILE_BOB),
        ]
        assert [f.get("action", False) for f in frames] == [False, True, False, False, False, False]
        keys = {"type", "seq", "time", "name", "text", "room", "id", "history"}  # tail --json's
        assert all(keys <= set(f) <= keys | {"action"} for f in frames), frames
        assert {(f["type"], f["room"], f["history"]) for f in frames} == {("message", "#ops", True)}

        code, txt, err = export(serve.port, "--room", "#OPS", "--format", "txt")
        assert (code, err) == (0, "")
        assert txt == "".join(
            f"[{local(f['time'])}] #ops * {f['name']} {f['text']}\n"
            if f.get("action")
            else f"[{local(f['time'])}] #ops {f['name']}: {f['text']}\n"
            for f in frames
        )

        code, md, err = export(serve.port, "--room", "ops")  # Markdown by default
        assert (code, err) == (0, "")
        first, last = local(frames[0]["time"]), local(frames[-1]["time"])
        assert md.startswith(f"# \\#ops: {first} to {last}\n\n6 messages; ")
        assert "times are local (IST, UTC+05:30)" in md
        rendered = MARKDOWN.render(md)
        assert tags(rendered) <= OWN_TAGS, rendered
        assert re.findall(r"<h1>(.*?)</h1>", rendered) == [f"#ops: {first} to {last}"]
        assert re.findall(r"<h2>(.*?)</h2>", rendered) == list(
            dict.fromkeys(day(f["time"]) for f in frames)  # one, unless sent over midnight
        )
        assert items(rendered) == [
            f"{local(f['time'], '%H:%M:%S')} * {f['name']} {f['text']}"
            if f.get("action")
            else f"{local(f['time'], '%H:%M:%S')} {f['name']}: {f['text']}"
            for f in frames
        ]

        target = tmp_path / "out" / "incident.md"
        target.parent.mkdir()
        target.write_text("an older export\n")
        code, out, err = export(serve.port, "--room", "ops", "--output", str(target))
        assert (code, out, err) == (0, "", "")
        exported = re.compile(r"exported \d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
        assert exported.sub("", target.read_text()) == exported.sub("", md)
        assert [p.name for p in target.parent.iterdir()] == ["incident.md"]  # no temporary left
    for text in (out, txt, md, target.read_text()):
        assert "\x1b" not in text
        assert "\x07" not in text


def test_since_takes_the_recent_messages_and_an_empty_timeline_says_so(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    now = time.time()
    old = [(now - 3 * 86400 + n, "alice", f"old {n}") for n in range(3)]
    recent = [(now - 600, "bob", "recent 1"), (now - 300, "alice", "recent 2")]
    seed(path, "#ops", old + recent)
    with serve_process("--history", str(path)) as serve:
        code, out, err = export(serve.port, "--room", "ops", "--since", "2h", "--format", "json")
        assert (code, err) == (0, "")
        assert [json.loads(line)["text"] for line in out.splitlines()] == ["recent 1", "recent 2"]

        code, md, err = export(serve.port, "--room", "ops")
        assert (code, err) == (0, "")
        rendered = MARKDOWN.render(md)
        days = dict.fromkeys(day(when) for when, _, _ in old + recent)  # 2 (3 near midnight)
        assert re.findall(r"<h2>(.*?)</h2>", rendered) == list(days)
        assert len(items(rendered)) == 5

        code, md, err = export(serve.port, "--room", "ops", "--since", "1m")
        assert code == 0
        assert re.fullmatch(r"chatctl: no messages in #ops since [-\d]+ [:\d]+: .*\n", err), err
        assert md.startswith("# \\#ops: since ")
        assert "<li>" not in MARKDOWN.render(md)

        code, out, err = export(serve.port, "--room", "quiet", "--format", "json")
        assert (code, out) == (0, "")
        assert "no messages in #quiet" in err


def test_export_pages_back_through_more_than_500_sent_messages(tmp_path: Path) -> None:
    with serve_process("--history", str(tmp_path / "h.sqlite3"), "--rate", "0") as serve:
        port = str(serve.port)
        texts = [f"n{i}" for i in range(1, 1204)]  # three pages, the last one short
        said = run_chatctl("join", "alice", "--port", port, "-r", "ops", input="\n".join(texts))
        assert said.returncode == 0, said.stderr
        code, out, err = export(serve.port, "--room", "ops", "--format", "json")
        assert (code, err) == (0, "")
        frames = [json.loads(line) for line in out.splitlines()]
        assert [f["text"] for f in frames] == texts
        seqs = [f["seq"] for f in frames]
        assert seqs == sorted(set(seqs))
        tail = run_chatctl("tail", "--port", port, "-r", "ops", "--since", "1h", "--json")
        assert tail.returncode == 0, tail.stderr
        assert tail.stdout == out  # the same pages, the same lines


def test_a_server_without_history_is_exit_15(tmp_path: Path) -> None:
    with serve_process("--no-history") as serve:
        target = tmp_path / "timeline.md"
        code, out, err = export(serve.port, "--room", "ops", "-o", str(target))
        assert (code, out) == (ExitCode.NO_HISTORY, "")
        assert "keeps no history (it runs with --no-history)" in err
        assert not target.exists()
        assert list(tmp_path.iterdir()) == []
        text = run_chatctl("history", "--port", str(serve.port))
        assert text.returncode == ExitCode.NO_HISTORY
        assert text.stdout == "history: none kept (the server runs with --no-history)\n"
        as_json = run_chatctl("history", "--port", str(serve.port), "--json")
        assert (as_json.returncode, as_json.stdout) == (ExitCode.NO_HISTORY, "null\n")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--room", "no spaces"], "rooms are '#' and 1-30"),
        ([], "Missing option '--room'"),
        (["-r", "ops", "--since", "yesterday"], "not a duration"),
        (["-r", "ops", "--format", "html"], "'html' is not one of"),
        (["-r", "ops", "-o", "/nonexistent-dir/x.md"], "cannot write /nonexistent-dir/x.md"),
    ],
    ids=["invalid-room", "no-room", "since", "format", "output"],
)
def test_bad_arguments_are_exit_2_before_connecting(args: list[str], says: str) -> None:
    # Port 1 has no chatctl server: exit 2, not 3, shows nothing was tried.
    result = run_chatctl("export", "--port", "1", *args)
    assert result.returncode == ExitCode.USAGE, result.stderr
    assert says in result.stderr
    assert "Traceback" not in result.stderr


def test_history_shows_the_file_its_messages_size_and_oldest(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    with serve_process("--history", str(path)) as serve:
        port = str(serve.port)
        said = run_chatctl("join", "alice", "--port", port, input="one\ntwo\nthree\n")
        assert said.returncode == 0, said.stderr
        as_json = run_chatctl("history", "--port", port, "--json", TZ=ZONE)
        assert as_json.returncode == 0, as_json.stderr
        info = json.loads(as_json.stdout)
        assert set(info) == {"messages", "bytes", "oldest", "path"}
        assert (info["messages"], info["path"]) == (3, str(path))
        assert info["bytes"] >= path.stat().st_size > 0
        assert abs(info["oldest"] - time.time()) < 60
        text = run_chatctl("history", "--port", port, TZ=ZONE)
        assert text.returncode == 0, text.stderr
        size = r"\d+(\.\d)? (B|KiB|MiB)"
        since = re.escape(local(info["oldest"], "%Y-%m-%d %H:%M"))
        assert re.fullmatch(
            rf"history: 3 messages, {size}, since {since}\nfile: {re.escape(str(path))}\n",
            text.stdout,
        ), text.stdout
