"""MCP over WebSocket (the Python SDK 1.x's transport): each message runs the pipeline."""

import binascii

import orjson
import pytest
from mcp_gateway import ws as ws_mod
from mcp_gateway.act import ActStage
from mcp_gateway.core import Gateway
from mcp_gateway.message import ErrorCode, Kind, Transport
from mcp_gateway.scan.engine import Engine
from mcp_gateway.scan.stage import ScanStage
from mcp_gateway.scan.validators import base62
from mitmproxy import websocket
from mitmproxy.test import taddons, tflow, tutils
from pipeline_fakes import BlockTool, Recorder, RefuseAll, ScrubAndBlock, rpc
from wsproto.frame_protocol import Opcode


@pytest.fixture
def gw(monkeypatch):
    g = Gateway()
    g.rec = Recorder()
    g.pipeline.add(g.rec)
    g.pipeline.add(BlockTool())
    g.injected = []

    def inject(cmd, flow, to_client, message, is_text=True):
        assert cmd == "inject.websocket"
        g.injected.append((to_client, orjson.loads(message)))

    with taddons.context(g) as tctx:
        g.tctx = tctx
        monkeypatch.setattr(tctx.master.commands, "call", inject)
        yield g


def wsflow(subprotocol="mcp"):
    f = tflow.twebsocketflow(messages=False)
    if subprotocol:
        f.response.headers["sec-websocket-protocol"] = subprotocol
    return f


def send(gw, flow, body, from_client=True, text=True):
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    m = websocket.WebSocketMessage(Opcode.TEXT if text else Opcode.BINARY, from_client, content)
    flow.websocket.messages.append(m)
    gw.websocket_message(flow)
    return m


def test_messages_run_the_pipeline_with_the_handshake_as_their_exchange(gw):
    f = wsflow()
    gw.websocket_start(f)
    send(gw, f, rpc("tools/call", 5, name="ok", arguments={}))
    send(gw, f, {"jsonrpc": "2.0", "id": 5, "result": {"content": []}}, from_client=False)
    req, res = gw.rec.msgs
    assert req.kind is Kind.REQUEST and req.exchange.transport is Transport.WEBSOCKET
    assert res.exchange is req.exchange
    assert (res.method, res.name) == ("tools/call", "ok") and res.latency_ms is not None
    gw.websocket_end(f)
    assert gw.rec.ended == [req.exchange]


def test_a_blocked_request_is_not_forwarded_and_the_client_gets_the_error(gw):
    f = wsflow()
    gw.websocket_start(f)
    m = send(gw, f, rpc("tools/call", 9, name="bad", arguments={}))
    assert m.dropped
    ((to_client, answer),) = gw.injected
    assert to_client and answer["id"] == 9 and "test.bad" in answer["error"]["message"]
    assert f.marked


def test_redaction_rewrites_the_message_in_both_directions(gw):
    f = wsflow()
    gw.websocket_start(f)
    m = send(gw, f, rpc("tools/call", 1, name="ok", arguments={"to": "PII"}))
    assert not m.dropped and b"PII" not in m.content
    assert orjson.loads(m.content)["params"]["arguments"]["to"] == "[REDACTED:email]"
    r = send(gw, f, {"jsonrpc": "2.0", "id": 1, "result": {"text": "PII"}}, from_client=False)
    assert orjson.loads(r.content) == {
        "jsonrpc": "2.0",
        "id": 1,
        "result": {"text": "[REDACTED:email]"},
    }


