"""Each subscriber's message as the bytes sent, from parts made once per edition.

``make_email`` decides what a subscriber's email contains, and ``compose`` and ``to_bytes``
write it: some 10 ms a message, nearly all of it the same work again for every subscriber who
gets the same stories. ``EditionMessages`` does that work once per variant of the edition (the
stories a watchlist puts first, and whether the subscriber has a name; a watchlist that picks
no story gets the plain edition). It renders the variant with placeholders where the personal
values go (the links that carry the subscriber's token, the name), encodes the text between
them as quoted-printable, and for each subscriber joins those pieces with their own values,
escaped as the templates escape them there, under their own header lines.

The bytes say what ``to_bytes(compose(make_email(...)))`` says: the same headers in the same
order with the same values, the same text and HTML. Only what no reader sees differs: the MIME
boundary, and where quoted-printable lines break (at 76 characters, as RFC 2045 asks, and
around each personal value). What this module cannot show to come out the same goes the slow
way, through those functions: a variant whose templates do more with a personal value than
escape it, a value with a control character, a header value only the email library can write.
"""

from __future__ import annotations

import binascii
import dataclasses
import datetime as dt
import re
import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import Policy

from .addresses import is_delivery_form
from .headers import MAIL_POLICY, UTF8_POLICY, set_header
from .message import (
    DkimKey,
    Publisher,
    add_parts,
    compose,
    date_value,
    delivery_form,
    draft_email,
    list_headers,
    make_email,
    make_message_id,
    personalise,
    sign,
    to_bytes,
)
from .models import Digest, Subscriber
from .render import Drafts, first_fitting
from .site import Links

Escape = Callable[[str], str]


def _as_is(value: str) -> str:
    return value


def _html_attribute(value: str) -> str:
    """``value`` as css-inline writes it inside a double-quoted attribute (html5ever's rules)."""
    return value.replace("&", "&amp;").replace("\xa0", "&nbsp;").replace('"', "&quot;")


def _html_text(value: str) -> str:
    """``value`` as css-inline writes it as the text of an element."""
    escaped = value.replace("&", "&amp;").replace("\xa0", "&nbsp;")
    return escaped.replace("<", "&lt;").replace(">", "&gt;")


#: The ways a personal value can stand in a part. Which one applies at each place is seen in a
#: second rendering of the variant, where each value ends with ``_PROBE``.
_ESCAPES: tuple[Escape, ...] = (_as_is, _html_attribute, _html_text)
#: The characters ``_ESCAPES`` write differently, and some that only an escape not known here
#: would change (Jinja's "&#39;" left in raw text, a space or a letter that is not ASCII).
_PROBE = "&<>\"' \xa0é"
# A value with one of these may be more than text to a template, the HTML parser (which
# drops or replaces some) or the line ends of a part: it goes the slow way.
_UNSAFE_VALUE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")

#: RFC 2045: encoded lines of at most 76 characters.
_QP_LINE = 76
_SOFT_BREAK = b"=\r\n"
_CRLF = b"\r\n"


def _quoted_printable(text: str) -> bytes:
    """``text`` (lines ending in "\\n") quoted-printable, with CRLF line ends.

    Each line is at most 76 characters and the last at most 75, so that a soft line break
    can follow it when a personal value comes next.
    """
    encoded = binascii.b2a_qp(text.encode(), quotetabs=False, istext=True)
    encoded = encoded.replace(b"\n", _CRLF)
    start = encoded.rfind(b"\n") + 1
    while len(encoded) - start > _QP_LINE - 1:
        cut = start + _QP_LINE - 1
        # Never inside an escape ("=C3"): every "=" of the encoding starts one.
        escape = encoded.rfind(b"=", cut - 2, cut)
        cut = cut if escape < 0 else escape
        encoded = encoded[:cut] + _SOFT_BREAK + encoded[cut:]
        start = cut + len(_SOFT_BREAK)
    return encoded


