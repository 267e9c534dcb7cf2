"""Reading a report page back: every number the page shows (``data-key``) against the report's JSON."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

from service.reports.render import fmt


class _Numbers(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str]] = []
        self._key: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        key = dict(attrs).get("data-key")
        if key:
            self._key, self._text = key, []

    def handle_data(self, data: str) -> None:
        if self._key is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if self._key is not None and tag == "span":
            self.found.append((self._key, "".join(self._text)))
            self._key = None


def page_numbers(html: str) -> list[tuple[str, str]]:
    parser = _Numbers()
    parser.feed(html)
    return parser.found


def at(data: Any, path: str) -> Any:
    for part in path.split("."):
        data = data[int(part)] if isinstance(data, list) else data[part]
    return data


def mismatches(html: str, data: dict[str, Any]) -> list[str]:
    """Each number in the page whose text is not the JSON's value at its key, formatted as the page does."""
    return [f"{key}: page {text!r}, JSON {at(data, key)!r}" for key, text in page_numbers(html)
            if text != fmt(at(data, key))]
