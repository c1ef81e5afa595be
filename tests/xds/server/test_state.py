"""The ADS stream state machine, driven without sockets or clocks."""

from __future__ import annotations

import pytest

from kuma.xds.core import CLUSTER, ENDPOINT, LISTENER, ROUTE, Snapshot, XdsResource
from kuma.xds.server.state import (
    Acked,
    Action,
    AdsStreamState,
    ErrorDetail,
    Ignored,
    Rejected,
    RequestReceived,
    ScheduleRetry,
    SendResponse,
    SnapshotChanged,
    TimerFired,
    subset_version,
)


def res(type_url: str, name: str, content: str = "") -> XdsResource:
    return XdsResource(name, type_url, None, payload=f"{name}:{content}".encode())


def snap(*resources: XdsResource) -> Snapshot:
    return Snapshot.build(resources)


def req(
    type_url: str,
    version: str = "",
    nonce: str = "",
    names: tuple[str, ...] = (),
    error: str | None = None,
    now: float = 0.0,
) -> RequestReceived:
    detail = ErrorDetail(13, error) if error is not None else None
    return RequestReceived(type_url, version, nonce, names, detail, now)


def sends(actions: list[Action]) -> list[SendResponse]:
    return [a for a in actions if isinstance(a, SendResponse)]


def one_send(actions: list[Action]) -> SendResponse:
    out = sends(actions)
    assert len(out) == 1, actions
    return out[0]


BASE = snap(
    res(CLUSTER, "backend"),
    res(CLUSTER, "web"),
    res(ENDPOINT, "backend", "10.0.0.1"),
    res(ENDPOINT, "web", "10.0.0.2"),
    res(LISTENER, "inbound:10.0.0.1:80"),
)


def ack(m: AdsStreamState, sent: SendResponse, now: float = 0.0, **kw: object) -> list[Action]:
    names = tuple(r.name for r in sent.resources) if sent.type_url == ENDPOINT else ()
    names = kw.pop("names", names)  # type: ignore[assignment]
    return m.handle(req(sent.type_url, sent.version_info, sent.nonce, names, now=now))


def nack(m: AdsStreamState, sent: SendResponse, have: str, now: float, msg: str) -> list[Action]:
    names = tuple(r.name for r in sent.resources) if sent.type_url == ENDPOINT else ()
    return m.handle(req(sent.type_url, have, sent.nonce, names, error=msg, now=now))


# -- first requests -----------------------------------------------------------------------------


def test_first_request_is_answered_with_every_resource_of_a_wildcard_type() -> None:
    m = AdsStreamState()
    m.handle(SnapshotChanged(BASE, 0.0))
    out = one_send(m.handle(req(CLUSTER)))
    assert out.type_url == CLUSTER
    assert out.version_info == BASE.version(CLUSTER)
    assert sorted(r.name for r in out.resources) == ["backend", "web"]
    assert out.nonce == "1"


def test_requests_before_the_first_snapshot_wait_for_it_then_go_in_kuma_type_order() -> None:
    m = AdsStreamState()
    assert m.handle(req(LISTENER)) == []
    assert m.handle(req(CLUSTER)) == []
    assert m.handle(req(ENDPOINT, names=("backend",))) == []
    out = sends(m.handle(SnapshotChanged(BASE, 1.0)))
    assert [s.type_url for s in out] == [CLUSTER, ENDPOINT, LISTENER]
    assert len({s.nonce for s in out}) == 3


def test_nothing_is_sent_for_a_type_envoy_has_not_asked_for() -> None:
    m = AdsStreamState()
    m.handle(req(CLUSTER))
    out = sends(m.handle(SnapshotChanged(BASE, 0.0)))
    assert [s.type_url for s in out] == [CLUSTER]  # no LDS, no EDS: not requested


def test_reconnecting_envoy_that_already_has_the_version_gets_nothing() -> None:
    m = AdsStreamState()
    m.handle(SnapshotChanged(BASE, 0.0))
    assert sends(m.handle(req(CLUSTER, version=BASE.version(CLUSTER)))) == []
    assert m.acked_version(CLUSTER) == BASE.version(CLUSTER)


