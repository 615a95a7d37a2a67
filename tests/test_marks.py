"""Read marks are told lazily, and never for a room we are out of (pure, on a real loop)."""

from __future__ import annotations

from chatctl.client.marks import ReadMarks
from chatctl.protocol import Read, client_frame_decoder


def sent(written: list[bytes]) -> list[object]:
    decoder = client_frame_decoder()
    decoder.feed(b"".join(written))
    frames = []
    while (frame := decoder.next_frame()) is not None:
        frames.append(frame)
    return frames


async def test_a_room_left_is_not_told() -> None:
    written: list[bytes] = []
    marks = ReadMarks(written.append, delay=3600)
    marks.shown("#ops", 7)
    marks.shown("#lobby", 3)
    marks.forget("#ops")  # kicked out of #ops: the server would refuse a read for it
    marks.send()
    assert sent(written) == [Read("#lobby", 3)]
    marks.shown("#ops", 2)  # back in #ops, whose numbers go on
    marks.send()
    assert sent(written)[1:] == [Read("#ops", 2)]
