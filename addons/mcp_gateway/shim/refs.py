"""Secret references for the child's environment: ``env://NAME``, ``file:///path``,
``keyring://service/name``, or a literal value.

Resolved values are never printed; errors name the reference, never its value.
(The identity helper resolves the same scheme for upstream credentials; if both exist,
one can be folded into the other.)
"""

from __future__ import annotations

import os
from urllib.parse import unquote


class RefError(ValueError):
    """A reference that cannot be resolved (the message never contains a secret)."""


def resolve_ref(ref: str, *, environ: dict[str, str] | None = None) -> str:
    environ = os.environ if environ is None else environ
    if ref.startswith("env://"):
        name = ref[len("env://") :]
        if not name:
            raise RefError("env:// reference without a variable name")
        if name not in environ:
            raise RefError(f"{ref}: environment variable {name} is not set")
        return environ[name]
    if ref.startswith("file://"):
        path = unquote(ref[len("file://") :])
        if not path.startswith("/"):
            raise RefError(f"{ref}: file references need an absolute path (file:///path)")
        try:
            with open(path, encoding="utf-8") as f:
                value = f.read()
        except OSError as e:
            raise RefError(f"{ref}: cannot read the file ({e.strerror})") from None
        return value.rstrip("\r\n")
    if ref.startswith("keyring://"):
        rest = ref[len("keyring://") :]
        service, sep, name = rest.partition("/")
        if not sep or not service or not name:
            raise RefError(f"{ref}: expected keyring://service/name")
        try:
            import keyring  # noqa: PLC0415 - optional at runtime, slow to import
            from keyring.errors import KeyringError

            value = keyring.get_password(unquote(service), unquote(name))
        except KeyringError as e:
            raise RefError(f"{ref}: keyring error ({type(e).__name__})") from None
        except Exception as e:  # a backend failing for any other reason
            raise RefError(f"{ref}: keyring error ({type(e).__name__})") from None
        if value is None:
            raise RefError(f"{ref}: no such entry in the keyring")
        return value
    return ref


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