def test_unsupported_types_are_ignored() -> None:
    m = AdsStreamState()
    m.handle(SnapshotChanged(BASE, 0.0))
    actions = m.handle(req("type.googleapis.com/envoy.service.runtime.v3.Runtime"))
    assert actions == [
        Ignored("type.googleapis.com/envoy.service.runtime.v3.Runtime", "", "unsupported type")
    ]


# -- ACK ------------------------------------------------------------------------------------------


def test_ack_is_reported_with_delivery_time_and_nothing_is_resent() -> None:
    m = AdsStreamState()
    m.handle(SnapshotChanged(BASE, 10.0))
    sent = one_send(m.handle(req(CLUSTER, now=10.5)))
    actions = ack(m, sent, now=12.0)
    assert actions == [Acked(CLUSTER, sent.version_info, sent.nonce, delivery=1.5)]
    assert m.acked_version(CLUSTER) == sent.version_info


def test_unchanged_version_sends_nothing() -> None:
    m = AdsStreamState()
    m.handle(SnapshotChanged(BASE, 0.0))
    ack(m, one_send(m.handle(req(CLUSTER))))
    # the same content arriving again (a regenerated snapshot) changes nothing
    rebuilt = snap(*(r for t in BASE.resources.values() for r in t.values()))
    assert m.handle(SnapshotChanged(rebuilt, 1.0)) == []


def test_changed_type_is_sent_and_unchanged_types_are_not() -> None:
    m = AdsStreamState()
    m.handle(SnapshotChanged(BASE, 0.0))
    cds = one_send(m.handle(req(CLUSTER)))
    lds = one_send(m.handle(req(LISTENER)))
    ack(m, cds)
    ack(m, lds)
    changed = snap(
        res(CLUSTER, "backend"),
        res(CLUSTER, "web"),
        res(LISTENER, "inbound:10.0.0.1:80"),
        res(LISTENER, "outbound:127.0.0.1:10001"),
    )
    out = one_send(m.handle(SnapshotChanged(changed, 1.0)))
    assert out.type_url == LISTENER
    assert len(out.resources) == 2


# -- stale nonces -------------------------------------------------------------------------------


def test_request_with_an_old_nonce_is_stale_and_changes_nothing() -> None:
    m = AdsStreamState()
    m.handle(SnapshotChanged(BASE, 0.0))
    first = one_send(m.handle(req(ENDPOINT, names=("backend",))))
    ack(m, first)
    second_snap = snap(
        res(CLUSTER, "backend"),
        res(ENDPOINT, "backend", "10.0.0.9"),
        res(ENDPOINT, "web", "10.0.0.2"),
    )
    second = one_send(m.handle(SnapshotChanged(second_snap, 1.0)))
    # Envoy, not having seen `second`, asks for more names under the old nonce: stale.
    actions = m.handle(req(ENDPOINT, first.version_info, first.nonce, ("backend", "web")))
    assert actions == [Acked(ENDPOINT, first.version_info, first.nonce, stale=True)]
    assert m.requested_names(ENDPOINT) == {"backend"}
    # then it ACKs the latest response, carrying the new names: answered with both
    out = one_send(m.handle(req(ENDPOINT, second.version_info, second.nonce, ("backend", "web"))))
    assert sorted(r.name for r in out.resources) == ["backend", "web"]


def test_request_without_nonce_after_a_response_is_ignored() -> None:
    m = AdsStreamState()
    m.handle(SnapshotChanged(BASE, 0.0))
    one_send(m.handle(req(CLUSTER)))
    assert m.handle(req(CLUSTER)) == [Ignored(CLUSTER, "", "no nonce after a response")]
    assert m.handle(req(CLUSTER, nonce="999")) == [Ignored(CLUSTER, "999", "unknown nonce")]