def _line_ends(text: str) -> str:
    """``text`` with the line ends the email library gives a text part: "\\n" for each of
    CRLF, CR and LF."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


class _CannotWrite(Exception):
    """This message is not one this module can show to come out as the slow way writes it."""


class _Placeholders:
    """Stand-ins for the personal values: ``value(n)`` for the n-th, never in a feed's text."""

    def __init__(self) -> None:
        self.token = f"p{secrets.token_hex(8)}"
        self._pattern = re.compile(rf"{self.token}v(\d+)v")

    def value(self, index: int) -> str:
        return f"{self.token}v{index}v"

    def probe(self, index: int) -> str:
        return self.value(index) + _PROBE

    def split(self, rendered: str) -> tuple[list[str], list[int]]:
        """The text around the placeholders of ``rendered``, and which value each is."""
        pieces = self._pattern.split(rendered)
        texts, indices = pieces[::2], [int(index) for index in pieces[1::2]]
        # A placeholder a filter has changed ("| upper", "| truncate") is not found above.
        if rendered.lower().count(self.token) != len(indices):
            raise _CannotWrite("a template changes a personal value")
        return texts, indices


class _Values:
    """One subscriber's personal values, each escaped and encoded once for every place."""

    __slots__ = ("_encoded", "_escaped", "values")

    def __init__(self, values: Sequence[str]) -> None:
        self.values = values
        self._escaped: dict[tuple[int, Escape], str] = {}
        self._encoded: dict[str, bytes] = {}

    def escaped(self, index: int, escape: Escape) -> str:
        key = (index, escape)
        found = self._escaped.get(key)
        if found is None:
            found = self._escaped[key] = escape(self.values[index])
        return found

    def encoded(self, index: int, escape: Escape) -> bytes:
        # Keyed by the text: a link is mostly the same in the text part and in an attribute.
        escaped = self.escaped(index, escape)
        found = self._encoded.get(escaped)
        if found is None:
            found = self._encoded[escaped] = _quoted_printable(escaped)
        return found


@dataclass(frozen=True, slots=True)
class _Part:
    """One body part at one trimming step: quoted-printable pieces, and between each two a
    personal value (its index) with the escape it gets there."""

    pieces: tuple[bytes, ...]
    slots: tuple[tuple[int, Escape], ...]
    #: UTF-8 bytes of the rendered part without its values, as the size rule counts them.
    fixed_size: int

    def size(self, values: _Values) -> int:
        """Bytes of the rendered part with ``values`` in it."""
        return self.fixed_size + sum(len(values.escaped(*slot).encode()) for slot in self.slots)

    def encode(self, values: _Values) -> bytes:
        """The part's quoted-printable body with ``values`` in it.

        Each value starts a line and ends one with a soft line break: the pieces were encoded
        apart, each from the start of a line.
        """
        chunks = [self.pieces[0]]
        at_line_start = not self.pieces[0] or self.pieces[0].endswith(_CRLF)
        for slot, piece in zip(self.slots, self.pieces[1:], strict=True):
            if not at_line_start:
                chunks.append(_SOFT_BREAK)
            chunks += (values.encoded(*slot), _SOFT_BREAK, piece)
            at_line_start = not piece or piece.endswith(_CRLF)
        return b"".join(chunks)


def _make_part(rendered: str, probed: str, placeholders: _Placeholders) -> _Part:
    """``rendered`` cut at its placeholders, each with the escape that ``probed`` (the same
    render, each value followed by ``_PROBE``) shows it gets."""
    texts, indices = placeholders.split(rendered)
    slots: list[tuple[int, Escape]] = []
    position = len(texts[0])
    if not probed.startswith(texts[0]):
        raise _CannotWrite("a personal value changes the text around it")
    for index, text in zip(indices, texts[1:], strict=True):
        probe = placeholders.probe(index)
        for escape in _ESCAPES:
            written = escape(probe)
            if probed.startswith(written, position):
                break
        else:
            raise _CannotWrite("a personal value is written in a way this module does not know")
        position += len(written)
        if not probed.startswith(text, position):
            raise _CannotWrite("a personal value changes the text around it")
        position += len(text)
        slots.append((index, escape))
    if position != len(probed):
        raise _CannotWrite("a personal value changes the text around it")
    fixed_size = sum(len(text.encode()) for text in texts)
    # As the email library does: every line end a "\n", and one at the end of the part.
    texts = [_line_ends(text) for text in texts]
    if not texts[-1].endswith("\n"):
        texts[-1] += "\n"
    return _Part(tuple(_quoted_printable(text) for text in texts), tuple(slots), fixed_size)


