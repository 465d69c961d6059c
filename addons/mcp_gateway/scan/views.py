"""Decoded views of a text, with maps from view offsets back to the original offsets.

A secret can hide behind an encoding the receiver will undo: JSON escapes (``\\u0073k-…``) in
a JSON document carried inside a JSON string, a second level of escaping (``\\\\n``), or
percent-encoding in a URL query string, or Unicode that a reader (a model, a terminal) sees
as plain ASCII: invisible characters inside a token, fullwidth or mathematical letters,
"tag" characters that spell ASCII invisibly. A view decodes one level and remembers, for every
decoded character, where it came from, so a detection in the view maps to the exact original
span (which the act stage can then replace without breaking the encoding).
"""

from __future__ import annotations

import bisect
import html.entities
import itertools
import re
import unicodedata
from dataclasses import dataclass

_JSON_ESC = re.compile(
    r"\\(?:u([dD][89abAB][0-9a-fA-F]{2})\\u([dD][c-fC-F][0-9a-fA-F]{2})|u([0-9a-fA-F]{4})|([\"\\/bfnrt]))"
)
# a line break or tab escaped twice (JSON in a JSON string, carried as text): the rules
# tolerate one level of escapes, not two
_TWICE = re.compile(r"\\\\[nrt]")
# a quote escaped three times (JSON in a JSON string in a JSON string, carried as text: a
# browser tool's JSON.stringify(localStorage) in a tool result): the rules tolerate \\{0,3}"
QUOTE_THRICE = "\\" * 7 + '"'
_SIMPLE = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_PCT = re.compile(r"(?:%[0-9A-Fa-f]{2})+")


@dataclass(slots=True)
class View:
    text: str
    kind: str  # "json" | "url" | "escape" | "unicode"
    # parallel lists: view start, original start, view length, original length of each piece
    vstarts: list[int]
    ostarts: list[int]
    vlens: list[int]
    olens: list[int]
    literal: list[bool]

    def map_span(self, start: int, end: int) -> tuple[int, int]:
        i = bisect.bisect_right(self.vstarts, start) - 1
        if self.literal[i]:
            ostart = self.ostarts[i] + (start - self.vstarts[i])
        else:
            ostart = self.ostarts[i]
        j = bisect.bisect_right(self.vstarts, end - 1) - 1
        if self.literal[j]:
            oend = self.ostarts[j] + (end - 1 - self.vstarts[j]) + 1
        else:
            oend = self.ostarts[j] + self.olens[j]
        return ostart, oend


def _build(text: str, pattern: re.Pattern, decode, kind: str) -> View | None:
    parts: list[str] = []
    vstarts: list[int] = []
    ostarts: list[int] = []
    vlens: list[int] = []
    olens: list[int] = []
    literal: list[bool] = []
    pos = 0
    vpos = 0
    found = False
    for m in pattern.finditer(text):
        s, e = m.span()
        if s > pos:
            parts.append(text[pos:s])
            vstarts.append(vpos)
            ostarts.append(pos)
            vlens.append(s - pos)
            olens.append(s - pos)
            literal.append(True)
            vpos += s - pos
        ch = decode(m)
        parts.append(ch)
        vstarts.append(vpos)
        ostarts.append(s)
        vlens.append(len(ch))
        olens.append(e - s)
        literal.append(False)
        vpos += len(ch)
        pos = e
        found = True
    if not found:
        return None
    if pos < len(text):
        parts.append(text[pos:])
        vstarts.append(vpos)
        ostarts.append(pos)
        vlens.append(len(text) - pos)
        olens.append(len(text) - pos)
        literal.append(True)
    return View("".join(parts), kind, vstarts, ostarts, vlens, olens, literal)


def _json_decode(m: re.Match) -> str:
    hi, lo, u, simple = m.groups()
    if hi is not None:
        return chr(0x10000 + ((int(hi, 16) - 0xD800) << 10) + (int(lo, 16) - 0xDC00))
    if u is not None:
        c = int(u, 16)
        return "\ufffd" if 0xD800 <= c <= 0xDFFF else chr(c)
    return _SIMPLE[simple]


