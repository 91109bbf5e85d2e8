"""The alert stream's wire format: frames as the SSE format reads them, built once per entry."""

from __future__ import annotations

from service._frames import PING, Shared, alert_body, frame, retry
from sinks import ALERTS_LOG, COVERT_LOG, DISPOSITION_EVENTS, TailEntry


def test_frames_follow_the_event_stream_format() -> None:
    assert frame("gap", b'{"after":"1-0"}') == b'event: gap\ndata: {"after":"1-0"}\n\n'
    assert frame("alert", b"{}", "5-1") == b"event: alert\ndata: {}\nid: 5-1\n\n"
    # a payload with line breaks of any kind stays one event, one data line per line
    assert frame("disposition", b"a\r\nb\rc\nd") == (
        b"event: disposition\ndata: a\ndata: b\ndata: c\ndata: d\n\n"
    )
    assert retry(3000) == b"retry: 3000\n\n"
    assert PING == b": ping\n\n"


def test_an_alert_gets_its_log_id_and_covert_flag_without_being_decoded() -> None:
    general = TailEntry(ALERTS_LOG, "7-0", b'{"alert_id":"a"}')
    assert alert_body(general) == b'{"alert_id":"a","log_id":"7-0","covert":false}'
    covert = TailEntry(COVERT_LOG, "8-2", b"{} ")
    assert alert_body(covert) == b'{"log_id":"8-2","covert":true}'


def test_a_shared_entry_builds_each_frame_once() -> None:
    item = Shared(TailEntry(ALERTS_LOG, "9-3", b'{"alert_id":"a"}'))
    assert item.order == (9, 3)
    whole = item.alert_frame()
    assert whole == item.alert_head() + b"id: 9-3\n\n"
    assert item.alert_frame() is whole and item.alert_head() is item.alert_head()
    event = Shared(TailEntry(DISPOSITION_EVENTS, "10-0", b'{"state":"claimed"}'))
    assert event.disposition_frame() == b'event: disposition\ndata: {"state":"claimed"}\n\n'
    assert event.disposition_frame() is event.disposition_frame()
