"""Reading and checking one pattern: JSON text in, a list of sub-rules out.

A pattern is read token by token, the way event-ruler reads it with a streaming JSON parser, so
that when a pattern has several faults the one reported is the one event-ruler reports first,
with event-ruler's wording (behaviour §11.2). Malformed JSON gets Jackson-style messages.

The result is a list of *sub-rules*: ``$or`` is expanded into its combinations, nested objects
are flattened into dotted paths, and each sub-rule maps a path to the operands any one of which
must match (an AND of ORs). Where AWS and event-ruler differ, esm follows "Decisions for esm" in
behaviour §11: ``{}`` and ``"a": {}`` are accepted and add no condition.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from esm.filtering.errors import InvalidPatternError
from esm.filtering.values import (
    TOO_COMPLEX,
    WILDCARD_COMPLEXITY_LIMIT,
    comparable_from_text,
    parse_cidr,
    parse_ip,
    wildcard_complexity,
    wildcard_segments,
)

MAX_PATTERN_LENGTH = 4096
MAX_COMBINATIONS = 1000
MAX_FIELDS_PER_RULE = 256

# Operand kinds. An operand is a tuple whose first item is its kind.
STR = "str"  # ("str", text): exact string
NUM = "num"  # ("num", float): number equal by value
LIT = "lit"  # ("lit", text): number that cannot be compared by value, matched by its literal text
TRUE, FALSE, NULL = "true", "false", "null"
PREFIX, SUFFIX = "prefix", "suffix"
EIC, PREFIX_EIC, SUFFIX_EIC = "eic", "prefix_eic", "suffix_eic"
WILDCARD = "wildcard"  # ("wildcard", segments)
RANGE = "range"  # ("range", low, low_open, high, high_open)
CIDR = "cidr"  # ("cidr", version, low, high); also exact strings that are IP literals
EXISTS, ABSENT = "exists", "absent"
AB = "ab"  # ("ab", frozenset of strings, frozenset of floats)
AB_PREFIX, AB_SUFFIX, AB_EIC, AB_WILDCARD = "ab_prefix", "ab_suffix", "ab_eic", "ab_wildcard"

Operand = tuple[Any, ...]
# A sub-rule: (path, operands) pairs sorted by path. Every field must match; within a field, any
# operand may.
SubRule = tuple[tuple[str, tuple[Operand, ...]], ...]

_RESERVED_IN_OR = frozenset(
    {
        "exactly", "equals-ignore-case", "prefix", "suffix", "anything-but", "exists", "wildcard",
        "numeric", "cidr", "html", "=", "<", "<=", ">", ">=", "regex", "not-wildcard",
        "not-equals-ignore-case", "date-after", "date-on-or-after", "date-before",
        "date-on-or-before", "in-date-range", "ip-address-in-range", "ip-address-not-in-range",
    }
)
_TOO_MANY_NUMERIC = "Too many elements in numeric expression"
_ONE_KEY = "Only one key allowed in match expression"


def _fail(reason: str) -> None:
    raise InvalidPatternError(reason)


# --------------------------------------------------------------------------------------------
# Tokens
# --------------------------------------------------------------------------------------------

START_OBJECT, END_OBJECT, START_ARRAY, END_ARRAY = "{", "}", "[", "]"
FIELD, STRING, NUMBER, LITERAL, EOF = "field", "string", "number", "literal", "eof"

_EXPECTED_VALUE = "(JSON String, Number, Array, Object or token 'null', 'true' or 'false')"
_WHITESPACE = " \t\n\r"


def _describe(char: str) -> str:
    code = ord(char)
    if code < 32:
        return f"(CTRL-CHAR, code {code})"
    if code > 255:
        return f"'{char}' (code {code} / 0x{code:x})"
    return f"'{char}' (code {code})"


# A \uD83D\uDE80 pair of escapes is one character outside the Basic Multilingual Plane (JSON
# writes such characters as UTF-16 halves). Escapes are decoded one code unit at a time, then the
# halves of each pair are joined; a half left over stands for no character at all.
_SURROGATE = re.compile("[\ud800-\udfff]")
_PAIR_OR_HALF = re.compile("([\ud800-\udbff][\udc00-\udfff])|[\ud800-\udfff]")


def _join_half(found: re.Match[str]) -> str:
    if found.group(1):
        high, low = found.group(1)
        return chr(0x10000 + ((ord(high) - 0xD800) << 10) + (ord(low) - 0xDC00))
    code = ord(found.group())
    if code <= 0xDBFF:
        _fail(
            f"Unmatched first part of surrogate pair (0x{code:x}): a \\uD800-\\uDBFF escape must "
            "be followed by a \\uDC00-\\uDFFF escape"
        )
    _fail(
        f"Unmatched second part of surrogate pair (0x{code:x}): a \\uDC00-\\uDFFF escape must "
        "follow a \\uD800-\\uDBFF escape"
    )
    raise AssertionError("unreachable")


def _join_surrogates(text: str) -> str:
    """The string with each surrogate pair joined into its character; raises InvalidPatternError
    for a lone or out-of-order half (whether it came from an escape or was in the text raw)."""
    if _SURROGATE.search(text) is None:
        return text
    return _PAIR_OR_HALF.sub(_join_half, text)


class _Lexer:
    """Pull tokenizer over JSON text with Jackson's notion of where each token may appear."""

    def __init__(self, text: str) -> None:
        self.text_in = text
        self.pos = 0
        self.stack: list[str] = []  # "{" or "["
        self.need_separator = False  # a value was just completed inside a container
        self.after_field = False  # a field name was read; a value must follow
        self.done = False  # the root value is complete
        self.text = ""  # Jackson's getText() of the last token

    def _skip_ws(self) -> str:
        source, pos = self.text_in, self.pos
        while pos < len(source) and source[pos] in _WHITESPACE:
            pos += 1
        self.pos = pos
        return source[pos] if pos < len(source) else ""

    def _unexpected(self, char: str, what: str) -> None:
        _fail(f"Unexpected character ({_describe(char)}): {what}")

    def _eof(self) -> None:
        if self.stack:
            kind = "Object" if self.stack[-1] == "{" else "Array"
            _fail(f"Unexpected end-of-input: expected close marker for {kind}")
        _fail("Unexpected end-of-input")

    def next(self) -> str:
        char = self._skip_ws()
        if self.done:
            return EOF
        if not char:
            if not self.stack and not self.after_field:
                return EOF
            self._eof()
        container = self.stack[-1] if self.stack else ""
        if (char == "}" and container == "[") or (char == "]" and container == "{"):
            if not self.after_field:
                expected = "]" if container == "[" else "}"
                _fail(f"Unexpected close marker '{char}': expected '{expected}'")
        if self.after_field:
            self.after_field = False
            return self._value(char)
        if container == "{":
            if self.need_separator:
                if char == "}":
                    return self._close()
                if char != ",":
                    self._unexpected(char, "was expecting comma to separate Object entries")
                self.pos += 1
                char = self._skip_ws()
                if not char:
                    self._eof()
                if char != '"':
                    self._unexpected(char, "was expecting double-quote to start field name")
                return self._field()
            if char == "}":
                return self._close()
            if char != '"':
                self._unexpected(char, "was expecting double-quote to start field name")
            return self._field()
        if container == "[":
            if self.need_separator:
                if char == "]":
                    return self._close()
                if char != ",":
                    self._unexpected(char, "was expecting comma to separate Array entries")
                self.pos += 1
                char = self._skip_ws()
                if not char:
                    self._eof()
                return self._value(char)
            if char == "]":
                return self._close()
            return self._value(char)
        return self._value(char)

    def _close(self) -> str:
        marker = self.stack.pop()
        self.pos += 1
        self._completed()
        self.text = "}" if marker == "{" else "]"
        return END_OBJECT if marker == "{" else END_ARRAY

    def _completed(self) -> None:
        if self.stack:
            self.need_separator = True
        else:
            self.done = True

    def _field(self) -> str:
        self.pos += 1
        name = self._string_body()
        char = self._skip_ws()
        if not char:
            self._eof()
        if char != ":":
            self._unexpected(char, "was expecting a colon to separate field name and value")
        self.pos += 1
        self.after_field = True
        self.need_separator = False
        self.text = name
        return FIELD

    def _value(self, char: str) -> str:
        self.need_separator = False
        if char == "{" or char == "[":
            self.stack.append(char)
            self.pos += 1
            self.text = char
            return START_OBJECT if char == "{" else START_ARRAY
        if char == '"':
            self.pos += 1
            self.text = self._string_body()
            self._completed()
            return STRING
        if char == "-" or "0" <= char <= "9":
            self.text = self._number()
            self._completed()
            return NUMBER
        if char == "+":
            _fail(
                "Unexpected character ('+' (code 43)) in numeric value: JSON spec does not allow "
                "numbers to have plus signs: enable "
                "`JsonReadFeature.ALLOW_LEADING_PLUS_SIGN_FOR_NUMBERS` to allow"
            )
        word = self._word()
        if word in ("NaN", "Infinity"):
            _fail(
                f"Non-standard token '{word}': enable "
                "`JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS` to allow"
            )
        if word in ("true", "false", "null"):
            self.text = word
            self._completed()
            return LITERAL
        if word:
            _fail(f"Unrecognized token '{word}': was expecting {_EXPECTED_VALUE}")
        self._unexpected(char, f"expected a valid value {_EXPECTED_VALUE}")
        raise AssertionError("unreachable")

    def _word(self) -> str:
        source, start = self.text_in, self.pos
        end = start
        while end < len(source) and (source[end].isalnum() or source[end] in "_$"):
            end += 1
        word = source[start:end]
        if word in ("true", "false", "null"):
            self.pos = end
        return word

    def _number(self) -> str:
        source, start = self.text_in, self.pos
        pos = start
        if source[pos] == "-":
            pos += 1
            self._expect_digit(pos, "expected digit (0-9) to follow minus sign, for valid numeric value")
        if source[pos] == "0" and pos + 1 < len(source) and source[pos + 1].isdigit():
            _fail("Invalid numeric value: Leading zeroes not allowed")
        pos = self._skip_digits(pos)
        if pos < len(source) and source[pos] == ".":
            pos += 1
            self._expect_digit(pos, "Decimal point not followed by a digit")
            pos = self._skip_digits(pos)
        if pos < len(source) and source[pos] in "eE":
            pos += 1
            if pos < len(source) and source[pos] in "+-":
                pos += 1
            self._expect_digit(pos, "Exponent indicator not followed by a digit")
            pos = self._skip_digits(pos)
        self.pos = pos
        return source[start:pos]

    def _expect_digit(self, pos: int, missing: str) -> None:
        """Fail with `missing` unless a digit is at `pos` (at the end of the text: an EOF error)."""
        source = self.text_in
        if pos < len(source) and source[pos].isdigit():
            return
        found = source[pos] if pos < len(source) else ""
        if not found:
            self._eof()
        _fail(f"Unexpected character ({_describe(found)}) in numeric value: {missing}")

    def _skip_digits(self, pos: int) -> int:
        source = self.text_in
        while pos < len(source) and source[pos].isdigit():
            pos += 1
        return pos

    def _string_body(self) -> str:
        source = self.text_in
        pos = self.pos
        out: list[str] = []
        while True:
            end = pos
            while end < len(source) and source[end] not in '"\\' and source[end] >= " ":
                end += 1
            out.append(source[pos:end])
            if end >= len(source):
                _fail("Unexpected end-of-input: was expecting closing quote for a string value")
            char = source[end]
            if char == '"':
                self.pos = end + 1
                return _join_surrogates("".join(out))
            if char < " ":
                _fail(
                    f"Illegal unquoted character ({_describe(char)}): has to be escaped using "
                    "backslash to be included in string value"
                )
            # A backslash escape.
            if end + 1 >= len(source):
                _fail("Unexpected end-of-input in character escape sequence")
            escape = source[end + 1]
            simple = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
            if escape in simple:
                out.append(simple[escape])
                pos = end + 2
                continue
            if escape != "u":
                _fail(f"Unrecognized character escape {_describe(escape)}")
            digits = source[end + 2 : end + 6]
            for digit in digits:
                if digit not in "0123456789abcdefABCDEF":
                    _fail(
                        f"Unexpected character ({_describe(digit)}): expected a hex-digit for "
                        "character escape sequence"
                    )
            if len(digits) < 4:
                _fail("Unexpected end-of-input in character escape sequence")
            out.append(chr(int(digits, 16)))
            pos = end + 6

    def rest_is_blank(self) -> bool:
        return self.text_in[self.pos :].strip(_WHITESPACE) == ""


