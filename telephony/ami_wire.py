"""The AMI wire format, sans-IO: bytes in, typed messages out; headers in, bytes out.

No sockets, no asyncio, no panoramisk: the listener (through ``telephony/panoramisk_fixes.py``),
the replay server and the tests all read and write AMI here, so one set of rules holds for all:

- **Framing** (:class:`AmiFramer`): a blank line ends a message. Asterisk writes CRLF; a bare LF
  is accepted too. Bytes are kept until their message is complete and each message is decoded
  whole, so a character split across TCP reads stays intact (panoramisk fault #1 in
  docs/PANORAMISK.md). A client framer first reads the ``Asterisk Call Manager/…`` banner line.
- **Decoding**: invalid UTF-8 (a phone sending Latin-1 caller names) is replaced, not fatal:
  losing a call event is worse than one odd character. NUL characters are removed: Asterisk's C
  strings never hold one, and PostgreSQL refuses them in text.
- **Headers**: ``Name: value`` lines; exactly one space after the colon is the separator, the
  rest, even empty, is the value (``Value: `` -> ``""``, fault #2). A name is anything but
  whitespace, control characters and ``:`` (Asterisk 22 writes
  ``ChanVariable(PJSIP/101-00000001): NAME=value`` in some events).
- **Repeated headers**: Asterisk 22 repeats ``Output`` (one per line of a Command's output),
  ``ChanVariable`` (one per ``channelvars`` variable), and actions repeat ``Variable``. Every value
  is kept, in order (:attr:`AmiMessage.headers`, :meth:`AmiMessage.get_all`); the mapping view
  (``msg[name]``, ``msg.get(name)``) gives the first, so nothing appended later overrides what a
  message started with.
- **Malformed** (:class:`MalformedMessage`; the framer logs a warning, skips that message and
  goes on with the next): a line that is not a header (but in a legacy ``Response: Follows``,
  whose header-less body lines are its ``Output``), a first header other than ``Event`` or
  ``Response``, two ``Event`` or two ``Response`` headers (a message cut in half), a message
  larger than ``max_message_bytes``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, NoReturn, Self, TypeVar

logger = logging.getLogger(__name__)

BANNER_PREFIX = b"Asterisk Call Manager/"
DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024
EOL = "\r\n"

# A blank line ends a message: \r\n\r\n from Asterisk, \n\n (or a mix) tolerated.
_MESSAGE_END = re.compile(rb"\r?\n\r?\n")
_NAME = r"[^\s:\x00-\x1f\x7f]+"
_HEADER_LINE = re.compile(rf"({_NAME}): ?(.*)")
_NAME_ONLY = re.compile(_NAME)
# Header names seen valid: Asterisk's vocabulary is a few hundred names, so after the first
# messages a name is checked by one set look-up instead of a regular expression (bounded, so
# a peer sending ever new names costs only the regular expression).
_VALID_NAMES: set[str] = set()
_VALID_NAMES_MAX = 4096


class MalformedMessage(ValueError):
    """Bytes that are not an AMI message of the expected kind."""


# --------------------------------------------------------------------------------------------
# Messages


class AmiMessage(dict[str, str]):
    """One AMI message: an immutable ``dict`` of the first value of each header, plus every
    header line in order (:attr:`headers`).

    A ``dict`` so that whatever reads AMI fields (the tracker, the pipeline, the tests) reads
    them at ``dict`` speed and compares equal to a plain dict; immutable so that no consumer
    can change what another one sees.
    """

    # Every header line in order, kept only when a header repeats: otherwise they are the
    # mapping's items (a dict keeps its order), and a message is one object for the garbage
    # collector to track, not one per line (events wait in the listener's queue by thousands).
    __slots__ = ("_repeated",)
    _repeated: tuple[tuple[str, str], ...] | None

    def __init__(self, headers: Iterable[tuple[str, str]] = ()) -> None:
        pairs = headers if isinstance(headers, list | tuple) else tuple(headers)
        dict.__init__(self, pairs)
        if len(self) != len(pairs):  # a repeated header: the first value is the one mapped
            dict.clear(self)
            for name, value in pairs:
                if name not in self:
                    dict.__setitem__(self, name, value)
            self._repeated = tuple(pairs)
        else:
            self._repeated = None

    @property
    def headers(self) -> tuple[tuple[str, str], ...]:
        """Every header line as (name, value), in order, repeated ones included."""
        repeated = self._repeated
        return tuple(self.items()) if repeated is None else repeated

    @classmethod
    def of(cls, fields: Mapping[str, str]) -> Self:
        return cls(fields.items())

    def get_all(self, name: str) -> tuple[str, ...]:
        """Every value of header ``name``, in order (``()`` when absent)."""
        return tuple(value for key, value in self.headers if key == name)

    @property
    def action_id(self) -> str | None:
        """The ActionID (Asterisk spells it ActionID, ActionId…: matched case-insensitively)."""
        value = self.get("ActionID")
        if value is not None:
            return value
        for key, val in self.headers:
            if key.lower() == "actionid":
                return val
        return None

    def __reduce__(self) -> tuple[type[Self], tuple[tuple[tuple[str, str], ...]]]:
        return (type(self), (self.headers,))

    def _immutable(self, *args: object, **kwargs: object) -> NoReturn:
        raise TypeError(f"{type(self).__name__} is immutable")

    __setitem__ = __delitem__ = _immutable
    clear = pop = popitem = setdefault = update = __ior__ = _immutable


class AmiEvent(AmiMessage):
    """A message whose first header is ``Event``."""

    __slots__ = ()

    @property
    def name(self) -> str:
        return self["Event"]


class AmiResponse(AmiMessage):
    """A message whose first header is ``Response`` (the reply to an action)."""

    __slots__ = ()

    @property
    def name(self) -> str:
        return self["Response"]


class AmiAction(AmiMessage):
    """An action, as a server (our replay server) reads it from a client."""

    __slots__ = ()

    @property
    def name(self) -> str:
        """The action's name (``""`` if missing; Asterisk reads header names in any case)."""
        for key, value in self.headers:
            if key.lower() == "action":
                return value
        return ""


