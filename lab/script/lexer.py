"""Tokens of the packetdrill script language, each with its file, line and column.

The lexer knows nothing of events: it turns text into numbers, words,
punctuation, backtick commands and ``%{ }%`` code blocks, and drops comments
(``//`` to the end of the line, ``/* */``). As packetdrill's lexer does, it
reads a word that ``-D NAME=VALUE`` defines as VALUE (a number, a "string" or
a word), and letters right after digits make one word (a Fast Open cookie).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lab.errors import BadInput

PUNCTUATION = ("...", "<", ">", "(", ")", "[", "]", "{", "}", ",", ":", "=", "~", "+", "-", "*", ".", "|", "!", "/", "&")


@dataclass(frozen=True)
class Position:
    path: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Token:
    kind: str  # "number", "word", "string", "command", "code", "option", "punct", "eof"
    text: str
    position: Position

    def __str__(self) -> str:
        return "end of file" if self.kind == "eof" else repr(self.text)


class ScriptSyntaxError(BadInput):
    """A script that does not parse: where, what was expected, what was found."""

    def __init__(self, position: Position, message: str):
        super().__init__(f"{position}: {message}")
        self.position = position


def _is_digit(char: str) -> bool:
    return "0" <= char <= "9"  # ASCII only: str.isdigit() accepts '¹' and friends


def _is_word_start(char: str) -> bool:
    return char.isalpha() or char == "_"


def _is_word_char(char: str) -> bool:
    return char.isalnum() or char == "_"  # a digit in a word is a word character


# The same classes as regular expressions, for speed (a catalogue listing lexes every script): ``\w`` is
# str.isalnum() or "_", ``\s`` is str.isspace().
_WORD_REST = re.compile(r"\w*")
_DIGITS = re.compile(r"[0-9]*")
_HEX_DIGITS = re.compile(r"[0-9a-fA-F]*")
_SPACE = re.compile(r"\s+")
_PUNCT = re.compile("|".join(map(re.escape, PUNCTUATION)))  # "..." before "."


class Lexer:
    def __init__(self, text: str, path: str, defines: dict[str, str] | None = None):
        self.text = text
        self.path = path
        self.defines = defines or {}
        self.index = 0
        self.line = 1
        self.line_start = 0

    def position(self) -> Position:
        return Position(self.path, self.line, self.index - self.line_start + 1)

    def _advance(self, count: int) -> str:
        chunk = self.text[self.index : self.index + count]
        newlines = chunk.count("\n")
        if newlines:
            self.line += newlines
            self.line_start = self.index + chunk.rindex("\n") + 1
        self.index += count
        return chunk

    def _skip(self, end: int) -> str:
        """Move to ``end`` over text without a newline (a word, a number, punctuation)."""
        chunk = self.text[self.index : end]
        self.index = end
        return chunk

    def _until(self, closing: str, start: Position, what: str) -> str:
        end = self.text.find(closing, self.index)
        if end < 0:
            raise ScriptSyntaxError(start, f"unterminated {what}: no closing {closing!r}")
        body = self._advance(end - self.index)
        self._advance(len(closing))
        return body

    def tokens(self) -> list[Token]:
        out: list[Token] = []
        text = self.text
        while True:
            self._skip_space_and_comments()
            start = self.position()
            if self.index >= len(text):
                out.append(Token("eof", "", start))
                return out
            char = text[self.index]
            if char == "-" and text.startswith("--", self.index) and not text[self.line_start : self.index].strip():
                # --name or --name=value, up to the first blank; a comment may follow.
                end = self.index
                while end < len(text) and not text[end].isspace() and not text.startswith("//", end):
                    end += 1
                out.append(Token("option", self._advance(end - self.index)[2:], start))
            elif char == "%" and text.startswith("%{", self.index):
                self._advance(2)
                out.append(Token("code", self._until("}%", start, "%{ code block"), start))
            elif char == "`":
                self._advance(1)
                out.append(Token("command", self._until("`", start, "backtick command"), start))
            elif char == '"':
                self._advance(1)
                out.append(Token("string", self._string(start), start))
            elif _is_digit(char) or (char == "." and self.index + 1 < len(text) and _is_digit(text[self.index + 1])):
                number = self._number()
                out.append(Token("word" if any(map(_is_word_start, number)) and not number.lower().startswith("0x")
                                 else "number", number, start))
            elif _is_word_start(char):
                out.append(self._word(self._skip(_WORD_REST.match(text, self.index + 1).end()), start))
            else:
                punct = _PUNCT.match(text, self.index)
                if punct is None:
                    raise ScriptSyntaxError(start, f"unexpected character {char!r}")
                out.append(Token("punct", self._skip(punct.end()), start))

    def _word(self, word: str, start: Position) -> Token:
        """A word, or what ``-D NAME=VALUE`` defines it as (packetdrill's lexer: a number, a "string", a word)."""
        value = self.defines.get(word)
        if value is None:
            return Token("word", word, start)
        if len(value) >= 2 and value[0] == value[-1] == '"':
            return Token("string", value[1:-1], start)
        if re.fullmatch(r"0[xX][0-9a-fA-F]+|[0-9]+", value):
            return Token("number", value, start)
        return Token("word", value, start)

    def _skip_space_and_comments(self) -> None:
        text = self.text
        while self.index < len(text):
            char = text[self.index]
            if char.isspace():
                self._advance(_SPACE.match(text, self.index).end() - self.index)
            elif char != "/":
                return
            elif text.startswith("//", self.index):
                end = text.find("\n", self.index)
                self._advance((len(text) if end < 0 else end) - self.index)
            elif text.startswith("/*", self.index):
                start = self.position()
                self._advance(2)
                self._until("*/", start, "comment")
            else:
                return

    def _string(self, start: Position) -> str:
        """A string's text as written, escapes kept (the parser decodes them into bytes)."""
        chars = []
        while self.index < len(self.text):
            char = self._advance(1)
            if char == '"':
                return "".join(chars)
            if char == "\\" and self.index < len(self.text) and self.text[self.index] != "\n":
                chars.append(char + self._advance(1))
            elif char == "\n":
                break
            else:
                chars.append(char)
        raise ScriptSyntaxError(start, "unterminated string: no closing '\"'")

    def _number(self) -> str:
        text = self.text
        begin = self.index
        if text.startswith(("0x", "0X"), self.index):
            self._skip(_HEX_DIGITS.match(text, self.index + 2).end())
            return text[begin : self.index]
        self._skip(_DIGITS.match(text, self.index).end())
        if self.index < len(text) and _is_word_start(text[self.index]):
            # Letters right after digits make a word, as in packetdrill's lexer: a Fast Open cookie 5da7fe...
            self._skip(_WORD_REST.match(text, self.index).end())
            return text[begin : self.index]
        # A fraction, but not the start of "..." (as in "+.1...0.2").
        if text.startswith(".", self.index) and not text.startswith("...", self.index):
            self._skip(_DIGITS.match(text, self.index + 1).end())
        return text[begin : self.index]


def tokenize(text: str, path: str = "<script>", defines: dict[str, str] | None = None) -> list[Token]:
    return Lexer(text, path, defines).tokens()