def json_unescape_view(text: str) -> View | None:
    """One level of JSON string escapes decoded (only when there is something to gain)."""
    if (
        "\\u" not in text
        and "\\/" not in text
        and not _TWICE.search(text)
        and QUOTE_THRICE not in text
    ):
        return None  # plain \n, \" and \\ are tolerated by the rules themselves
    return _build(text, _JSON_ESC, _json_decode, "json")


def _pct_decode(m: re.Match) -> str:
    """A run of percent escapes as a URL decoder reads it: UTF-8 bytes. Where they are not
    UTF-8, the ASCII ones are decoded and the rest kept as written: ``%DB_PASSWORD%`` (a
    Windows variable) is no "\u00dbB_PASSWORD%"."""
    run = m.group()
    raw = bytes.fromhex(run.replace("%", ""))
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return "".join(chr(b) if b < 0x80 else run[3 * i : 3 * i + 3] for i, b in enumerate(raw))


def percent_view(text: str) -> View | None:
    if "%" not in text:
        return None
    return _build(text, _PCT, _pct_decode, "url")


# HTML character references, the \xHH / \u{H…} escapes of programming languages and
# Markdown's backslash escapes of the punctuation tokens hold (also with the backslash
# JSON-escaped, as a JSON text carries them). A browser or a model reads "ghp&#95;…",
# "ghp\x5f…" or "ghp\_…" as the token itself: HTML-to-Markdown converters escape every "_"
# and "*" (markdownify in mcp-server-fetch, turndown), and a token on a fetched page once
# reached the model as ghp\_… unredacted. "/" and '"' are left out: JSON's own escapes.
MARKDOWN_PUNCT = r"_*\-.+=~"
_ESCAPE = re.compile(
    # (a numeric reference without its ";", and the legacy &shy, are decoded by browsers
    # in a page's text too: ghp_…&#8203…)
    r"&#(?:([0-9]{1,7})|[xX]([0-9a-fA-F]{1,6}));?|&([A-Za-z][A-Za-z0-9]{1,31};|shy)"
    r"|\\{1,2}(?:x([0-9a-fA-F]{2})|u\{([0-9a-fA-F]{1,6})\}|([" + MARKDOWN_PUNCT + r"]))"
    r"|(<[wW][bB][rR]\s{0,3}/?>)"  # HTML's word-break opportunity: shows nothing
    # a quoted-printable soft line break inside a word (an e-mail's raw source, as mail
    # servers' tools return it: lines end with "=" at 76 characters, and a token across
    # one reached the model unread; readers join the lines); also JSON-escaped
    r"|(?<=[A-Za-z0-9_+/.\-])(=(?:\r?\n|(?:\\{1,2}r)?\\{1,2}n))(?=[A-Za-z0-9_+/\-])"
)


def _escape_decode(m: re.Match) -> str:
    dec, hexa, name, x, brace, punct, wbr, soft = m.groups()
    if punct is not None:
        return punct  # a Markdown escape: the character itself
    if wbr is not None or soft is not None:
        return ""
    if name is not None:
        ch = html.entities.html5.get(name, m.group())
    else:
        code = int(dec, 10) if dec is not None else int(hexa or x or brace, 16)
        if not (0 < code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF):
            return m.group()
        ch = chr(code)
    # a reference to a character a reader does not see, or sees as ASCII (&shy;, &#8203;,
    # &ZeroWidthSpace; inside a token on a web page: ghp_…&shy;… went unseen), read as the
    # unicode view reads that character
    return _unicode_text(ch) if len(ch) == 1 and _UNICODE.fullmatch(ch) else ch


