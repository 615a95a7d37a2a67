"""Load generator behind ``chatctl bench``: many clients on raw sockets, measured from outside.

No terminal code here (``chatctl.ui.bench`` draws the table and the progress
bar). The parent process only orchestrates: it starts ``chatctl serve`` on
loopback (pacing off, limits raised to fit, ``--no-history``, or with ``history`` a
history file in a temporary folder removed afterwards) or uses ``host``/``port``, starts
``procs`` worker processes that each own a share of the clients, says go,
waits for the run and the drain, and gathers the figures. Each worker runs one
asyncio loop with a ``BufferedProtocol`` per client: no streams, no Rich, no
frame objects on the receive path.

How it measures:

* Every message text carries a mark, the sending process and room, the client, a
  sequence number and ``time.monotonic_ns()`` taken just before the write
  (``~chatctl-bench~0# 3 17 123456789 xxx``; ``0#12`` in room 12 of ``rooms``).
  CLOCK_MONOTONIC is system-wide on Linux, so a receiver in another process subtracts it
  directly.
* Receivers do not parse lines. Per read they count newlines and marks with
  ``bytearray.count`` (C speed) and parse only the first and the last message
  of the read for a latency sample, so one core takes millions of deliveries
  per second. Lines without a mark (welcomes, joins, leaves, errors, ncat's
  announcements) are rare and are parsed one by one; error codes are counted.
* ``fanout``, ``stuck`` and ``rooms`` are window-limited: per room, a worker keeps at most
  ``senders * window`` of its messages in flight, where a message leaves the
  window once the slowest client in that room, in any worker, has it. So no
  receiver falls behind without bound, and the rate is whatever the server
  and the generator together sustain.
* ``rate`` (and ``rooms --rate``) sends at a fixed total rate, open loop, and measures
  latency.
* ``rooms``: R rooms of M members, a client in one room or in several
  (``layout`` says who is where); the single-room scenarios are one room, the
  server's default. Bench speaks protocol version 2, and version 1 to a server that
  refuses a version-2 hello with ``unsupported_version`` (single-room scenarios only).
* ``idle`` connects as many clients as it can within the time and reads the
  server's resident memory before and after.
* Messages lost = deliveries expected (messages accepted into each room times its
  receivers) minus deliveries counted, after a drain.
* Server CPU and peak RSS come from ``/proc/<pid>`` (the server bench started,
  or ``server_pid``); the generator's CPU from ``getrusage`` in each worker.

Raw mode (``raw=True``) speaks plain lines instead of chatctl frames, for line
relays such as ``ncat --chat`` and ``benchmarks/relay.py``; those do not send a
line back to its sender, so a message has one receiver fewer.

IRC (``irc=True``, or ``irc_share`` for a fraction of the clients): those clients speak
IRC (``irc``): to the IRC door of the server bench starts (``serve --irc 0``, its port read
from the log), or with ``host``/``port`` to an IRC server (ngIRCd). Each asks for
``echo-message``; bench asks the server first (``CAP LS``), and a server without it (ngIRCd
26) is counted as a line relay is, one receiver fewer. The receivers' hot path is the same:
an IRC line ends in LF too, and a PRIVMSG carries the marked text.

One job a module, each importing only those below it:

* ``run``: the parent's side of a run (``run_bench``): server, workers, phases.
* ``figures``: the result of a finished run from the workers' reports.
* ``verdicts``: which side was busy, and the notes a reader must see.
* ``phases``: the parent's idle phase and the verdict on the stuck client.
* ``target``: the server under test: ``chatctl serve`` started, its protocol version,
  whether an IRC server echoes, its status, the stuck client.
* ``worker``: a worker process: its clients, counters and shared progress; ``pumps`` (how
  it sends) and ``idle`` (the idle run).
* ``irc``: the IRC clients (room and idle), which clients speak IRC, their registration.
* ``clients``: the connections, and the receivers' hot path.
* ``shared``: each worker's plan, and the counters in shared memory.
* ``layout``: who is in which room and who sends where.
* ``system``: ``/proc`` readings and CPU time.
* ``results`` and ``config``: what a run gives back, and what it can be asked for.
"""

from chatctl.bench.clients import MARK, PROBE
from chatctl.bench.config import MAX_SIZE, MIN_SIZE, SCENARIOS, BenchConfig, BenchError
from chatctl.bench.results import (
    BenchProgress,
    BenchResult,
    GeneratorFigures,
    IdleFigures,
    Latency,
    MachineFigures,
    ProgressCallback,
    ServerFigures,
    StuckFigures,
)
from chatctl.bench.run import run_bench

__all__ = [
    "MARK",
    "MAX_SIZE",
    "MIN_SIZE",
    "PROBE",
    "SCENARIOS",
    "BenchConfig",
    "BenchError",
    "BenchProgress",
    "BenchResult",
    "GeneratorFigures",
    "IdleFigures",
    "Latency",
    "MachineFigures",
    "ProgressCallback",
    "ServerFigures",
    "StuckFigures",
    "run_bench",
]
