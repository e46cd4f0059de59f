"""Parse packetdrill-dialect scripts into events.

Grammar (packetdrill's, plus tcplab's ``state`` and ``link`` lines)::

    script   := option* (command | event)*          (an untimed command runs where it stands)
    option   := --name[=value]                    (at the start of a line)
    event    := time [endpoint] (packet | syscall | code | command | state | link)
    endpoint := 'client' | 'server'                (observe mode: who sends, calls or is asked)
    time     := '*' | ['+'] num ['~' ['+'] num] ['...' num]
    packet   := ('<' | '>') [ipinfo] flags seq ['ack' num] ['win' num] ['urg' num] [options]
              | '<' [ipinfo] 'icmp' TYPE [CODE] ['mtu' num] ['[' seq ']']
    ipinfo   := ('[' | '(') (ecn | 'tos' hex | 'flowlabel' hex | 'ttl' num) [',' ...] (']' | ')')
    ecn      := 'noecn' | 'ect0' | 'ect1' | 'ce' | 'ect01'
    flags    := letters of 'SFRPEWUA.' | '-'                 ('-': no flags at all)
    seq      := num ':' num '(' num ')'
    options  := '<' '...' '>' | '<' option (',' option)* '>'
    syscall  := name '(' [expr (',' expr)*] ')' '=' result [ERRNO] ['(' note ')']
    expr     := term ('|' term)*
    term     := '...' | num | string+ ['...'] | '[' [expr, ...] ']' | '{' [[name ['(' ... ')'] '='] expr, ...] '}'
              | name ['(' [expr, ...] ')']
    state    := 'state' STATE ['timer' NAME [num ['~' num]]] ['port' num]
    link     := 'link' 'rate' num 'burst' num       (bits per second, bytes)
              | 'link' 'lose' endpoint '>' flags ['nth' num | 'every' num]
              | 'link' 'delay' endpoint '>' flags seconds ['nth' num | 'every' num]
"""

from __future__ import annotations

import dataclasses
import re
import shlex

from lab.script.events import (
    ECN_CODEPOINTS,
    ELLIPSIS,
    ENDPOINTS,
    BitOr,
    Bytes,
    IcmpEvent,
    IpInfo,
    Call,
    CodeEvent,
    CommandEvent,
    Event,
    LinkEvent,
    ListValue,
    LossEvent,
    Name,
    Option,
    PacketEvent,
    Script,
    StateEvent,
    StructValue,
    SyscallEvent,
    Timing,
)
from lab.errors import BadInput
from lab.tcp.icmp import known
from lab.tcp.states import SCRIPT_STATES, SCRIPT_TIMERS

from lab.script.lexer import Position, ScriptSyntaxError, Token, tokenize

FLAG_CHARS = set("SFRPEWUA.")
ACE_DIGITS = set("01234567")  # AccECN's ACE field as one digit among the flags
ACCECN_ORDERS = {"e0b": ("e0b", "ceb", "e1b"), "e1b": ("e1b", "ceb", "e0b")}  # AccECN option kinds 172, 174
SIMPLE_OPTIONS = {"nop", "eol", "sackOK"}
VALUE_OPTIONS = {"mss", "wscale"}
OPTION_LIMITS = {"mss": 65535, "wscale": 255}  # the option fields: 16 and 8 bits
MAX_DELAY = 60.0  # seconds a link delay line may hold a segment back


def parse_sysctl_command(command: str) -> tuple[tuple[str, str], ...] | None:
    """The settings of a line holding only ``sysctl -q k=v ...`` commands, else None."""
    settings: list[tuple[str, str]] = []
    for part in re.split(r";|&&|\n", command):
        try:
            words = shlex.split(part)
        except ValueError:
            return None
        if not words:
            continue
        if words[0] != "sysctl":
            return None
        for word in words[1:]:
            if word in ("-q", "-w"):
                continue
            key, sep, value = word.partition("=")
            if not sep or not re.fullmatch(r"[\w.]+", key):
                return None
            settings.append((key, value))
    return tuple(settings) if settings else None


_ESCAPES = {"n": b"\n", "t": b"\t", "r": b"\r", "0": b"\0", "\\": b"\\", '"': b'"', "'": b"'", "a": b"\a",
            "b": b"\b", "f": b"\f", "v": b"\v"}