def test_nonces_are_unique_across_types() -> None:
    m = AdsStreamState()
    m.handle(SnapshotChanged(BASE, 0.0))
    a = one_send(m.handle(req(CLUSTER)))
    b = one_send(m.handle(req(LISTENER)))
    assert a.nonce != b.nonce
    # an ACK for CDS carrying LDS's nonce is not an ACK of CDS
    assert m.handle(req(CLUSTER, b.version_info, b.nonce)) == [
        Ignored(CLUSTER, b.nonce, "unknown nonce")
    ]


# -- a new snapshot while a response is un-acked ------------------------------------------------


def test_new_snapshot_while_unacked_waits_for_the_ack_then_sends_the_newest() -> None:
    m = AdsStreamState()
    m.handle(SnapshotChanged(BASE, 0.0))
    first = one_send(m.handle(req(CLUSTER)))
    v2 = snap(res(CLUSTER, "backend"), res(CLUSTER, "web"), res(CLUSTER, "extra"))
    v3 = snap(res(CLUSTER, "backend"), res(CLUSTER, "other"))
    assert m.handle(SnapshotChanged(v2, 1.0)) == []  # one response in flight per type
    assert m.handle(SnapshotChanged(v3, 2.0)) == []
    actions = ack(m, first, now=3.0)
    assert isinstance(actions[0], Acked)
    assert actions[0].delivery is None  # BASE is no longer current: no delivery time for it
    out = one_send(actions)
    assert out.version_info == v3.version(CLUSTER)  # v2 was skipped
    assert ack(m, out, now=3.5) == [Acked(CLUSTER, out.version_info, out.nonce, delivery=1.5)]


def test_other_types_are_not_blocked_by_an_unacked_response() -> None:
    m = AdsStreamState()
    m.handle(SnapshotChanged(BASE, 0.0))
    one_send(m.handle(req(CLUSTER)))  # never acked
    lds = one_send(m.handle(req(LISTENER)))
    assert lds.type_url == LISTENER


# -- NACK, backoff and retry --------------------------------------------------------------------


def test_nack_is_recorded_and_the_rejected_version_is_retried_with_backoff() -> None:
    m = AdsStreamState(initial_backoff=1.0, max_backoff=4.0)
    good = snap(res(LISTENER, "l1"))
    m.handle(SnapshotChanged(good, 0.0))
    v1 = one_send(m.handle(req(LISTENER)))
    ack(m, v1)
    bad = snap(res(LISTENER, "l1"), res(LISTENER, "broken"))
    v2 = one_send(m.handle(SnapshotChanged(bad, 1.0)))

    actions = nack(m, v2, v1.version_info, 2.0, "invalid listener")
    assert actions == [
        Rejected(LISTENER, v2.version_info, v2.nonce, 13, "invalid listener", delivery=1.0),
        ScheduleRetry(LISTENER, 3.0),
    ]
    assert m.acked_version(LISTENER) == v1.version_info  # Envoy still runs v1
    assert m.next_timer == 3.0
    # no hot loop: nothing is resent before the backoff passed
    assert m.handle(TimerFired(2.5)) == []
    # traffic of another type does not resend it either
    assert [s.type_url for s in sends(m.handle(req(CLUSTER, now=2.6)))] == [CLUSTER]

    retry = one_send(m.handle(TimerFired(3.0)))
    assert retry.version_info == v2.version_info
    assert retry.nonce != v2.nonce
    assert m.next_timer is None
    # rejected again: the delay doubles (2 s), then 4 s, and stays at the 4 s maximum
    delays = []
    now = 3.0
    for _ in range(4):
        actions = nack(m, retry, v1.version_info, now, "invalid listener")
        (scheduled,) = [a for a in actions if isinstance(a, ScheduleRetry)]
        delays.append(scheduled.at - now)
        now = scheduled.at
        retry = one_send(m.handle(TimerFired(now)))
    assert delays == [2.0, 4.0, 4.0, 4.0]