# --------------------------------------------------------------------------------------------
# Sub-rule sets ($or expansion)
# --------------------------------------------------------------------------------------------


class _Rules:
    """The sub-rules built so far. Past MAX_COMBINATIONS only their number is kept, so a pattern
    with a huge $or product is still checked to the end, then rejected, without using memory."""

    def __init__(self, rules: list[dict[str, tuple[Operand, ...]]] | None, count: int) -> None:
        self.rules = rules
        self.count = count

    @classmethod
    def single(cls) -> "_Rules":
        return cls([{}], 1)

    def put(self, path: str, operands: tuple[Operand, ...]) -> None:
        if self.rules is not None:
            for rule in self.rules:
                rule[path] = operands  # the last occurrence of a path wins

    def copy(self) -> "_Rules":
        if self.rules is None:
            return _Rules(None, self.count)
        return _Rules([dict(rule) for rule in self.rules], self.count)

    def replace_with(self, branches: list["_Rules"]) -> None:
        self.count = sum(branch.count for branch in branches)
        if self.count > MAX_COMBINATIONS or any(branch.rules is None for branch in branches):
            self.rules = None
        else:
            self.rules = [rule for branch in branches for rule in branch.rules or ()]


# --------------------------------------------------------------------------------------------
# The pattern reader
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParsedPattern:
    """One valid pattern: its text and its sub-rules (at least one; an empty one matches all)."""

    text: str
    subrules: tuple[SubRule, ...]