def decode_string(token: Token) -> bytes:
    """A string token's bytes: C escapes (``\\xa1``, ``\\n``, ``\\0``, octal ``\\101``), other text as UTF-8."""
    out = bytearray()
    text = token.text
    index = 0
    while index < len(text):
        char = text[index]
        if char != "\\":
            out += char.encode("utf-8")
            index += 1
            continue
        escape = text[index + 1 : index + 2]
        if escape == "x" and re.match(r"[0-9a-fA-F]{1,2}", text[index + 2 :]):
            digits = re.match(r"[0-9a-fA-F]{1,2}", text[index + 2 :]).group()
            out.append(int(digits, 16))
            index += 2 + len(digits)
        elif re.match(r"[0-7]{1,3}", text[index + 1 :]) and escape != "0" or re.match(r"0[0-7]", text[index + 1 :]):
            digits = re.match(r"[0-7]{1,3}", text[index + 1 :]).group()
            out.append(int(digits, 8) & 0xFF)
            index += 1 + len(digits)
        elif escape in _ESCAPES:
            out += _ESCAPES[escape]
            index += 2
        else:
            raise ScriptSyntaxError(token.position, f"unknown escape \\{escape} in a string")
    return bytes(out)


def _to_int(token: Token) -> int:
    """A decimal or 0x-hex integer token."""
    text = token.text
    try:
        return int(text[2:], 16) if text.lower().startswith("0x") else int(text, 10)
    except ValueError:
        raise ScriptSyntaxError(token.position, f"malformed number {text!r}") from None


