"""Annotation files read row by row, with errors that say where: the one reader every builder uses.

:func:`read_records` reads a JSON-lines file, a JSON array or a delimited (csv/tsv) file into :class:`AnnotationRow`s
and turns each into a record with the builder's function. Files are read as UTF-8 with or without a BOM and with
LF or CRLF line ends. A row that does not parse, lacks a field or holds a value of the wrong kind raises an
:class:`AnnotationError` (a ``ValueError``) naming the dataset, the file, the line, the field and what was expected::

    msrvtt_qa: /data/msrvtt_qa/train.jsonl line 2: not valid JSON: Expecting ',' delimiter (column 31)

A row whose question or answer is null or empty is dropped, counted and logged with the lines of a few examples;
blank lines are not rows, and a header row is skipped only when its content says it is one.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import logging
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["AnnotationError", "AnnotationRow", "EmptyText", "read_records", "read_rows"]

logger = logging.getLogger(__name__)

_EXAMPLES = 5
_DELIMITERS = {",": "commas", "\t": "tabs", ";": "semicolons"}
_JSON_WHITESPACE = " \t\n\r"
_REPORTED: set[tuple[str, int, int]] = set()  # files whose dropped rows were logged
_INTEGER = re.compile(r"\s*-?[0-9]+\s*")


class AnnotationError(ValueError):
    """A malformed annotation file or row: the message names the dataset, the file, the line and the field."""

    def __init__(self, dataset: str, path: Path, where: str | None, message: str):
        self.dataset, self.path, self.where = dataset, path, where
        super().__init__(f"{dataset}: {path}{f' {where}' if where else ''}: {message}")


class EmptyText(Exception):
    """A question or answer that is null or empty: the row is dropped (counted and logged), never read as text."""

    def __init__(self, field: str, where: str):
        super().__init__(field, where)
        self.field, self.where = field, where


def _blank(value: Any) -> bool:
    """Null, or text that is empty or all whitespace."""
    return value is None or (isinstance(value, str) and not value.strip())


def _describe(value: Any) -> str:
    """A short, typed rendering of a bad value for an error message."""
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class AnnotationRow:
    """One row of an annotation file: its ``values`` (field -> value), where it is, and typed accessors whose errors
    name the field and what was expected. ``index`` counts the data rows of the file from 0 (blank lines and a header
    are not data rows); ``line`` is the line it starts on, from 1."""

    def __init__(self, dataset: str, path: Path, line: int, index: int, values: Mapping[str, Any],
                 entry: int | None = None):
        self.dataset, self.path, self.line, self.index, self.values = dataset, path, line, index, values
        self.entry = entry

    @property
    def where(self) -> str:
        """``"line 3"``, or ``"line 1, entry 7"`` in a JSON array."""
        return f"line {self.line}" + ("" if self.entry is None else f", entry {self.entry}")

    def error(self, field: str | None, message: str) -> AnnotationError:
        return AnnotationError(self.dataset, self.path, self.where, f"{field}: {message}" if field else message)

    def _get(self, field: str) -> Any:
        if field not in self.values:
            raise self.error(field, f"missing (the row has {', '.join(map(repr, self.values)) or 'no fields'})")
        return self.values[field]

    def _drop(self, field: str) -> EmptyText:
        return EmptyText(field, f"{self.path.name} {self.where}")

    def text(self, field: str) -> str:
        """A question or answer (a JSON number counts as its digits): null or blank drops the row (``EmptyText``)."""
        value = self._get(field)
        if _blank(value):
            raise self._drop(field)
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, str):
            raise self.error(field, f"expected text, got {_describe(value)}")
        return value

    def texts(self, field: str, length: int) -> list[str]:
        """A list of ``length`` answer choices, each as :meth:`text` (a null or empty list drops the row too)."""
        value = self._get(field)
        if value is None or value == []:
            raise self._drop(field)
        if not isinstance(value, list) or len(value) != length:
            raise self.error(field, f"expected a list of {length} answer choices, got {_describe(value)}")
        return [AnnotationRow(self.dataset, self.path, self.line, self.index, {field: item}, self.entry).text(field)
                for item in value]

    def identifier(self, field: str) -> str:
        """An id: text or an integer, not empty."""
        value = self._get(field)
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, str) or not value.strip():
            raise self.error(field, f"expected an id (text or an integer), got {_describe(value)}")
        return value

    def optional_text(self, field: str) -> str:
        """Text that may be absent (then ``""``), but is never null or of another kind when present."""
        if field not in self.values:
            return ""
        value = self.values[field]
        if not isinstance(value, str):
            raise self.error(field, f"expected text, got {_describe(value)}")
        return value

    def integer(self, field: str, low: int = 0, high: int | None = None, meaning: str = "",
                answer: bool = False) -> int:
        """An integer in [low, high] (a JSON integer, or its digits in a csv/tsv file); ``answer``: it is the row's
        answer, so null or blank drops the row (``EmptyText``)."""
        value = self._get(field)
        if answer and _blank(value):
            raise self._drop(field)
        number = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str) and _INTEGER.fullmatch(value):
            number = int(value)
        if number is None or number < low or (high is not None and number > high):
            span = f"in [{low}, {high}]" if high is not None else f">= {low}"
            raise self.error(field, f"expected an integer {span}{f' ({meaning})' if meaning else ''}, got "
                                    f"{_describe(value)}")
        return number


def _read_text(dataset: str, path: Path) -> str:
    """The file as text: UTF-8, with or without a byte-order mark."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        start = error.start + (len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0)  # counted after a BOM
        line = data.count(b"\n", 0, start) + 1
        raise AnnotationError(dataset, path, f"line {line}", f"not UTF-8 text ({error.reason} at byte "
                                                             f"{start}); save the file as UTF-8") from None


