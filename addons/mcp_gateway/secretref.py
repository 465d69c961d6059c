"""Secret references shared by upstream credentials and the stdio shim's ``--env``.

``env://NAME``, ``file:///abs/path`` (one trailing newline stripped), ``keyring://service/name``.
Errors name the reference, never a value.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import unquote

MAX_FILE_BYTES = 1024 * 1024


class SecretRefError(ValueError):
    """A reference that cannot be resolved (the message never contains a secret)."""


def resolve(
    ref: str, *, allow_literal: bool = False, environ: Mapping[str, str] | None = None
) -> str:
    """The value behind ``ref``. Anything else is a literal when ``allow_literal``."""
    if ref.startswith("env://"):
        env = os.environ if environ is None else environ
        name = ref[len("env://") :]
        if not name:
            raise SecretRefError(f"{ref}: env:// reference without a variable name")
        if name not in env:
            raise SecretRefError(f"{ref}: environment variable {name} is not set")
        return env[name]
    if ref.startswith("file://"):
        path = unquote(ref[len("file://") :])
        if not path.startswith("/"):
            raise SecretRefError(f"{ref}: file references need an absolute path (file:///path)")
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read(MAX_FILE_BYTES + 1)
        except FileNotFoundError:
            raise SecretRefError(f"{ref}: cannot read the file (file not found)") from None
        except (OSError, UnicodeDecodeError) as e:
            reason = getattr(e, "strerror", None) or type(e).__name__
            raise SecretRefError(f"{ref}: cannot read the file ({reason})") from None
        if len(text) > MAX_FILE_BYTES:
            raise SecretRefError(f"{ref}: file larger than {MAX_FILE_BYTES // 1024} KiB")
        if text.endswith("\n"):
            text = text[:-1]
        if text.endswith("\r"):
            text = text[:-1]
        return text
    if ref.startswith("keyring://"):
        service, sep, name = ref[len("keyring://") :].partition("/")
        if not sep or not service or not name:
            raise SecretRefError(f"{ref}: expected keyring://service/name")
        try:
            import keyring  # slow to import: only when used

            value = keyring.get_password(unquote(service), unquote(name))
        except Exception as e:  # noqa: BLE001 - any backend failure
            raise SecretRefError(f"{ref}: keyring error ({type(e).__name__})") from None
        if value is None:
            raise SecretRefError(f"{ref}: no such entry in the keyring")
        return value
    if allow_literal:
        return ref
    raise SecretRefError(f"unsupported secret reference {ref!r} (env://, file://, keyring://)")


# Values the gateway has put into requests as upstream credentials (identity.upstream): a
# server that echoes its request headers or URL (a debug tool, an error page quoting them)
# must not hand them to the client, who never had them. The scan stage redacts them in
# every server-to-client message. Newest last; bounded (a secret rotated daily for years).
_INJECTED: dict[str, None] = {}
_INJECTED_MAX = 256
INJECTED_MIN_LEN = 8  # shorter values are too likely to occur by chance


def remember_injected(*values: str) -> None:
    for v in values:
        if len(v) >= INJECTED_MIN_LEN and v not in _INJECTED:
            _INJECTED[v] = None
            while len(_INJECTED) > _INJECTED_MAX:
                del _INJECTED[next(iter(_INJECTED))]


def injected() -> tuple[str, ...]:
    return tuple(_INJECTED)


def forget_injected() -> None:
    _INJECTED.clear()