class Parser:
    def __init__(self, text: str, path: str, defines: dict[str, str] | None = None):
        self.path = path
        self.lines = text.splitlines()
        self.tokens = tokenize(text, path, defines)
        self.index = 0

    # -- token helpers -------------------------------------------------
    @property
    def token(self) -> Token:
        return self.tokens[self.index]

    def peek(self, offset: int = 1) -> Token:
        return self.tokens[min(self.index + offset, len(self.tokens) - 1)]

    def take(self) -> Token:
        token = self.token
        self.index += 1
        return token

    def error(self, expected: str, token: Token | None = None) -> ScriptSyntaxError:
        token = token or self.token
        return ScriptSyntaxError(token.position, f"expected {expected}, found {token}")

    def is_punct(self, text: str, token: Token | None = None) -> bool:
        token = token or self.token
        return token.kind == "punct" and token.text == text

    def expect_punct(self, text: str, what: str | None = None) -> Token:
        if not self.is_punct(text):
            raise self.error(what or repr(text))
        return self.take()

    def is_word(self, text: str) -> bool:
        return self.token.kind == "word" and self.token.text == text

    def expect_word(self, text: str | None = None, what: str | None = None) -> Token:
        if self.token.kind != "word" or (text is not None and self.token.text != text):
            raise self.error(what or (repr(text) if text else "a name"))
        return self.take()

    def bounded(self, what: str, low: int, high: int) -> int:
        """An integer that fits its header field."""
        token = self.token
        value = self.integer(what)
        if not low <= value <= high:
            raise ScriptSyntaxError(token.position, f"{what} must be between {low} and {high}, found {value}")
        return value

    def integer(self, what: str = "a number") -> int:
        negative = False
        if self.is_punct("-"):
            self.take()
            negative = True
        token = self.token
        if token.kind != "number" or "." in token.text:
            raise self.error(what)
        self.take()
        value = _to_int(token)
        return -value if negative else value

    def number(self, what: str = "a number") -> float:
        token = self.token
        if token.kind != "number":
            raise self.error(what)
        self.take()
        return float(_to_int(token)) if token.text.lower().startswith("0x") else float(token.text)

    def line_text(self, line: int) -> str:
        return self.lines[line - 1].strip() if 0 < line <= len(self.lines) else ""

    # -- script ----------------------------------------------------------
    def parse(self) -> Script:
        script = Script(self.path)
        while self.token.kind == "option":
            name, _, value = self.token.text.partition("=")
            if not name:
                raise ScriptSyntaxError(self.token.position, f"expected --name or --name=value, found --{self.token.text}")
            script.options[name.strip()] = value.strip()
            self.take()
        while self.token.kind != "eof":
            if self.token.kind == "command":
                # Untimed: before everything (packetdrill's init command), or, after events, when the
                # script reaches it (its cleanup command, which runs once the events are done).
                init = all(isinstance(event, CommandEvent) and event.init for event in script.events)
                command = self.command(self.token.position.line, Timing(0.0, relative=not init))
                script.events.append(dataclasses.replace(command, init=init))
            else:
                script.events.append(self.event())
        return script

    def event(self) -> Event:
        line = self.token.position.line
        timing = self.timing()
        if (self.token.kind == "word" and self.token.text in ENDPOINTS and not self.is_punct("(", self.peek())
                and not self.is_punct("=", self.peek())):
            endpoint_token = self.take()
            event = self.action(line, timing)
            if isinstance(event, (CommandEvent, LinkEvent, LossEvent)) or (
                    isinstance(event, PacketEvent) and event.inbound):
                raise ScriptSyntaxError(endpoint_token.position, f"after {endpoint_token.text!r} expected "
                                        "'>' and the segment it sends, a syscall, or a state line")
            return dataclasses.replace(event, endpoint=endpoint_token.text)
        return self.action(line, timing)

    def action(self, line: int, timing: Timing) -> Event:
        token = self.token
        if self.is_punct("<") or self.is_punct(">"):
            return self.packet(line, timing)
        if token.kind == "code":
            self.take()
            return CodeEvent(line, timing, self.line_text(line), token.text)
        if token.kind == "command":
            return self.command(line, timing)
        if token.kind == "word" and token.text == "state" and not self.is_punct("(", self.peek()):
            return self.state(line, timing)
        if token.kind == "word" and token.text == "link" and not self.is_punct("(", self.peek()):
            return self.link(line, timing)
        if token.kind == "word" and self.is_punct("(", self.peek()):
            return self.syscall(line, timing)
        raise self.error("a packet ('<' or '>'), a syscall, a %{ }% block, a `command`, a state or a link line")

    def timing(self) -> Timing:
        if self.is_punct("*"):
            self.take()
            return Timing(0.0, relative=True, any_time=True)
        relative = False
        if self.is_punct("+"):
            self.take()
            relative = True
        start = self.number("a time (0.100, +.1 or *)")
        high = None
        end = None
        if self.is_punct("~"):
            self.take()
            if self.is_punct("+"):
                self.take()
            high = self.number("the upper end of a time range")
            if high < start:
                raise ScriptSyntaxError(self.tokens[self.index - 1].position, "time range ends before it starts")
        if self.is_punct("..."):
            self.take()
            end = self.number("the end time of a blocking call")
            if end < start:
                raise ScriptSyntaxError(self.tokens[self.index - 1].position, "blocking call ends before it starts")
        return Timing(start, relative=relative, high=high, end=end)

    def command(self, line: int, timing: Timing) -> CommandEvent:
        token = self.take()
        return CommandEvent(line, timing, self.line_text(line), token.text, parse_sysctl_command(token.text))

    # -- packets ---------------------------------------------------------
    def packet(self, line: int, timing: Timing) -> PacketEvent:
        inbound = self.take().text == "<"
        ip = self.ip_info(inbound) if self.is_punct("[") or (self.is_punct("(") and self.peek().kind == "word") else None
        if self.is_word("icmp"):
            return self.icmp(line, timing, inbound, ip)
        flags = self.flags()
        start = self.integer("the sequence range start:end(length)")
        self.expect_punct(":", "':' in start:end(length)")
        end = self.integer("the sequence range end")
        self.expect_punct("(", "'(' in start:end(length)")
        length = self.integer("the payload length")
        self.expect_punct(")", "')' in start:end(length)")
        if length < 0 or (end - start) % 2**32 != length:
            raise ScriptSyntaxError(self.tokens[self.index - 1].position,
                                    f"sequence range {start}:{end} does not hold {length} bytes")
        ack = window = urgent = None
        options: tuple[Option, ...] | None = ()
        while True:
            if self.is_word("ack"):
                self.take()
                ack = self.bounded("the acknowledgement number", 0, 2**32 - 1)
            elif self.is_word("win"):
                self.take()
                window = self.bounded("the window", 0, 65535)
            elif self.is_word("urg"):
                self.take()
                urgent = self.bounded("the urgent pointer", 0, 65535)
            elif self.is_punct("<"):
                options_token = self.token
                options = self.options()
                if options is None and inbound:
                    raise ScriptSyntaxError(options_token.position, "<...> (options not checked) is for segments "
                                            "the kernel sends ('>'); a '<' segment names its options")
            else:
                break
        return PacketEvent(line, timing, self.line_text(line), inbound, flags, start % 2**32, end % 2**32,
                           length, ack, window, options, ip, urgent)

    def accecn(self, token: Token) -> Option:
        """``ECN e0b N [ceb N [e1b N]]`` or ``ECN e1b N [ceb N [e0b N]]``: AccECN's byte counters, 24 bits each,
        in one of the option's two orders (kind 172 begins with e0b, kind 174 with e1b)."""
        first = self.expect_word(what="e0b or e1b, the AccECN option's first counter")
        if first.text not in ACCECN_ORDERS:
            raise ScriptSyntaxError(first.position, f"the AccECN option begins with e0b or e1b, not {first.text!r}")
        order = ACCECN_ORDERS[first.text]
        fields = [(first.text, self.bounded(f"the {first.text} counter", 0, 2**24 - 1))]
        while len(fields) < len(order) and self.is_word(order[len(fields)]):
            name = self.take().text
            fields.append((name, self.bounded(f"the {name} counter", 0, 2**24 - 1)))
        return Option(token.text, tuple(fields))

    def icmp(self, line: int, timing: Timing, inbound: bool, ip: IpInfo | None) -> IcmpEvent:
        """``< icmp TYPE [CODE] [mtu N] [seq range]``: an ICMP error about the kernel's segment."""
        token = self.take()
        if not inbound:
            raise ScriptSyntaxError(token.position, "tcplab injects ICMP ('<'); it does not check the kernel's")
        name = self.expect_word(what="an ICMP type (unreachable, packet_too_big, time_exceeded, ...)")
        code = None
        if self.token.kind == "word" and self.token.text != "mtu":
            code = self.take()
        if not known(name.text, code.text if code else None):
            where = code or name
            raise ScriptSyntaxError(where.position, f"unknown ICMP type or code: {name.text}"
                                    + (f" {code.text}" if code else ""))
        mtu = None
        if self.is_word("mtu"):
            self.take()
            mtu = self.bounded("the MTU", 0, 2**32 - 1)
        start = end = length = 0
        if self.is_punct("["):
            self.take()
            start = self.integer("the quoted segment's start:end(length)")
            self.expect_punct(":", "':' in start:end(length)")
            end = self.integer("the sequence range end")
            self.expect_punct("(", "'(' in start:end(length)")
            length = self.integer("the payload length")
            self.expect_punct(")", "')' in start:end(length)")
            self.expect_punct("]", "']' after the quoted segment")
        return IcmpEvent(line, timing, self.line_text(line), True, "", start % 2**32, end % 2**32, length, ip=ip,
                         icmp_type=name.text, icmp_code=code.text if code else None, mtu=mtu)

    def ip_info(self, inbound: bool) -> IpInfo:
        """``[ect0]``, ``[tos 0x2]``, ``[ect0,flowlabel 0x1]``, ``(ttl 9)``: the IP header's fields."""
        closing = "]" if self.take().text == "[" else ")"
        fields: dict[str, object] = {}
        while True:
            token = self.expect_word(what="an IP field (noecn, ect0, ect1, ce, ect01, tos, flowlabel, ttl)")
            name = token.text
            if name in ECN_CODEPOINTS or name == "ect01":
                if name == "ect01" and inbound:
                    raise ScriptSyntaxError(token.position, "[ect01] (either ECT codepoint) is for segments the "
                                            "kernel sends ('>'); a '<' segment carries one codepoint")
                fields["ecn"] = name
            elif name in ("tos", "flowlabel", "ttl"):
                fields[name] = self.bounded(f"the {name}", 0, {"tos": 255, "flowlabel": 2**20 - 1, "ttl": 255}[name])
            else:
                raise ScriptSyntaxError(token.position, f"unknown IP field {name!r} (noecn, ect0, ect1, ce, ect01, "
                                        "tos, flowlabel, ttl)")
            if self.is_punct(","):
                self.take()
                continue
            self.expect_punct(closing, f"',' or {closing!r} after the IP fields")
            return IpInfo(**fields)

    def flags(self) -> str:
        """Flag letters written as one word: ``S``, ``S.``, ``F.``, ``.``, ``P.``, ``R.``, ``-`` for none.

        A digit 0-7 is AccECN's ACE field as packetdrill writes it (``.5``, ``P5.``): its bits are ECE (1),
        CWR (2) and AE (4), so it is returned as those letters (E, W, A), never beside them.
        """
        first = self.token
        if self.is_punct("-"):  # no flag at all
            self.take()
            return ""
        text = ""
        previous = None
        while previous is None or self._adjacent(previous, self.token):
            token = self.token
            if token.kind in ("word", "punct") and token.text and set(token.text) <= FLAG_CHARS | ACE_DIGITS:
                text += self.take().text
            elif token.kind == "number" and re.fullmatch(r"\.[0-7]", token.text):
                text += self.take().text
            else:
                break
            previous = token
        if not text:
            raise self.error("TCP flags (S, ., F, R, P, E, W, U, A, an ACE digit 0-7) or '-'", first)
        digits = [char for char in text if char in ACE_DIGITS]
        if len(digits) > 1 or (digits and set(text) & set("EWA")):
            raise ScriptSyntaxError(first.position, f"conflicting TCP flags {text!r}: an ACE digit stands for "
                                    "E, W and A and goes with none of them")
        if digits:
            ace = int(digits[0])
            text = text.replace(digits[0], "") + "E" * (ace & 1) + "W" * (ace >> 1 & 1) + "A" * (ace >> 2 & 1)
        return text

    @staticmethod
    def _adjacent(left: Token, right: Token) -> bool:
        return (left.position.line == right.position.line
                and left.position.column + len(left.text) == right.position.column)

    def options(self) -> tuple[Option, ...] | None:
        self.expect_punct("<")
        if self.is_punct("..."):
            self.take()
            self.expect_punct(">", "'>' after '<...'")
            return None
        options = []
        while True:
            options.append(self.option())
            if self.is_punct(","):
                self.take()
                continue
            self.expect_punct(">", "',' or '>' in the TCP options")
            return tuple(options)

    def option(self) -> Option:
        token = self.expect_word(what="a TCP option (mss, sackOK, sack, TS, nop, wscale, eol, FO, FOEXP, md5, ECN)")
        kind = token.text
        if kind in SIMPLE_OPTIONS:
            return Option(kind)
        if kind in VALUE_OPTIONS:
            return Option(kind, (self.bounded(f"the {kind} value", 0, OPTION_LIMITS[kind]),))
        if kind == "TS":
            self.expect_word("val")
            val = self.bounded("the TS val", 0, 2**32 - 1)
            self.expect_word("ecr")
            return Option(kind, (val, self.bounded("the TS ecr", 0, 2**32 - 1)))
        if kind == "ECN":
            return self.accecn(token)
        if kind == "md5":  # the option's 16 bytes as written; packetdrill signs nothing either
            digest = self.expect_word(what="the md5 option's 16 bytes in hex")
            if not re.fullmatch(r"[0-9a-fA-F]{32}", digest.text):
                raise ScriptSyntaxError(digest.position, f"the md5 option holds 16 bytes (32 hex digits), not "
                                        f"{digest.text!r}")
            return Option(kind, (digest.text.lower(),))
        if kind in ("FO", "FOEXP"):
            cookie = ""
            if self.token.kind in ("word", "number") and not self.is_punct(",", self.token):
                cookie_token = self.take()
                cookie = cookie_token.text
                if len(cookie) % 2 or not re.fullmatch(r"[0-9a-fA-F]*", cookie) or len(cookie) > 32:
                    raise ScriptSyntaxError(cookie_token.position, f"a Fast Open cookie is up to 16 bytes of hex "
                                            f"digits, not {cookie!r} (a name needs -D {cookie}=HEX; tcplab "
                                            "selftests defines TFO_COOKIE and TFO_COOKIE_ZERO)")
            return Option(kind, (cookie.lower(),))
        if kind == "sack":
            blocks = []
            while self.token.kind == "number":
                left = self.bounded("the start of a sack block", 0, 2**32 - 1)
                self.expect_punct(":", "':' in a sack block")
                blocks.append((left, self.bounded("the end of a sack block", 0, 2**32 - 1)))
            return Option(kind, tuple(blocks))
        raise ScriptSyntaxError(token.position, f"unsupported TCP option {kind!r} "
                                "(supported: mss, sackOK, sack, TS, nop, wscale, eol, FO, FOEXP, md5, ECN)")

    # -- syscalls --------------------------------------------------------
    def syscall(self, line: int, timing: Timing) -> SyscallEvent:
        name = self.take().text
        self.expect_punct("(")
        args = self.arguments(")")
        self.expect_punct("=", "'=' and the expected return value")
        if self.is_punct("..."):
            self.take()
            result: object = ELLIPSIS
        else:
            result = self.integer("the expected return value")
        errno = None
        if self.token.kind == "word" and self.token.text.startswith("E") and self.token.text.isupper():
            errno = self.take().text
        if self.is_punct("(") and self.token.position.line == self.tokens[self.index - 1].position.line:
            self.skip_note()
        return SyscallEvent(line, timing, self.line_text(line), name, args, result, errno)

    def skip_note(self) -> None:
        """Skip a return value's note: ``(Connection reset by peer)``, ``(flags O_RDWR)``."""
        start = self.expect_punct("(")
        depth = 1
        while depth:
            if self.token.kind == "eof":
                raise ScriptSyntaxError(start.position, "unclosed '(' after the errno")
            if self.is_punct("("):
                depth += 1
            elif self.is_punct(")"):
                depth -= 1
            self.take()

    def arguments(self, closing: str) -> tuple:
        args = []
        if self.is_punct(closing):
            self.take()
            return ()
        while True:
            args.append(self.expression())
            if self.is_punct(","):
                self.take()
                continue
            self.expect_punct(closing, f"',' or {closing!r} in the argument list")
            return tuple(args)

    def expression(self):
        value = self.term()
        if self.is_punct("|"):
            parts = [value]
            while self.is_punct("|"):
                self.take()
                parts.append(self.term())
            return BitOr(tuple(parts))
        return value

    def term(self):
        token = self.token
        if self.is_punct("..."):
            self.take()
            return ELLIPSIS
        if token.kind == "number" or self.is_punct("-"):
            return self.integer()
        if token.kind == "string":
            data = b""
            while self.token.kind == "string":  # "ab" "cd" is "abcd", as in C
                data += decode_string(self.take())
            if self.is_punct("..."):
                raise self.error("an argument ('\"...\"...', a string that only begins so, is not supported)")
            return Bytes(data)
        if self.is_punct("["):
            self.take()
            return ListValue(self.arguments("]"))
        if self.is_punct("{"):
            self.take()
            return self.struct()
        if token.kind == "word":
            self.take()
            if self.is_punct("("):
                self.take()
                return Call(token.text, self.arguments(")"))
            return Name(token.text)
        raise self.error("an argument (a number, a NAME, a \"string\", '...', [value] or {field=value})")

    def struct(self) -> StructValue:
        """``{name=value, ...}``, ``{value, ...}`` or a mix; ``msg_iov(1)=[...]`` names the field msg_iov."""
        fields: list[tuple[str | None, object]] = []
        while not self.is_punct("}"):
            if self.token.kind == "word" and self.is_punct("=", self.peek()):
                name = self.take().text
                self.take()
                fields.append((name, self.expression()))
            else:
                value = self.expression()
                if isinstance(value, Call) and self.is_punct("="):
                    self.take()
                    fields.append((value.name, self.expression()))
                else:
                    fields.append((None, value))
            if self.is_punct(","):
                self.take()
            elif not self.is_punct("}"):
                raise self.error("',' or '}' in the struct")
        self.take()
        return StructValue(tuple(fields))

    # -- tcplab's link lines ------------------------------------------------
    def link(self, line: int, timing: Timing) -> LinkEvent | LossEvent:
        self.take()
        if self.is_word("lose") or self.is_word("delay"):
            return self.loss(line, timing)
        values = {}
        for name, what in (("rate", "the rate in bits per second"), ("burst", "the bucket size in bytes")):
            if not self.is_word(name):
                raise self.error(f"'{name}' and {what}" if name == "burst" else
                                 "'rate N burst B' (a slow link), 'lose client|server > FLAGS' (a lost segment) "
                                 "or 'delay client|server > FLAGS SECONDS' (a late one)")
            self.take()
            token = self.token
            values[name] = self.integer(what)
            if values[name] <= 0:
                raise ScriptSyntaxError(token.position, f"{what} must be more than 0")
        return LinkEvent(line, timing, self.line_text(line), values["rate"], values["burst"])

    def loss(self, line: int, timing: Timing) -> LossEvent:
        """``lose client > F.`` or ``delay client > F. 0.2``, then [``nth N`` | ``every N``]:
        which segment the link loses or holds back, and for how long."""
        verb = self.take().text
        if self.token.kind != "word" or self.token.text not in ENDPOINTS:
            raise self.error(f"'client' or 'server' (the endpoint whose segment the link {verb}s)")
        sender = self.take().text
        self.expect_punct(">", f"'>' after {sender!r} (the segment it sends: {sender} > F.)")
        flags = self.flags()
        delay = None
        if verb == "delay":
            token = self.token
            delay = self.number("the delay in seconds (link delay client > F. 0.2)")
            if not 0 < delay <= MAX_DELAY:
                raise ScriptSyntaxError(token.position, f"the delay must be more than 0 and at most {MAX_DELAY:g} s")
        nth, every = 1, None
        if self.is_word("nth") or self.is_word("every"):
            word = self.take().text
            token = self.token
            count = self.integer(f"how many matching segments ({word} N)")
            if count < 1:
                raise ScriptSyntaxError(token.position, f"{word} counts matching segments from 1, found {count}")
            nth, every = (count, None) if word == "nth" else (1, count)
        return LossEvent(line, timing, self.line_text(line), sender, flags, nth, every, delay)

    # -- tcplab's state lines -----------------------------------------------
    def state(self, line: int, timing: Timing) -> StateEvent:
        self.take()
        token = self.expect_word(what="a TCP state (ESTABLISHED, TIME_WAIT, ...)")
        if token.text not in SCRIPT_STATES:
            raise ScriptSyntaxError(token.position, f"unknown TCP state {token.text!r}; one of: "
                                    + ", ".join(sorted(SCRIPT_STATES)))
        timer = low = high = port = None
        while True:
            if self.is_word("timer"):
                self.take()
                timer_token = self.expect_word(what="a timer name")
                if timer_token.text not in SCRIPT_TIMERS:
                    raise ScriptSyntaxError(timer_token.position, f"unknown timer {timer_token.text!r}; one of: "
                                            + ", ".join(sorted(SCRIPT_TIMERS)))
                timer = timer_token.text
                if self.token.kind == "number":
                    low = high = self.number()
                    if self.is_punct("~"):
                        self.take()
                        upper = self.token
                        high = self.number("the upper end of the time left")
                        if high < low:
                            raise ScriptSyntaxError(upper.position, f"the time left {low}~{high} runs backwards")
            elif self.is_word("port"):
                self.take()
                port = self.integer("a port number")
            else:
                break
        state = "CLOSED" if token.text == "CLOSE" else token.text
        return StateEvent(line, timing, self.line_text(line), state, timer, low, high, port)


