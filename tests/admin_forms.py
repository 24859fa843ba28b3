"""Submit admin forms as a browser would: the POST data is what the rendered page holds.

A test that posts hand-written field names can pass while the page never shows the field (the
secret inputs did exactly that); building the data from the HTML makes a missing input a failure.
"""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any


class _FormParser(HTMLParser):
    def __init__(self, form_id: str) -> None:
        super().__init__(convert_charrefs=True)
        self.form_id = form_id
        self.inside = False
        self.fields: dict[str, list[str]] = {}
        self.names: set[str] = set()
        self.submit_names: set[str] = set()
        self._select: str | None = None
        self._select_value: str | None = None
        self._select_first: str | None = None
        self._option_value: str | None = None
        self._textarea: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {key: value or "" for key, value in attrs}
        if tag == "form" and attributes.get("id") == self.form_id:
            self.inside = True
        if not self.inside:
            return
        name = attributes.get("name")
        if tag == "input" and name:
            self.names.add(name)
            kind = attributes.get("type", "text")
            if kind == "submit":
                self.submit_names.add(name)
            elif kind in ("checkbox", "radio"):
                if "checked" in attributes and "disabled" not in attributes:
                    self.fields.setdefault(name, []).append(attributes.get("value", "on"))
            elif "disabled" not in attributes:
                self.fields[name] = [attributes.get("value", "")]
        elif tag == "select" and name:
            self.names.add(name)
            self._select, self._select_value, self._select_first = name, None, None
        elif tag == "option" and self._select:
            self._option_value = attributes.get("value", "")
            if self._select_first is None:
                self._select_first = self._option_value
            if "selected" in attributes:
                self._select_value = self._option_value
        elif tag == "textarea" and name:
            self.names.add(name)
            self._textarea, self._text = name, []

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self.inside:
            self.inside = False
        elif tag == "select" and self._select:
            value = self._select_value if self._select_value is not None else self._select_first
            self.fields[self._select] = [value or ""]
            self._select = None
        elif tag == "textarea" and self._textarea:
            self.fields[self._textarea] = ["".join(self._text).lstrip("\n")]
            self._textarea = None


class RenderedForm:
    """The fields of one form of a page, with the values the page shows, ready to change and post."""

    def __init__(self, html: str, form_id: str) -> None:
        parser = _FormParser(form_id)
        parser.feed(html)
        if not parser.names:
            raise AssertionError(f"no form #{form_id} with fields on the page")
        self.names = parser.names
        self.data: dict[str, Any] = {
            name: values if len(values) > 1 else values[0] for name, values in parser.fields.items()
        }

    def set(self, name: str, value: Any) -> RenderedForm:
        """Type into a field that the page renders (an AssertionError when it does not)."""
        if name not in self.names:
            raise AssertionError(f"the page renders no field {name!r}; it has {sorted(self.names)}")
        if value is None or value is False:
            self.data.pop(name, None)
        else:
            self.data[name] = "on" if value is True else value
        return self


def rendered_form(client: Any, url: str, form_id: str) -> RenderedForm:
    response = client.get(url)
    assert response.status_code == 200, response.status_code
    return RenderedForm(response.content.decode(), form_id)