@dataclass(frozen=True, slots=True)
class Banner:
    """The line Asterisk greets a client with; ``version`` is None when the first line was
    something else (this is not an AMI port)."""

    version: str | None


# --------------------------------------------------------------------------------------------
# Parsing


def _decode(raw: bytes | str) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    if "\x00" in text:
        text = text.replace("\x00", "")
    return text.strip("\r\n")


def _valid_name(name: str) -> bool:
    if _NAME_ONLY.fullmatch(name) is None:
        return False
    if len(_VALID_NAMES) < _VALID_NAMES_MAX:
        _VALID_NAMES.add(name)
    return True


def _crlf_headers(text: str) -> list[tuple[str, str]] | None:
    """The fast path: every line ends in CRLF and is ``Name: value`` (a valid name, then
    ": "), as Asterisk writes them; None when any line is otherwise (the rules below decide).
    The same pairs as the rules below give for such a text: a valid name holds no ``:``, so
    the first ": " is its colon and the one space the rules allow."""
    lines = text.split("\r\n")
    if text.count("\n") != len(lines) - 1:
        return None  # a bare LF
    pairs: list[tuple[str, str]] = []
    append = pairs.append
    valid = _VALID_NAMES
    for line in lines:
        name, sep, value = line.partition(": ")
        if not sep or (name not in valid and not _valid_name(name)):
            return None
        append((name, value))
    return pairs


def _header_pairs(text: str) -> list[tuple[str, str]]:
    fast = _crlf_headers(text)
    if fast is not None:
        return fast
    pairs: list[tuple[str, str]] = []
    follows = False
    for number, line in enumerate(text.split("\n"), 1):
        line = line.removesuffix("\r")
        if not line:
            continue
        match = _HEADER_LINE.fullmatch(line)
        if match is None:
            if follows:  # legacy "Response: Follows" body lines carry no header name
                pairs.append(("Output", line))
                continue
            raise MalformedMessage(f"line {number} is not a header: {line[:80]!r}")
        name, value = match.groups()
        if not pairs:
            follows = name == "Response" and value == "Follows"
        pairs.append((name, value))
    return pairs


def parse_message(raw: bytes | str) -> AmiEvent | AmiResponse:
    """One message Asterisk sent (the text between two blank lines) as an event or a response.

    Raises :class:`MalformedMessage` (see the module docstring for what that is).
    """
    pairs = _header_pairs(_decode(raw))
    if not pairs:
        raise MalformedMessage("empty message")
    first = pairs[0][0]
    if first not in ("Event", "Response"):
        raise MalformedMessage(f"first header is {first!r}, not Event or Response")
    message: AmiEvent | AmiResponse = AmiEvent(pairs) if first == "Event" else AmiResponse(pairs)
    if len(message) != len(pairs) and sum(1 for name, _ in pairs if name == first) > 1:
        raise MalformedMessage(f"two {first} headers: a message cut in half?")
    return message


def parse_action(raw: bytes | str) -> AmiAction:
    """One action a client sent. Raises :class:`MalformedMessage` if a line is no header."""
    pairs = _header_pairs(_decode(raw))
    if not pairs:
        raise MalformedMessage("empty action")
    return AmiAction(pairs)


# --------------------------------------------------------------------------------------------
# Framing

M = TypeVar("M", bound=AmiMessage)


