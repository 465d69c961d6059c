"""The incremental SSE parser: any split of a byte stream yields the same events."""

import re

from hypothesis import given, settings
from hypothesis import strategies as st
from mcp_gateway.sse import SSEEvent, SSEParser, encode_event

STREAM = (
    b": keep-alive\r\n\r\n"
    b'id: 1\r\ndata: {"jsonrpc":"2.0","id":1,"result":{}}\r\n\r\n'
    b"event: message\rdata: line one\rdata: line two\r\r"
    b"id: 3:669\ndata:\nretry: 100\n\n"
    b"data:no-space\nfield-without-colon\n\n"
    b"data: caf\xc3\xa9 \xff\n\n"
    b"data: last event without blank line"
)


def _blank(e) -> bool:
    return (
        e.data is None
        and e.event is None
        and e.id is None
        and e.retry is None
        and not (e.comments or e.raw.strip(b"\r\n"))
    )


def merged(evs):
    """Events with each run of empty ones as one: the parser hands a run of blank lines out
    as one event, so where chunks cut a run changes how many (never their bytes)."""
    out = []
    for e in evs:
        if out and _blank(e) and _blank(out[-1]) and out[-1].complete:
            out[-1] = SSEEvent(out[-1].raw + e.raw, complete=e.complete)
        else:
            out.append(e)
    return out


def parse(chunks, final=True):  # noqa: D103
    p = SSEParser()
    out = []
    for c in chunks:
        out += p.feed(c)
    if final:
        out += p.close()
    return merged(out)


def test_fields_and_line_endings():
    evs = parse([STREAM])
    assert [e.data for e in evs] == [
        None,
        '{"jsonrpc":"2.0","id":1,"result":{}}',
        "line one\nline two",
        "",
        "no-space",
        "café \ufffd",
        "last event without blank line",
    ]
    assert evs[0].comments == [" keep-alive"]
    assert evs[1].id == "1"
    assert evs[2].event == "message" and evs[2].type == "message"
    assert evs[3].id == "3:669" and evs[3].retry == 100
    assert all(e.complete for e in evs[:-1]) and not evs[-1].complete


def test_raw_bytes_reassemble_the_stream_exactly():
    assert b"".join(e.raw for e in parse([STREAM])) == STREAM


def test_cr_at_chunk_end_waits_for_lf():
    p = SSEParser()
    assert p.feed(b"data: a\r") == []
    assert p.feed(b"\n") == []  # CRLF ends the line, not yet the event
    evs = p.feed(b"\r\n")
    assert [e.data for e in evs] == ["a"]
    assert evs[0].raw == b"data: a\r\n\r\n"


def test_trailing_cr_at_close_ends_line_and_event():
    evs = parse([b"data: a\r\r"], final=False)
    assert [e.data for e in evs] == []  # the second CR may still be half of CRLF
    evs = parse([b"data: a\r\r"])
    assert [e.data for e in evs] == ["a"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=len(STREAM) - 1), max_size=25))
