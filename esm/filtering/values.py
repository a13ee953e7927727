"""Value-level semantics of the pattern language: numbers, IP addresses, wildcards, case folding.

This module owns the small rules that decide whether one event value satisfies one operand,
independently of how patterns are parsed or how many of them are compiled together:

- which numbers can be compared by value (finite and exactly representable as a double);
- how IP literals and CIDR blocks are read, with event-ruler's error texts;
- how a wildcard string is checked (escapes, consecutive stars), matched, and how complex a set
  of wildcards on one field is;
- how ``equals-ignore-case`` folds a pattern: each character of the pattern may appear in the
  value as its own lower-case or upper-case form, nothing more (this is not Unicode casefold).
"""

from __future__ import annotations

import ipaddress
import math
import re
from decimal import Decimal, InvalidOperation
from typing import Callable

from esm.filtering.errors import InvalidPatternError

# --------------------------------------------------------------------------------------------
# Numbers
# --------------------------------------------------------------------------------------------


def comparable_from_text(text: str) -> float | None:
    """The double a JSON number literal stands for, or None when it cannot be compared by value.

    A number is comparable when it is finite as a double and the double's shortest decimal form
    has exactly the literal's value: ``0.1`` and ``1E-320`` are comparable, ``1E309``,
    ``1E-325`` and ``123456789012345678`` are not (behaviour §11.1, numeric precision).
    """
    try:
        exact = Decimal(text)
    except InvalidOperation:
        return None
    if not exact.is_finite():
        return None
    as_float = float(text)
    if not math.isfinite(as_float):
        return None
    if Decimal(repr(as_float)) != exact:
        return None
    return as_float


def comparable_from_int(value: int) -> float | None:
    """The double an event integer stands for, or None when the double would not be exact."""
    try:
        as_float = float(value)
    except OverflowError:
        return None
    if int(as_float) != value:
        return None
    return as_float


# --------------------------------------------------------------------------------------------
# IP addresses and CIDR blocks
# --------------------------------------------------------------------------------------------

_IPV4_SHAPE = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+")
_IPV6_SHAPE = re.compile(r"[0-9a-fA-F:]*:[0-9a-fA-F:]*")
_MASK_BITS = re.compile(r"[+-]?[0-9]+")


def looks_like_ip(text: str) -> bool:
    """True when the text has the shape of an IPv4 or IPv6 literal (it may still be invalid)."""
    return bool(_IPV4_SHAPE.fullmatch(text) or _IPV6_SHAPE.fullmatch(text))


def _parse_ip_strict(text: str) -> tuple[int, int]:
    """(version, integer) of an IP literal; raises InvalidPatternError with event-ruler's text."""
    if not looks_like_ip(text):
        raise InvalidPatternError(f"Nonstandard IP address: {text}")
    if _IPV4_SHAPE.fullmatch(text):
        # Java reads each part as a decimal number (leading zeros allowed), at most 255.
        parts = [int(part) for part in text.split(".")]
        if any(part > 255 for part in parts):
            raise InvalidPatternError(f"Invalid IP address: {text}")
        return 4, (parts[0] << 24) | (parts[1] << 16) | (parts[2] << 8) | parts[3]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise InvalidPatternError(f"Invalid IP address: {text}") from None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        # Java's InetAddress hands back the IPv4 address for an IPv4-mapped IPv6 literal.
        return 4, int(address.ipv4_mapped)
    return address.version, int(address)


def parse_ip(text: str) -> tuple[int, int] | None:
    """(version, integer) of an IP literal, or None when the text is not one.

    Used for event values and for exact pattern strings, which event-ruler turns into an IP
    match when they are IP literals (so ``::1`` also matches ``0:0:0:0:0:0:0:1``).
    """
    if not looks_like_ip(text):
        return None
    try:
        return _parse_ip_strict(text)
    except InvalidPatternError:
        return None