def test_blocked_server_messages_become_errors_or_are_dropped(gw):
    f = wsflow()
    gw.websocket_start(f)
    r = send(gw, f, {"jsonrpc": "2.0", "id": 3, "result": {"t": "SECRET"}}, from_client=False)
    assert orjson.loads(r.content)["error"]["code"] == ErrorCode.BLOCKED
    n = send(gw, f, rpc("notifications/message", None, data="SECRET"), from_client=False)
    assert n.dropped
    # a server request (sampling) that must not reach the client: the server is answered
    q = send(gw, f, rpc("sampling/createMessage", 11, note="SECRET"), from_client=False)
    assert q.dropped
    ((to_client, answer),) = gw.injected
    assert not to_client and answer["id"] == 11 and "test.secret" in answer["error"]["message"]
    # a client's answer to a server request: the server gets an error in its place
    a = send(gw, f, {"jsonrpc": "2.0", "id": 4, "result": {"t": "SECRET"}})
    assert not a.dropped and orjson.loads(a.content)["error"]["code"] == ErrorCode.BLOCKED


def test_a_blocked_server_message_leaves_no_content_in_the_flow(gw):
    # a dropped message stays in the flow: mitmweb's MCP view showed what the rule kept from
    # the client, and `-w` saved it (a blocked HTTP answer's body is replaced)
    f = wsflow()
    gw.websocket_start(f)
    n = send(gw, f, rpc("notifications/message", None, data="SECRET"), from_client=False)
    q = send(gw, f, rpc("sampling/createMessage", 11, note="SECRET"), from_client=False)
    for m in (n, q):
        assert m.dropped and b"SECRET" not in m.content and m.content == ws_mod.WITHHELD
    assert all(b"SECRET" not in m.content for m in f.websocket.messages)


def test_a_client_message_a_rule_blocked_stays_in_the_flow_as_the_rule_left_it(gw):
    gw.pipeline.add(ScrubAndBlock())
    f = wsflow()
    gw.websocket_start(f)
    m = send(gw, f, rpc("tools/call", 12, name="echo", arguments={"text": "CODENAME"}))
    b = send(gw, f, [rpc("tools/call", 13, name="echo", text="CODENAME"), rpc("tools/list", 14)])
    for x in (m, b):
        assert x.dropped and b"CODENAME" not in x.content and b"[REDACTED:codename]" in x.content


def test_a_batch_with_a_refused_element_is_answered_whole(gw):
    f = wsflow()
    gw.websocket_start(f)
    m = send(gw, f, [rpc("tools/call", 1, name="bad"), rpc("tools/list", 2)])
    assert m.dropped
    ((_, answers),) = gw.injected
    assert [a["id"] for a in answers] == [1, 2]
    assert "test.bad" in answers[0]["error"]["message"]
    assert "not forwarded" in answers[1]["error"]["message"]


def test_client_answers_in_a_refused_batch_reach_the_server_as_errors(gw):
    # as over HTTP: dropped with the batch, the answers left the server's request waiting
    f = wsflow()
    gw.websocket_start(f)
    answered = {"role": "assistant", "content": {"type": "text", "text": "hi"}, "model": "m"}
    m = send(
        gw,
        f,
        [
            {"jsonrpc": "2.0", "id": 0, "result": answered},
            {"jsonrpc": "2.0", "id": 1, "result": {"note": "SECRET"}},
            rpc("tools/call", 9, name="bad"),
        ],
    )
    assert m.dropped
    (to_client, mine), *to_server = gw.injected
    assert to_client and [a["id"] for a in mine] == [9]
    # one message each (a server may take no batch)
    assert [(t, e["id"], e["error"]["code"]) for t, e in to_server] == [
        (False, 0, ErrorCode.NOT_FORWARDED),
        (False, 1, ErrorCode.BLOCKED),
    ]
    assert b"SECRET" not in orjson.dumps(to_server) and b"hi" not in orjson.dumps(to_server)


def test_other_websocket_traffic_passes_unchanged(gw):
    f = wsflow(subprotocol=None)
    gw.websocket_start(f)
    for body in (b"hello", b'{"type": "ping", "SECRET": 1}', b"\x00\x01binary"):
        m = send(gw, f, body)
        assert m.content == body and not m.dropped
    assert gw.rec.msgs == [] and gw.injected == []
    # a JSON-RPC message is inspected even without the "mcp" subprotocol
    m = send(gw, f, rpc("tools/call", 2, name="bad"))
    assert m.dropped