class _Variant:
    """The edition as one set of watchlist stories leads it, with or without a name."""

    def __init__(self, make_drafts: Callable[[Sequence[str]], Drafts], values: int) -> None:
        self._make_drafts = make_drafts
        self._values = values
        self._placeholders = _Placeholders()
        #: Each part, or why it cannot be made this way.
        self._parts: dict[tuple[int, bool], _Part | str] = {}
        self._lock = threading.Lock()
        drafts = make_drafts([self._placeholders.value(index) for index in range(values)])
        self.subject = drafts.subject
        self.steps = drafts.steps

    def part(self, step: int, html: bool) -> _Part:
        found = self._parts.get((step, html))
        if found is None:
            with self._lock:
                found = self._parts.get((step, html))
                if found is None:
                    self._make_parts(step)
                    found = self._parts[(step, html)]
        if isinstance(found, str):
            raise _CannotWrite(found)
        return found

    def _make_parts(self, step: int) -> None:
        placeholders = self._placeholders
        plain = self._make_drafts([placeholders.value(index) for index in range(self._values)])
        probed = self._make_drafts([placeholders.probe(index) for index in range(self._values)])
        for html in (True, False):
            rendered = plain.html(step) if html else plain.text(step)
            probe = probed.html(step) if html else probed.text(step)
            try:
                self._parts[(step, html)] = _make_part(rendered, probe, placeholders)
            except _CannotWrite as exc:
                self._parts[(step, html)] = str(exc)


@dataclass(frozen=True, slots=True)
class _Skeleton:
    """The multipart/alternative frame around the two bodies, as ``compose`` writes it."""

    head: bytes
    between: bytes
    tail: bytes


def _make_skeleton() -> _Skeleton:
    text, html = "textpartbody", "htmlpartbody"
    message = EmailMessage(policy=MAIL_POLICY)
    add_parts(message, text, html)
    raw = message.as_bytes()
    text_at, html_at = raw.index(text.encode()), raw.index(html.encode())
    text_end, html_end = text_at + len(text) + len(_CRLF), html_at + len(html) + len(_CRLF)
    return _Skeleton(raw[:text_at], raw[text_end:html_at], raw[html_end:])


_MAX_LINE = MAIL_POLICY.max_line_length or 78
_ATOM = r"[A-Za-z0-9_+-]+"
_DOT_ATOM = rf"{_ATOM}(?:\.{_ATOM})*"
_PLAIN_MESSAGE_ID = re.compile(rf"<{_DOT_ATOM}@{_DOT_ATOM}>")
# "<URL>, <mailto:...>": printable ASCII, no space, "<" or ">" inside an entry.
_ENTRY = r"<[!-;=?-~]*>"
_PLAIN_ENTRIES = re.compile(rf"{_ENTRY}(?:, {_ENTRY})*")


def _library_line(name: str, value: str, policy: Policy, checked: bool = True) -> bytes:
    """The header as ``compose`` sets it (through ``set_header`` when ``checked``) and
    ``to_bytes`` writes it with ``policy``."""
    holder = EmailMessage(policy=MAIL_POLICY)
    if checked:
        set_header(holder, name, value)
    else:
        holder[name] = value
    return holder.as_bytes(policy=policy).removesuffix(_CRLF)


