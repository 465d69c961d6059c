"""Datasette metadata (table descriptions and canned queries) for the audit database.

``mcp-gateway audit metadata > audit.json && datasette ~/.mitmproxy/mcp-gateway-audit.db -m audit.json``
(Datasette is not a dependency of mcp-gateway; ``pip install datasette`` or ``uvx datasette``.)
"""

from __future__ import annotations

import os

TABLES = {
    "messages": "One row per JSON-RPC message (and per MCP HTTP exchange without one). "
    "flow_id is mitmproxy's flow id: open the exact bytes in a `mitmdump -w flows.mitm` capture. "
    "seq/prev_hash/hash form the tamper-evident chain (`mcp-gateway audit verify`).",
    "findings": "One row per detection; message_seq points at the message. Only masked values.",
    "audit_events": "The gateway's own events: start, stop, dropped (queue full, "
    "mcp_audit_on_full=drop), refused (queue full, mcp_audit_on_full=block), lost (not "
    "written before a shutdown: database locked or disk full). Chained too.",
    "sessions": "Per MCP session: first/last seen, consumer, protocol version, message count "
    "(derived; not chained).",
    "usage": "Hourly usage per consumer, server, method and tool: calls, blocked, errors, "
    "latency (derived; not chained).",
    "usage_latency": "Latency histogram per usage row: bucket i covers "
    "[0.01 ms * 2^(i/8), 0.01 ms * 2^((i+1)/8)) (derived; not chained).",
    "meta": "Schema version and the chain head.",
}

QUERIES = {
    "recent_blocks": {
        "title": "Blocked and dropped messages (latest first)",
        "sql": "SELECT seq, datetime(time, 'unixepoch') AS utc, flow_id, server, consumer, "
        "method, name, refusal_code, refusal_message, refusal_stage FROM messages "
        "WHERE action IN ('block', 'drop') ORDER BY seq DESC LIMIT 500",
    },
    "findings_by_rule": {
        "title": "Findings by rule and type",
        "sql": "SELECT rule, type, severity, action, count(*) AS n FROM findings "
        "GROUP BY rule, type, severity, action ORDER BY n DESC",
    },
    "tool_calls": {
        "title": "Tool calls with their outcome",
        "sql": "SELECT q.seq, datetime(q.time, 'unixepoch') AS utc, q.consumer, q.server, q.name "
        "AS tool, q.action, r.latency_ms, r.error, r.error_code, q.flow_id FROM messages q "
        "LEFT JOIN messages r ON r.flow_id = q.flow_id AND r.rpc_id = q.rpc_id "
        "AND r.direction = 's2c' AND r.kind IN ('result', 'error') "
        "WHERE q.method = 'tools/call' AND q.kind = 'request' ORDER BY q.seq DESC LIMIT 500",
    },
    "usage_by_consumer": {
        "title": "Usage per consumer, server and tool",
        "sql": "SELECT consumer, server, coalesce(nullif(name, ''), method) AS tool, "
        "sum(calls) AS calls, sum(blocked) AS blocked, sum(errors) AS errors, "
        "round(sum(latency_sum) / nullif(sum(latency_count), 0), 2) AS avg_latency_ms "
        "FROM usage GROUP BY 1, 2, 3 ORDER BY calls DESC",
    },
    "flow": {
        "title": "Everything recorded for one mitmproxy flow",
        "sql": "SELECT * FROM messages WHERE flow_id = :flow_id ORDER BY seq",
    },
    "losses": {
        "title": "Audit losses (queue full)",
        "sql": "SELECT seq, datetime(time, 'unixepoch') AS utc, event, count, detail "
        "FROM audit_events WHERE event IN ('dropped', 'refused', 'lost') ORDER BY seq DESC",
    },
}


def metadata(db_path: str) -> dict:
    name = os.path.splitext(os.path.basename(db_path))[0]
    return {
        "title": "mcp-gateway audit trail",
        "description": "Every MCP message that passed the gateway. Verify integrity with "
        "`mcp-gateway audit verify --db " + db_path + "`.",
        "databases": {
            name: {
                "tables": {t: {"description": d} for t, d in TABLES.items()},
                "queries": QUERIES,
            }
        },
    }
