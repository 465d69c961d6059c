from mcp_gateway.correlate import SSE_EVENT_IDS, CorrelateStage, Correlator, note_event_id
from mcp_gateway.message import Direction, Exchange, Kind, Message

C2S, S2C = Direction.CLIENT_TO_SERVER, Direction.SERVER_TO_CLIENT


def msg(ex, direction, kind, id, method=None, name=None):
    return Message(
        payload={}, direction=direction, kind=kind, exchange=ex, id=id, method=method, name=name
    )


def answered(st, ex, rid, method, name=None, event_id=None, kind=Kind.RESULT):
    """A request on ``ex`` and its answer, which came with the server's ``event_id``: the
    answer as the stage left it."""
    st.process(msg(ex, C2S, Kind.REQUEST, rid, method, name))
    r = msg(ex, S2C, kind, rid)
    r.sse_event_id = event_id
    st.process(r)
    return r


def push_out(st, prefix, n=200):
    """The client's own pings and their answers, pushing older answers out of the event-id
    memory (its size patched down to 100 by the test)."""
    for i in range(n):
        ex = Exchange(flow_id=f"q{i}", server="s", session_id="S1")
        answered(st, ex, 1000 + i, "ping", event_id=f"{prefix}{i}")


def resumed_get(last_event_id, flow_id="g", session_id="S1"):
    """A GET that resumes a stream of the session from ``last_event_id``."""
    return Exchange(
        flow_id=flow_id,
        server="s",
        session_id=session_id,
        http_method="GET",
        request_headers={"last-event-id": last_event_id},
    )


def test_response_on_same_exchange_gets_method_name_latency():
    st = CorrelateStage()
    ex = Exchange(flow_id="a", server="s")
    st.process(msg(ex, C2S, Kind.REQUEST, 1, "tools/call", "echo"))
    r = msg(ex, S2C, Kind.RESULT, 1)
    st.process(r)
    assert (r.method, r.name) == ("tools/call", "echo") and r.latency_ms >= 0


def test_sessionless_clients_reusing_ids_do_not_mix():
    st = CorrelateStage()
    a, b = Exchange(flow_id="a", server="s"), Exchange(flow_id="b", server="s")
    st.process(msg(a, C2S, Kind.REQUEST, 1, "tools/call", "A"))
    st.process(msg(b, C2S, Kind.REQUEST, 1, "tools/call", "B"))
    rb = msg(b, S2C, Kind.RESULT, 1)
    st.process(rb)
    assert rb.name == "B"


def test_response_on_other_exchange_of_same_session():
    st = CorrelateStage()
    post = Exchange(flow_id="p", server="s", session_id="S1")
    get = Exchange(flow_id="g", server="s", session_id="S1")
    st.process(msg(post, C2S, Kind.REQUEST, "x", "resources/read", "file:///a"))
    r = msg(get, S2C, Kind.RESULT, "x")
    st.process(r)
    assert r.name == "file:///a"
    other = msg(Exchange(flow_id="q", server="s", session_id="S2"), S2C, Kind.RESULT, "x")
    st.process(other)
    assert other.method is None


def test_an_integral_float_id_is_the_integer_servers_answer_with():
    """zod and pydantic read ``"id": 8.0`` as 8 and answer ``"id": 8``."""
    st = CorrelateStage()
    ex = Exchange(flow_id="a", server="s", session_id="S1")
    st.process(msg(ex, C2S, Kind.REQUEST, 8.0, "tools/call", "get_customer"))
    r = msg(Exchange(flow_id="g", server="s", session_id="S1"), S2C, Kind.RESULT, 8)
    st.process(r)
    assert r.name == "get_customer"
    for sent, answered in ((8.5, 8), (True, 1), (8.5, "8.5")):  # 8.5 is no 8 nor "8.5"
        other = Exchange(flow_id=f"o{answered}", server="s")
        st.process(msg(other, C2S, Kind.REQUEST, sent, "tools/call", "other"))
        r = msg(other, S2C, Kind.RESULT, answered)
        st.process(r)
        assert r.method is None