def test_any_split_yields_the_same_events(cuts):
    cuts = sorted(set(cuts))
    bounds = [0, *cuts, len(STREAM)]
    chunks = [STREAM[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
    assert parse(chunks) == parse([STREAM])


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.lists(st.integers(min_value=0, max_value=300), max_size=10))
def test_garbage_never_raises_and_is_byte_preserving(data, cuts):
    cuts = sorted({c for c in cuts if 0 < c < len(data)})
    bounds = [0, *cuts, len(data)]
    evs = parse([data[a:b] for a, b in zip(bounds, bounds[1:], strict=False)])
    assert b"".join(e.raw for e in evs) == data


def test_encode_event_round_trips():
    raw = encode_event("a\nb", event="message", id="7", retry=5)
    (ev,) = parse([raw])
    assert (ev.data, ev.event, ev.id, ev.retry) == ("a\nb", "message", "7", 5)
    assert encode_event(None, id="9") == b"id: 9\n\n"


def test_large_event_is_linear():
    payload = b"data: " + b"x" * 5_000_000 + b"\n\n"
    p = SSEParser()
    evs = []
    for i in range(0, len(payload), 16384):
        evs += p.feed(payload[i : i + 16384])
    assert len(evs) == 1 and len(evs[0].data) == 5_000_000


LF_STREAM = (
    b'event: message\ndata: {"jsonrpc":"2.0","method":"notifications/progress"}\n\n'
    b"id: 2\ndata: a\ndata: b\n\n\n\n"
    b": comment\n\n"
    b"data: x\n\n"
    b"data: tail without end"
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=len(LF_STREAM) - 1), max_size=25))
def test_lf_fast_path_matches_general_parser(cuts):
    cuts = sorted(set(cuts))
    bounds = [0, *cuts, len(LF_STREAM)]
    chunks = [LF_STREAM[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
    evs = parse(chunks)
    assert evs == parse([LF_STREAM])
    assert b"".join(e.raw for e in evs) == LF_STREAM
    assert [e.data for e in evs if e.data is not None] == [
        '{"jsonrpc":"2.0","method":"notifications/progress"}',
        "a\nb",
        "x",
        "tail without end",
    ]


def test_a_byte_order_mark_at_the_start_does_not_hide_the_first_event():
    # WHATWG: a leading BOM is stripped; TypeScript clients do, so the gateway must too
    body = b'\xef\xbb\xbfdata: {"jsonrpc":"2.0","id":1,"result":{}}\n\ndata: two\n\n'
    for step in (1, 2, 3, 4, 100):
        evs = parse([body[i : i + step] for i in range(0, len(body), step)])
        assert [e.data for e in evs] == ['{"jsonrpc":"2.0","id":1,"result":{}}', "two"]
        assert b"".join(e.raw for e in evs) == body  # forwarded as it came
    # only at the very start of the stream
    evs = parse([b"data: one\n\n\xef\xbb\xbfdata: two\n\n"])
    assert [e.data for e in evs] == ["one", None]
    assert [e.data for e in parse([b"\xef\xbb\xbf\n\ndata: x\n\n"])][-1] == "x"
    assert parse([b"\xef\xbb"], final=True)[0].raw == b"\xef\xbb"  # a cut BOM is kept


def parse_general(chunks):
    """The general scanner alone: the oracle for the fast paths."""
    p = SSEParser()
    out = []
    for c in chunks:
        out += p._scan(c)
    return merged(out + p.close())


CRLF_STREAM = LF_STREAM.replace(b"\n", b"\r\n")


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(min_value=1, max_value=len(CRLF_STREAM) - 1), max_size=25),
    st.booleans(),
)
def test_crlf_fast_path_matches_general_parser(cuts, lf_tail):
    # sse-starlette (the Python SDK's servers) ends every line with CRLF
    stream = CRLF_STREAM + (b"\n\ndata: lf after crlf\n\n" if lf_tail else b"")
    cuts = sorted({c for c in cuts if c < len(stream)})
    bounds = [0, *cuts, len(stream)]
    chunks = [stream[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
    evs = parse(chunks)
    assert evs == parse_general(chunks) == parse_general([stream])
    assert b"".join(e.raw for e in evs) == stream
    assert [e.data for e in evs if e.data is not None][:3] == [
        '{"jsonrpc":"2.0","method":"notifications/progress"}',
        "a\nb",
        "x",
    ]


def test_a_run_of_blank_lines_is_one_empty_event_per_chunk():
    # a megabyte of line breaks was a million events, each a pass through the pipeline
    data = b"data: a\n\n" + b"\n" * 100_000 + b"\r\n" * 1000 + b"data: b\n\n"
    chunks = [data[i : i + 65536] for i in range(0, len(data), 65536)]
    p = SSEParser()
    evs = [e for c in chunks for e in p.feed(c)] + p.close()
    assert b"".join(e.raw for e in evs) == data
    assert [e.data for e in evs if e.data is not None] == ["a", "b"]
    assert len(evs) <= 2 + len(chunks)


def test_an_event_of_many_short_lines_is_held_once():
    # Lines were kept as objects until the event ended: 2M lines of "data:x" (14 MB) held
    # ~260 MB. The fields are read as the lines arrive; the data is held as one buffer.
    import tracemalloc

    n = 200_000
    body = b"data:x\n" * n + b"\n"
    chunks = [body[i : i + 65536] for i in range(0, len(body), 65536)]
    p = SSEParser()
    evs = []
    tracemalloc.start()
    try:
        for c in chunks:
            evs += p.feed(c)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(evs) == 1 and evs[0].data == "\n".join(["x"] * n)
    assert evs[0].raw == body
    assert peak < 6 * len(body), peak  # raw bytes, data and the copies handed out


def test_comments_kept_per_event_are_capped():
    from mcp_gateway.sse import MAX_COMMENTS

    (ev,) = parse([b":c\n" * (MAX_COMMENTS * 10) + b"data: x\n\n"])
    assert ev.data == "x" and len(ev.comments) == MAX_COMMENTS


_LINE = st.sampled_from(
    [
        b"data: a",
        b"data:b",
        b"data:",
        b"data: ",
        b"data:  c",
        b"id: 4",
        b"event: e",
        b": c",
        b"dat",
        b"data",
        b"data:data: x",
        b"retry: 9",
    ]
)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.lists(_LINE, min_size=1, max_size=12), min_size=1, max_size=5),
    st.sampled_from([b"\n", b"\r\n"]),
    st.lists(st.integers(min_value=1, max_value=400), max_size=12),
)
def test_pending_events_of_many_lines_match_the_general_parser(events, eol, cuts):
    # the fast paths (a pending event ended by the scanner, whole data lines read in C)
    # must read exactly what the line-by-line scanner reads, wherever chunks are cut
    stream = b"".join(eol.join(lines) + eol + eol for lines in events)
    cuts = sorted({c for c in cuts if c < len(stream)})
    bounds = [0, *cuts, len(stream)]
    chunks = [stream[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
    evs = parse(chunks)
    assert evs == parse_general([stream])
    assert b"".join(e.raw for e in evs) == stream


def test_an_event_of_many_short_lines_is_read_in_c():
    n = 300_000
    body = b"data:x\n" * n + b"\n"
    p = SSEParser()
    p.feed(b"data:")  # pending: every later chunk continues one event
    calls = 0
    real = p._line

    def count(line):
        nonlocal calls
        calls += 1
        real(line)

    p._line = count
    evs = []
    for i in range(0, len(body), 65536):
        evs += p.feed(body[i : i + 65536])
    assert len(evs) == 1 and evs[0].data == "data:x\n" + "\n".join(["x"] * (n - 1))
    assert calls < 2 * (len(body) // 65536 + 2)  # a line or two per chunk, not per line


@settings(max_examples=500, deadline=None)
@given(
    st.lists(st.tuples(_LINE, st.sampled_from([b"\n", b"\r\n", b"\r", b"\r\n\r\n", b"\n\n"]))),
    st.lists(st.integers(min_value=1, max_value=400), max_size=12),
)
def test_mixed_line_endings_match_the_general_parser(lines, cuts):
    # the fast paths trust CRLF only after checking that no line holds a bare CR or LF
    stream = b"".join(line + end for line, end in lines)
    cuts = sorted({c for c in cuts if c < len(stream)})
    bounds = [0, *cuts, len(stream)]
    chunks = [stream[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
    assert parse(chunks) == parse_general([stream])
    assert parse([stream]) == parse_general([stream])


def test_lines_ending_in_cr_alone_are_read_in_linear_time():
    # each line's LF search ran to the end of the chunk: 2 MiB of CR lines took ~20 s
    import time

    body = b"data: x\r" * 262_144 + b"\r"
    t = time.process_time()
    p = SSEParser()
    evs = p.feed(body) + p.close()  # (the last CR may be half of a CRLF until the end)
    assert time.process_time() - t < 2.0
    assert len(evs) == 1 and evs[0].data == "\n".join(["x"] * 262_144)


def _reference_fields(stream: bytes) -> list[tuple]:
    """(event, id, data) of each dispatched event, read the WHATWG way in a few lines: the
    independent oracle for the incremental parser's bookkeeping."""
    out, data, event, ident = [], None, None, None
    lines = re.split(rb"\r\n|\r|\n", stream)
    for line in lines[:-1]:  # (the last piece has no line ending: no blank line after it)
        if not line:
            if data is not None or event is not None or ident is not None:
                out.append((event, ident, data))
            data = event = ident = None
            continue
        name, _, value = line.partition(b":")
        value = value[1:] if value[:1] == b" " else value
        if name == b"data":
            data = value if data is None else data + b"\n" + value
        elif name == b"event":
            event = value
        elif name == b"id":
            ident = value
    return out


def _fields(evs) -> list[tuple]:
    return [
        (
            e.event.encode() if e.event is not None else None,
            e.id.encode() if e.id is not None else None,
            e.data_bytes,
        )
        for e in evs
        if e.complete and (e.data_bytes is not None or e.event is not None or e.id is not None)
    ]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([b"data: ", b"data:", b"id: ", b"event: ", b": "]),
            st.sampled_from([0, 3, 4095, 4096, 4097, 9000]),
            st.sampled_from([b"\n", b"\r\n", b"\r", b"\n\n", b"\r\n\r\n", b"\r\r"]),
        ),
        min_size=1,
        max_size=8,
    ),
    st.lists(st.integers(min_value=1, max_value=40_000), max_size=20),
    st.integers(min_value=1, max_value=5000),
)
def test_long_lines_in_many_chunks_match_a_reference_reading(lines, cuts, step):
    # a long line that arrives in many chunks is searched for its end only once (the new
    # bytes of each chunk): cut anywhere, even between the CR and LF of a CRLF, or into
    # pieces of `step` bytes, the events are those a plain line-by-line reading gives
    stream = b"".join(head + b"v" * size + end for head, size, end in lines)
    want = _reference_fields(stream)
    cuts = sorted({c for c in cuts if c < len(stream)})
    bounds = [0, *cuts, len(stream)]
    for chunks in (
        [stream[a:b] for a, b in zip(bounds, bounds[1:], strict=False)],
        [stream[i : i + step] for i in range(0, len(stream), step)],
    ):
        p = SSEParser()
        evs = [e for c in chunks for e in p.feed(c)] + p.close()
        assert _fields(evs) == want
        assert b"".join(e.raw for e in evs) == stream


def test_a_long_line_in_small_chunks_is_searched_once():
    # each chunk searched the pending line from its start for a line end: 32 MiB in 8 KiB
    # chunks read ~64 GB (seconds); now each byte is searched once
    import time

    body = b"data: " + b"x" * (32 << 20) + b"\r\n\r\n"
    chunks = [body[i : i + 8192] for i in range(0, len(body), 8192)]
    p = SSEParser()
    t = time.process_time()
    evs = [e for c in chunks for e in p.feed(c)]
    assert time.process_time() - t < 2.0
    assert len(evs) == 1 and len(evs[0].data_bytes) == 32 << 20


def test_an_event_whose_held_cr_is_its_blank_line_can_be_ended_at_once():
    for body in (b"data: a\r\r", b"data: a\n\r", b"data: a\r\n\r", b": c\r\r"):
        p = SSEParser()
        assert p.feed(body) == []  # (the last CR may still be half of a CRLF)
        (ev,) = p.end_held_event()
        assert ev.raw == body and ev.complete and p.pending == 0
        # an LF that follows is a blank line of its own; the next event is read whole
        evs = p.feed(b"\ndata: b\r\r") + p.close()
        assert [e.data for e in evs] == [None, "b"] and evs[0].raw == b"\n"
    for body in (b"data: a\r", b"data: a\r\rdata: b", b"\r\r", b"data: a\r\r\r"):
        p = SSEParser()
        p.feed(body)
        assert p.end_held_event() == []  # a line not ended yet, or no event held


def test_the_tail_after_a_take_is_the_rest_of_the_event_wherever_it_was_cut():
    # take_pending gives up on the event being read; the next event handed out must be
    # exactly the rest of it (the gateway drops or passes it as the tail of an event over
    # the limit), and the events after it as they would have been read
    for eol in (b"\n", b"\r\n", b"\r"):
        ev = eol.join([b"id: 1", b"data: first line", b": note", b"data: second"]) + eol + eol
        after = b"data: next" + eol + eol + b"event: e" + eol + b"data: last" + eol + eol
        ref = SSEParser()
        want = [(e.data, e.event) for e in ref.feed(after) + ref.close()]
        for cut in range(1, len(ev)):
            for step in (1, 3, len(ev) + len(after)):
                p = SSEParser()
                assert p.feed(ev[:cut]) == []
                taken = p.take_pending()
                assert taken == ev[:cut]
                rest = ev[cut:] + after
                evs = [e for i in range(0, len(rest), step) for e in p.feed(rest[i : i + step])]
                evs += p.close()
                assert taken + evs[0].raw == ev, (eol, cut, step)
                assert [(e.data, e.event) for e in evs[1:] if e.data is not None] == want
                assert b"".join(e.raw for e in evs) == rest
        # the stream ends right after the take: one empty rest, so the event is over
        p = SSEParser()
        p.feed(ev[:5])
        p.take_pending()
        assert [(e.raw, e.complete) for e in p.close()] == [(b"", False)]
