"""Reading and editing `.env` files without losing what the user wrote.

The loader needs every assignment with its line number (so an error can name the line), and
the settings editor must change a value without touching comments, order, blank lines or keys
it does not know. So the file is kept as a list of lines; an edit rewrites only the lines of
the edited keys and the whole file is replaced atomically (temp file + fsync + rename), mode
0600 because it holds API keys.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class EnvSyntaxError(ValueError):
    """A line that is neither blank, a comment, nor KEY=VALUE."""

    def __init__(self, line_no: int, text: str, reason: str, key: str | None = None):
        self.line_no = line_no
        self.text = text
        self.reason = reason
        self.key = key
        shown = f": {text.strip()[:60]!r}" if text.strip() else ""
        super().__init__(f"line {line_no}: {key + ': ' if key else ''}{reason}{shown}")


@dataclass(frozen=True)
class Assignment:
    key: str
    value: str
    line_no: int  # 1-based
    quoted: bool = False
    inline_comment: str = ""  # including the leading whitespace and '#'


def _split_value(raw: str, line_no: int, text: str) -> tuple[str, bool, str]:
    """Return (value, quoted, inline_comment) for the text after '='."""
    s = raw.strip()
    if s[:1] in ("'", '"'):
        quote = s[0]
        end = s.find(quote, 1)
        while quote == '"' and end != -1 and s[end - 1] == "\\":
            end = s.find(quote, end + 1)
        if end == -1:
            raise EnvSyntaxError(line_no, text, "unterminated quoted value")
        value = s[1:end]
        if quote == '"':
            value = value.replace('\\"', '"')
        rest = s[end + 1 :]
        if rest.strip() and not rest.strip().startswith("#"):
            raise EnvSyntaxError(line_no, text, "unexpected text after the quoted value")
        return value, True, rest if rest.strip() else ""
    # Unquoted: an inline comment starts at whitespace followed by '#'.
    m = re.search(r"\s+#", s)
    if m:
        return s[: m.start()].rstrip(), False, s[m.start() :]
    return s, False, ""


def parse_lines(lines: list[str]) -> tuple[list[Assignment], list[EnvSyntaxError]]:
    """Parse `.env` lines; syntax errors are collected, not raised, so all are reported."""
    out: list[Assignment] = []
    errors: list[EnvSyntaxError] = []
    for i, text in enumerate(lines, start=1):
        s = text.strip()
        if not s or s.startswith("#"):
            continue
        if s.startswith("export "):
            s = s[len("export ") :].lstrip()
        if "=" not in s:
            errors.append(EnvSyntaxError(i, text, "expected KEY=VALUE"))
            continue
        key, _, raw = s.partition("=")
        key = key.strip()
        if not _KEY_RE.match(key):
            errors.append(EnvSyntaxError(i, text, f"invalid key name {key!r}"))
            continue
        try:
            value, quoted, comment = _split_value(raw, i, text)
        except EnvSyntaxError as exc:
            errors.append(exc)
            continue
        out.append(Assignment(key, value, i, quoted, comment))
    return out, errors


def split_lines(text: str) -> list[str]:
    """Lines as a shell or a text editor counts them: split at '\n' only (a trailing '\r' is
    dropped). `str.splitlines` also splits at form feeds, U+2028 and other separators, which
    would cut a value in two and shift every line number reported after it."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [ln[:-1] if ln.endswith("\r") else ln for ln in lines]


def decode_env_bytes(data: bytes) -> str:
    """UTF-8 text of a `.env` file, without a leading byte-order mark.

    Bytes that are not UTF-8 raise EnvSyntaxError naming the line (and its key, if the line
    has one) instead of a UnicodeDecodeError traceback."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_no = data.count(b"\n", 0, exc.start) + 1
        start = data.rfind(b"\n", 0, exc.start) + 1
        column = len(data[start:exc.start].decode("utf-8", "replace")) + 1
        line = data[start:].split(b"\n", 1)[0].decode("utf-8", "replace")
        key = line.partition("=")[0].strip().removeprefix("export ").strip() if "=" in line else ""
        raise EnvSyntaxError(line_no, "", f"byte 0x{data[exc.start]:02x} at column {column} is not UTF-8 "
                             "text; save the file as UTF-8",
                             key if _KEY_RE.match(key) else None) from None
    return text.removeprefix("\ufeff")


def read_env_text(path: str | os.PathLike[str]) -> str:
    return decode_env_bytes(Path(path).read_bytes())


def read_env_file(path: str | os.PathLike[str]) -> tuple[list[Assignment], list[EnvSyntaxError]]:
    return parse_lines(split_lines(read_env_text(path)))


def format_value(value: str) -> str:
    """Quote a value only when it would not survive unquoted."""
    if value == "" or re.fullmatch(r"[A-Za-z0-9_.,:/+\-@()%*]*", value):
        return value
    if "'" not in value:
        return f"'{value}'"
    return '"' + value.replace('"', '\\"') + '"'


def _rewrite_line(a: Assignment, original: str, value: str) -> str:
    prefix = "export " if original.lstrip().startswith("export ") else ""
    indent = original[: len(original) - len(original.lstrip())]
    return f"{indent}{prefix}{a.key}={format_value(value)}{a.inline_comment}"


def update_env_text(text: str, changes: dict[str, str | None]) -> str:
    """Apply changes to `.env` text: set KEY to a value, or remove it when the value is None.

    Only the lines of changed keys are touched. A key set more than once has every line
    rewritten (so the file stays unambiguous); a new key is appended at the end.
    """
    lines = split_lines(text)
    trailing_newline = text.endswith("\n") or not text
    assignments, _ = parse_lines(lines)
    by_key: dict[str, list[Assignment]] = {}
    for a in assignments:
        by_key.setdefault(a.key, []).append(a)
    drop: set[int] = set()
    for key, value in changes.items():
        if not _KEY_RE.match(key):
            raise ValueError(f"invalid key name {key!r}")
        if value is not None and ("\n" in value or "\r" in value):
            raise ValueError(f"{key}: a value cannot contain a line break")
        for a in by_key.get(key, []):
            if value is None:
                drop.add(a.line_no)
            else:
                lines[a.line_no - 1] = _rewrite_line(a, lines[a.line_no - 1], value)
    lines = [ln for i, ln in enumerate(lines, start=1) if i not in drop]
    for key, value in changes.items():
        if value is not None and key not in by_key:
            lines.append(f"{key}={format_value(value)}")
    result = "\n".join(lines)
    return result + "\n" if (trailing_newline or result) else result


def atomic_write_text(path: str | os.PathLike[str], text: str, mode: int = 0o600) -> None:
    """Write `text` to `path` so a crash leaves either the old or the new file, never half."""
    atomic_write_bytes(path, text.encode("utf-8"), mode)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, mode: int = 0o600) -> None:
    """Write `data` through a temporary file in the same folder, fsync, rename, fsync the folder."""
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def update_env_file(path: str | os.PathLike[str], changes: dict[str, str | None]) -> None:
    """Edit `.env` in place (atomic, mode 0600); creates the file if it does not exist."""
    path = Path(path)
    text = read_env_text(path) if path.exists() else ""
    atomic_write_text(path, update_env_text(text, changes))