def test_an_exchange_refusal_answers_every_request(gw):
    gw.pipeline.add(RefuseAll())
    f = wsflow()
    gw.websocket_start(f)
    m = send(gw, f, rpc("tools/list", 7))
    assert m.dropped
    ((_, answer),) = gw.injected
    assert answer["id"] == 7 and answer["error"]["code"] == ErrorCode.UNAUTHORIZED


@pytest.mark.parametrize("mode", ["closed", "open"])
def test_an_internal_error_follows_the_fail_mode(gw, monkeypatch, mode):
    gw.fail_mode = mode

    def boom(*a, **k):
        raise RuntimeError("parser exploded")

    monkeypatch.setattr(ws_mod, "decode_json", boom)
    f = wsflow()
    gw.websocket_start(f)
    m = send(gw, f, rpc("tools/call", 1, name="ok"))
    assert m.dropped is (mode == "closed")


@pytest.mark.parametrize("mode", ["closed", "open"])
def test_a_message_over_the_size_limit_is_not_inspected(gw, mode):
    gw.fail_mode = mode
    gw.max_message_bytes = 100
    f = wsflow()
    gw.websocket_start(f)
    m = send(gw, f, rpc("tools/call", 8, name="ok", arguments={"x": "y" * 200}))
    assert m.dropped is (mode == "closed")
    if mode == "closed":
        ((_, answer),) = gw.injected
        assert answer["id"] == 8 and answer["error"]["code"] == ErrorCode.TOO_LARGE


def test_the_default_rules_redact_a_token_in_a_websocket_tool_call():
    g = Gateway()
    g.pipeline.add(ScanStage(Engine.load()))
    g.pipeline.add(ActStage(b"k"))
    body = "Zq8Lm2Xv9Rt4Wp7Yk3Nb6Hc1Jd5Fg0"
    token = f"ghp_{body}{base62(binascii.crc32(body.encode()))}"
    with taddons.context(g):
        f = wsflow()
        g.websocket_start(f)
        m = send(g, f, rpc("tools/call", 1, name="echo", arguments={"text": f"key {token}"}))
        assert token.encode() not in m.content
        assert (
            orjson.loads(m.content)["params"]["arguments"]["text"] == "key [REDACTED:github_token]"
        )


@pytest.mark.parametrize(
    "body",
    [
        b" " * 100 + orjson.dumps(rpc("tools/call", 1, name="ok", arguments={"to": "PII"})),
        b'{"jsonrpc":"2.0","id":null,"method":"notifications/message","params":{"d":"PII"}}',
    ],
    ids=["padded", "id-null"],
)
@pytest.mark.parametrize("from_client", [True, False])
def test_messages_the_sdk_reads_are_inspected_however_they_are_dressed(gw, body, from_client):
    f = wsflow()
    gw.websocket_start(f)
    m = send(gw, f, body, from_client=from_client)
    assert b"PII" not in m.content and b"[REDACTED:email]" in m.content


def test_too_deep_to_inspect_is_refused_in_closed_mode(gw):
    f = wsflow()
    gw.websocket_start(f)
    deep = b'{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"p":' + b"[" * 600
    m = send(gw, f, deep + b"]" * 600 + b"}}")
    assert m.dropped
    ((to_client, answer),) = gw.injected
    assert to_client and answer["id"] == 3 and answer["error"]["code"] == ErrorCode.TOO_LARGE


@pytest.mark.parametrize("over", ["batch", "bytes"])
def test_an_uninspectable_first_message_still_meets_authentication(gw, over):
    # mcp_fail_mode=open forwards what cannot be inspected; the connection's first message
    # used to go before authentication had run at all
    gw.pipeline.add(RefuseAll())
    if over == "batch":
        gw.tctx.configure(gw, mcp_fail_mode="open", mcp_max_batch=2)
    else:
        gw.tctx.configure(gw, mcp_fail_mode="open", mcp_max_message_bytes=40)
    f = wsflow()
    gw.websocket_start(f)
    m = send(gw, f, [rpc("tools/call", i, name="x") for i in range(3)])
    assert m.dropped
    ((to_client, answer),) = gw.injected
    assert to_client and answer["error"]["code"] == ErrorCode.UNAUTHORIZED