def test_an_id_echoed_as_a_string_answers_the_request_clients_match_it_to():
    """Both official clients take an answer's ``"id": "7"`` for request 7 (TypeScript
    ``Number()``, Python ``int()``): a server that echoes ids as strings still answers it,
    and tool-scoped rules must see which tool it answers."""
    st = CorrelateStage()
    for n, (sent, answered) in enumerate(
        [(7, "7"), (7, " 7 "), (7, "7.0"), (7, "0x7"), ("7", 7), (7, 7)]
    ):
        ex = Exchange(flow_id=f"e{n}", server="s", session_id=f"S{n}")
        st.process(msg(ex, C2S, Kind.REQUEST, sent, "tools/call", "get_customer"))
        r = msg(
            Exchange(flow_id=f"g{n}", server="s", session_id=f"S{n}"), S2C, Kind.RESULT, answered
        )
        st.process(r)
        assert r.name == "get_customer", (sent, answered)
    ex = Exchange(flow_id="x", server="s")
    st.process(msg(ex, C2S, Kind.REQUEST, 7, "tools/call", "get_customer"))
    for answered in ("7.5", "seven", "", "07x"):
        r = msg(ex, S2C, Kind.RESULT, answered)
        st.process(r)
        assert r.method is None, answered
    r = msg(ex, S2C, Kind.RESULT, "7")  # the request is still pending
    st.process(r)
    assert r.name == "get_customer"
    # a decoy in a form this client ignores uses up nothing: the real answer still names it
    r = msg(ex, S2C, Kind.RESULT, 7)
    st.process(r)
    assert r.name == "get_customer"


def test_server_to_client_requests_are_correlated_too():
    st = CorrelateStage()
    stream = Exchange(flow_id="g", server="s", session_id="S")
    answer = Exchange(flow_id="p", server="s", session_id="S")
    st.process(msg(stream, S2C, Kind.REQUEST, 0, "sampling/createMessage"))
    r = msg(answer, C2S, Kind.RESULT, 0)
    st.process(r)
    assert r.method == "sampling/createMessage"


def test_bounded():
    c = Correlator(max_entries=10)
    st = CorrelateStage(c)
    ex = Exchange(flow_id="a", server="s", session_id="S")
    for i in range(100):
        st.process(msg(ex, C2S, Kind.REQUEST, i, "ping"))
    assert len(c) == 10


def test_in_flight_requests_are_bounded_by_their_size_too():
    # a made-up session the server answers with 404 (no JSON-RPC answer): each request with
    # an id of megabytes stayed, up to 100,000 of them for an hour
    c = Correlator(max_bytes=100_000)
    for i in range(50):
        ex = Exchange(flow_id=f"f{i}", server="s", session_id="S")
        c.remember(msg(ex, C2S, Kind.REQUEST, f"{i}-" + "x" * 10_000, "tools/call", "echo"))
    assert len(c) <= 10 and c._bytes <= 100_000
    last = msg(
        Exchange(flow_id="r", server="s", session_id="S"), S2C, Kind.RESULT, "49-" + "x" * 10_000
    )
    assert c.match(last) is not None  # the newest are kept
    assert c._bytes == sum(p.cost for p in c._by_session.values())


def test_a_reused_id_in_flight_is_refused_and_the_answer_keeps_its_tool() -> None:
    """Red-team round 19: a client reused the id of a crm_* call in flight (a ping, a slow
    tool); the server answered both (or routed the first answer to the second POST's
    stream), and the crm_* answer was matched to the ping: its tool-scoped rules skipped."""
    from mcp_gateway.message import ErrorCode

    st = CorrelateStage()
    p1 = Exchange(flow_id="p1", server="s", legacy_session="L")
    p2 = Exchange(flow_id="p2", server="s", legacy_session="L")
    st.process(msg(p1, C2S, Kind.REQUEST, 5, "tools/call", "crm_lookup"))
    again = msg(p2, C2S, Kind.REQUEST, 5.0, "ping")  # (5.0 is the id 5)
    st.process(again)
    assert again.stopped and again.refusal.code == ErrorCode.INVALID_REQUEST
    assert again.refusal.http_status == 400
    other = msg(p2, C2S, Kind.REQUEST, "5", "ping")  # another id: "5" is not 5
    st.process(other)
    assert not other.stopped
    ans = msg(Exchange(flow_id="g", server="s", legacy_session="L"), S2C, Kind.RESULT, 5)
    st.process(ans)
    assert (ans.method, ans.name) == ("tools/call", "crm_lookup")
    # answered: the id is free again
    later = msg(p2, C2S, Kind.REQUEST, 5, "ping")
    st.process(later)
    assert not later.stopped