def _soft_break(text: str, pos: int, after: int) -> bool:
    """Whether the "=" at ``pos`` (its line break ending at ``after``) ends a line as long as
    quoted-printable encoders fill them (76 characters with the "=", a few less where an
    escape did not fit; longer in a JSON text, whose escapes of quotes and backslashes add
    characters): ``KEY=`` then a line break ends an empty assignment in .env and INI files,
    which must not join the next line. Nor does a line or a next line holding an "=" that is
    no escape (quoted-printable writes every "=" of the text as "=3D"): ``API_KEY=<base64>=``
    then ``DEBUG=true`` is a value's padding, and the next line went with the value."""
    real = text.rfind("\n", 0, pos) + 1
    escaped = text.rfind("\\n", 0, pos)
    if escaped >= 0 and escaped + 2 > real:
        start = escaped + 2
        if not 70 <= pos - escaped - 1 <= 100:
            return False
    else:
        start = real
        if not 70 <= pos - real + 1 <= 76:
            return False
    end = min(i for i in (text.find("\n", after), text.find("\\n", after), len(text)) if i >= 0)
    return _NOT_QP.search(text, start, pos) is None and _NOT_QP.search(text, after, end) is None


# an "=" that quoted-printable does not write: neither an escape (=3D) nor a soft break
_NOT_QP = re.compile(r"=(?![0-9A-Fa-f]{2}|\r|\\[rn]|\r?\n|$)")


def escape_view(text: str) -> View | None:
    """HTML character references, \\x / \\u{} escapes and Markdown backslash escapes decoded
    (and HTML's <wbr>, which shows nothing, and quoted-printable soft line breaks)."""
    if "&" not in text and "\\" not in text and "<" not in text and "=" not in text:
        return None
    return _build(text, _EscapesIn(), _escape_decode, "escape")


class _EscapesIn:
    """``_ESCAPE``'s matches but the "=" + line break that is no soft break (a match left as
    it is would still widen a detection that ends at it to its line break)."""

    @staticmethod
    def finditer(text: str):
        for m in _ESCAPE.finditer(text):
            if m.group(8) is None or _soft_break(text, m.start(), m.end()):
                yield m


# Characters a reader does not see (format characters, variation selectors, fillers) or sees
# as ASCII (fullwidth forms, mathematical alphanumerics, tag characters). The invisible ones
# are Unicode's whole Default_Ignorable_Code_Point set (renderers show none of them): the
# supplementary variation selectors (U+E0100-E01EF), U+FFF0-FFF8, the shorthand and musical
# format controls were missing, and a token with one between every letter went unseen while
# the same token with U+FE0F or U+200B was found.
_UNICODE = re.compile(
    "(?:\x1b\\[[0-9;?]*[ -/]*[@-~]"  # a terminal escape sequence (colours...): not shown
    "|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f"  # control characters (tab and line breaks aside)
    "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f"
    "\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uff01-\uff5e\uffa0"
    "\ufff0-\ufff8\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    "\U0001d400-\U0001d7ff\U000e0000-\U000e0fff"
    # the digits of other scripts (Arabic-Indic, Persian, Devanagari, Bengali, Thai): read
    # as the ASCII digits they are, as the fullwidth ones
    "\u0660-\u0669\u06f0-\u06f9\u0966-\u096f\u09e6-\u09ef\u0e50-\u0e59"
    # spaces other than ASCII's, read as one: French and other typography group digits
    # with no-break and narrow no-break spaces (06\u00a012\u00a034\u00a056\u00a078, a card
    # or an IBAN in groups of \u202f), where the rules' separators are ASCII
    "\u00a0\u2000-\u200a\u202f\u205f\u3000])+"
)
# The same characters as UTF-8 (for Hyperscan: is a unicode view worth building?)
UNICODE_CONTROL = rb"[\x00-\x08\x0B\x0C\x0E-\x1F\x7F]"  # the ASCII part
UNICODE_MULTIBYTE = (
    rb"\xC2\xAD|\xCD\x8F|\xD8\x9C|\xE1\x85[\x9F\xA0]|\xE1\x9E[\xB4\xB5]|\xE1\xA0[\x8B-\x8F]"
    rb"|\xE2\x80[\x8B-\x8F\xAA-\xAE]|\xE2\x81[\xA0-\xAF]|\xE3\x85\xA4|\xEF\xB8[\x80-\x8F]"
    rb"|\xEF\xBB\xBF|\xEF\xBC[\x81-\xBF]|\xEF\xBD[\x80-\x9E]|\xEF\xBE\xA0"
    rb"|\xEF\xBF[\xB0-\xB8]|\xF0\x9B\xB2[\xA0-\xA3]|\xF0\x9D\x85[\xB3-\xBA]"
    rb"|\xF0\x9D[\x90-\x9F]|\xF3\xA0[\x80-\xBF]"
    rb"|\xD9[\xA0-\xA9]|\xDB[\xB0-\xB9]|\xE0\xA5[\xA6-\xAF]|\xE0\xA7[\xA6-\xAF]|\xE0\xB9[\x90-\x99]"
    rb"|\xC2\xA0|\xE2\x80[\x80-\x8A\xAF]|\xE2\x81\x9F|\xE3\x80\x80"
)


