"""The ``act`` stage: turn the scan stage's findings into what happens to the message.

The strongest action among the findings wins:

- ``block``: the message is refused (``ErrorCode.BLOCKED``); the error names the rule id and
  the type, never the value. Client requests never reach the server; a server response is
  replaced by the error; a notification is dropped. The values are also scrubbed from the
  payload in place, so nothing later in the pipeline can leak them.
- ``redact``: the values are replaced in ``msg.payload`` in place (placeholder
  ``[REDACTED:type]``, partial mask, or keyed HMAC, per rule) and the message is marked
  modified. Values found through JSON escapes, percent-encoding or base64 are replaced so that
  the enclosing encoding stays valid (base64 blobs are decoded, redacted and re-encoded).
- ``alert``: forwarded; logged at WARNING on logger ``mcp_gateway``; the mitmproxy flow is
  marked and commented (visible in mitmweb).
- ``log``: forwarded; the findings go on to the audit stage.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import hmac
import logging
import os
import re
import secrets
import zlib
from urllib.parse import quote

from .message import Direction, ErrorCode, Kind, Message
from .outputschema import Guard, ToolSchemas
from .pipeline import ORDER_ACT
from .scan.engine import blob_text, inflate

log = logging.getLogger("mcp_gateway")

_LOCATIONS_LOGGED = 3  # locations named in an alert line; the rest are counted
_RANK = {"log": 0, "alert": 1, "redact": 2, "block": 3}
_SAFE = re.compile(r"^[^\"\\\x00-\x1f]*\Z")
# The authority of a URI (``scheme://userinfo@host:port``): the MCP SDKs validate resource
# URIs (the Python SDK's ``AnyUrl``), and brackets, colons or percent signs in a host make
# it invalid there, so a placeholder for a value found in one is written host-safe.
_AUTHORITY = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://([^/?#]*)")
_NOT_IN_HOST = re.compile(r"[^A-Za-z0-9._~-]+")


def _host_of(uri: str) -> tuple[int, int] | None:
    """Where the host (and port) of ``uri``'s authority stands, after any userinfo."""
    m = _AUTHORITY.match(uri)
    if m is None:
        return None
    a, b = m.span(1)
    at = uri.rfind("@", a, b)
    return (a if at < 0 else at + 1), b


def _host_safe(rep: str) -> str:
    """``[REDACTED:aws_access_key_id]`` as a host may hold it: ``REDACTED-aws_access_key_id``."""
    return _NOT_IN_HOST.sub("-", rep).strip("-") or "redacted"


SPANS_KEY = "scan.spans"  # where the scan stage leaves the spans to redact (scan/stage.py)


