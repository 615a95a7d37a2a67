"""chatctl/limits.py on its own: every rule driven by a made-up clock, no sockets, no sleeps."""

from __future__ import annotations

import itertools

import pytest

from chatctl.limits import AddressGate, ErrorBudget, Refusal, TokenBucket, is_loopback

LAN = "192.168.1.20"
OTHER = "192.168.1.21"

# --------------------------------------------------------------------------- TokenBucket


def test_bucket_gives_the_whole_burst_at_once_then_asks_to_wait() -> None:
    bucket = TokenBucket(burst=5, rate=2.0, now=100.0)
    assert [bucket.delay(100.0) for _ in range(5)] == [0.0] * 5
    assert bucket.delay(100.0) == pytest.approx(0.5)  # one token at 2/s


def test_a_refused_delay_takes_no_token() -> None:
    bucket = TokenBucket(burst=1, rate=4.0, now=0.0)
    assert bucket.delay(0.0) == 0.0
    # Asking again and again while empty does not push the next token further away.
    assert [bucket.delay(0.0) for _ in range(3)] == [pytest.approx(0.25)] * 3
    assert bucket.delay(0.1) == pytest.approx(0.15)
    assert bucket.delay(0.25) == 0.0
    assert bucket.delay(0.25) == pytest.approx(0.25)


def test_bucket_refills_at_rate_and_never_above_burst() -> None:
    bucket = TokenBucket(burst=3, rate=10.0, now=0.0)
    for _ in range(3):
        assert bucket.delay(0.0) == 0.0
    assert bucket.delay(0.0) > 0
    assert bucket.delay(0.1) == 0.0  # 0.1 s at 10/s: exactly one token back
    assert bucket.delay(0.1) > 0
    # A long idle spell refills to the burst, not to rate * idle time.
    later = 1000.0
    assert [bucket.delay(later) for _ in range(3)] == [0.0] * 3
    assert bucket.delay(later) == pytest.approx(0.1)


def test_fractional_tokens_shorten_the_wait() -> None:
    bucket = TokenBucket(burst=1, rate=2.0, now=0.0)
    assert bucket.delay(0.0) == 0.0
    assert bucket.delay(0.25) == pytest.approx(0.25)  # half a token earned: half the wait


def test_a_sender_that_honours_the_delays_gets_burst_then_rate() -> None:
    """A simulated sender of 100 frames: nothing is refused for good, the pace is exact."""
    burst, rate = 20, 5.0
    bucket = TokenBucket(burst, rate, now=0.0)
    now, sent_at = 0.0, []
    for _ in range(100):
        while (wait := bucket.delay(now)) > 0:
            # Waiting exactly the delay may leave 0.999... tokens (floating point);
            # a real clock always moves on a little, so step at least a microsecond.
            now += max(wait, 1e-6)
        sent_at.append(now)
    assert sent_at[:burst] == [0.0] * burst
    assert sent_at[-1] == pytest.approx((100 - burst) / rate, abs=1e-4)
    gaps = [b - a for a, b in itertools.pairwise(sent_at[burst:])]
    assert all(g == pytest.approx(1 / rate, abs=1e-5) for g in gaps)


def test_rate_zero_turns_pacing_off() -> None:
    bucket = TokenBucket(burst=1, rate=0.0, now=0.0)
    assert all(bucket.delay(0.0) == 0.0 for _ in range(10_000))


def test_burst_below_one_still_lets_one_frame_through() -> None:
    bucket = TokenBucket(burst=0, rate=1.0, now=0.0)
    assert bucket.burst == 1
    assert bucket.delay(0.0) == 0.0
    assert bucket.delay(0.0) == pytest.approx(1.0)


# --------------------------------------------------------------------------- ErrorBudget


def test_error_budget_trips_on_the_limit_th_error_within_the_window() -> None:
    budget = ErrorBudget(limit=10, window=10.0)
    assert [budget.spend(float(t)) for t in range(9)] == [False] * 9
    assert budget.spend(9.0) is True  # the tenth within ten seconds


def test_error_budget_forgets_errors_older_than_the_window() -> None:
    budget = ErrorBudget(limit=3, window=10.0)
    assert budget.spend(0.0) is False
    assert budget.spend(1.0) is False
    # The first error is exactly one window old: it no longer counts.
    assert budget.spend(10.0) is False
    assert budget.spend(10.5) is True  # 1.0, 10.0, 10.5


def test_errors_spread_thinner_than_the_budget_never_trip_it() -> None:
    budget = ErrorBudget(limit=3, window=5.0)
    assert not any(budget.spend(t * 2.5) for t in range(1000))
    tight = ErrorBudget(limit=3, window=5.0)
    assert any(tight.spend(t * 2.0) for t in range(3))


# --------------------------------------------------------------------------- AddressGate


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "localhost"])
def test_loopback_is_exempt_by_default(host: str) -> None:
    gate = AddressGate(max_concurrent=2, max_new_per_minute=3)
    assert is_loopback(host)
    assert all(gate.admit(host, 0.0) is None for _ in range(100))
    assert gate.concurrent == {}
    assert gate.recent == {}
    gate.release(host)  # releasing an uncounted connection is harmless
    assert gate.concurrent == {}