def test_new_version_after_a_nack_is_sent_at_once_and_an_ack_resets_the_backoff() -> None:
    m = AdsStreamState(initial_backoff=1.0, max_backoff=30.0)
    m.handle(SnapshotChanged(snap(res(LISTENER, "l1")), 0.0))
    v1 = one_send(m.handle(req(LISTENER)))
    ack(m, v1)
    bad = one_send(m.handle(SnapshotChanged(snap(res(LISTENER, "bad")), 1.0)))
    nack(m, bad, v1.version_info, 1.0, "no")
    retry = one_send(m.handle(TimerFired(2.0)))
    nack(m, retry, v1.version_info, 2.0, "no")  # backoff now 4 s for the next rejection
    fixed = one_send(m.handle(SnapshotChanged(snap(res(LISTENER, "fixed")), 2.1)))
    assert m.next_timer is None  # the retry is moot
    ack(m, fixed, now=2.2)
    bad2 = one_send(m.handle(SnapshotChanged(snap(res(LISTENER, "bad2")), 3.0)))
    actions = nack(m, bad2, fixed.version_info, 3.0, "no")
    assert ScheduleRetry(LISTENER, 4.0) in actions  # back to the initial 1 s


def test_reverting_to_the_version_envoy_runs_after_a_nack_sends_nothing() -> None:
    m = AdsStreamState()
    good = snap(res(LISTENER, "l1"))
    m.handle(SnapshotChanged(good, 0.0))
    v1 = one_send(m.handle(req(LISTENER)))
    ack(m, v1)
    v2 = one_send(m.handle(SnapshotChanged(snap(res(LISTENER, "bad")), 1.0)))
    nack(m, v2, v1.version_info, 1.0, "no")
    assert m.handle(SnapshotChanged(good, 1.5)) == []
    assert m.next_timer is None
    assert m.handle(TimerFired(100.0)) == []


def test_stale_nack_is_counted_but_schedules_nothing() -> None:
    m = AdsStreamState()
    m.handle(SnapshotChanged(snap(res(CLUSTER, "a")), 0.0))
    first = one_send(m.handle(req(CLUSTER)))
    ack(m, first)
    v2 = one_send(m.handle(SnapshotChanged(snap(res(CLUSTER, "b")), 1.0)))
    ack(m, v2)
    v3 = one_send(m.handle(SnapshotChanged(snap(res(CLUSTER, "c")), 2.0)))
    actions = m.handle(req(CLUSTER, first.version_info, v2.nonce, error="late", now=2.1))
    assert actions == [Rejected(CLUSTER, v2.version_info, v2.nonce, 13, "late", stale=True)]
    assert m.next_timer is None
    assert ack(m, v3)[0] == Acked(CLUSTER, v3.version_info, v3.nonce, delivery=0.0)


# -- EDS (non-wildcard) -------------------------------------------------------------------------


def test_eds_sends_only_the_requested_clusters() -> None:
    m = AdsStreamState()
    m.handle(SnapshotChanged(BASE, 0.0))
    out = one_send(m.handle(req(ENDPOINT, names=("web", "unknown"))))
    assert [r.name for r in out.resources] == ["web"]
    assert out.version_info == subset_version([BASE.of_type(ENDPOINT)["web"]])
    assert out.version_info != BASE.version(ENDPOINT)


def test_eds_version_equals_the_snapshot_version_when_everything_is_requested() -> None:
    m = AdsStreamState()
    m.handle(SnapshotChanged(BASE, 0.0))
    out = one_send(m.handle(req(ENDPOINT, names=("backend", "web"))))
    assert out.version_info == BASE.version(ENDPOINT)
    assert subset_version(BASE.of_type(ENDPOINT)) == BASE.version(ENDPOINT)


def test_eds_is_resent_when_the_requested_set_changes() -> None:
    m = AdsStreamState()
    m.handle(SnapshotChanged(BASE, 0.0))
    first = one_send(m.handle(req(ENDPOINT, names=("backend",))))
    out = one_send(ack(m, first, names=("backend", "web")))
    assert sorted(r.name for r in out.resources) == ["backend", "web"]
    shrunk = one_send(ack(m, out, names=("web",)))
    assert [r.name for r in shrunk.resources] == ["web"]
    assert ack(m, shrunk, names=("web",)) == [
        Acked(ENDPOINT, shrunk.version_info, shrunk.nonce, delivery=0.0)
    ]