def test_a_reused_id_in_one_batch_or_socket_is_refused() -> None:
    st = CorrelateStage()
    ex = Exchange(flow_id="b", server="s")
    st.process(msg(ex, C2S, Kind.REQUEST, 1, "tools/call", "crm_lookup"))
    dup = msg(ex, C2S, Kind.REQUEST, 1, "ping")
    st.process(dup)
    assert dup.stopped


def test_a_request_the_gateway_answered_frees_its_id() -> None:
    """A request refused by a later stage (a rate limit) never reaches the server, so no
    answer frees its id: the pipeline's undo does."""
    from mcp_gateway.message import ErrorCode
    from mcp_gateway.pipeline import Pipeline

    class Refuse:
        name, order = "limits", 350

        def process(self, m):
            if m.name == "no":
                m.block(ErrorCode.RATE_LIMITED, "limited")

    c = Correlator()
    pipe = Pipeline([CorrelateStage(c), Refuse()])
    ex = Exchange(flow_id="p", server="s", session_id="S")
    first = pipe.run(msg(ex, C2S, Kind.REQUEST, 3, "tools/call", "no"))
    assert first.stopped and len(c) == 0
    ex2 = Exchange(flow_id="q", server="s", session_id="S")
    second = pipe.run(msg(ex2, C2S, Kind.REQUEST, 3, "tools/call", "yes"))
    assert not second.stopped and len(c) == 1


def _task_answer(st, session, rid, task_id):
    """The answer to a tasks/result request for ``task_id`` on a new exchange of ``session``."""
    ex = Exchange(flow_id=f"t{rid}", server="s", session_id=session)
    req = Message(
        payload={"jsonrpc": "2.0", "id": rid, "method": "tasks/result", "params": {"taskId": task_id}},
        direction=C2S, kind=Kind.REQUEST, exchange=ex, id=rid, method="tasks/result",
    )  # fmt: skip
    st.process(req)
    ans = msg(ex, S2C, Kind.RESULT, rid)
    st.process(ans)
    return ans


def test_a_task_result_is_the_tool_s_answer() -> None:
    """Red-team round 19: a task-augmented tools/call (2025-11-25) answers with a task;
    the tool's output comes as the answer to tasks/result, which named no tool, so rules
    scoped to the tool skipped it."""
    st = CorrelateStage()
    ex = Exchange(flow_id="p", server="s", session_id="S")
    st.process(msg(ex, C2S, Kind.REQUEST, 2, "tools/call", "crm_lookup"))
    created = Message(
        payload={"jsonrpc": "2.0", "id": 2, "result": {"task": {"taskId": "T1"}}},
        direction=S2C, kind=Kind.RESULT, exchange=ex, id=2,
    )  # fmt: skip
    st.process(created)
    ans = _task_answer(st, "S", 3, "T1")
    assert (ans.method, ans.name) == ("tools/call", "crm_lookup")
    # another session's task id names nothing
    ans3 = _task_answer(st, "S2", 4, "T1")
    assert ans3.method == "tasks/result" and ans3.name is None


def test_a_post_the_server_refused_frees_its_ids() -> None:
    """The TypeScript SDK sends a request again, with its id, after a 401 (an expired token,
    OAuth behind the gateway): the server answered none of the POST's requests."""
    from types import SimpleNamespace

    def exchange(name, status=None, error=None, **kw):
        resp = SimpleNamespace(status_code=status) if status is not None else None
        flow = SimpleNamespace(response=resp, error=error)
        return Exchange(flow_id=name, server="s", flow=flow, **kw)

    for status, error, legacy, freed in [
        (401, None, None, True),
        (404, None, None, True),
        (307, None, None, True),  # a redirect: the client POSTs the same body again
        (308, None, "L", True),
        (200, None, None, False),  # answered on its stream: it frees the id as it comes
        (202, None, "L", False),  # legacy: the answer comes on the GET stream
        (None, "connection refused", None, True),  # no answer began: none can come
        (None, "connection reset", "L", False),  # legacy: it may still come on the GET
        # an answer stream cut before its answer: resumable only with an event id
        (200, "connection reset", None, True),
        ("200+ids", "connection reset", None, False),
    ]:
        st = CorrelateStage()
        sid = {"legacy_session": legacy} if legacy else {"session_id": "S"}
        ids = status == "200+ids"
        post = exchange("p", 200 if ids else status, error, **sid)
        if ids:
            post.scratch[SSE_EVENT_IDS] = True
        st.process(msg(post, C2S, Kind.REQUEST, 7, "tools/call", "crm_lookup"))
        st.on_exchange_end(post)
        again = msg(exchange("q", **sid), C2S, Kind.REQUEST, 7, "tools/call", "crm_lookup")
        st.process(again)
        assert again.stopped is not freed, (status, error, legacy)