@pytest.mark.parametrize("host", ["192.168.1.20", "10.0.0.1", "fe80::1", "2001:db8::1", "lan"])
def test_other_addresses_are_not_loopback(host: str) -> None:
    assert not is_loopback(host)


def test_limit_loopback_applies_the_limits_to_loopback_too() -> None:
    gate = AddressGate(max_concurrent=2, max_new_per_minute=30, limit_loopback=True)
    assert gate.admit("127.0.0.1", 0.0) is None
    assert gate.admit("127.0.0.1", 0.0) is None
    refusal = gate.admit("127.0.0.1", 0.0)
    assert refusal is not None
    assert refusal.code == "throttled"


def test_concurrent_limit_per_address_with_retry_after() -> None:
    gate = AddressGate(max_concurrent=2, max_new_per_minute=30)
    assert gate.admit(LAN, 0.0) is None
    assert gate.admit(LAN, 1.0) is None
    refusal = gate.admit(LAN, 2.0)
    assert isinstance(refusal, Refusal)
    assert refusal.code == "throttled"
    assert refusal.retry_after_ms is not None
    assert refusal.retry_after_ms > 0
    assert "2" in refusal.message  # says what the limit is
    # Another address is not affected.
    assert gate.admit(OTHER, 2.0) is None
    # One of the two leaves: room for one more, not two.
    gate.release(LAN)
    assert gate.admit(LAN, 3.0) is None
    assert gate.admit(LAN, 3.0) is not None
    assert gate.concurrent == {LAN: 2, OTHER: 1}


def test_refused_attempts_do_not_count_as_new_connections() -> None:
    gate = AddressGate(max_concurrent=1, max_new_per_minute=2)
    assert gate.admit(LAN, 0.0) is None
    for t in range(1, 20):  # a client hammering while its one slot is taken
        assert gate.admit(LAN, float(t)) is not None
    gate.release(LAN)
    assert gate.admit(LAN, 20.0) is None  # the second new connection this minute
    gate.release(LAN)
    refusal = gate.admit(LAN, 21.0)
    assert refusal is not None
    assert refusal.retry_after_ms == 39_000  # the first one (t=0) ages out at t=60


def test_new_connections_per_minute_and_retry_after_ms() -> None:
    gate = AddressGate(max_concurrent=100, max_new_per_minute=3)
    for t in (0.0, 10.0, 20.0):
        assert gate.admit(LAN, t) is None
        gate.release(LAN)
    refusal = gate.admit(LAN, 30.0)
    assert refusal is not None
    assert refusal.code == "throttled"
    assert refusal.retry_after_ms == 30_000
    assert "30 s" in refusal.message
    near = gate.admit(LAN, 59.95)
    assert near is not None
    assert near.retry_after_ms is not None
    assert 1 <= near.retry_after_ms <= 50
    # Exactly a minute after the first: it has aged out.
    assert gate.admit(LAN, 60.0) is None
    assert gate.admit(LAN, 60.0) is not None  # 10, 20, 60 within the minute again
    assert gate.admit(OTHER, 60.0) is None


def test_retry_after_is_never_zero() -> None:
    gate = AddressGate(max_concurrent=100, max_new_per_minute=1)
    assert gate.admit(LAN, 0.0) is None
    refusal = gate.admit(LAN, 59.99999)
    assert refusal is not None
    assert refusal.retry_after_ms is not None
    assert refusal.retry_after_ms >= 1


def test_release_forgets_an_address_with_no_connections_left() -> None:
    gate = AddressGate(max_concurrent=5, max_new_per_minute=30)
    assert gate.admit(LAN, 0.0) is None
    assert gate.admit(LAN, 0.0) is None
    gate.release(LAN)
    assert gate.concurrent == {LAN: 1}
    gate.release(LAN)
    assert gate.concurrent == {}
    gate.release(LAN)  # one release too many never goes negative
    assert gate.concurrent == {}
    assert gate.admit(LAN, 1.0) is None
    assert gate.concurrent == {LAN: 1}


def test_prune_forgets_addresses_not_seen_for_a_minute() -> None:
    gate = AddressGate(max_concurrent=5, max_new_per_minute=2)
    for i in range(1000):
        host = f"10.0.{i // 256}.{i % 256}"
        assert gate.admit(host, 0.0) is None
        gate.release(host)
    assert gate.admit(LAN, 30.0) is None
    gate.prune(59.0)
    assert len(gate.recent) == 1001  # nobody is a minute old yet
    gate.prune(60.0)
    assert set(gate.recent) == {LAN}
    gate.prune(90.0)
    assert gate.recent == {}
    # A pruned address starts again with a full allowance.
    assert gate.admit(LAN, 91.0) is None
    gate.release(LAN)
    assert gate.admit(LAN, 91.0) is None


def test_a_frame_may_cost_several_tokens_never_more_than_a_burst() -> None:
    """An IRC line to four targets costs four, as four lines would."""
    bucket = TokenBucket(burst=5, rate=1.0, now=0.0)
    assert bucket.delay(0.0, 4) == 0.0
    assert bucket.delay(0.0, 2) == pytest.approx(1.0)  # one left, two wanted
    assert bucket.delay(1.0, 2) == 0.0
    assert bucket.delay(100.0, 50) == 0.0  # a burst's worth at most: never waits forever
    assert bucket.delay(100.0, 1) == pytest.approx(1.0)