class _Reader:
    def __init__(self, text: str) -> None:
        self.lexer = _Lexer(text)

    def read(self) -> _Rules:
        lexer = self.lexer
        if lexer.next() != START_OBJECT:
            _fail("Filter is not an object")
        rules = _Rules.single()
        self._object(rules, "", inside_or=False)
        if not lexer.rest_is_blank():
            _fail("Unexpected content after the pattern's closing '}'")
        return rules

    def _object(self, rules: _Rules, prefix: str, inside_or: bool) -> None:
        lexer = self.lexer
        while True:
            token = lexer.next()
            if token == END_OBJECT:
                return
            name = lexer.text
            if name == "$or":
                self._or(rules, prefix)
                continue
            if inside_or and name in _RESERVED_IN_OR:
                _fail(f"{name} is Ruler reserved fieldName which cannot be used inside $or.")
            path = prefix + "." + name if prefix else name
            token = lexer.next()
            if token == START_OBJECT:
                self._object(rules, path, inside_or)
            elif token == START_ARRAY:
                rules.put(path, self._value_list())
            else:
                _fail(f'"{name}" must be an object or an array')

    def _or(self, rules: _Rules, prefix: str) -> None:
        lexer = self.lexer
        if lexer.next() != START_ARRAY:
            _fail("It must be an Array followed with $or.")
        branches: list[_Rules] = []
        while True:
            token = lexer.next()
            if token == END_ARRAY:
                break
            if token != START_OBJECT:
                _fail("Only JSON object is allowed in array of $or relationship.")
            branch = rules.copy()
            self._object(branch, prefix, inside_or=True)
            branches.append(branch)
        if len(branches) < 2:
            _fail("There must have at least 2 Objects in $or relationship.")
        rules.replace_with(branches)

    def _value_list(self) -> tuple[Operand, ...]:
        lexer = self.lexer
        operands: list[Operand] = []
        while True:
            token = lexer.next()
            if token == END_ARRAY:
                break
            if token == START_OBJECT:
                operands.append(self._match_expression())
            elif token == STRING:
                address = parse_ip(lexer.text)
                if address is not None:
                    operands.append((CIDR, address[0], address[1], address[1]))
                else:
                    operands.append((STR, lexer.text))
            elif token == NUMBER:
                value = comparable_from_text(lexer.text)
                operands.append((NUM, value) if value is not None else (LIT, lexer.text))
            elif token == LITERAL:
                operands.append((lexer.text,))
            else:
                _fail("Match value must be String, number, true, false, or null")
        if not operands:
            _fail("Empty arrays are not allowed")
        return tuple(dict.fromkeys(operands))

    # -- match expressions ---------------------------------------------------------------

    def _expect_end(self, reason: str = _ONE_KEY) -> None:
        if self.lexer.next() != END_OBJECT:
            _fail(reason)

    def _string_operand(self, reason: str) -> str:
        if self.lexer.next() != STRING:
            _fail(reason)
        return self.lexer.text

    def _match_expression(self) -> Operand:
        lexer = self.lexer
        if lexer.next() != FIELD:
            _fail("Match expression name not found")
        name = lexer.text
        if name == "exactly":
            text = self._string_operand("exact match pattern must be a string")
            self._expect_end()
            return (STR, text)
        if name in ("prefix", "suffix"):
            token = lexer.next()
            if token == START_OBJECT:
                return self._ignore_case_affix(name)
            if token != STRING:
                _fail(f"{name} match pattern must be a string")
            text = lexer.text
            self._expect_end()
            return (PREFIX if name == "prefix" else SUFFIX, text)
        if name == "numeric":
            if lexer.next() != START_ARRAY:
                _fail("Value of numeric must be an array.")
            operand = self._numeric()
            self._expect_end(_TOO_MANY_NUMERIC)
            return operand
        if name == "anything-but":
            return self._anything_but()
        if name == "exists":
            token = lexer.next()
            if token != LITERAL or lexer.text == "null":
                _fail("exists match pattern must be either true or false.")
            operand: Operand = (EXISTS,) if lexer.text == "true" else (ABSENT,)
            self._expect_end()
            return operand
        if name == "cidr":
            text = self._string_operand("prefix match pattern must be a string")
            version, low, high = parse_cidr(text)
            self._expect_end()
            return (CIDR, version, low, high)
        if name == "equals-ignore-case":
            text = self._string_operand("equals-ignore-case match pattern must be a string")
            self._expect_end()
            return (EIC, text)
        if name == "wildcard":
            text = self._string_operand("wildcard match pattern must be a string")
            segments = wildcard_segments(text)
            self._expect_end()
            return (WILDCARD, segments)
        _fail(f"Unrecognized match type {name}")
        raise AssertionError("unreachable")

    def _ignore_case_affix(self, name: str) -> Operand:
        lexer = self.lexer
        title = name.capitalize()
        if lexer.next() != FIELD:
            _fail(f"{title} expression name not found")
        if lexer.text != "equals-ignore-case":
            _fail(f"Unsupported {name} pattern: {lexer.text}")
        text = self._string_operand("equals-ignore-case match pattern must be a string")
        self._expect_end()
        self._expect_end()
        return (PREFIX_EIC if name == "prefix" else SUFFIX_EIC, text)

    def _comparable(self, text: str) -> float:
        value = comparable_from_text(text)
        if value is None:
            _fail(f"Cannot compare number : {text}")
        return value  # type: ignore[return-value]

    def _numeric(self) -> Operand:
        lexer = self.lexer
        if lexer.next() != STRING:
            _fail(f"Invalid member in numeric match: {lexer.text}")
        operator = lexer.text
        token = lexer.next()
        if operator == "=":
            if token != NUMBER:
                _fail("Value of equals must be numeric")
            text = lexer.text
            if lexer.next() != END_ARRAY:
                _fail(_TOO_MANY_NUMERIC)
            return (NUM, self._comparable(text))
        if operator in (">", ">="):
            if token != NUMBER:
                _fail(f"Value of {operator} must be numeric")
            bottom_text = lexer.text
            token = lexer.next()
            if token == END_ARRAY:
                return (RANGE, self._comparable(bottom_text), operator == ">", float("inf"), False)
            if token != STRING:
                _fail(f"Bad value in numeric range: {lexer.text}")
            upper = lexer.text
            if upper not in ("<", "<="):
                _fail(f"Bad numeric range operator: {upper}")
            if lexer.next() != NUMBER:
                _fail(f"Value of {upper} must be numeric")
            top_text = lexer.text
            if lexer.next() != END_ARRAY:
                _fail("Too many terms in numeric range expression")
            bottom, top = self._comparable(bottom_text), self._comparable(top_text)
            if bottom >= top:
                _fail("Bottom must be less than top")
            return (RANGE, bottom, operator == ">", top, upper == "<")
        if operator in ("<", "<="):
            if token != NUMBER:
                _fail(f"Value of {operator} must be numeric")
            top_text = lexer.text
            if lexer.next() != END_ARRAY:
                _fail(_TOO_MANY_NUMERIC)
            return (RANGE, float("-inf"), False, self._comparable(top_text), operator == "<")
        _fail(f"Unrecognized numeric range operator: {operator}")
        raise AssertionError("unreachable")

    def _anything_but(self) -> Operand:
        lexer = self.lexer
        token = lexer.next()
        inner = ""
        if token == START_OBJECT:
            if lexer.next() != FIELD:
                _fail("Anything-But expression name not found")
            inner = lexer.text
            if inner not in ("equals-ignore-case", "prefix", "suffix", "wildcard"):
                _fail(f"Unsupported anything-but pattern: {inner}")
            token = lexer.next()
        if token not in (START_ARRAY, STRING, NUMBER):
            _fail("Value of anything-but must be an array or single string/number value.")
        if not inner:
            operand = self._anything_but_values(token)
        else:
            operand = self._anything_but_affixes(token, inner)
        self._expect_end(_TOO_MANY_NUMERIC)
        if inner:
            self._expect_end(_TOO_MANY_NUMERIC)
        return operand

    def _anything_but_values(self, token: str) -> Operand:
        lexer = self.lexer
        strings: set[str] = set()
        numbers: set[float] = set()
        if token == STRING:
            return (AB, frozenset({lexer.text}), frozenset())
        if token == NUMBER:
            return (AB, frozenset(), frozenset({self._comparable(lexer.text)}))
        while True:
            token = lexer.next()
            if token == END_ARRAY:
                break
            if token == STRING:
                strings.add(lexer.text)
            elif token == NUMBER:
                numbers.add(self._comparable(lexer.text))
            else:
                _fail("Inside anything but list, start|null|boolean is not supported.")
        if bool(strings) == bool(numbers):
            _fail(
                "Inside anything but list, either all values are number or string, mixed type "
                "is not supported"
            )
        return (AB, frozenset(strings), frozenset(numbers))

    def _anything_but_affixes(self, token: str, inner: str) -> Operand:
        lexer = self.lexer
        if inner == "equals-ignore-case":
            wrong_type = (
                "Inside anything-but/equals-ignore-case list, number|start|null|boolean is not "
                "supported."
            )
        elif inner == "wildcard":
            wrong_type = "wildcard match pattern must be a string"
        else:
            wrong_type = "prefix/suffix match pattern must be a string"
        texts: list[str] = []

        def take(text: str) -> None:
            if inner in ("prefix", "suffix") and text == "":
                _fail("Null prefix/suffix not allowed")
            texts.append(text)

        if token == STRING:
            take(lexer.text)
        elif token == NUMBER:
            _fail(wrong_type)
        else:
            while True:
                token = lexer.next()
                if token == END_ARRAY:
                    break
                if token != STRING:
                    _fail(wrong_type)
                take(lexer.text)
        unique = tuple(dict.fromkeys(texts))
        if inner == "wildcard":
            return (AB_WILDCARD, tuple(wildcard_segments(text) for text in unique))
        kind = {"prefix": AB_PREFIX, "suffix": AB_SUFFIX, "equals-ignore-case": AB_EIC}[inner]
        return (kind, unique)


