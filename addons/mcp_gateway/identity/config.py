"""The gateway configuration file (``--set mcp_config=PATH``), as pydantic models.

Every field is optional; an empty file (or no file) means: no authentication required,
no rate limits, identity by bearer-token hash or client address, sessions bound to the
identity that created them and forgotten after an hour of idleness.

Errors name the file, the line and the field (:func:`load_config`), e.g.
``gateway.yaml:14: limits.tools[0].rate: expected "N/second|minute|hour|day"``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from ..yamlconf import ConfigError, load_yaml, load_yaml_text, validate

# The API keys live in the gateway's database, which is the audit database: the same
# default file (next to mitmproxy's CA) and the same environment override.
DEFAULT_DB = "~/.mitmproxy/mcp-gateway-audit.db"


def default_keys_db() -> str:
    return os.path.expanduser(os.environ.get("MCP_GATEWAY_AUDIT_DB") or DEFAULT_DB)


_PERIODS = {
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "seconds": 1.0,
    "m": 60.0,
    "min": 60.0,
    "minute": 60.0,
    "minutes": 60.0,
    "h": 3600.0,
    "hour": 3600.0,
    "hours": 3600.0,
    "d": 86400.0,
    "day": 86400.0,
    "days": 86400.0,
}
_RATE_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)?\s*([a-z]+)\s*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Rate(_Strict):
    """``N/period`` with an optional burst (bucket size, default N)."""

    count: int
    period: float  # seconds
    burst: int

    @property
    def per_second(self) -> float:
        return self.count / self.period

    def __str__(self) -> str:
        p = {1.0: "second", 60.0: "minute", 3600.0: "hour", 86400.0: "day"}.get(self.period)
        base = f"{self.count}/{p}" if p else f"{self.count}/{self.period:g}s"
        return base if self.burst == self.count else f"{base} (burst {self.burst})"

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, v: Any) -> Any:
        if isinstance(v, str):
            return _parse_rate(v, None)
        if isinstance(v, dict) and "rate" in v:
            extra = set(v) - {"rate", "burst"}
            if extra:
                raise ValueError(
                    f"unknown field(s) {sorted(extra)}; a rate is 'N/period' or {{rate, burst}}"
                )
            if not isinstance(v["rate"], str):
                raise ValueError('rate must be a string such as "60/minute"')
            burst = v.get("burst")
            if burst is not None and (
                not isinstance(burst, int) or isinstance(burst, bool) or burst < 1
            ):
                raise ValueError("burst must be a positive integer")
            return _parse_rate(v["rate"], burst)
        if isinstance(v, Rate):
            return v
        raise ValueError('expected a rate such as "60/minute" or {rate: "60/minute", burst: 10}')


def _parse_rate(text: str, burst: int | None) -> dict:
    m = _RATE_RE.match(text.lower())
    if not m or m.group(3) not in _PERIODS:
        raise ValueError(
            f'invalid rate {text!r}: expected "N/second|minute|hour|day" (e.g. "5/minute", "100/10s")'
        )
    count = int(m.group(1))
    mult = float(m.group(2)) if m.group(2) else 1.0
    period = mult * _PERIODS[m.group(3)]
    if count < 1 or period <= 0:
        raise ValueError(f"invalid rate {text!r}: the count and the period must be positive")
    return {"count": count, "period": period, "burst": burst or count}


class JwtConfig(_Strict):
    jwks_url: str | None = None
    jwks_file: str | None = None
    issuer: str | None = None
    audience: str | list[str] | None = None
    algorithms: list[str] = Field(
        default_factory=lambda: ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"]
    )
    leeway: float = Field(default=30.0, ge=0, le=3600)  # clock skew, seconds
    consumer_claim: str = "sub"  # dotted path, e.g. "client_id" or "azp"
    roles_claim: str = (
        "roles"  # dotted path, e.g. "realm_access.roles"; a list or a space-separated string
    )
    require: list[str] = Field(default_factory=lambda: ["exp"])
    refresh_interval: float = Field(default=300.0, ge=1)  # re-fetch the JWKS every N s
    min_refetch_interval: float = Field(
        default=30.0, ge=0
    )  # unknown kid: refetch at most this often
    fetch_timeout: float = Field(default=5.0, gt=0, le=60)

    @model_validator(mode="after")
    def _one_source(self) -> JwtConfig:
        if bool(self.jwks_url) == bool(self.jwks_file):
            raise ValueError("give exactly one of jwks_url or jwks_file")
        if self.jwks_url and not re.match(r"^https?://", self.jwks_url):
            raise ValueError("jwks_url must be an http(s) URL")
        bad = [a for a in self.algorithms if a.upper().startswith("HS") or a.lower() == "none"]
        if bad:
            raise ValueError(
                f"algorithms {bad} are not allowed with a JWKS (asymmetric algorithms only)"
            )
        return self


class AuthConfig(_Strict):
    required: bool = False  # refuse (401) requests without a gateway credential (API key or JWT)
    header: str = "Authorization"  # where the client's credential is
    realm: str = "mcp-gateway"
    api_keys: bool = True  # accept gateway-issued API keys (mgw_...)
    jwt: JwtConfig | None = None

    @field_validator("header")
    @classmethod
    def _header(cls, v: str) -> str:
        if not re.match(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$", v):
            raise ValueError(f"not a valid HTTP header name: {v!r}")
        return v


class SessionsConfig(_Strict):
    bind: bool = True  # an Mcp-Session-Id belongs to the identity that created it
    idle_timeout: float = Field(
        default=3600.0, gt=0
    )  # seconds without traffic before a session is forgotten
    max_sessions: int = Field(default=100_000, ge=1)
    # bindings one identity may hold (its least recently used goes first): one caller
    # cannot push everyone else's sessions out of max_sessions
    max_per_identity: int = Field(default=10_000, ge=1)


class ToolLimit(_Strict):
    match: str  # glob on the tool name (tools/call), e.g. "delete_*"
    rate: Rate


class ServerLimit(_Strict):
    match: str  # glob on the server ("host:port" or server name)
    rate: Rate
    per: Literal["identity", "total"] = "identity"  # one bucket per identity, or one shared bucket


class LimitsConfig(_Strict):
    default: Rate | None = None  # every identity, every client request
    consumers: dict[str, Rate] = Field(
        default_factory=dict
    )  # replaces the default for that consumer
    roles: dict[str, Rate] = Field(
        default_factory=dict
    )  # replaces the default for holders of the role
    tools: list[ToolLimit] = Field(default_factory=list)  # extra buckets per identity and tool glob
    servers: list[ServerLimit] = Field(default_factory=list)  # extra buckets per server glob
    exempt: list[str] = Field(
        default_factory=lambda: ["initialize", "ping"]
    )  # methods never limited (but initialize still meets its own bucket, below)
    # initialize opens a session the server holds in memory: whenever any limit above is
    # set, each identity has a bucket of its own for it, exempt or not (null: none). A real
    # client sends one per connection (again after a 404 or a restart).
    initialize: Rate | None = Field(default="60/minute", validate_default=True)
    # anonymous callers over IPv6 share their buckets by network prefix: a host is commonly
    # handed a whole /64, each address of which was an identity with fresh buckets (128:
    # per address). Session binding stays per address.
    ipv6_prefix: int = Field(default=64, ge=8, le=128)
    # a caller known only by a bearer token the gateway does not verify (no gateway key, no
    # JWT checked against the JWKS): "token", each token its own buckets (a token is made up
    # at will: against a server that does not check tokens either, a new one per request is
    # not limited), or "address", the buckets of its address (its network, over IPv6), as
    # if it had sent no token (callers behind one NAT then share them)
    unverified: Literal["token", "address"] = "token"
    # HTTP status of a rate-limited answer: 429 (with Retry-After), or 200 for clients that
    # treat any non-2xx answer to a POST as a broken transport (the JSON-RPC error and
    # Retry-After are sent either way)
    http_status: Literal[429, 200] = 429


_REF_RE = re.compile(r"^(env://[A-Za-z_][A-Za-z0-9_]*|file:///.+|keyring://[^/]+/.+)$")


def check_ref(v: str) -> str:
    if not isinstance(v, str) or not _REF_RE.match(v):
        raise ValueError(
            f"invalid secret reference {v!r}: use env://NAME, file:///absolute/path or keyring://service/name"
        )
    return v


SecretRef = Annotated[str, AfterValidator(check_ref)]


class Credential(_Strict):
    """How the upstream credential is put into the request."""

    type: Literal["bearer", "header", "basic", "template", "query"] = "bearer"
    ref: SecretRef  # env://NAME, file:///path, keyring://service/name
    header: str = "Authorization"  # for bearer, header, basic, template
    template: str | None = None  # for template: e.g. "Token {secret}"
    username: str | None = None  # for basic: otherwise the secret is "user:password"
    param: str | None = None  # for query: the query parameter name

    @model_validator(mode="after")
    def _check(self) -> Credential:
        if self.type == "template":
            if not self.template or "{secret}" not in self.template:
                raise ValueError('type template needs a template containing "{secret}"')
        elif self.template is not None:
            raise ValueError("template is only used with type: template")
        if self.type == "query" and not self.param:
            raise ValueError("type query needs param (the query parameter name)")
        if self.type != "query" and self.param is not None:
            raise ValueError("param is only used with type: query")
        if self.username is not None and self.type != "basic":
            raise ValueError("username is only used with type: basic")
        if not re.match(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$", self.header):
            raise ValueError(f"not a valid HTTP header name: {self.header!r}")
        return self


class ServerConfig(_Strict):
    match: str  # glob on "host:port" (e.g. "api.example.com:*") or the server name
    name: str | None = None  # a label for logs
    credential: Credential | None = None  # injected when the client used a gateway credential


def _globs(v: Any) -> Any:
    return [v] if isinstance(v, str) else v


Globs = Annotated[list[str], Field(default_factory=list), BeforeValidator(_globs)]


class PolicyRule(_Strict):
    """One access rule: who (any of ``consumers``/``roles``; neither: everybody) may or may not
    make which requests (all given selectors must match; none: every request)."""

    action: Literal["allow", "deny"]
    consumers: Globs  # globs on the consumer ("alice", "ci-*", "anon:*", "token:*")
    roles: list[str] = Field(default_factory=list)  # any of the identity's roles
    methods: Globs  # globs on the JSON-RPC method ("tools/call", "resources/*")
    tools: Globs  # globs on the tool name of tools/call
    prompts: Globs  # globs on the prompt name of prompts/get
    resources: Globs  # globs on the URI of resources/read, subscribe and unsubscribe
    servers: Globs  # globs on "host:port" or the server name
    message: str | None = None  # told to the refused client instead of the default text


class PolicyConfig(_Strict):
    # what applies to a request no rule matches (initialize and ping are never refused)
    default: Literal["allow", "deny"] = "allow"
    rules: list[PolicyRule] = Field(default_factory=list)  # the first that matches decides
    # tools/list, prompts/list and resources/list answers leave out what the caller may not use
    hide: bool = True


class GatewayConfig(_Strict):
    keys_db: str | None = None  # SQLite file holding api_keys (default: the audit database)
    auth: AuthConfig = Field(default_factory=AuthConfig)
    sessions: SessionsConfig = Field(default_factory=SessionsConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    servers: list[ServerConfig] = Field(default_factory=list)


def parse_config(data: Any, lines: dict, path: str | Path) -> GatewayConfig:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(path, 1, "", "the configuration must be a mapping")
    return validate(GatewayConfig, data, lines, path)


def load_config(path: str | Path) -> GatewayConfig:
    """Load and validate a config file; raises ConfigError naming file:line: field."""
    data, lines = load_yaml(path)
    cfg = parse_config(data, lines, path)
    if cfg.keys_db:
        db = Path(os.path.expanduser(cfg.keys_db))
        if not db.is_absolute():
            # relative to the config file, so that the file means the same from any cwd
            db = Path(path).parent / db
        cfg = cfg.model_copy(update={"keys_db": str(db)})
    return cfg


def load_config_text(text: str, path: str = "<string>") -> GatewayConfig:
    data, lines = load_yaml_text(text, path)
    return parse_config(data, lines, path)