def test_eds_change_of_an_unrequested_cluster_sends_nothing() -> None:
    m = AdsStreamState()
    m.handle(SnapshotChanged(BASE, 0.0))
    ack(m, one_send(m.handle(req(ENDPOINT, names=("backend",)))))
    moved = snap(
        res(CLUSTER, "backend"),
        res(ENDPOINT, "backend", "10.0.0.1"),
        res(ENDPOINT, "web", "10.9.9.9"),  # changed, but Envoy does not watch it
    )
    assert m.handle(SnapshotChanged(moved, 1.0)) == []
    moved_backend = snap(res(ENDPOINT, "backend", "10.0.0.7"), res(ENDPOINT, "web", "10.9.9.9"))
    out = one_send(m.handle(SnapshotChanged(moved_backend, 2.0)))
    assert [r.payload for r in out.resources] == [b"backend:10.0.0.7"]


def test_a_repeated_eds_request_is_answered_again_for_a_warming_cluster() -> None:
    """After a CDS update replaces an EDS cluster, Envoy asks again for its endpoints with the
    request it already sent (same nonce and version); the new cluster warms only once they
    come, and Envoy holds back its CDS ACK until then."""
    m = AdsStreamState()
    m.handle(SnapshotChanged(BASE, 0.0))
    cds = one_send(m.handle(req(CLUSTER)))
    eds = one_send(m.handle(req(ENDPOINT, names=("backend", "web"))))
    ack(m, cds)
    assert ack(m, eds) == [Acked(ENDPOINT, eds.version_info, eds.nonce, delivery=0.0)]
    changed = snap(*BASE.of_type(ENDPOINT).values(), res(CLUSTER, "backend", "subsets"))
    new_cds = one_send(m.handle(SnapshotChanged(changed, 1.0)))
    assert new_cds.type_url == CLUSTER  # EDS is unchanged: nothing sent for it
    again = one_send(ack(m, eds, now=1.1))  # the warming cluster's re-request
    assert again.type_url == ENDPOINT
    assert again.version_info == eds.version_info
    assert again.nonce not in (eds.nonce, new_cds.nonce)
    assert sorted(r.name for r in again.resources) == ["backend", "web"]
    # its ACK is an ordinary one; nothing more is sent
    assert ack(m, again, now=1.2) == [Acked(ENDPOINT, again.version_info, again.nonce)]
    assert sends(ack(m, new_cds, now=1.3)) == []


def test_eds_with_no_names_is_not_answered() -> None:
    m = AdsStreamState()
    m.handle(SnapshotChanged(BASE, 0.0))
    assert m.handle(req(ENDPOINT, names=())) == []
    assert m.handle(req(ROUTE, names=())) == []


# -- deleted dataplane --------------------------------------------------------------------------


def test_empty_snapshot_pushes_empty_listeners_and_clusters() -> None:
    m = AdsStreamState()
    m.handle(SnapshotChanged(BASE, 0.0))
    for type_url, names in ((CLUSTER, ()), (ENDPOINT, ("backend",)), (LISTENER, ())):
        ack(m, one_send(m.handle(req(type_url, names=names))))
    out = sends(m.handle(SnapshotChanged(Snapshot.empty(), 1.0)))
    assert [(s.type_url, s.resources) for s in out] == [
        (CLUSTER, ()),
        (ENDPOINT, ()),
        (LISTENER, ()),
    ]
    assert out[0].version_info == Snapshot.empty().version(CLUSTER)


@pytest.mark.parametrize(("initial", "maximum"), [(0.0, 1.0), (2.0, 1.0)])
def test_bad_backoff_settings_are_refused(initial: float, maximum: float) -> None:
    with pytest.raises(ValueError, match="backoff"):
        AdsStreamState(initial_backoff=initial, max_backoff=maximum)
