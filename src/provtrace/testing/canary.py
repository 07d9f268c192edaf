"""Canary scanning: a value provtrace must never write (a fetched secret) is looked for, raw and
in the encodings it could take on the way, in every byte provtrace wrote under its homes and in
the log text captured meanwhile."""

from __future__ import annotations

import base64
import json
import urllib.parse
from collections.abc import Callable, Iterable
from pathlib import Path


def encodings(value: str | bytes) -> dict[str, bytes]:
    """The forms a value takes when it is copied into JSON, a URL, base64 or hex."""
    raw = value.encode() if isinstance(value, str) else value
    text = raw.decode("utf-8", "replace")
    return {
        "raw": raw,
        "json": json.dumps(text, ensure_ascii=False)[1:-1].encode(),
        "json-ascii": json.dumps(text, ensure_ascii=True)[1:-1].encode(),
        "url": urllib.parse.quote(raw, safe="").encode(),
        "base64": base64.b64encode(raw).rstrip(b"="),
        "base64url": base64.urlsafe_b64encode(raw).rstrip(b"="),
        "hex": raw.hex().encode(),
    }


class CanaryScan:
    """Where to look (homes, extra text such as a subprocess's stderr) and the captured logs."""

    def __init__(self, log_text: Callable[[], str] = str) -> None:
        self._log_text = log_text
        self.homes: list[Path] = []
        self.texts: list[str] = []

    def watch(self, *homes: Path) -> CanaryScan:
        """Scan every file under these directories too."""
        self.homes.extend(Path(home) for home in homes)
        return self

    def add_text(self, text: str) -> CanaryScan:
        """Scan this text too (what another process logged)."""
        self.texts.append(text)
        return self

    def written(self) -> bytes:
        """Every byte of every file under the watched homes, in a stable order."""
        return b"".join(
            path.read_bytes() for home in self.homes for path in sorted(home.rglob("*")) if path.is_file()
        )

    def logged(self) -> bytes:
        return "\n".join([self._log_text(), *self.texts]).encode()

    def leaks(self, *values: str | bytes, forms: Iterable[str | bytes] = ()) -> list[str]:
        """Where any value (in any of its encodings) or any of the extra ``forms`` was found."""
        places = {"files": self.written(), "logs": self.logged()}
        wanted = [
            (f"{name} of {value!r}", form) for value in values for name, form in encodings(value).items()
        ]
        wanted += [(f"form {form!r}", form.encode() if isinstance(form, str) else form) for form in forms]
        return [
            f"{label} in {place}" for label, form in wanted for place, data in places.items() if form in data
        ]

    def assert_absent(self, *values: str | bytes, forms: Iterable[str | bytes] = ()) -> None:
        """No value reached a watched byte; fails too when nothing was written, since a scan of
        nothing would prove nothing."""
        assert self.homes, "no home to scan: call watch() with provtrace's home"
        assert self.written(), f"nothing was written under {self.homes}: the scan would prove nothing"
        found = self.leaks(*values, forms=forms)
        assert found == [], f"canaries reached provtrace's output: {found}"