def _jsonl_rows(dataset: str, path: Path, text: str) -> Iterator[AnnotationRow]:
    index = 0
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            raise AnnotationError(dataset, path, f"line {number}", f"not valid JSON: {error.msg} (column "
                                                                   f"{error.colno})") from None
        if not isinstance(value, dict):
            raise AnnotationError(dataset, path, f"line {number}", f"expected a JSON object, got {_describe(value)}")
        yield AnnotationRow(dataset, path, number, index, value)
        index += 1


def _json_array_rows(dataset: str, path: Path, text: str) -> Iterator[AnnotationRow]:
    """Entries of a JSON array of objects, each with the line it starts on."""
    decoder = json.JSONDecoder()

    def skip(position: int) -> int:
        while position < len(text) and text[position] in _JSON_WHITESPACE:
            position += 1
        return position

    def fail(position: int, message: str, entry: int | None = None) -> AnnotationError:
        where = f"line {text.count(chr(10), 0, position) + 1}" + (f", entry {entry}" if entry else "")
        return AnnotationError(dataset, path, where, message)

    position = skip(0)
    if text[position:position + 1] != "[":
        raise fail(position, "expected a JSON array of objects ([{...}, ...])")
    position, entry, line, counted = skip(position + 1), 0, 1, 0
    if text[position:position + 1] == "]":  # an empty array: no rows, as an empty file
        if text[skip(position + 1):]:
            raise fail(position + 1, "not valid JSON: extra data after the array")
        return
    while position < len(text):
        start = position
        try:
            value, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError as error:
            raise fail(error.pos, f"not valid JSON: {error.msg} (column {error.colno})", entry + 1) from None
        entry += 1
        if not isinstance(value, dict):
            raise fail(start, f"expected a JSON object, got {_describe(value)}", entry)
        line, counted = line + text.count("\n", counted, start), start  # counted as the array is read: one pass
        yield AnnotationRow(dataset, path, line, entry - 1, value, entry=entry)
        position = skip(position)
        separator = text[position:position + 1]
        if separator == "]":
            if text[skip(position + 1):]:
                raise fail(position + 1, "not valid JSON: extra data after the array")
            return
        if separator != ",":
            raise fail(position, "not valid JSON: expected ',' or ']' after this entry", entry)
        position = skip(position + 1)
    raise fail(len(text), "not valid JSON: the array is not closed (is the file truncated?)", entry + 1)