def _handshake(subprotocol="mcp", auth=None):
    """A WebSocket flow at its ``request`` hook: the client's upgrade, not yet answered."""
    f = tflow.twebsocketflow(messages=False)
    if subprotocol:
        f.request.headers["sec-websocket-protocol"] = subprotocol
        f.response.headers["sec-websocket-protocol"] = subprotocol
    if auth:
        f.request.headers["authorization"] = auth
    answered = f.response
    f.response = None
    return f, answered


@pytest.fixture
def keyed(tmp_path, monkeypatch):
    """The core and the identity addon on one pipeline, as gateway.py loads them: auth
    required, an API key, and an upstream credential for the test flows' server."""
    from mcp_gateway.identity.addon import IdentityAddon
    from mcp_gateway.identity.keys import create_key

    monkeypatch.setenv("WS_UPSTREAM", "upstream-secret-4711")
    db = tmp_path / "keys.db"
    key, _ = create_key(db, "ws", "alice", [])
    cfg = tmp_path / "gw.yaml"
    cfg.write_text(
        f"keys_db: {db}\nauth: {{required: true}}\nservers:\n"
        '  - match: "example.com:*"\n    credential: {type: bearer, ref: env://WS_UPSTREAM}\n'
    )
    g = Gateway()
    g.rec = Recorder()
    g.pipeline.add(g.rec)
    ident = IdentityAddon(g.pipeline)
    g.injected = []

    def inject(cmd, flow, to_client, message, is_text=True):
        g.injected.append((to_client, orjson.loads(message)))

    with taddons.context(g, ident) as tctx:
        tctx.configure(ident, mcp_config=str(cfg))
        monkeypatch.setattr(tctx.master.commands, "call", inject)
        yield g, ident, key
        ident.done()


def _hooks(g, ident, f, answered):
    """The request hooks in gateway.py's order (core first, then identity), then the
    handshake's answer if the gateway did not answer it."""
    g.request(f)
    ident.request(f)
    if f.response is None:
        f.response = answered
        ident.responseheaders(f)
        g.websocket_start(f)


def test_a_gateway_key_authenticates_a_websocket_connection_and_is_swapped(keyed):
    # The key used to be removed from the handshake as a stray credential before the
    # connection's exchange was made from its headers: the client was anonymous (refused
    # under auth.required) and the server never got its own credential.
    g, ident, key = keyed
    f, answered = _handshake(auth=f"Bearer {key}")
    _hooks(g, ident, f, answered)
    assert f.response is answered  # the handshake went on
    sent = f.request.headers.get_all("authorization")
    assert sent == ["[mcp-gateway: env://WS_UPSTREAM]"]  # swapped (masked once sent)
    m = send(g, f, rpc("tools/list", 3))
    assert not m.dropped and g.injected == []
    (req,) = g.rec.msgs
    assert req.exchange.identity.consumer == "alice"


def test_a_websocket_handshake_without_credential_is_refused_before_the_server(keyed):
    g, ident, _ = keyed
    f, _ = _handshake()
    _hooks(g, ident, f, None)
    assert f.response is not None and f.response.status_code == 401
    assert "www-authenticate" in f.response.headers
    g.response(f)  # the exchange ends with the flow: one audit row
    assert len(g.rec.ended) == 1