def parse_cidr(text: str) -> tuple[int, int, int]:
    """(version, low, high) of a CIDR block, checked as event-ruler checks it.

    Host bits may be set and are ignored: ``10.0.0.1/24`` covers 10.0.0.0 to 10.0.0.255 (as in
    event-ruler 2.1). Masks of /32 (IPv4) and /128 (IPv6) are rejected, as in event-ruler.
    """
    parts = text.split("/")
    while parts and parts[-1] == "":
        parts.pop()  # Java's String.split drops trailing empty strings.
    if len(parts) != 2:
        raise InvalidPatternError("Malformed CIDR, one '/' required")
    mask_text = parts[1]
    if not _MASK_BITS.fullmatch(mask_text) or not -(2**31) <= int(mask_text) < 2**31:
        raise InvalidPatternError("Malformed CIDR, mask bits must be an integer")
    mask = int(mask_text)
    if mask < 0:
        raise InvalidPatternError("Malformed CIDR, mask bits must not be negative")
    version, address = _parse_ip_strict(parts[0])
    width = 32 if version == 4 else 128
    if version == 4 and mask > 31:
        raise InvalidPatternError("IPv4 mask bits must be < 32")
    if version == 6 and mask > 127:
        raise InvalidPatternError("IPv6 mask bits must be < 128")
    host_mask = (1 << (width - mask)) - 1
    return version, address & ~host_mask, address | host_mask


# --------------------------------------------------------------------------------------------
# Wildcards
# --------------------------------------------------------------------------------------------

_STAR = ord("*")
_BACKSLASH = ord("\\")


def wildcard_segments(text: str) -> tuple[str, ...]:
    """The literal pieces between the stars of a wildcard, after checking its escapes.

    ``a*b\\*c`` gives ``("a", "b*c")``. Positions in error messages count UTF-8 bytes of the
    value with its surrounding quotes, as event-ruler reports them.
    """
    quoted = ('"' + text + '"').encode("utf-8")
    pieces: list[bytearray] = [bytearray()]
    index = 0
    while index < len(quoted):
        byte = quoted[index]
        if byte == _STAR:
            if index + 1 < len(quoted) and quoted[index + 1] == _STAR:
                raise InvalidPatternError(f"Consecutive wildcard characters at pos {index}")
            pieces.append(bytearray())
        elif byte == _BACKSLASH:
            following = quoted[index + 1] if index + 1 < len(quoted) else None
            if following not in (_STAR, _BACKSLASH):
                raise InvalidPatternError(f"Invalid escape character at pos {index}")
            pieces[-1].append(following)
            index += 1
        else:
            pieces[-1].append(byte)
        index += 1
    # Strip the quotes we added around the value.
    pieces[0] = pieces[0][1:]
    pieces[-1] = pieces[-1][:-1]
    return tuple(piece.decode("utf-8") for piece in pieces)


def wildcard_matcher(segments: tuple[str, ...]) -> Callable[[str], bool]:
    """A function telling whether a string matches a wildcard given by its segments.

    With ``*`` as the only metacharacter, taking each middle piece at its leftmost place is
    enough, so matching is linear and needs no regular expression.
    """
    if len(segments) == 1:
        only = segments[0]
        return lambda value: value == only
    head, tail, middle = segments[0], segments[-1], segments[1:-1]
    fixed = len(head) + len(tail)

    if not middle:
        if not head:
            return lambda value: value.endswith(tail)
        if not tail:
            return lambda value: value.startswith(head)
        return lambda value: (
            len(value) >= fixed and value.startswith(head) and value.endswith(tail)
        )

    def match(value: str) -> bool:
        if len(value) < fixed or not value.startswith(head) or not value.endswith(tail):
            return False
        position, end = len(head), len(value) - len(tail)
        for piece in middle:
            found = value.find(piece, position, end)
            if found < 0:
                return False
            position = found + len(piece)
        return True

    return match


# The measure below follows event-ruler's MachineComplexityEvaluator: while a value is read byte
# by byte, count the wildcard transitions that can be alive at once (each step taken, plus the
# "any byte" loop of a star just reached). For one field of one pattern it gives the same numbers
# as event-ruler 2.1 (checked offline against the library: `*:*:*:*:*:event-bus/*` is 11,
# `/Users/*/dir/dir/dir/dir/dir/doc.txt` is 7). AWS rejects the first and accepts the second and
# does not publish its threshold; esm rejects a field whose measure is above 10.
WILDCARD_COMPLEXITY_LIMIT = 10
TOO_COMPLEX = (
    "Rule is too complex - try using fewer wildcard characters or fewer repeating character "
    "sequences after a wildcard character"
)
_EXPLORATION_CAP = 20_000


