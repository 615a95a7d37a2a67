"""Pure rules behind the password throttle and the access lists (chatctl.limits)."""

from __future__ import annotations

import pytest

from chatctl.limits import AccessList, FailureThrottle, parse_networks


def test_three_failures_a_minute_then_blocked_until_the_oldest_expires() -> None:
    throttle = FailureThrottle(3, 60.0)
    assert throttle.blocked("10.0.0.1", 0.0) is None
    for t in (0.0, 10.0, 20.0):
        throttle.fail("10.0.0.1", t)
    assert throttle.blocked("10.0.0.1", 21.0) == pytest.approx(39.0)
    assert throttle.blocked("10.0.0.2", 21.0) is None  # per address
    assert throttle.blocked("10.0.0.1", 60.5) is None  # the first failure is a minute old
    throttle.fail("10.0.0.1", 61.0)
    assert throttle.blocked("10.0.0.1", 61.0) == pytest.approx(9.0)


def test_two_failures_do_not_block_and_old_ones_are_forgotten() -> None:
    throttle = FailureThrottle(3, 60.0)
    throttle.fail("h", 0.0)
    throttle.fail("h", 1.0)
    assert throttle.blocked("h", 2.0) is None
    throttle.prune(200.0)
    assert throttle.failures == {}


def test_loopback_is_not_exempt() -> None:
    throttle = FailureThrottle(1, 60.0)
    throttle.fail("127.0.0.1", 0.0)
    assert throttle.blocked("127.0.0.1", 1.0) is not None


def test_no_lists_admit_everyone() -> None:
    assert AccessList([], []).permits("127.0.0.1")
    assert AccessList([], []).permits("?")


def test_allow_only_those_and_deny_wins() -> None:
    access = AccessList(parse_networks(["10.0.0.0/8", "fd00::/8"]), parse_networks(["10.9.0.0/16"]))
    assert access.permits("10.1.2.3")
    assert access.permits("fd00::1")
    assert not access.permits("10.9.1.1")  # denied inside an allowed network
    assert not access.permits("127.0.0.1")
    assert not access.permits("192.168.1.1")
    assert access.permits("::ffff:10.1.2.3")  # an IPv4-mapped address is its IPv4 one
    assert not access.permits("not-an-address")


def test_deny_only_lets_the_rest_in() -> None:
    access = AccessList([], parse_networks(["192.168.1.7"]))
    assert not access.permits("192.168.1.7")
    assert access.permits("192.168.1.8")


def test_bad_networks_are_refused_with_the_value() -> None:
    with pytest.raises(ValueError, match=r"10\.0\.0\.0/33"):
        parse_networks(["10.0.0.0/33"])
    with pytest.raises(ValueError, match="lan"):
        parse_networks(["lan"])