def test_a_websocket_without_the_mcp_subprotocol_keeps_the_handshake_credential(keyed):
    # not known as MCP at the handshake: its exchange starts with its first JSON-RPC
    # message, identified by the headers as the client sent them
    g, ident, key = keyed
    f, answered = _handshake(subprotocol=None, auth=f"Bearer {key}")
    _hooks(g, ident, f, answered)
    assert "authorization" not in f.request.headers  # never forwarded
    m = send(g, f, rpc("tools/list", 4))
    assert not m.dropped and g.injected == []
    assert g.rec.msgs[0].exchange.identity.consumer == "alice"


@pytest.mark.parametrize("subprotocol", ["mcp", None])
def test_a_handshake_the_server_refuses_ends_its_exchange(keyed, subprotocol):
    # the exchange made at the handshake must not outlive a flow that never upgraded
    g, ident, key = keyed
    f, _ = _handshake(subprotocol=subprotocol, auth=f"Bearer {key}")
    g.request(f)
    ident.request(f)
    assert f.response is None and f.id in g.websockets._open
    f.websocket = None
    f.response = tutils.tresp(status_code=403, content=b"no")
    g.response(f)
    assert f.id not in g.websockets._open and f.id not in g.websockets._started
    assert len(g.rec.ended) == (1 if subprotocol else 0)


@pytest.mark.parametrize("name", [b"JSONRPC", b"JsonRpc", "j\u017fonrpc".encode()])
def test_a_message_naming_jsonrpc_in_another_case_is_inspected_on_an_unknown_connection(gw, name):
    # (12df787: mcp-go reads member names in any case, "s" as the long s too; on a
    # connection not known as MCP such a message was forwarded unread, both ways)
    f = wsflow(subprotocol=None)
    gw.websocket_start(f)
    send(gw, f, b'{"price": 1}', from_client=False)
    m = send(gw, f, b'{"' + name + b'":"2.0","id":1,"result":{"t":"SECRET"}}', from_client=False)
    assert b"SECRET" not in m.content
    m = send(gw, f, b'{"' + name + b'":"2.0","id":2,"method":"tools/call","params":{"name":"x"}}')
    assert m.dropped and gw.injected[-1][1]["error"]["code"] == ErrorCode.INVALID_REQUEST


def test_a_blocked_server_request_in_a_batch_is_answered_to_the_server(gw):
    """A server's batch holding a request a rule blocks: as for one sent alone (and as on an
    event stream), the server gets the error for its request and the client never sees it.
    An error carrying the server's id went to the client instead, where it could settle
    the client's own request of that id, and the server waited for ever."""
    f = wsflow()
    gw.websocket_start(f)
    progress = rpc("notifications/progress", None, progress=1)
    b = send(gw, f, [rpc("sampling/createMessage", 7, note="SECRET"), progress], from_client=False)
    ((to_client, answer),) = gw.injected
    assert not to_client and answer["id"] == 7 and "test.secret" in answer["error"]["message"]
    assert not b.dropped and orjson.loads(b.content) == [progress]
    # nothing left for the client: the message is withheld
    gw.injected.clear()
    b = send(gw, f, [rpc("sampling/createMessage", 8, note="SECRET")], from_client=False)
    ((to_client, answer),) = gw.injected
    assert not to_client and answer["id"] == 8
    assert b.dropped and b"SECRET" not in b.content


@pytest.mark.parametrize("last", [False, True])
def test_a_server_request_too_large_to_inspect_is_answered_to_the_server(gw, last):
    """Closed mode drops a server message it cannot inspect. A server request (sampling,
    elicitation) dropped so was never answered: the server waited for ever (the Python
    SDK's server sets no timeout), and so did the client for a response, where an event
    stream answers each with the error. Ids are read as there, also when written last."""
    gw.tctx.configure(gw, mcp_max_message_bytes=200)
    f = wsflow()
    gw.websocket_start(f)
    params = b'"params":{"t":"' + b"x" * 500 + b'"}'
    if last:
        body = b'{"jsonrpc":"2.0","method":"sampling/createMessage",' + params + b',"id":9}'
    else:
        body = b'{"jsonrpc":"2.0","id":9,"method":"sampling/createMessage",' + params + b"}"
    m = send(gw, f, body, from_client=False)
    assert m.dropped
    ((to_client, answer),) = gw.injected
    assert not to_client and answer["id"] == 9 and answer["error"]["code"] == ErrorCode.TOO_LARGE
    # a notification is dropped; a response becomes the error for the client's request
    # (by its own id, also written last after an "id" inside its result)
    gw.injected.clear()
    note = b'{"jsonrpc":"2.0","method":"notifications/message",' + params + b"}"
    res = b'{"jsonrpc":"2.0","result":{"id":5,"t":"' + b"x" * 500 + b'"},"id":3}'
    assert send(gw, f, note, from_client=False).dropped
    assert send(gw, f, res, from_client=False).dropped
    ((to_client, answer),) = gw.injected
    assert to_client and answer["id"] == 3 and answer["error"]["code"] == ErrorCode.TOO_LARGE