def _unicode_decode(m: re.Match) -> str:
    return _unicode_text(m.group())


def _unicode_text(run: str) -> str:
    """A run of the characters of ``_UNICODE`` as a reader sees it."""
    out = []
    for ch in _CSI.sub("", run):
        c = ord(ch)
        if c in _SPACES:
            out.append(" ")
        elif 0xFF01 <= c <= 0xFF5E:
            out.append(chr(c - 0xFEE0))  # fullwidth ASCII
        elif 0xE0020 <= c <= 0xE007E:
            out.append(chr(c - 0xE0000))  # tag characters spell ASCII
        elif ch.isdigit() and c < 0x1000:
            out.append(str(unicodedata.digit(ch, 0)))  # Arabic-Indic, Devanagari, Thai digits
        elif 0x1D400 <= c <= 0x1D7FF:
            n = unicodedata.normalize("NFKC", ch)
            out.append(n if n.isascii() else ch)  # mathematical bold, italic... letters
        # everything else in the class is invisible: dropped
    return "".join(out)


_SPACES = frozenset([0xA0, *range(0x2000, 0x200B), 0x202F, 0x205F, 0x3000])
_CSI = re.compile("\x1b\\[[0-9;?]*[ -/]*[@-~]")


def unicode_view(text: str) -> View | None:
    """The text as a reader sees it: invisible characters dropped, fullwidth, mathematical
    and tag characters turned into the ASCII they show or spell."""
    return _build(text, _UNICODE, _unicode_decode, "unicode")


# HTML's names for characters a reader does not see (&shy;, &ZeroWidthSpace;, &zwj;…)
_INVISIBLE_NAMES = "|".join(
    sorted(
        n[:-1]
        for n, v in html.entities.html5.items()
        if n.endswith(";") and len(v) == 1 and _UNICODE.fullmatch(v) and not _unicode_text(v)
    )
)

# The characters the unicode view reads as nothing (its tag characters aside, U+E0000-E0FFF,
# of which those spelling no ASCII are), as spans; a test keeps them in step with _UNICODE.
_INVISIBLE_SPANS = (
    (0x01, 0x08), (0x0B, 0x0C), (0x0E, 0x1F), (0x7F, 0x7F), (0xAD, 0xAD), (0x34F, 0x34F),
    (0x61C, 0x61C), (0x115F, 0x1160), (0x17B4, 0x17B5), (0x180B, 0x180F), (0x200B, 0x200F),
    (0x202A, 0x202E), (0x2060, 0x206F), (0x3164, 0x3164), (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A),
)  # fmt: skip
_INVISIBLE_CODES = [c for lo, hi in _INVISIBLE_SPANS for c in range(lo, hi + 1)]


def _hex_any_case(c: int) -> str:
    return "".join(f"[{d.lower()}{d.upper()}]" if d.isalpha() else d for d in f"{c:x}")