def _short_line(name: str, value: str) -> bytes:
    return f"{name}: {value}\r\n".encode()


def _to_line(recipient: str) -> tuple[bytes, bool]:
    """The To header of ``recipient``'s message, and whether it needs UTF-8 (RFC 6532)."""
    address = recipient if is_delivery_form(recipient) else delivery_form(recipient)
    if is_delivery_form(address) and len("To: ") + len(address) <= _MAX_LINE:
        return _short_line("To", address), False
    holder = EmailMessage(policy=MAIL_POLICY)
    set_header(holder, "To", address)
    utf8 = not str(holder["To"]).isascii()
    written = holder.as_bytes(policy=UTF8_POLICY if utf8 else MAIL_POLICY)
    return written.removesuffix(_CRLF), utf8


def _message_id_line(message_id: str, policy: Policy) -> bytes:
    if _PLAIN_MESSAGE_ID.fullmatch(message_id) and len(message_id) + 12 <= _MAX_LINE:
        return _short_line("Message-ID", message_id)
    return _library_line("Message-ID", message_id, policy)


def _entries_line(name: str, value: str, policy: Policy) -> bytes:
    """A header of <URL> entries (List-Unsubscribe), folded between entries as headers.py
    folds it; a value of any other shape is left to the library."""
    if "=?" in value or not _PLAIN_ENTRIES.fullmatch(value):
        return _library_line(name, value, policy)
    entries = value.split(", ")
    lines = [f"{name}:"]
    for index, entry in enumerate(entries):
        piece = entry + ("," if index < len(entries) - 1 else "")
        if index and len(lines[-1]) + 1 + len(piece) > _MAX_LINE:
            lines.append("")
        lines[-1] += " " + piece
    return ("\r\n".join(lines) + "\r\n").encode()