def test_an_internal_error_on_a_message_answers_the_side_that_waits(gw, monkeypatch):
    """Closed mode drops a message the gateway failed on. A request (or a response) dropped
    so left its sender (or the requester) waiting for ever, where HTTP answers -32603."""

    def boom(*a, **k):
        raise RuntimeError("audit down")

    monkeypatch.setattr(gw, "_record", boom)
    f = wsflow()
    gw.websocket_start(f)
    cases = [
        (rpc("tools/call", 5, name="ok"), True, True),  # a client request: to the client
        ({"jsonrpc": "2.0", "id": 6, "result": {}}, True, False),  # its answer: the server
        (rpc("sampling/createMessage", 7), False, False),  # a server request: the server
        ({"jsonrpc": "2.0", "id": 8, "result": {}}, False, True),  # a response: the client
    ]
    for body, from_client, to in cases:
        gw.injected.clear()
        assert send(gw, f, body, from_client=from_client).dropped
        ((to_client, answer),) = gw.injected
        assert to_client is to and answer["id"] == body["id"]
        assert answer["error"]["code"] == ErrorCode.INTERNAL_ERROR
    gw.injected.clear()
    assert send(gw, f, rpc("notifications/progress", None), from_client=False).dropped
    assert gw.injected == []


def test_a_client_request_too_deep_to_inspect_is_refused_by_its_own_id(gw):
    """The refusal carries the request's own id (here written last), not the first "id"
    met inside its params, which could settle another of the client's requests."""
    f = wsflow()
    gw.websocket_start(f)
    deep = b"[" * 600 + b"]" * 600
    body = b'{"jsonrpc":"2.0","method":"tools/call","params":{"id":7,"p":%s},"id":3}' % deep
    assert send(gw, f, body).dropped
    ((to_client, answer),) = gw.injected
    assert to_client and answer["id"] == 3 and answer["error"]["code"] == ErrorCode.TOO_LARGE


def test_an_answer_without_jsonrpc_does_not_make_another_websocket_protocol_mcp(gw):
    # The Chrome DevTools Protocol (Playwright's connectOverCDP, Puppeteer) answers
    # {"id": 1, "result": …} without any jsonrpc member; such an answer holding a \u escape
    # (DOM HTML) made the connection an MCP one: refused under auth.required (a real
    # mitmdump answered Runtime.evaluate with -32062), scanned and redacted
    f = wsflow(subprotocol=None)
    gw.websocket_start(f)
    call = b'{"id":1,"method":"Runtime.evaluate","params":{"expression":"SECRET"}}'
    assert send(gw, f, call).content == call
    body = b'{"id":1,"result":{"result":{"type":"string","value":"\\u003cb\\u003eSECRET"}}}'
    m = send(gw, f, body, from_client=False)
    assert m.content == body and not m.dropped
    # a bare ping of another protocol neither (JSON-RPC 1.0 services name methods so)
    assert send(gw, f, b'{"id":2,"method":"ping"}').content == b'{"id":2,"method":"ping"}'
    assert gw.rec.msgs == [] and gw.injected == [] and f.id not in gw.websockets._started
    # an MCP method without jsonrpc is MCP (the Java SDK runs it), and then its answers are
    m = send(gw, f, b'{"id":3,"method":"tools/call","params":{"name":"bad"}}')
    assert m.dropped and f.id in gw.websockets._started
    m = send(gw, f, b'{"id":4,"result":{"t":"SECRET"}}', from_client=False)
    assert gw.rec.msgs[-1].kind is Kind.RESULT