def split_frames(data: bytes) -> tuple[list[bytes], bytes]:
    """The messages ``data`` completes, each without its blank line, and the bytes after the
    last one (the start of the next message)."""
    if b"\n\n" not in data and data.count(b"\n\r\n") == data.count(b"\r\n\r\n"):
        parts = data.split(b"\r\n\r\n")  # only CRLF ends, as Asterisk writes: 3x faster
    else:
        parts = _MESSAGE_END.split(data)
    tail = parts.pop()
    return parts, tail


class AmiFramer(Generic[M]):
    """Fed the bytes of one connection as they arrive; returns the messages they complete.

    ``AmiFramer(parse_message)`` reads what Asterisk sends (a :class:`Banner` first, then
    events and responses); ``AmiFramer(parse_action, banner=False)`` what a client sends.
    Malformed and oversized messages are logged and skipped; the messages around them are not
    affected.
    """

    def __init__(
        self,
        parse: Callable[[bytes], M],
        *,
        banner: bool = True,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ) -> None:
        self._parse = parse
        self._want_banner = banner
        self.max_message_bytes = max_message_bytes
        self._buf = b""
        self._discarding = False
        self.skipped = 0  # messages dropped as malformed or oversized

    @property
    def pending(self) -> bytes:
        """Bytes of a message not yet complete (a connection lost now would cut it)."""
        return b"" if self._discarding else self._buf

    def feed(self, data: bytes) -> list[M | Banner]:
        # Where a message end may begin: the bytes held had none (a blank line is <= 4 bytes).
        scan_from = max(len(self._buf) - 3, 0)
        buf = self._buf + data if self._buf else data
        out: list[M | Banner] = []
        if not self._want_banner and _MESSAGE_END.search(buf, scan_from) is None:
            if len(buf) > self.max_message_bytes:
                self._start_discarding(buf, f"message longer than {self.max_message_bytes} bytes")
            else:
                self._buf = buf  # nothing completed yet
            return out
        if self._want_banner:
            newline = buf.find(b"\n")
            if newline < 0:
                if len(buf) > self.max_message_bytes:
                    out.append(Banner(None))
                    self._want_banner = False
                    self._start_discarding(
                        buf, f"banner line longer than {self.max_message_bytes} bytes"
                    )
                else:
                    self._buf = buf
                return out
            self._want_banner = False
            first = buf[:newline].rstrip(b"\r")
            version: str | None = None
            if first.startswith(BANNER_PREFIX):
                version = first[len(BANNER_PREFIX) :].decode("utf-8", "replace").strip()
                buf = buf[newline + 1 :]
            out.append(Banner(version))
        parts, tail = split_frames(buf)
        if parts and self._discarding:
            self._discarding = False  # the oversized message ends here; its warning was given
            logger.debug("ami: skipped the end of an oversized message (%d bytes)", len(parts[0]))
            del parts[0]
        parse = self._parse
        for raw in parts:
            if len(raw) > self.max_message_bytes:
                self.skipped += 1
                logger.warning(
                    "ami: skipping a message of %d bytes (limit %d): %r...",
                    len(raw),
                    self.max_message_bytes,
                    raw[:80],
                )
                continue
            try:
                out.append(parse(raw))
            except MalformedMessage as exc:
                if raw.strip():
                    self.skipped += 1
                    logger.warning("ami: skipped malformed message: %s; %r", exc, raw[:200])
        if len(tail) > self.max_message_bytes:
            self._start_discarding(tail, f"message longer than {self.max_message_bytes} bytes")
        else:
            self._buf = tail
        return out

    def _start_discarding(self, buf: bytes, why: str) -> None:
        if not self._discarding:
            self.skipped += 1
            logger.warning("ami: skipping a %s; %r...", why, buf[:80])
        # Keep 3 bytes, so that a blank line straddling this read and the next is still found.
        self._buf = buf[-3:]
        self._discarding = True


# --------------------------------------------------------------------------------------------
# Writing


def serialize(headers: Iterable[tuple[str, str]]) -> bytes:
    """One message (event, response or action) in wire form, headers in the order given.

    Raises ValueError if a name or a value holds a line break, which would end the header
    early and let the rest be read as headers of its own (header injection).
    """
    pairs = list(headers)
    text = "".join(f"{name}: {value}{EOL}" for name, value in pairs) + EOL
    if text.count("\n") != len(pairs) + 1 or text.count("\r") != len(pairs) + 1:
        bad = next(n for n, v in pairs if "\r" in n or "\n" in n or "\r" in v or "\n" in v)
        raise ValueError(f"AMI header {bad!r} contains a line break")
    return text.encode("utf-8")


def action_headers(fields: Mapping[str, str | Sequence[str]]) -> list[tuple[str, str]]:
    """An action's fields as header lines: a list value becomes one line per item
    (``{"Variable": ["A=1", "B=2"]}`` -> two ``Variable`` lines)."""
    pairs: list[tuple[str, str]] = []
    for name, value in fields.items():
        if isinstance(value, str):
            pairs.append((name, value))
        else:
            pairs.extend((name, item) for item in value)
    return pairs