# a numeric reference to one of them (or to a tag character: E0000-E0FFF, 917504-921599,
# matched a little wider), ended by its ";" or by any other character than a digit (without
# lookahead, for Hyperscan: &#8 must not match don&#8217;t, a common page's apostrophe)
_INVISIBLE_REF = (
    r"&#0*(?:9(?:1[7-9]|2[01])[0-9]{3}|"
    + "|".join(str(c) for c in _INVISIBLE_CODES)
    + r")(?:;|[^0-9])|&#[xX]0*(?:[eE]0[0-9a-fA-F]{3}|"
    + "|".join(_hex_any_case(c) for c in _INVISIBLE_CODES)
    + r")(?:;|[^0-9a-fA-F])"
)

# For Hyperscan: references and escapes worth an escape view, those that stand for a
# character of a token or a key (printable ASCII), leaving out what HTML escapes for its own
# syntax everywhere (&amp; &lt; &gt; &quot; &#39; &#x27; &#34; &#38; &#60; &#62;, spaces).
_NAMED = (
    "DiacriticalGrave|Hat|UnderBar|VerticalLine|ast|bsol|colon|comma|commat|dollar|equals|"
    "excl|grave|lbrace|lbrack|lcub|lowbar|lpar|lsqb|midast|num|percnt|period|plus|quest|"
    "rbrace|rbrack|rcub|rpar|rsqb|semi|sol|verbar|vert"
)
ESCAPE_ANCHOR = (
    rb"&#0*(?:3[35-7]|4[0-9]|5[0-9]|6[13-9]|[7-9][0-9]|1[01][0-9]|12[0-6]);"
    rb"|&#[xX]0*(?:2[13-58-9a-fA-F]|3[0-9a-bA-BdDfF]|[4-6][0-9a-fA-F]|7[0-9a-eA-E]);"
    rb"|&(?:" + _NAMED.encode() + rb");"
    rb"|\\x[0-9a-fA-F]{2}|\\u\{[0-9a-fA-F]{1,6}\}"
    # a Markdown escape inside a word (ghp\_…, sk\_live\_…; JSON-escaped: ghp\\_…); one
    # between spaces or at a line's start (\- and \* list markers) splits no token
    rb"|[A-Za-z0-9]\\{1,2}[" + MARKDOWN_PUNCT.encode() + rb"][A-Za-z0-9]"
    # an escaped quote that opens an assigned or passed value (HTML source shown as text:
    # password=&quot;…&quot;, ldapsearch -w &#x27;…&#x27;); elsewhere such quotes are HTML's
    # own and not worth a view
    rb"|[=:(,\[]\s{0,3}&(?:quot|apos|#0*(?:34|39)|#[xX]0*(?:22|27));"
    rb"|\s-{1,2}[A-Za-z][\w-]{0,30}\s{1,3}&(?:quot|apos|#0*(?:34|39)|#[xX]0*(?:22|27));"
    # a reference to an invisible character, or a <wbr>, inside a word (ghp_…&shy;…)
    # (every character the unicode view drops: &#x180E;, &#xFE0F;, &#847;, a tag character
    # went unseen, and so did a reference without its ";", as browsers read it)
    rb"|[A-Za-z0-9](?:" + _INVISIBLE_REF.encode() + rb"|&shy"
    rb"|&(?:" + _INVISIBLE_NAMES.encode() + rb");|<[wW][bB][rR]\s{0,3}/?>)"
    # a quoted-printable soft line break inside a word (raw e-mail), also JSON-escaped
    rb"|[A-Za-z0-9_+/.\-]=(?:\r?\n|(?:\\{1,2}r)?\\{1,2}n)[A-Za-z0-9_+/\-]"
)