def test_a_large_message_of_another_protocol_naming_a_method_goes_on(gw):
    # a Chrome DevTools Protocol event over mcp_max_message_bytes (a trace, a screencast
    # frame) named "method": read as a possible MCP message, it was refused uninspected
    gw.max_message_bytes = 64
    f = wsflow(subprotocol=None)
    gw.websocket_start(f)
    body = b'{"method":"Tracing.dataCollected","params":{"value":"' + b"x" * 100 + b'"}}'
    m = send(gw, f, body, from_client=False)
    assert m.content == body and not m.dropped and f.id not in gw.websockets._started
    # one naming an MCP method without jsonrpc is still not passed uninspected
    body = b'{"id":1,"method":"tools/call","params":{"name":"' + b"x" * 100 + b'"}}'
    m = send(gw, f, body)
    assert m.dropped and f.id in gw.websockets._started


LENIENT = [
    b"{method: 'tools/call', id: 3, params: {name: 'bad', arguments: {}}}",
    b"{'jsonrpc': '2.0', 'method': 'tools/call', 'id': 3, 'params': {'name': 'bad'}}",
    b')]}\'\n{"jsonrpc": "2.0", "method": "tools/call", "id": 3, "params": {}}',
    b'/* c */ {"jsonrpc": "2.0", "method": "initialize", "id": 3, "params": {}}',
    b'{"jsonrpc": "2.0", "method": "tools/call", "id": 3, "params": {"name": "bad"},}',
]


@pytest.mark.parametrize("body", LENIENT)
@pytest.mark.parametrize("subprotocol", ["mcp", None])
def test_a_message_only_a_lenient_parser_reads_as_mcp_is_refused(gw, body, subprotocol):
    """Red-team round 34: on an MCP WebSocket, a message that is no JSON but an MCP request
    to a lenient parser (Gson, Json.NET: single quotes, bare names, comments, a trailing
    comma, a ")]}'" prefix) went on to the server unread, unscanned and unaudited, as a POST
    of it did before round 33. Refused, audited, the client told (-32700)."""
    f = wsflow(subprotocol)
    if subprotocol is None:
        gw.websocket_start(f)
        send(gw, f, rpc("ping", 1))  # a connection seen speaking MCP
        gw.rec.msgs.clear()
    else:
        gw.websocket_start(f)
    m = send(gw, f, body)
    assert m.dropped
    ((to_client, answer),) = gw.injected
    assert to_client and answer["error"]["code"] == ErrorCode.PARSE_ERROR and answer["id"] is None
    (rec,) = gw.rec.msgs
    assert rec.kind is Kind.INVALID and not rec.inspected


@pytest.mark.parametrize(
    "body",
    [
        b"{method: 'tools/call', id: 3}",  # not an MCP connection: another protocol's text
        b'{"Method": "Page.navigate", "note": "method=initialize"}',
        b"hello method tools/call",
    ],
)
def test_lenient_text_on_other_websockets_passes_unchanged(gw, body):
    f = wsflow(subprotocol=None)
    gw.websocket_start(f)
    m = send(gw, f, body)
    assert not m.dropped and m.content == body and not gw.injected and not gw.rec.msgs


def test_strict_json_mentioning_a_method_in_a_string_is_no_lenient_request(gw):
    f = wsflow()
    gw.websocket_start(f)
    body = b'{"callback": "https://x.io/?method=initialize", "n": 1}'
    m = send(gw, f, body)
    assert not m.dropped and m.content == body and not gw.injected