class EditionMessages:
    """The messages of one send of ``digest``: each subscriber's bytes as ``to_bytes``
    writes them, made from parts rendered and encoded once per variant of the edition.

    Safe to use from several threads at once.
    """

    def __init__(
        self,
        digest: Digest,
        publisher: Publisher,
        now: dt.datetime,
        dkim_key: DkimKey | None = None,
    ) -> None:
        self.digest = digest
        self.publisher = publisher
        self.now = now
        self.dkim_key = dkim_key
        # Which links are a subscriber's own: those that differ between two subscribers.
        self._issued = digest.window_end  # as make_email issues them
        one, other = (
            publisher.site.links(
                digest.date, Subscriber(f"{n}@example.invalid", public_id=n * 32), self._issued
            )
            for n in "ab"
        )
        self._personal = tuple(
            field.name
            for field in dataclasses.fields(Links)
            if getattr(one, field.name) != getattr(other, field.name)
        )
        self._shared = tuple(
            (field.name, getattr(one, field.name))
            for field in dataclasses.fields(Links)
            if field.name not in self._personal
        )
        self._links = one
        stories = [*digest.top, *(story for _, section in digest.sections for story in section)]
        self._positions = {id(story): position for position, story in enumerate(stories)}
        self._picks: dict[tuple[str, ...], tuple[int, ...]] = {}
        self._variants: dict[tuple[tuple[int, ...], bool], _Variant] = {}
        self._lock = threading.Lock()
        self._skeleton = _make_skeleton()
        self._lines: dict[tuple[str, str, bool], bytes] = {}
        self._date = date_value(now)
        self._slow = 0

    @property
    def variants(self) -> int:
        """How many variants of the edition the messages so far were made from."""
        return len(self._variants)

    @property
    def slow_messages(self) -> int:
        """How many messages so far went the slow way (make_email, compose, to_bytes)."""
        return self._slow

    def bytes_for(self, subscriber: Subscriber, message_id: str) -> bytes:
        """``subscriber``'s message, as ``to_bytes(compose(make_email(...)))`` writes it.

        ``message_id`` as ``make_email`` takes it (empty: the stable one). Whatever the
        subscriber's details, this raises only where that would.
        """
        try:
            raw = self._write(subscriber, message_id)
        except _CannotWrite:
            return self._the_slow_way(subscriber, message_id)
        return raw if self.dkim_key is None else sign(raw, self.dkim_key)

    def _the_slow_way(self, subscriber: Subscriber, message_id: str) -> bytes:
        with self._lock:
            self._slow += 1
        email = make_email(self.digest, self.publisher, subscriber, message_id=message_id)
        return to_bytes(compose(email, self.publisher.sender, self.now), self.dkim_key)

    def _write(self, subscriber: Subscriber, message_id: str) -> bytes:
        publisher, email = self.publisher, subscriber.email
        variant = self._variant(subscriber)
        links = publisher.site.links(self.digest.date, subscriber, self._issued)
        if any(getattr(links, name) != value for name, value in self._shared):
            raise _CannotWrite("a shared link differs")
        values = [getattr(links, name) for name in self._personal]
        if subscriber.name:
            values.append(subscriber.name)
        # An empty value could take another branch of a template than its placeholder did.
        if not all(values) or any(_UNSAFE_VALUE.search(value) for value in values):
            raise _CannotWrite("a personal value is empty or not plain text")
        personal = _Values(values)
        step = first_fitting(variant.steps, lambda step: variant.part(step, True).size(personal))
        text = variant.part(step, False).encode(personal)
        html = variant.part(step, True).encode(personal)

        # compose's order: From, To, Subject, Date, Message-ID, then the list headers.
        to_line, utf8 = _to_line(email)
        policy = UTF8_POLICY if utf8 else MAIL_POLICY
        lines = [
            self._line("From", publisher.sender, utf8),
            to_line,
            self._line("Subject", variant.subject, utf8),
            self._line("Date", self._date, utf8, checked=False),
            _message_id_line(
                message_id or make_message_id(self.digest.date, email, publisher.sender), policy
            ),
        ]
        for name, value in list_headers(publisher, links, subscriber, self._issued):
            if name == "List-Unsubscribe":
                lines.append(_entries_line(name, value, policy))
            else:
                lines.append(self._line(name, value, utf8))
        skeleton = self._skeleton
        return b"".join((*lines, skeleton.head, text, skeleton.between, html, skeleton.tail))

    def _variant(self, subscriber: Subscriber) -> _Variant:
        picks = self._picks.get(subscriber.watchlist)
        if picks is None:
            watched, _ = personalise(self.digest, subscriber.watchlist)
            picks = self._picks[subscriber.watchlist] = tuple(
                self._positions[id(story)] for story in watched
            )
        key = (picks, bool(subscriber.name))
        variant = self._variants.get(key)
        if variant is None:
            with self._lock:
                variant = self._variants.get(key)
                if variant is None:
                    variant = self._variants[key] = self._make_variant(
                        subscriber.watchlist, named=bool(subscriber.name)
                    )
        return variant

    def _make_variant(self, watchlist: tuple[str, ...], named: bool) -> _Variant:
        personal = len(self._personal)

        def make_drafts(values: Sequence[str]) -> Drafts:
            links = dataclasses.replace(
                self._links, **dict(zip(self._personal, values[:personal], strict=True))
            )
            name = values[personal] if named else ""
            return draft_email(self.digest, self.publisher, watchlist, links, name)

        return _Variant(make_drafts, personal + named)

    def _line(self, name: str, value: str, utf8: bool, checked: bool = True) -> bytes:
        """A header the same for many messages, written once."""
        key = (name, value, utf8)
        line = self._lines.get(key)
        if line is None:
            line = _library_line(name, value, UTF8_POLICY if utf8 else MAIL_POLICY, checked)
            if len(self._lines) < _REMEMBERED_LINES:
                self._lines[key] = line
        return line


# Edition-wide headers are a handful; this only bounds a list header made personal one day.
_REMEMBERED_LINES = 256