def parse(text: str, path: str = "<script>", defines: dict[str, str] | None = None) -> Script:
    """Parse a script; raise ScriptSyntaxError (file:line:column, what was expected).

    ``defines`` are packetdrill's ``-D NAME=VALUE``: each NAME in the script reads as VALUE.
    """
    # packetdrill's --define=NAME=VALUE option lines work as -D NAME=VALUE (a -D given by the caller wins).
    script_defines = dict(re.findall(r"^--define=(\w+)=(\S+)", text, flags=re.MULTILINE))
    parser = Parser(text, path, {**script_defines, **(defines or {})})
    try:
        script = parser.parse()
    except RecursionError:
        raise ScriptSyntaxError(parser.token.position, "expressions nested too deeply") from None
    if script.observe:
        for event in script.events:
            if event.endpoint is None and not isinstance(event, (CommandEvent, LinkEvent, LossEvent)):
                raise ScriptSyntaxError(Position(path, event.line, 1), "an observe-mode script names the endpoint "
                                        "on every line but backtick commands and link lines: client ... or "
                                        "server ...")
    return script


def parse_file(path: str, defines: dict[str, str] | None = None) -> Script:
    """Read and parse a script file; every problem is a one-line BadInput."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as error:
        raise BadInput(f"{path}: cannot read the script ({error.strerror}); give a .pkt file") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
        raise ScriptSyntaxError(Position(path, line, column), "not a text script (invalid UTF-8)") from None
    return parse(text, path, defines)