class ActStage:
    name = "act"
    order = ORDER_ACT

    def __init__(self, redact_key: str | bytes | None = None) -> None:
        self.set_key(redact_key)
        self.schemas = ToolSchemas()  # tools' outputSchema, from tools/list answers

    def set_key(self, key: str | bytes | None) -> None:
        """Key for ``hash`` redaction: given, else $MCP_GATEWAY_REDACT_KEY, else random."""
        if not key:
            key = os.environ.get("MCP_GATEWAY_REDACT_KEY") or secrets.token_bytes(32)
        self._key = key.encode() if isinstance(key, str) else bytes(key)

    # -- replacement text --------------------------------------------------------------
    def replacement(self, value: str, type_: str, rule) -> str:
        red = rule.spec.redaction if rule is not None else None
        style = red.style if red is not None else "placeholder"
        if style == "hash":
            digest = hmac.new(self._key, value.encode("utf-8", "surrogatepass"), hashlib.sha256)
            return f"[HMAC:{type_}:{digest.hexdigest()[:16]}]"
        if style == "partial":
            kp, ks = red.keep_prefix, red.keep_suffix
            n = len(value)
            if n <= kp + ks + 4:
                kp, ks = 0, 0
            mid = "".join("*" if c.isalnum() else c for c in value[kp : n - ks])
            return value[:kp] + mid + value[n - ks :] if ks else value[:kp] + mid
        tpl = red.placeholder if red is not None else "[REDACTED:{type}]"
        try:
            return tpl.format(type=type_, rule=rule.id if rule is not None else "")
        except (KeyError, IndexError, ValueError):
            return f"[REDACTED:{type_}]"

    # -- stage -------------------------------------------------------------------------
    def process(self, msg: Message) -> None:
        pending = msg.exchange.scratch.get(SPANS_KEY)
        entry = pending.pop(id(msg), None) if pending else None
        spans = entry[1] if entry is not None and entry[0] is msg else []
        answer = msg.kind is Kind.RESULT and msg.direction is Direction.SERVER_TO_CLIENT
        if not msg.findings:
            if answer and msg.method == "tools/list":
                self.schemas.learn(msg.exchange.server, msg.payload.get("result"))
            return
        strongest = max(msg.findings, key=lambda f: _RANK.get(f.action, 0))
        top = strongest.action
        if top == "block":
            self._scrub(msg, [s for s in spans if s.action in ("redact", "block")])
            msg.block(
                ErrorCode.BLOCKED,
                f"blocked by mcp-gateway rule {strongest.rule} ({strongest.type})",
                stage="act",
            )
        elif top == "redact":
            guard = None
            if answer and msg.method == "tools/call":
                guard = Guard.for_result(
                    self.schemas, msg.exchange.server, msg.name, msg.payload, msg.size
                )
            if self._scrub(msg, [s for s in spans if s.action == "redact"]):
                msg.mark_modified()
                if guard is not None:
                    guard.check(msg.name)
        if answer and msg.method == "tools/list" and top != "block":  # as the client gets it
            self.schemas.learn(msg.exchange.server, msg.payload.get("result"))
        self._notify(msg, top)

    def _notify(self, msg: Message, top: str) -> None:
        # (a redaction is logged at INFO: an agent whose file or answer changed on the way
        # is explained in the proxy's log, not only in the audit)
        loud = [f for f in msg.findings if f.action in ("alert", "block", "redact")]
        if not loud:
            return
        ex = msg.exchange
        # one line per rule and action: a table of 13,000 card numbers is one warning with a
        # count, not 13,000 lines (that took a second of the event loop and the terminal)
        groups: dict[tuple[str, str], list] = {}
        for f in loud:
            groups.setdefault((f.action, f.rule), []).append(f)
        for (action, rule), fs in groups.items():
            f = fs[0]
            where = ", ".join(x.location for x in fs[:_LOCATIONS_LOGGED])
            if len(fs) > _LOCATIONS_LOGGED:
                where += f" and {len(fs) - _LOCATIONS_LOGGED} more"
            log.log(
                logging.INFO if action == "redact" else logging.WARNING,
                "mcp-gateway: %s %s (%s, %s)%s at %s in %s %s%s on %s",
                action, rule, f.type, f.severity, f" x{len(fs)}" if len(fs) > 1 else "", where,
                msg.direction.value, msg.method or msg.kind.value,
                f" {msg.name}" if msg.name else "", ex.server,
            )  # fmt: skip
        flow = ex.flow
        if flow is None:
            return
        warned = [f for f in loud if f.action != "redact"]
        rules = sorted({f.rule for f in (warned or loud)})
        try:
            if top == "block" or any(f.action == "block" for f in warned):
                flow.marked = ":no_entry:"
            elif warned and not flow.marked:
                flow.marked = ":warning:"
            # (a redaction only comments the flow, for mitmweb: it is no alarm)
            kind = "block" if top == "block" else "alert" if warned else "redact"
            note = f"mcp-gateway {kind}: {', '.join(rules)}"
            old = flow.comment or ""
            if note not in old:
                flow.comment = f"{old}\n{note}" if old else note
        except AttributeError:  # not a mitmproxy flow (tests, shim)
            pass

    # -- redaction ---------------------------------------------------------------------
    def _scrub(self, msg: Message, spans) -> bool:
        if not spans:
            return False
        groups: dict[tuple[int, object], list] = {}
        for s in spans:
            groups.setdefault((id(s.container), s.key), []).append(s)
        changed = False
        for group in groups.values():
            container, key = group[0].container, group[0].key
            if container is None:  # the payload itself was a bare string
                continue
            try:
                cur = container[key]
            except (KeyError, IndexError, TypeError):
                continue
            if isinstance(cur, int):
                container[key] = self.replacement(str(cur), group[0].type, group[0].rule)
                changed = True
                continue
            if isinstance(cur, list):
                changed = self._scrub_bytes(container, key, cur, group) or changed
                continue
            if not isinstance(cur, str):
                continue
            # One pass, joined once: replacing span by span copied the whole string each
            # time (20,000 tokens in a 1 MB text: 1.3 s).
            pieces: list[str] = []
            pos = 0
            # (a resource's uri: a placeholder in its host would make it no URL to the SDKs,
            # and the whole result invalid; the Python SDK raised on s3://[REDACTED:…]/b)
            host = _host_of(cur) if key == "uri" else None
            for s in sorted(group, key=lambda s: (s.start, -s.end)):
                if cur[s.start : s.end] != s.value:
                    continue  # the string changed under us; never guess
                if s.start < pos:
                    # overlaps a value replaced already: its rest goes too, never half of it
                    pos = max(pos, s.end)
                    continue
                rep = self._encoded_replacement(s)
                if rep is None:
                    continue
                if host is not None and host[0] <= s.start < host[1]:
                    rep = _host_safe(rep)
                pieces.append(cur[pos : s.start])
                pieces.append(rep)
                pos = s.end
            pieces.append(cur[pos:])
            text = "".join(pieces) if len(pieces) > 1 else cur
            if text != cur:
                container[key] = text
                changed = True
        return changed

    def _scrub_bytes(self, container, key, cur: list, group) -> bool:
        """A Node Buffer's ``data`` in the message's own JSON (scan stage: encoding
        ``bytes``, offsets into the array): each value's numbers become the placeholder's
        bytes, as in a JSON text."""
        out: list = []
        pos = 0
        for s in sorted(group, key=lambda s: (s.start, -s.end)):
            if s.encoding != "bytes" or s.start < pos or s.end > len(cur):
                continue
            part = cur[s.start : s.end]
            if not all(type(b) is int and 0 <= b < 256 for b in part) or len(part) != len(s.value):
                continue  # the array changed under us; never guess
            rep = self.replacement(s.decoded[0] if s.decoded else s.value, s.type, s.rule)
            out += cur[pos : s.start]
            out += rep.encode("utf-8")
            pos = s.end
        if not pos:
            return False
        container[key] = out + cur[pos:]
        return True

    def _encoded_replacement(self, s) -> str | None:
        if s.encoding == "split":
            return ""  # the rest of a value cut across two text blocks: the first holds its placeholder
        if s.encoding == "base64":
            return self._rebase64(s)
        if s.encoding == "hex":
            return self._rehex(s)
        if s.encoding == "gzip":
            return self._regzip(s)
        if s.encoding == "bytes":
            # a Buffer's numbers in a JSON text (scan stage): the placeholder's bytes
            rep = self.replacement(s.decoded[0] if s.decoded else s.value, s.type, s.rule)
            return ",".join(str(b) for b in rep.encode("utf-8"))
        value = s.decoded[0] if s.decoded else s.value
        rep = self.replacement(value, s.type, s.rule)
        if s.encoding == "json" and not _SAFE.match(rep):
            rep = f"[REDACTED:{s.type}]"
        elif s.encoding == "url":
            rep = quote(rep, safe="")
        return rep

    def _redact_inside(self, text: str, s) -> str:
        """A decoded blob's text with the secrets found inside it replaced."""
        for inner in sorted(set(s.decoded), key=len, reverse=True):
            if inner:
                text = text.replace(inner, self.replacement(inner, s.type, s.rule))
        return text

    @staticmethod
    def _b64_parts(blob: str) -> bytes:
        """The bytes of a base64 blob, padded or not (binascii.Error if it is not one)."""
        core = blob.rstrip("=")
        return base64.b64decode(core + "=" * (-len(core) % 4), validate=True)

    @staticmethod
    def _b64_like(data: bytes, blob: str) -> str:
        """``data`` in base64, unpadded if ``blob`` was unpadded base64."""
        out = base64.b64encode(data).decode("ascii")
        if not blob.endswith("=") and len(blob) % 4:  # it was unpadded base64
            out = out.rstrip("=")
        return out

    def _retext(self, raw: bytes, s) -> bytes | None:
        """The bytes of a decoded blob with the secrets inside redacted, in the blob's own
        encoding (UTF-8, UTF-16 with its byte order mark, latin-1: see ``blob_text``)."""
        got = blob_text(raw)
        if got is None:
            return None
        text, codec, bom = got
        return bom + self._redact_inside(text, s).encode(codec, "replace")

    def _rebase64(self, s) -> str | None:
        try:
            data = self._retext(self._b64_parts(s.value), s)
        except (binascii.Error, ValueError):
            data = None
        if data is None:
            return f"[REDACTED:{s.type}]"
        return self._b64_like(data, s.value)

    def _regzip(self, s) -> str | None:
        """Base64 of gzip (or zlib) data: inflated, redacted inside, compressed again in the
        same format (a multi-member file becomes one member; bytes after the data are kept);
        the whole blob is replaced if any step fails."""
        try:
            raw = self._b64_parts(s.value)
            got = inflate(raw)
            if got is None:
                raise ValueError("not inflatable")
            data, trailing = self._retext(got[0], s), got[1]
            if data is None:
                raise ValueError("not text")
        except (binascii.Error, ValueError):
            return f"[REDACTED:{s.type}]"
        packed = gzip.compress(data, mtime=0) if raw[:2] == b"\x1f\x8b" else zlib.compress(data)
        return self._b64_like(packed + trailing, s.value)

    def _rehex(self, s) -> str | None:
        """The hex blob with the secrets inside it redacted, hex again (same letter case; a
        blob wrapped into lines comes back on one line: fromhex skips the line breaks)."""
        try:
            text = bytes.fromhex(s.value).decode("utf-8")
        except (ValueError, UnicodeDecodeError):  # not whole hex text after all: all of it
            return f"[REDACTED:{s.type}]"
        out = self._redact_inside(text, s).encode("utf-8").hex()
        return out.upper() if s.value.isupper() else out


__all__ = ["ActStage"]
