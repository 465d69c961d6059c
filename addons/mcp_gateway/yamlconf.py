"""YAML files validated by pydantic, with errors that name the file, line and field.

data, lines = load_yaml(path)            # plain Python data + {loc-tuple: line}
obj = validate(Model, data, lines, path) # raises ConfigError("rules/x.yaml:12: rules[3].pattern: ...")
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

Loc = tuple[str | int, ...]


class ConfigError(ValueError):
    """A configuration or rule file is invalid. ``str()`` names file, line and field."""

    def __init__(self, path: str | Path, line: int | None, field: str, problem: str) -> None:
        self.path = str(path)
        self.line = line
        self.field = field
        self.problem = problem
        where = f"{self.path}:{line}" if line else self.path
        super().__init__(f"{where}: {field}: {problem}" if field else f"{where}: {problem}")


# A file's values as the loader builds them, aliases expanded: a "billion laughs" file (nine
# levels of ten aliases each, a few hundred bytes) expands to 10**9 and held the loader, and the
# gateway's config watcher, for minutes while it ate gigabytes. A file may hold as many values
# as it has bytes, plus MAX_NODES from aliases: no real configuration or rule pack comes near
# (the shipped secrets pack, 176 kB, has ~8,000).
MAX_NODES = 100_000
# A configuration or rule file is read whole, in the gateway's process (the config watcher is a
# thread of it): one of gigabytes, or a link to /dev/zero, took its memory. The shipped packs
# are 0.2 MiB.
MAX_FILE_BYTES = 16 << 20


# The tags a mapping or a sequence may carry: the defaults, and the safe loader's own collection
# types (built here as the mapping or list they are written as).
_COLLECTION_TAGS = frozenset(
    f"tag:yaml.org,2002:{t}" for t in ("map", "seq", "set", "omap", "pairs")
)


class _Budget:
    __slots__ = ("left", "limit", "active")

    def __init__(self, size: int = 0) -> None:
        self.limit = self.left = MAX_NODES + size
        self.active: set[int] = set()  # ids of the collections being built (recursive aliases)


def _construct(node: yaml.Node, loc: Loc, lines: dict[Loc, int], budget: _Budget) -> Any:
    line = node.start_mark.line + 1
    lines[loc] = line
    budget.left -= 1
    if budget.left < 0:
        raise ConfigError(
            "", line, _fmt(loc), f"more than {budget.limit:,} values once aliases are expanded"
        )
    if isinstance(node, yaml.MappingNode | yaml.SequenceNode):
        if node.tag not in _COLLECTION_TAGS:
            # (a collection is built here, not by PyYAML, so its tag would be dropped unread:
            # `rules: !!python/object/apply:os.system [...]` loaded as a plain list)
            kind = "mapping" if isinstance(node, yaml.MappingNode) else "sequence"
            problem = (
                f"expected a scalar for the tag '{node.tag}', found a {kind}"
                if node.tag in yaml.SafeLoader.yaml_constructors
                else f"could not determine a constructor for the tag '{node.tag}'"
            )
            raise ConfigError("", line, _fmt(loc), f"invalid YAML: {problem}")
        if id(node) in budget.active:
            raise ConfigError("", line, _fmt(loc), "an alias refers to a value that holds it")
        budget.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return [_construct(v, loc + (i,), lines, budget) for i, v in enumerate(node.value)]
            out: dict[Any, Any] = {}
            for knode, vnode in node.value:
                key = _construct(knode, loc + ("<key>",), {}, budget)
                if not isinstance(key, str | int | float | bool) and key is not None:
                    raise ConfigError(
                        "", knode.start_mark.line + 1, _fmt(loc), "mapping keys must be scalars"
                    )
                out[key] = _construct(vnode, loc + (key,), lines, budget)
                lines[loc + (key,)] = knode.start_mark.line + 1
            return out
        finally:
            budget.active.discard(id(node))
    if not node.tag:
        return node.value
    # Scalars: let PyYAML resolve the tag (int, bool, null, str...). A tag it cannot construct
    # (!!python/object, a 13th month in !!timestamp, bad !!binary) is the file's error, with
    # its line, not a traceback.
    try:
        return yaml.SafeLoader("").construct_object(node, deep=True)
    except yaml.MarkedYAMLError as e:
        raise ConfigError("", line, _fmt(loc), f"invalid YAML: {e.problem or e}") from None
    except (yaml.YAMLError, ValueError, TypeError, OverflowError) as e:
        raise ConfigError("", line, _fmt(loc), f"invalid {node.tag} value: {e}") from None


# libyaml's parser when PyYAML has it (the wheels do): the shipped rule packs took ~1 s to
# compose in pure Python at every start and reload; nodes and marks are the same (for its
# errors' messages, see _EXPLAIN_MAX)
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


# libyaml's error messages say less than PyYAML's: "found character that cannot start any
# token" for a tab (PyYAML names the '\t'), "found undefined alias" (which), "found unknown
# escape character" (which). A file libyaml refuses is composed again in pure Python for its
# message, up to this size (about 1 s a MiB); a larger one keeps libyaml's.
_EXPLAIN_MAX = 1 << 20


def _compose(text: str, path: str | Path, loader) -> yaml.Node | None:
    try:
        return yaml.compose(text, Loader=loader)
    except RecursionError:
        raise ConfigError(path, None, "", "invalid YAML: nested too deeply") from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else None
        if "maximum nesting depth" in str(e.problem):  # (libyaml's limit, 1,000 levels)
            raise ConfigError(path, line, "", "invalid YAML: nested too deeply") from None
        raise ConfigError(path, line, "", f"invalid YAML: {e.problem or e}") from None
    except yaml.YAMLError as e:
        raise ConfigError(path, None, "", f"invalid YAML: {e}") from None


def load_yaml_text(text: str, path: str | Path = "<string>") -> tuple[Any, dict[Loc, int]]:
    try:
        node = _compose(text, path, _LOADER)
    except (ConfigError, UnicodeEncodeError) as e:
        # (UnicodeEncodeError: libyaml is handed UTF-8, and a lone surrogate has none)
        if (
            _LOADER is yaml.SafeLoader
            or len(text) > _EXPLAIN_MAX
            or (isinstance(e, ConfigError) and "nested too deeply" in e.problem)
        ):
            if isinstance(e, ConfigError):
                raise
            raise ConfigError(path, None, "", f"invalid YAML: {e.reason}") from None
        _compose(text, path, yaml.SafeLoader)  # raises with PyYAML's message
        if isinstance(e, ConfigError):
            raise  # (PyYAML reads it, libyaml does not: %YAML 1.3, "\ud800": refused)
        raise ConfigError(path, None, "", f"invalid YAML: {e.reason}") from None
    lines: dict[Loc, int] = {}
    if node is None:
        return None, lines
    try:
        return _construct(node, (), lines, _Budget(len(text))), lines
    except ConfigError as e:
        raise ConfigError(path, e.line, e.field, e.problem) from None
    except RecursionError:
        raise ConfigError(path, None, "", "invalid YAML: nested too deeply") from None


def load_yaml(path: str | Path) -> tuple[Any, dict[Loc, int]]:
    p = Path(path)
    try:
        with p.open("rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
        if len(raw) > MAX_FILE_BYTES:
            raise ConfigError(p, None, "", f"larger than {MAX_FILE_BYTES >> 20} MiB")
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(p, None, "", "file not found") from None
    except UnicodeDecodeError as e:
        raise ConfigError(p, None, "", f"not UTF-8 text ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise ConfigError(p, None, "", f"cannot read: {e.strerror or e}") from None
    return load_yaml_text(text, p)


def _fmt(loc: Loc) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def line_for(lines: dict[Loc, int], loc: Loc) -> int | None:
    """The line of ``loc`` or of its nearest ancestor present in the file."""
    loc = tuple(loc)
    while True:
        if loc in lines:
            return lines[loc]
        if not loc:
            return None
        loc = loc[:-1]


def validate[M: BaseModel](
    model: type[M], data: Any, lines: dict[Loc, int], path: str | Path, base: Loc = ()
) -> M:
    """Validate ``data`` with ``model``; on failure raise ConfigError for the first error."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        errs = e.errors(include_url=False)
        err = errs[0]
        if err.get("type") == "missing":
            # `severty: high` reported as "severity: Field required" at the rule's line:
            # the misspelt field is the one to name
            import difflib

            for x in errs:
                if (
                    x.get("type") == "extra_forbidden"
                    and x["loc"][:-1] == err["loc"][:-1]
                    and difflib.get_close_matches(str(x["loc"][-1]), [str(err["loc"][-1])])
                ):
                    err = x
                    break
        loc = base + tuple(
            p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))
        )
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        if err.get("type") == "extra_forbidden" and err["loc"]:
            msg += _known(model, err["loc"])
        elif err.get("type") in ("model_type", "dict_type"):
            # "Input should be a valid dictionary or instance of AuthConfig": a class name
            # the reader never wrote; say what goes there and what was found
            fields = _known(model, (*err["loc"], None), names_only=True)
            msg = f"expected a mapping{fields}, got {_kind(err.get('input'))}"
        raise ConfigError(path, line_for(lines, loc), _fmt(loc), msg) from None


