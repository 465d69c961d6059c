"""Small fake pipeline stages shared by the core and WebSocket adapter tests."""

from mcp_gateway.message import ErrorCode, Kind, Refusal
from mcp_gateway.parse import decode_json, encode_json


class Recorder:
    name, order, always = "recorder", 900, True

    def __init__(self):
        self.msgs = []
        self.ended = []

    def process(self, msg):
        self.msgs.append(msg)

    def on_exchange_end(self, ex):
        self.ended.append(ex)


class BlockTool:
    """Blocks tools/call of tool 'bad' and responses containing 'SECRET'; redacts 'PII'."""

    name, order = "fake-scan", 400

    def process(self, msg):
        if msg.method == "tools/call" and msg.name == "bad" and msg.kind is Kind.REQUEST:
            msg.block(ErrorCode.BLOCKED, "blocked by rule test.bad", stage=self.name)
        blob = encode_json(msg.payload)
        if b"SECRET" in blob:
            msg.block(ErrorCode.BLOCKED, "blocked by rule test.secret", stage=self.name)
        elif b"PII" in blob and isinstance(msg.payload, dict):
            msg.payload = decode_json(blob.replace(b"PII", b"[REDACTED:email]"))
            msg.mark_modified()


class ScrubAndBlock:
    """As the act stage blocks: replaces CODENAME in the payload, then blocks the message."""

    name, order = "fake-act", 450

    def process(self, msg):
        blob = encode_json(msg.payload)
        if b"CODENAME" in blob and isinstance(msg.payload, dict):
            scrubbed = decode_json(blob.replace(b"CODENAME", b"[REDACTED:codename]"))
            msg.payload.clear()
            msg.payload.update(scrubbed)
            msg.block(ErrorCode.BLOCKED, "blocked by rule test.codename", stage=self.name)


class Boom:
    name, order = "boom", 300

    def process(self, msg):
        raise RuntimeError("rule exploded")


class RefuseAll:
    name, order = "auth", 200

    def on_exchange(self, ex):
        ex.refusal = Refusal(
            ErrorCode.UNAUTHORIZED,
            "authentication required",
            401,
            {"WWW-Authenticate": 'Bearer realm="mcp-gateway"'},
        )

    def process(self, msg):
        pass


def rpc(method, id=1, **params):
    d = {"jsonrpc": "2.0", "method": method}
    if id is not None:
        d["id"] = id
    if params:
        d["params"] = params
    return d