# A line a terminal cut at its width: ``tmux capture-pane -p`` without ``-J``, ``screen``'s
# hardcopy, a terminal's scrollback as a shell or terminal tool returns it. A token longer
# than what was left of its line (a 93-character ``github_pat_``, or any token after a prompt
# and a command) is cut by a plain line break, and a model reads the two lines as one word.
# Only a break at the end of a line as long as the longest of the text is joined, when that
# is one of the terminals' usual widths (80 columns, tmux's default, 100, 120, 132...: a
# text's one longest line ending a sentence is no cut, and log lines of a common length,
# whose next line starts with a timestamp, were read joined when any width two lines share
# counted), between two characters of a token whose run across the break is long and looks
# random (a digit or both cases in it): a paragraph wrapped by an editor breaks between words.
_WRAP_MIN_RUN = 12
_WRAP_WIDTHS = frozenset({80, 100, 120, 132, 140, 160, 180, 200, 220, 240, 250, 256})
_WRAP_MIN_WIDTH = min(_WRAP_WIDTHS)
_WRAP_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-+/=.~")
# (the lookbehind: tried from every position of a line of token characters cut by one other,
# the search was quadratic, 50 ms for 60 KB of such lines; a line is at most 256 wide, so
# the window always starts at a line's start)
_WRAP_LEFT = re.compile(r"(?<![A-Za-z0-9_\-+/=.~])[A-Za-z0-9_\-+/=.~]+\Z")
_WRAP_RIGHT = re.compile(r"[A-Za-z0-9_\-+/=.~]+")
_SHAPE = str.maketrans(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", "A" * 26 + "a" * 26 + "9" * 10
)


def _shape(text: str, i: int) -> str:
    """The classes of a line's first 6 characters (letter case, digit, the rest as is)."""
    return text[i : i + 6].translate(_SHAPE)


def wrap_view(text: str) -> View | None:
    """The text with the line breaks a terminal made at its width removed (see above); None
    when there are none."""
    if "\n" not in text or len(text) <= _WRAP_MIN_WIDTH:
        return None
    # (all at C speed but for the lines as wide as the widest: a 1 MB text of 20,000 lines
    # took 5 ms line by line; lines ended by "\r\n" are measured without their "\r")
    lens = list(map(len, text.split("\n")))
    # (the last line too: no line of a terminal's screen is wider than the cut ones)
    width = max(lens)
    crlf = "\r" in text
    if width not in _WRAP_WIDTHS and not (crlf and width - 1 in _WRAP_WIDTHS):
        return None
    bodies = list(map(len, text.replace("\r\n", "\n").split("\n"))) if crlf else lens
    width = max(itertools.islice(bodies, len(bodies) - 1), default=0)
    if width not in _WRAP_WIDTHS:
        return None
    count = bodies.count(width) - (bodies[-1] == width)
    starts = list(itertools.accumulate(map((1).__add__, lens), initial=0))
    breaks: list[tuple[int, int]] = []
    i = -1
    for _ in range(count):
        i = bodies.index(width, i + 1)
        end = starts[i] + width  # where the line's break begins
        nxt = starts[i + 1]  # where the next line begins
        if end == 0 or nxt >= len(text):
            continue
        if text[end - 1] not in _WRAP_CHARS or text[nxt] not in _WRAP_CHARS:
            continue
        left = _WRAP_LEFT.search(text, max(starts[i], end - 256), end)
        right = _WRAP_RIGHT.match(text, nxt, nxt + 256)
        run = (left.group() if left else "") + (right.group() if right else "")
        if len(run) < _WRAP_MIN_RUN:
            continue
        if not (
            any(c.isdigit() for c in run)
            or (run.lower() != run and run.upper() != run)
            # an AWS key id with no digit (AKIA and 16 of A-Z2-7: one in 28) went unjoined
            or (len(run) >= 20 and run.isupper())
        ):
            continue
        if _shape(text, starts[i]) == _shape(text, nxt):
            continue  # the next line starts as this one: a new record (a log's timestamp)
        breaks.append((end, nxt))
    if not breaks:
        return None
    return _build(text, _Breaks(breaks), lambda m: "", "wrap")


class _Breaks:
    """The given spans as matches, for ``_build``."""

    def __init__(self, spans: list[tuple[int, int]]) -> None:
        self.spans = spans

    def finditer(self, text: str):
        for s, e in self.spans:
            yield _Span(s, e)


class _Span:
    __slots__ = ("s", "e")

    def __init__(self, s: int, e: int) -> None:
        self.s, self.e = s, e

    def span(self) -> tuple[int, int]:
        return self.s, self.e
