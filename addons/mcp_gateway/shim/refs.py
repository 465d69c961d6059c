"""Secret references for the child's environment: ``env://NAME``, ``file:///path``,
``keyring://service/name``, or a literal value.

Resolved values are never printed; errors name the reference, never its value. The schemes
are resolved by :mod:`mcp_gateway.secretref`, shared with upstream credentials; unlike those
(which go into HTTP headers), a child's environment may take literals and multi-line values.
"""

from __future__ import annotations

from ..secretref import SecretRefError, resolve

RefError = SecretRefError


def resolve_ref(ref: str, *, environ: dict[str, str] | None = None) -> str:
    """A secret reference, or a literal value (``--env KEY=value``)."""
    return resolve(ref, allow_literal=True, environ=environ)


def parse_env_assignments(items: list[str]) -> dict[str, str]:
    """``["KEY=REF", ...]`` -> ``{KEY: resolved value}``; raises RefError."""
    out: dict[str, str] = {}
    for n, item in enumerate(items, 1):
        key, sep, ref = item.partition("=")
        if not sep or not key:
            # never echo the argument: it may be a mistyped secret
            raise RefError(f"--env argument #{n}: expected KEY=REF")
        out[key] = resolve_ref(ref)
    return out