def parse_pattern(text: str) -> ParsedPattern:
    """Check one pattern and expand it into sub-rules; raises InvalidPatternError."""
    if not isinstance(text, str):
        raise InvalidPatternError("Filter is not an object")
    if len(text) > MAX_PATTERN_LENGTH:
        _fail(f"Pattern is longer than {MAX_PATTERN_LENGTH} characters")
    rules = _Reader(text).read()
    if rules.rules is None or rules.count > MAX_COMBINATIONS:
        _fail(
            f"The pattern's $or relationships make {rules.count} combinations; at most "
            f"{MAX_COMBINATIONS} are allowed"
        )
    wildcards: dict[str, set[tuple[str, ...]]] = {}
    subrules: list[SubRule] = []
    for rule in rules.rules:
        if len(rule) > MAX_FIELDS_PER_RULE:
            _fail(f"Size of rule exceeds max value of {MAX_FIELDS_PER_RULE}")
        for path, operands in rule.items():
            for operand in operands:
                if operand[0] == WILDCARD:
                    wildcards.setdefault(path, set()).add(operand[1])
                elif operand[0] == AB_WILDCARD:
                    wildcards.setdefault(path, set()).update(operand[1])
        subrules.append(tuple(sorted(rule.items())))
    for found in wildcards.values():
        if wildcard_complexity(sorted(found)) > WILDCARD_COMPLEXITY_LIMIT:
            _fail(TOO_COMPLEX)
    return ParsedPattern(text=text, subrules=tuple(dict.fromkeys(subrules)))