def _found_delimiter(fields: list[str], delimiter: str) -> str | None:
    """What else a one-field row seems to be separated by ("commas", "tabs", ...), if anything."""
    if len(fields) != 1:
        return None
    return next((name for other, name in _DELIMITERS.items() if other != delimiter and other in fields[0]), None)


def _delimited_rows(dataset: str, path: Path, text: str, delimiter: str, columns: Sequence[str],
                    header: bool | Callable[[list[str]], bool]) -> Iterator[AnnotationRow]:
    """Rows of a csv/tsv file. ``header=True``: the first row names the columns, which must include ``columns``;
    else the rows have exactly ``columns``, and a predicate ``header(fields)`` says whether the first row is a header
    (skipped with a warning) rather than data."""
    separated = f"{_DELIMITERS[delimiter].removesuffix('s')}-separated"
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL  # TGIF-QA's tsv holds bare quotes
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quoting=quoting, strict=True)
    names: list[str] | None = None if header is True else list(columns)
    maybe_header = header if callable(header) else None
    index, line = 0, 1
    while True:
        start = line
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            raise AnnotationError(dataset, path, f"line {start}", f"not valid {separated} text ({error})") from None
        line = reader.line_num + 1
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            continue  # a blank line
        if names is None:  # the header row a tsv must start with
            found = _found_delimiter(fields, delimiter)
            missing = [column for column in columns if column not in fields]
            if found or missing:
                raise AnnotationError(dataset, path, f"line {start}", f"expected a header row of {separated} columns "
                                      f"including {', '.join(columns)}; found "
                                      f"{found or ', '.join(map(repr, fields[:8]))}")
            names = fields
            continue
        while len(fields) > len(names) and not fields[-1].strip():  # trailing empty columns
            fields.pop()
        if maybe_header is not None and len(fields) == len(names) and maybe_header(fields):
            logger.warning("%s: %s line %d read as a header row (%s)", dataset, path, start, ", ".join(fields))
            maybe_header = None
            continue
        maybe_header = None  # only the first row may be a header
        if len(fields) != len(names):
            found = _found_delimiter(fields, delimiter)
            raise AnnotationError(dataset, path, f"line {start}", f"has {len(fields)} fields, expected {len(names)} "
                                  f"{separated} ({', '.join(names)})" + (f"; found {found}" if found else ""))
        yield AnnotationRow(dataset, path, start, index, dict(zip(names, fields, strict=True)))
        index += 1


def read_rows(dataset: str, path: Path, delimiter: str = ",", columns: Sequence[str] = (),
              header: bool | Callable[[list[str]], bool] = True) -> Iterator[AnnotationRow]:
    """Rows of an annotation file, by its suffix: ``.jsonl`` (one object a line), ``.json`` (an array of objects)
    or a delimited file (see ``_delimited_rows`` for ``delimiter``, ``columns`` and ``header``)."""
    text = _read_text(dataset, path)
    if path.suffix == ".jsonl":
        return _jsonl_rows(dataset, path, text)
    if path.suffix == ".json":
        return _json_array_rows(dataset, path, text)
    return _delimited_rows(dataset, path, text, delimiter, columns, header)


def read_records(dataset: str, path: Path, record: Callable[[AnnotationRow], dict[str, Any]],
                 **options: Any) -> list[dict[str, Any]]:
    """``record(row)`` of every row of ``path`` (``options`` as :func:`read_rows`); rows with an empty question or
    answer are dropped and logged (once per file and process: one warning per field, with a few examples)."""
    records, dropped = [], {}
    for row in read_rows(dataset, path, **options):
        try:
            records.append(record(row))
        except EmptyText as empty:
            dropped.setdefault(empty.field, []).append(empty.where)
    stat = path.stat()
    if dropped and (key := (str(path), stat.st_size, stat.st_mtime_ns)) not in _REPORTED:
        _REPORTED.add(key)
        for field, where in dropped.items():
            logger.warning("%s: dropped %d rows with an empty or null %r (e.g. %s); fill them in or remove them",
                           dataset, len(where), field, "; ".join(where[:_EXAMPLES]))
    return records
