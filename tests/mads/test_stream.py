"""The MADS stream state machine, driven without sockets."""

from __future__ import annotations

import pytest

from kuma.mads import MONITORING_ASSIGNMENT_TYPE as T
from kuma.mads.stream import (
    Acked,
    AssignmentsChanged,
    ErrorDetail,
    Ignored,
    MadsStreamState,
    Rejected,
    RequestReceived,
    ScheduleRetry,
    SendResponse,
    TimerFired,
)


def req(
    version: str = "",
    nonce: str = "",
    *,
    error: str | None = None,
    now: float = 0.0,
    type_url: str = T,
) -> RequestReceived:
    detail = ErrorDetail(3, error) if error is not None else None
    return RequestReceived(type_url, version, nonce, detail, now)


def test_nothing_is_sent_before_the_client_asks_or_before_there_is_a_set() -> None:
    s = MadsStreamState(T)
    assert s.handle(AssignmentsChanged("v1", 0.0)) == []
    assert s.handle(req()) == [SendResponse("v1", "1")]
    s2 = MadsStreamState(T)
    assert s2.handle(req()) == []
    assert s2.handle(AssignmentsChanged("v1", 0.0)) == [SendResponse("v1", "1")]


def test_one_response_in_flight_and_the_newest_version_follows_the_ack() -> None:
    s = MadsStreamState(T)
    s.handle(AssignmentsChanged("v1", 0.0))
    assert s.handle(req()) == [SendResponse("v1", "1")]
    assert s.handle(AssignmentsChanged("v2", 0.1)) == []
    assert s.handle(AssignmentsChanged("v3", 0.2)) == []
    assert s.handle(req("v1", "1")) == [Acked("v1", "1"), SendResponse("v3", "2")]
    assert s.handle(req("v3", "2")) == [Acked("v3", "2")]
    assert s.client_version == "v3"
    # the same version again (content hash unchanged): nothing to send
    assert s.handle(AssignmentsChanged("v3", 0.3)) == []


def test_a_client_that_already_has_the_version_gets_nothing() -> None:
    s = MadsStreamState(T)
    s.handle(AssignmentsChanged("v1", 0.0))
    assert s.handle(req("v1")) == []  # e.g. reconnected with the version it holds


def test_stale_and_unknown_nonces_change_nothing() -> None:
    s = MadsStreamState(T)
    s.handle(AssignmentsChanged("v1", 0.0))
    s.handle(req())
    s.handle(req("v1", "1"))
    s.handle(AssignmentsChanged("v2", 0.0))  # sent with nonce 2
    assert s.handle(req("v1", "1")) == [Acked("v1", "1", stale=True)]
    assert s.handle(req("v1", "1", error="late")) == [Rejected("v1", "1", 3, "late", stale=True)]
    assert s.handle(req("v1", "99")) == [Ignored(T, "99", "unknown nonce")]
    assert s.handle(req("v1", "")) == [Ignored(T, "", "no nonce after a response")]
    assert s.handle(req("v2", "2")) == [Acked("v2", "2")]


def test_other_types_are_ignored_and_an_empty_type_means_assignments() -> None:
    s = MadsStreamState(T)
    s.handle(AssignmentsChanged("v1", 0.0))
    assert s.handle(req(type_url="type.googleapis.com/other")) == [
        Ignored("type.googleapis.com/other", "", "unsupported type")
    ]
    assert not s.subscribed
    assert s.handle(req(type_url="")) == [SendResponse("v1", "1")]


def test_a_nack_backs_off_doubling_and_an_ack_resets() -> None:
    s = MadsStreamState(T, initial_backoff=1.0, max_backoff=3.0)
    s.handle(AssignmentsChanged("v1", 0.0))
    s.handle(req(now=0.0))
    assert s.handle(req("", "1", error="bad", now=10.0)) == [
        Rejected("v1", "1", 3, "bad"),
        ScheduleRetry(11.0),
    ]
    assert s.next_timer == 11.0
    assert s.handle(TimerFired(10.5)) == []
    assert s.handle(TimerFired(11.0)) == [SendResponse("v1", "2")]
    assert s.handle(req("", "2", error="bad", now=11.0))[-1] == ScheduleRetry(13.0)
    assert s.handle(TimerFired(13.0)) == [SendResponse("v1", "3")]
    assert s.handle(req("", "3", error="bad", now=13.0))[-1] == ScheduleRetry(16.0)  # capped at 3
    assert s.handle(TimerFired(16.0)) == [SendResponse("v1", "4")]
    assert s.handle(req("v1", "4", now=16.0)) == [Acked("v1", "4")]
    s.handle(AssignmentsChanged("v2", 17.0))
    assert s.handle(req("v1", "5", error="bad", now=17.0))[-1] == ScheduleRetry(18.0)


def test_a_new_version_after_a_nack_is_sent_at_once_and_cancels_the_retry() -> None:
    s = MadsStreamState(T)
    s.handle(AssignmentsChanged("v1", 0.0))
    s.handle(req())
    s.handle(req("", "1", error="bad", now=1.0))
    assert s.handle(AssignmentsChanged("v2", 1.1)) == [SendResponse("v2", "2")]
    assert s.next_timer is None


def test_bad_backoff_is_refused() -> None:
    with pytest.raises(ValueError, match="backoff"):
        MadsStreamState(T, initial_backoff=2.0, max_backoff=1.0)