def wildcard_complexity(patterns: list[tuple[str, ...]], limit: int = WILDCARD_COMPLEXITY_LIMIT) -> int:
    """Largest number of wildcard transitions alive at once while reading any value.

    Each distinct pattern becomes a chain of byte positions between its quotes; a star loops on
    any byte and may be skipped. The sets of positions reachable by reading bytes are explored
    (bytes that appear in no pattern behave alike, so one stands for all of them); at each step
    the transitions just taken are counted, plus the loop of every star reached but not taken.
    Exploration stops as soon as the count passes ``limit``.
    """
    chains: list[list[int | None]] = []  # None stands for a star
    alphabet: set[int] = {ord('"')}
    for segments in dict.fromkeys(patterns):
        chain: list[int | None] = [ord('"')]
        for number, piece in enumerate(segments):
            if number:
                chain.append(None)
            encoded = piece.encode("utf-8")
            chain.extend(encoded)
            alphabet.update(encoded)
        chain.append(ord('"'))
        chains.append(chain)
    other = next(b for b in range(256) if b not in alphabet)
    symbols = sorted(alphabet) + [other]

    start = frozenset((which, 0) for which in range(len(chains)))
    frontier = [start]
    visited = {start}
    worst = 0
    while frontier and len(visited) < _EXPLORATION_CAP:
        current = frontier.pop()
        for symbol in symbols:
            taken: set[tuple[int, int, int]] = set()
            for which, position in current:
                chain = chains[which]
                if position >= len(chain):
                    continue
                token = chain[position]
                if token is None:
                    taken.add((which, position, position))
                    if chain[position + 1] == symbol:
                        taken.add((which, position, position + 2))
                elif token == symbol:
                    taken.add((which, position, position + 1))
            if not taken:
                continue
            reached = frozenset((which, target) for which, _, target in taken)
            size = len(taken)
            for which, target in reached:
                chain = chains[which]
                if target < len(chain) and chain[target] is None and (which, target, target) not in taken:
                    size += 1
            if size > worst:
                worst = size
                if worst > limit:
                    return worst
            if reached not in visited:
                visited.add(reached)
                frontier.append(reached)
    return worst


# --------------------------------------------------------------------------------------------
# equals-ignore-case
# --------------------------------------------------------------------------------------------


def case_alternatives(text: str) -> list[tuple[str, ...]]:
    """For each character of a pattern, the forms it may take in a value: itself lower- and
    upper-cased on its own (full case mapping of that one character, as Java's
    ``String.valueOf(c).toLowerCase/toUpperCase(Locale.ROOT)``). Characters outside the Basic
    Multilingual Plane match only themselves."""
    result: list[tuple[str, ...]] = []
    for char in text:
        if ord(char) > 0xFFFF:
            result.append((char,))
            continue
        forms = {char.lower(), char.upper()}
        result.append(tuple(sorted(forms)))
    return result


def _alternatives_regex(text: str) -> str:
    parts = []
    for forms in case_alternatives(text):
        if len(forms) == 1:
            parts.append(re.escape(forms[0]))
        else:
            parts.append("(?:" + "|".join(re.escape(form) for form in forms) + ")")
    return "".join(parts)


def ignore_case_matcher(text: str, kind: str) -> Callable[[str], bool]:
    """Matcher for equals-ignore-case (kind ``exact``), or its ``prefix`` or ``suffix`` form."""
    body = _alternatives_regex(text)
    if kind == "exact":
        compiled = re.compile(body, re.DOTALL)
        return lambda value: compiled.fullmatch(value) is not None
    if kind == "prefix":
        compiled = re.compile(body, re.DOTALL)
        return lambda value: compiled.match(value) is not None
    compiled = re.compile("(?:" + body + r")\Z", re.DOTALL)
    return lambda value: compiled.search(value) is not None