def test_a_refused_request_reusing_an_id_in_flight_leaves_that_request_its_answer() -> None:
    """A request refused before correlate (a member differing only in case, an exchange
    refusal) with the id of a tools/call in flight replaced that call's entry, and its
    refund then deleted it: the call's answer on the stream came unnamed (tool-scoped
    rules skipped)."""
    from mcp_gateway.parse import build_messages
    from mcp_gateway.pipeline import Pipeline

    pipe = Pipeline([CorrelateStage(Correlator())])
    post = Exchange(flow_id="p1", server="s", legacy_session="L")
    call = {"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "crm_lookup"}}
    pipe.run_all(build_messages(call, 10, C2S, post).messages)
    again = Exchange(flow_id="p2", server="s", legacy_session="L")
    dup = {"jsonrpc": "2.0", "id": 5, "method": "ping", "Params": {}}
    (d,) = pipe.run_all(build_messages(dup, 10, C2S, again).messages)
    assert d.stopped and d.refusal.stage == "parse"
    get = Exchange(flow_id="g", server="s", legacy_session="L")
    answer = {"jsonrpc": "2.0", "id": 5, "result": {}}
    (ans,) = pipe.run_all(build_messages(answer, 10, S2C, get).messages)
    assert (ans.method, ans.name) == ("tools/call", "crm_lookup")


def test_a_task_with_a_long_id_is_still_its_tool_s() -> None:
    """The server chooses the task id: one over 512 characters was not remembered, and
    its result (tasks/result) came without its tool, out of the tool's rules."""
    st = CorrelateStage()
    ex = Exchange(flow_id="p", server="s", session_id="S")
    st.process(msg(ex, C2S, Kind.REQUEST, 2, "tools/call", "crm_lookup"))
    tid = "T" * 4000
    created = Message(
        payload={"jsonrpc": "2.0", "id": 2, "result": {"task": {"taskId": tid}}},
        direction=S2C, kind=Kind.RESULT, exchange=ex, id=2,
    )  # fmt: skip
    st.process(created)
    ans = _task_answer(st, "S", 3, tid)
    assert (ans.method, ans.name) == ("tools/call", "crm_lookup")
    assert all(len(k[2][1]) == 64 for k in st.correlator.tasks)  # kept as its digest


def test_an_answer_replayed_on_a_resumed_stream_is_still_its_tool_s() -> None:
    """A GET with Last-Event-ID makes the server replay answer events after their requests
    were answered: the replay names the tool the first delivery named (a rule scoped to the
    tool redacted it then; unattributed, the client read it whole), also when the client
    has since reused the id for another request, which keeps its own answer."""
    st = CorrelateStage()
    post = Exchange(flow_id="p", server="s", session_id="S1")
    first = answered(st, post, 2, "tools/call", "crm_lookup", event_id="ev-7")
    assert first.name == "crm_lookup"
    again = Exchange(flow_id="p2", server="s", session_id="S1")
    st.process(msg(again, C2S, Kind.REQUEST, 2, "ping"))  # (the id reused, in flight)
    resumed = resumed_get("ev-6")
    replay = msg(resumed, S2C, Kind.RESULT, 2)
    replay.sse_event_id = "ev-7"
    st.process(replay)
    assert (replay.method, replay.name) == ("tools/call", "crm_lookup")
    ping = msg(again, S2C, Kind.RESULT, 2)
    st.process(ping)
    assert ping.method == "ping"
    # another session's event id is not this one's
    other = msg(
        Exchange(flow_id="o", server="s", session_id="S2", http_method="GET", request_headers={"last-event-id": "1"}),
        S2C, Kind.RESULT, 2,
    )  # fmt: skip
    other.sse_event_id = "ev-7"
    st.process(other)
    assert other.method is None


def test_what_a_request_s_answer_stream_carries_besides_its_answer_names_its_tool() -> None:
    """A tool's log and progress notifications and its sampling requests come on its own
    answer stream: they name the tool, so rules scoped to it read them too (they passed
    unattributed while the tool's result was redacted). Not when the exchange carried more
    than one request (a batch, a WebSocket connection), nor on another exchange."""
    st = CorrelateStage()
    post = Exchange(flow_id="p", server="s", session_id="S1")
    st.process(msg(post, C2S, Kind.REQUEST, 2, "tools/call", "crm_export"))
    for kind, method in ((Kind.NOTIFICATION, "notifications/message"),
                         (Kind.REQUEST, "sampling/createMessage")):  # fmt: skip
        m = msg(post, S2C, kind, 9 if kind is Kind.REQUEST else None, method)
        st.process(m)
        assert (m.method, m.name) == (method, "crm_export")
    answer = msg(Exchange(flow_id="p2", server="s", session_id="S1"), C2S, Kind.RESULT, 9)
    st.process(answer)  # the client's answer to the tool's sampling request
    assert (answer.method, answer.name) == ("sampling/createMessage", "crm_export")
    get = Exchange(flow_id="g", server="s", session_id="S1")
    other = msg(get, S2C, Kind.NOTIFICATION, None, "notifications/message")
    st.process(other)
    assert other.name is None
    # ... but one replayed there (a resumed stream) is the tool's, by its event id
    logged = msg(post, S2C, Kind.NOTIFICATION, None, "notifications/message")
    logged.sse_event_id = "ev-1"
    st.process(logged)
    get = resumed_get("0", flow_id="g2")
    replayed = msg(get, S2C, Kind.NOTIFICATION, None, "notifications/message")
    replayed.sse_event_id = "ev-1"
    st.process(replayed)
    assert replayed.name == "crm_export"
    batch = Exchange(flow_id="b", server="s", session_id="S1")
    st.process(msg(batch, C2S, Kind.REQUEST, 3, "tools/call", "crm_export"))
    st.process(msg(batch, C2S, Kind.REQUEST, 4, "tools/call", "echo"))
    n = msg(batch, S2C, Kind.NOTIFICATION, None, "notifications/progress")
    st.process(n)
    assert n.name is None


def test_a_legacy_tool_s_progress_on_the_get_stream_names_the_tool_by_its_token() -> None:
    """The legacy HTTP+SSE transport sends everything on the GET stream: a tool's progress
    notifications named no tool, so rules scoped to it skipped what it reported. The
    progress token ties them to the call, per server and session."""
    st = CorrelateStage()
    post = Exchange(flow_id="p", server="s", legacy_session="L1")
    call = msg(post, C2S, Kind.REQUEST, 2, "tools/call", "crm_export")
    call.payload["params"] = {"name": "crm_export", "_meta": {"progressToken": 2}}
    st.process(call)
    get = Exchange(flow_id="g", server="s", legacy_session="L1")

    def progress(ex, token):
        n = msg(ex, S2C, Kind.NOTIFICATION, None, "notifications/progress")
        n.payload["params"] = {"progressToken": token, "progress": 1, "message": "m"}
        st.process(n)
        return n.name

    assert progress(get, 2) == "crm_export"
    assert progress(get, "2") is None  # (another token)
    assert progress(Exchange(flow_id="h", server="s", legacy_session="L2"), 2) is None
    assert progress(Exchange(flow_id="i", server="t", legacy_session="L1"), 2) is None
    log = msg(get, S2C, Kind.NOTIFICATION, None, "notifications/message")
    log.payload["params"] = {"progressToken": 2, "level": "info", "data": "x"}
    st.process(log)
    assert log.name is None  # (only progress notifications carry the token)


def test_a_legacy_progress_token_two_calls_in_flight_share_names_no_single_tool() -> None:
    """A client reuses one progressToken for echo while crm_export is running (legacy
    HTTP+SSE): crm_export's progress was named echo, outside the rules scoped to crm_*.
    Such a token's progress may be either call's: it names none and meets every tool scope
    (review3). A token reused once the first call was answered is the new call's."""
    st = CorrelateStage()

    def call(rid, tool, token, flow_id):
        m = msg(Exchange(flow_id=flow_id, server="s", legacy_session="L1"), C2S, Kind.REQUEST,
                rid, "tools/call", tool)  # fmt: skip
        m.payload["params"] = {"name": tool, "_meta": {"progressToken": token}}
        st.process(m)
        return m.exchange

    def progress(token):
        n = msg(Exchange(flow_id="g", server="s", legacy_session="L1"), S2C, Kind.NOTIFICATION,
                None, "notifications/progress")  # fmt: skip
        n.payload["params"] = {"progressToken": token, "progress": 1, "message": "m"}
        st.process(n)
        return n.name, n.any_name

    crm = call(2, "crm_export", "T", "p2")
    assert progress("T") == ("crm_export", False)
    call(3, "echo", "T", "p3")
    assert progress("T") == (None, True)
    # sequential reuse: the first call answered, then the token given again
    a = call(4, "crm_lookup", "U", "p4")
    st.process(msg(a, S2C, Kind.RESULT, 4))
    call(5, "echo", "U", "p5")
    assert progress("U") == ("echo", False)
    assert crm is not None


def test_a_server_s_task_augmented_sampling_is_answered_as_sampling() -> None:
    """2025-11-25 tasks, client side: a server's sampling request answered with a task; the
    model's output comes as the client's answer to the server's tasks/result. It named
    tasks/result, so rules scoped to sampling/createMessage skipped it. A task id the client
    made names nothing when the client asks tasks/result of it (the server's tasks are
    another set)."""
    st = CorrelateStage()
    stream = Exchange(flow_id="p", server="s", session_id="S")
    st.process(msg(stream, S2C, Kind.REQUEST, 100, "sampling/createMessage"))
    created = Message(
        payload={"jsonrpc": "2.0", "id": 100, "result": {"task": {"taskId": "CT1"}}},
        direction=C2S, kind=Kind.RESULT, exchange=Exchange(flow_id="a", server="s", session_id="S"),
        id=100,
    )  # fmt: skip
    st.process(created)
    assert created.method == "sampling/createMessage"
    ask = Message(
        payload={"jsonrpc": "2.0", "id": 101, "method": "tasks/result", "params": {"taskId": "CT1"}},
        direction=S2C, kind=Kind.REQUEST, exchange=stream, id=101, method="tasks/result",
    )  # fmt: skip
    st.process(ask)
    ans = msg(Exchange(flow_id="b", server="s", session_id="S"), C2S, Kind.RESULT, 101)
    st.process(ans)
    assert ans.method == "sampling/createMessage"
    # the client cannot name the task its own answer made to take a tool's attribution
    wrong = _task_answer(st, "S", 5, "CT1")
    assert wrong.method == "tasks/result"


def test_answers_are_paired_by_the_server_s_address_not_the_name_a_client_gives_it() -> None:
    """Mcp-Gateway-Server names a loopback server as its client likes: a legacy GET stream
    named one way and its POSTs another left every answer unpaired (no tool, so out of the
    tool's rules), and an id reused in flight under another name went unnoticed."""
    st = CorrelateStage()
    post = Exchange(flow_id="p", server="b", address="127.0.0.1:9", session_id="S1")
    st.process(msg(post, C2S, Kind.REQUEST, 2, "tools/call", "crm_lookup"))
    again = msg(Exchange(flow_id="q", server="c", address="127.0.0.1:9", session_id="S1"),
                C2S, Kind.REQUEST, 2, "ping")  # fmt: skip
    st.process(again)
    assert again.stopped  # (the id is in flight at that address, whatever the name)
    stream = Exchange(flow_id="g", server="a", address="127.0.0.1:9", session_id="S1")
    r = msg(stream, S2C, Kind.RESULT, 2)
    st.process(r)
    assert r.name == "crm_lookup"
    elsewhere = Exchange(flow_id="h", server="a", address="127.0.0.1:10", session_id="S1")
    st.process(msg(post, C2S, Kind.REQUEST, 3, "tools/call", "crm_lookup"))
    r = msg(elsewhere, S2C, Kind.RESULT, 3)
    st.process(r)
    assert r.name is None


def test_an_event_id_seen_before_names_nothing_on_a_stream_that_was_not_resumed() -> None:
    """Event ids are unique in a session, or for one client where there is none (which the
    gateway cannot tell apart), and a server may count them again: remembered answers are
    looked up by event id only on a resumed stream (Last-Event-ID), and never without a
    session. Else a fresh answer with an id seen before took the earlier request's tool, and
    a crm_export result went out under echo, outside the rules scoped to crm_*."""
    st = CorrelateStage()
    for sid in (None, "S"):
        a = Exchange(flow_id=f"a{sid}", server="s", session_id=sid)
        st.process(msg(a, C2S, Kind.REQUEST, 1, "tools/call", "echo"))
        r = msg(a, S2C, Kind.RESULT, 1)
        r.sse_event_id = "1"
        st.process(r)
        b = Exchange(flow_id=f"b{sid}", server="s", session_id=sid)
        st.process(msg(b, C2S, Kind.REQUEST, 2, "tools/call", "crm_export"))
        r = msg(b, S2C, Kind.RESULT, 2)
        r.sse_event_id = "1"
        st.process(r)
        assert r.name == "crm_export"
    # without a session nothing is remembered by event id: a replay there is read by every
    # rule (its request unknown), not as whichever client's answer had the id last
    assert all(k[1] is not None for k in st.correlator.events)


def test_a_long_name_is_not_remembered_by_event_id() -> None:
    """The event-id memory outlives the byte-bounded in-flight maps (50 000 entries): a
    client's tool or method name of a megabyte, answered on an event stream, was kept there
    whole (200 such calls held 200 MB)."""
    st = CorrelateStage()
    for i, (method, name) in enumerate((("tools/call", "x" * 2000), ("y" * 2000, None))):
        ex = Exchange(flow_id=f"f{i}", server="s", session_id="S")
        st.process(msg(ex, C2S, Kind.REQUEST, i, method, name))
        r = msg(ex, S2C, Kind.ERROR, i)
        r.sse_event_id = f"e{i}"
        st.process(r)
        assert r.method == method
    assert not st.correlator.events


def test_a_request_in_flight_on_a_live_stream_does_not_take_a_replayed_answer(monkeypatch) -> None:
    """A client pushes a crm_* answer's event out of the event-id memory with answers of its
    own (50 000 pings), sends echo with the crm call's id, and resumes its stream from before
    the crm answer: the replay was taken as echo's answer, out of the rules scoped to crm_*.
    On a resumed stream only a request whose own stream ended before its answer (with event
    ids) takes an answer; this one is unknown (every rule reads it), and echo keeps its id."""
    from types import SimpleNamespace

    import mcp_gateway.correlate as cm

    monkeypatch.setattr(cm, "MAX_EVENTS", 100)
    st = CorrelateStage()
    post = Exchange(flow_id="p", server="s", session_id="S1")
    answered(st, post, 2, "tools/call", "crm_lookup", event_id="ev-7")
    push_out(st, "ev-p")
    live = Exchange(flow_id="l", server="s", session_id="S1")
    st.process(msg(live, C2S, Kind.REQUEST, 2, "tools/call", "echo"))
    resumed = resumed_get("ev-6")
    replay = msg(resumed, S2C, Kind.RESULT, 2)
    replay.sse_event_id = "ev-7"
    st.process(replay)
    assert replay.method is None and replay.name is None
    own = msg(live, S2C, Kind.RESULT, 2)
    st.process(own)
    assert own.name == "echo"
    # ... while the answer of a request whose stream ended before it (cut, or closed by the
    # server, after an event id) is taken on the resumed stream
    for error in ("connection reset", None):
        flow = SimpleNamespace(response=SimpleNamespace(status_code=200), error=error)
        cut = Exchange(flow_id="c", server="s", session_id="S1", flow=flow)
        st.process(msg(cut, C2S, Kind.REQUEST, 9, "tools/call", "crm_export"))
        cut.scratch[SSE_EVENT_IDS] = True
        note_event_id(cut.scratch, "ev-c1")
        st.on_exchange_end(cut)
        resumed = resumed_get("ev-c1")
        came = msg(resumed, S2C, Kind.RESULT, 9)
        came.sse_event_id = "ev-99" + str(error)
        st.process(came)
        assert (came.method, came.name) == ("tools/call", "crm_export")


def test_a_post_carrying_last_event_id_is_no_resumed_stream() -> None:
    """Only a GET resumes a stream: a client that puts Last-Event-ID on the POST of a
    crm_* call (servers ignore it there) made the gateway look its answer up by event id,
    and where the server counts event ids again in the session, the answer took an earlier
    echo answer's name and went out outside the rules scoped to crm_*."""
    st = CorrelateStage()
    first = Exchange(flow_id="a", server="s", session_id="S1")
    st.process(msg(first, C2S, Kind.REQUEST, 1, "tools/call", "echo"))
    r1 = msg(first, S2C, Kind.RESULT, 1)
    r1.sse_event_id = "1"
    st.process(r1)
    post = Exchange(
        flow_id="b", server="s", session_id="S1", request_headers={"last-event-id": "0"}
    )
    st.process(msg(post, C2S, Kind.REQUEST, 2, "tools/call", "crm_lookup"))
    r2 = msg(post, S2C, Kind.RESULT, 2)
    r2.sse_event_id = "1"  # (the server counts again on each stream)
    st.process(r2)
    assert (r2.method, r2.name) == ("tools/call", "crm_lookup")


def test_a_request_whose_stream_the_client_cut_takes_no_answer_replayed_on_another_stream(
    monkeypatch,
) -> None:
    """The client calls crm_lookup (id 2, its answer event A-2), pushes A-2 out of the
    event-id memory with answers of its own, sends echo with id 2 and hangs up on its stream
    right after the priming event (E-0), so echo's stream "ended before its answer", then
    resumes crm's stream from A-1: the replayed crm answer was taken as echo's, outside the
    rules scoped to crm_*. A request takes an answer only on a stream resumed from one of
    its own stream's event ids; this replay is unknown (every rule reads it)."""
    from types import SimpleNamespace

    import mcp_gateway.correlate as cm

    monkeypatch.setattr(cm, "MAX_EVENTS", 100)
    st = CorrelateStage()
    post = Exchange(flow_id="p", server="s", session_id="S1")
    answered(st, post, 2, "tools/call", "crm_lookup", event_id="A-2")
    push_out(st, "P")
    flow = SimpleNamespace(response=SimpleNamespace(status_code=200), error="client hung up")
    echo = Exchange(flow_id="e", server="s", session_id="S1", flow=flow)
    st.process(msg(echo, C2S, Kind.REQUEST, 2, "tools/call", "echo"))
    echo.scratch[SSE_EVENT_IDS] = True
    note_event_id(echo.scratch, "E-0")
    before = st.correlator._bytes
    st.on_exchange_end(echo)
    assert st.correlator._bytes == before + 100 + 3  # (the ids it keeps are counted)
    get = resumed_get("A-1")
    replay = msg(get, S2C, Kind.RESULT, 2)
    replay.sse_event_id = "A-2"
    st.process(replay)
    assert (replay.method, replay.name) == (None, None)
    # echo's own answer, on its stream resumed from E-0, is still echo's
    again = resumed_get("E-0", flow_id="g2")
    own = msg(again, S2C, Kind.RESULT, 2)
    own.sse_event_id = "E-1"
    st.process(own)
    assert (own.method, own.name) == ("tools/call", "echo")


def test_an_error_without_id_answers_the_only_request_of_its_exchange():
    """The TypeScript SDK's server refuses a request it will not serve (a 2026-07-28
    client's ``server/discover``, a request without a session) with HTTP 400 and
    ``"id": null``, the Python SDK 1.x's with ``"id": "server-error"``: that error answers
    the POST's request, for the audit and the rules scoped to its tool."""
    st = CorrelateStage()
    ex = Exchange(flow_id="a", server="s")
    st.process(msg(ex, C2S, Kind.REQUEST, 1, "tools/call", "crm_export"))
    e = msg(ex, S2C, Kind.ERROR, None)
    st.process(e)
    assert (e.method, e.name) == ("tools/call", "crm_export") and e.latency_ms >= 0
    # the Python SDK 1.x's server gives such errors the id "server-error"
    ex = Exchange(flow_id="b", server="s", session_id="S1")
    st.process(msg(ex, C2S, Kind.REQUEST, 2, "server/discover"))
    e = msg(ex, S2C, Kind.ERROR, "server-error")
    st.process(e)
    assert e.method == "server/discover"
    # (an answer with an id names its own request, wherever it comes)
    st.process(
        msg(Exchange(flow_id="c", server="s", session_id="S1"), C2S, Kind.REQUEST, 3, "ping")
    )
    r = msg(ex, S2C, Kind.ERROR, 3)
    st.process(r)
    assert r.method == "ping"


def test_an_error_without_id_names_no_request_when_it_could_answer_several():
    st = CorrelateStage()
    batch = Exchange(flow_id="b", server="s")
    st.process(msg(batch, C2S, Kind.REQUEST, 1, "tools/call", "echo"))
    st.process(msg(batch, C2S, Kind.REQUEST, 2, "tools/call", "crm_export"))
    e = msg(batch, S2C, Kind.ERROR, None)
    st.process(e)
    assert (e.method, e.name) == (None, None)
    # nor one on a stream that carries no request of its own (the GET stream)
    get = Exchange(flow_id="g", server="s", session_id="S1", http_method="GET")
    st.process(
        msg(Exchange(flow_id="p", server="s", session_id="S1"), C2S, Kind.REQUEST, 3, "ping")
    )
    e = msg(get, S2C, Kind.ERROR, None)
    st.process(e)
    assert e.method is None