def _kind(v: Any) -> str:
    if v is None:
        return "nothing (an empty value)"
    if isinstance(v, bool):
        return f"{str(v).lower()}"
    if isinstance(v, (int, float)):
        return f"the number {v}"
    if isinstance(v, str):
        return f"the text {v[:40]!r}"
    if isinstance(v, list):
        return "a list"
    return type(v).__name__


def _known(model: type[BaseModel], loc: tuple, names_only: bool = False) -> str:
    """For a field the model does not have (``scope: {tool: …}``): the fields it has there,
    and the nearest one ("Extra inputs are not permitted" alone sent the reader to the
    docs for the spelling of ``tools``)."""
    import difflib
    import typing

    here: Any = model
    for part in loc[:-1]:
        if isinstance(part, int) or not (isinstance(here, type) and issubclass(here, BaseModel)):
            continue  # (a list's index: its item's model is what the annotation held)
        f = here.model_fields.get(part)
        if f is None:
            return ""
        here = f.annotation
        # list[M], M | None, dict[str, M]: the model inside
        for _ in range(4):
            if isinstance(here, type) and issubclass(here, BaseModel):
                break
            inner = [a for a in typing.get_args(here) if isinstance(a, type)]
            models = [a for a in inner if issubclass(a, BaseModel)]
            if not models:
                args = typing.get_args(here)
                if not args:
                    return ""
                here = args[-1]
                continue
            here = models[0]
    if not (isinstance(here, type) and issubclass(here, BaseModel)):
        return ""
    names = [n if f.alias is None else f.alias for n, f in here.model_fields.items()]
    if names_only:
        return f" ({', '.join(names)})" if names else ""
    name = loc[-1]
    near = difflib.get_close_matches(str(name), names, n=1) if isinstance(name, str) else []
    guess = f"; did you mean {near[0]!r}?" if near else ""
    return f" (unknown field {name!r}{guess} known: {', '.join(names)})"
