"""Every builder fed mutated release rows (tests/fixtures/release): dropped fields, values of the wrong kind, nulls,
empty and unicode text, a truncated last line, another delimiter, a BOM, CRLF line ends, blank lines, a How2QA header.

Whatever the file, the builder either reads every row it should exactly -- rows whose question or answer is null or
empty dropped and logged with their line -- or raises a ValueError that names the file (and the line of a broken
row); never another exception, never a row changed or lost without a word. How2QA's rule for a header (a first row
whose window column holds no digit, bracket or colon) is by design, so window mutations always hold one of those.
"""

import csv
import io
import json
import logging
import math
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datasets_scripts import MSRVTTQA, MSVDQA, TGIFQA, ActivityNetQA, How2QA, VideoQABuilder

RELEASE = Path(__file__).parent / "fixtures" / "release"
DROP, ERROR = "drop", "error"
# field kinds: what a mutation of the field must lead to
TEXT, ANSWER_INT, CHOICES, ID, INT, WINDOW, OPTIONAL_TEXT, OPTIONAL_ID, UNUSED = (
    "text", "answer_int", "choices", "id", "int", "window", "optional_text", "optional_id", "unused")
WRONG_KINDS = ([], {}, 2.5, True)  # wrong for every JSON field the builders read
DELIMITERS = {"jsonl": None, "json": None, "csv": ",", "tsv": "\t"}


@dataclass
class Case:
    """One annotation file of a builder: which split it feeds and the kind of each of its fields."""

    builder: type[VideoQABuilder]
    folder: str
    file: str
    split: str
    fields: dict[str, str]
    config: str | None = None
    columns: list[str] = field(default_factory=list)  # csv/tsv: the columns, in order

    @property
    def format(self) -> str:
        return {".jsonl": "jsonl", ".json": "json"}.get(Path(self.file).suffix, "tsv" if self.builder is TGIFQA
                                                                                 else "csv")

    def __str__(self) -> str:
        return f"{self.folder}/{self.file}"


MSRVTT_FIELDS = {"video_id": ID, "question": TEXT, "answer": TEXT, "answer_type": OPTIONAL_TEXT}
CASES = [
    Case(MSRVTTQA, "msrvtt_qa", "train.jsonl", "train", MSRVTT_FIELDS),
    Case(MSVDQA, "msvd_qa", "val.jsonl", "val", {**MSRVTT_FIELDS, "id": OPTIONAL_ID}),
    Case(TGIFQA, "tgif_qa", "action_train.jsonl", "train", {"gif_name": ID, "question": TEXT, "options": CHOICES,
                                                            "answer": ANSWER_INT}, config="action"),
    Case(TGIFQA, "tgif_qa", "frameqa_train.jsonl", "train", {"gif_name": ID, "question": TEXT, "answer": TEXT,
                                                             "answer_type": OPTIONAL_TEXT}, config="frameqa"),
    Case(TGIFQA, "tgif_qa", "Train_count_question.csv", "train", {"gif_name": ID, "question": TEXT,
                                                                  "answer": ANSWER_INT, "vid_id": OPTIONAL_ID,
                                                                  "key": UNUSED}, config="count"),
    Case(TGIFQA, "tgif_qa_original", "Train_frameqa_question.csv", "train",
         {"gif_name": ID, "question": TEXT, "answer": TEXT, "type": INT, "vid_id": OPTIONAL_ID, "key": UNUSED,
          "description": UNUSED}, config="frameqa"),
    Case(TGIFQA, "tgif_qa_original", "Train_action_question.csv", "train",
         {"gif_name": ID, "question": TEXT, **{f"a{k}": TEXT for k in range(1, 6)}, "answer": ANSWER_INT,
          "vid_id": OPTIONAL_ID, "key": UNUSED}, config="action"),
    Case(How2QA, "how2qa", "how2QA_train_release.csv", "train",
         {"vid_id": ID, "window": WINDOW, "wrong1": TEXT, "wrong2": TEXT, "wrong3": TEXT, "question": TEXT,
          "correct": TEXT}),
    Case(ActivityNetQA, "activitynet_qa", "train_q.json", "train", {"video_name": ID, "question_id": ID,
                                                                    "question": TEXT}),
    Case(ActivityNetQA, "activitynet_qa", "train_a.json", "train", {"answer": TEXT, "type": INT, "question_id": ID}),
]


def parse_fixture(case: Case) -> tuple[list[Any], str | None]:
    """The file's rows (dicts for JSON, lists of strings for csv/tsv) and its header line (tsv)."""
    text = (RELEASE / case.folder / case.file).read_text(encoding="utf-8")
    if case.format == "jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()], None
    if case.format == "json":
        return json.loads(text), None
    lines = text.splitlines()
    if case.format == "tsv":
        case.columns = lines[0].split("\t")
        return [line.split("\t") for line in lines[1:]], lines[0]
    case.columns = list(case.fields)  # How2QA: no header; the columns in order
    return [line.split(",") for line in lines], None  # the fixture's texts hold no commas


def read(case: Case, data_dir: Path) -> list[dict]:
    builder = case.builder(data_dir=str(data_dir), cache_dir=str(data_dir.parent / "cache"), config_name=case.config)
    return builder.read_annotations(case.split)


PRISTINE: dict[str, list[dict]] = {}


def pristine(case: Case) -> list[dict]:
    """The records of the unchanged fixture (the questions file's order, for ActivityNet's answers file too)."""
    if str(case) not in PRISTINE:
        with tempfile.TemporaryDirectory() as tmp:
            PRISTINE[str(case)] = read(case, Path(shutil.copytree(RELEASE / case.folder, Path(tmp) / case.folder)))
    return [dict(record) for record in PRISTINE[str(case)]]


# ---------------------------------------------------------------- mutations and what each must lead to


def text_outcome(case: Case, text: str) -> str | None:
    """A question, answer or choice replaced by `text`: dropped when blank, an error when it breaks a tsv row."""
    if case.format == "tsv" and any(c in text for c in "\t\r\n"):
        return ERROR
    return DROP if not text.strip() else None


@st.composite
def row_mutation(draw, case: Case, last: bool) -> tuple[str, str | None, Any, str | None]:
    """(kind, field, value, outcome) for one row; outcome None: the row still reads, with the mutation applied."""
    json_format = case.format in ("jsonl", "json")
    kind = draw(st.sampled_from(["drop_field", "null", "empty", "wrong_kind", "text", *(["truncate"] if last else [])]))
    if kind == "truncate":
        return kind, None, draw(st.floats(0.0, 1.0)), ERROR
    name = draw(st.sampled_from(sorted(case.fields)))
    category = case.fields[name]
    if kind == "drop_field":
        if json_format and category in (OPTIONAL_TEXT, OPTIONAL_ID):
            kind = "null"
        else:
            return kind, name, None, ERROR
    if kind == "null" and not json_format:
        kind = "empty"
    if kind == "null":
        return kind, name, None, DROP if category in (TEXT, ANSWER_INT, CHOICES) else ERROR
    if kind == "empty":
        blank = draw(st.sampled_from(["", " ", "\u3000"]))
        if category == CHOICES:
            return "choice", name, (draw(st.integers(0, 4)), blank), DROP
        return kind, name, blank, {TEXT: DROP, ANSWER_INT: DROP, OPTIONAL_TEXT: None, UNUSED: None}.get(category, ERROR)
    if kind == "wrong_kind":
        if json_format:
            value = draw(st.sampled_from(WRONG_KINDS))
            if category == CHOICES and isinstance(value, list):
                value = ["a", "b"]  # a list, of the wrong length
            return kind, name, value, ERROR
        if category in (ANSWER_INT, INT):
            return kind, name, draw(st.sampled_from(["x", "2.5", "-1", "1e3", "0x1"])), ERROR
        if category == WINDOW:
            return kind, name, draw(st.sampled_from(["[1.0-5.0]", "1.0:5.0", "[5.0:1.0]", "[a:b]", "[1:2", "[-1:2]",
                                                     "[inf:2]", "12"])), ERROR
        kind = "text"
    if category == CHOICES:
        text = draw(st.text(max_size=12))
        return "choice", name, (draw(st.integers(0, 4)), text), text_outcome(case, text)
    if category != TEXT:  # text for an id, an integer, a window...: covered above; keep the row as it is
        return "none", None, None, None
    text = draw(st.text(max_size=12))
    return "text", name, text, text_outcome(case, text)


@dataclass
class Mutated:
    rows: dict[int, tuple]  # row index -> row_mutation
    bom: bool
    crlf: bool
    blank_before: set[int]
    delimiter: str | None  # csv/tsv written with another delimiter
    header: bool  # How2QA: a header row first


@st.composite
def mutated_file(draw, case: Case) -> Mutated:
    count = len(parse_fixture(case)[0])
    indices = draw(st.lists(st.integers(0, count - 1), unique=True, max_size=3))
    rows = {i: draw(row_mutation(case, last=i == count - 1)) for i in indices}
    others = [d for d in (",", "\t", ";") if d != DELIMITERS[case.format]]
    delimiter = draw(st.sampled_from([None] * 4 + others)) if case.format in ("csv", "tsv") else None
    return Mutated(rows, draw(st.booleans()), draw(st.booleans()), draw(st.sets(st.integers(0, count))), delimiter,
                   case.builder is How2QA and draw(st.booleans()))


def apply(case: Case, row: Any, mutation: tuple) -> Any:
    """The row with one mutation (not truncation) applied."""
    kind, name, value, _ = mutation
    if kind in ("none", "truncate"):
        return row
    if isinstance(row, dict):
        row = dict(row)
        if kind == "drop_field":
            del row[name]
        elif kind == "choice":
            index, text = value
            row[name] = [text if k == index else option for k, option in enumerate(row[name])]
        else:
            row[name] = value
        return row
    position = case.columns.index(name)
    if kind == "drop_field":
        return row[:position] + row[position + 1:]
    return row[:position] + [value] + row[position + 1:]


def write(case: Case, mutated: Mutated, path: Path) -> list[int]:
    """Write the mutated file; return the line each row starts on."""
    rows, header = parse_fixture(case)
    rows = [apply(case, row, mutated.rows[i]) if i in mutated.rows else row for i, row in enumerate(rows)]
    newline = "\r\n" if mutated.crlf else "\n"
    if case.format in ("jsonl", "json"):
        chunks = [json.dumps(row, ensure_ascii=False) for row in rows]
        separator = "," if case.format == "json" else ""
        chunks = [chunk + (separator if case.format == "json" and i < len(rows) - 1 else "") + newline
                  for i, chunk in enumerate(chunks)]
    elif case.format == "tsv":
        delimiter = mutated.delimiter or "\t"
        chunks = [delimiter.join(row) + newline for row in rows]
    else:
        chunks = []
        for row in rows:
            buffer = io.StringIO()
            csv.writer(buffer, delimiter=mutated.delimiter or ",", lineterminator=newline).writerow(row)
            chunks.append(buffer.getvalue())
    text, lines, line = "\ufeff" if mutated.bom else "", [], 1
    if case.format == "json":
        text, line = text + "[" + newline, 2
    if header is not None:
        text, line = text + header.replace("\t", mutated.delimiter or "\t") + newline, line + 1
    if mutated.header:
        text, line = text + "vid_id,timesteps,a1,a2,a3,question,answer" + newline, line + 1
    for i, chunk in enumerate(chunks):
        if i in mutated.blank_before:
            text, line = text + newline, line + 1
        lines.append(line)
        text += chunk
        line += len(re.findall(r"\r\n|\r|\n", chunk)) if case.format in ("csv", "tsv") else chunk.count("\n")
    if case.format == "json":
        text += "]" + newline
    last = len(rows) - 1
    if last in mutated.rows and mutated.rows[last][0] == "truncate":  # cut inside the last row, before its end
        start = len(text) - len(chunks[-1]) - (len("]" + newline) if case.format == "json" else 0)
        body = chunks[-1].rstrip("\r\n,")
        if case.format in ("csv", "tsv"):  # before its last delimiter, so that a field is lost
            body = body[:body.rfind(mutated.delimiter or DELIMITERS[case.format])]
        length = len(body) - (1 if case.format == "jsonl" else 0)  # a jsonl line cut at its end would be whole
        text = text[:start + max(1, math.ceil(mutated.rows[last][2] * length))]
    path.write_bytes(text.encode("utf-8"))
    return lines


def expected_record(case: Case, record: dict, raw: Any, mutation: tuple | None) -> dict:
    """A row's record after a mutation that keeps it readable (`raw`: the row as in the fixture)."""
    if mutation is None or mutation[0] == "none":
        return record
    kind, name, value, _ = mutation
    if kind == "empty":  # an optional or unused field left empty
        return {**record, "answer_type": value} if case.fields[name] == OPTIONAL_TEXT else record
    if kind == "choice" or (name.startswith("a") and name[1:].isdigit()):  # TGIF-QA's options
        index, text = value if kind == "choice" else (int(name[1:]) - 1, value)
        choices = [text if k == index else choice for k, choice in enumerate(record["choices"])]
        return {**record, "choices": choices, "answer": choices[record["label"]]}
    if case.builder is How2QA and name != "question":  # a wrong or the correct answer: the same place among choices
        choices = list(record["choices"])
        choices[choices.index(raw[case.columns.index(name)])] = value
        return {**record, "choices": choices, **({"answer": value} if name == "correct" else {})}
    return {**record, name if name == "question" else "answer": value}


def canonical(case: Case, record: dict, line: int | None = None) -> dict:
    """How2QA's choices come in an order seeded by the question id, `<vid_id>_<line - 1>`, which moves with the row:
    compare them as a set, the label by its text."""
    if case.builder is not How2QA:
        return record
    question_id = record["question_id"] if line is None else f"{record['video_id']}_{line - 1}"
    return {**record, "choices": sorted(record["choices"]), "label": record["choices"][record["label"]],
            "question_id": question_id}


class Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.mark.parametrize("case", CASES, ids=str)
@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_builder_reads_every_valid_row_exactly_or_names_the_file(case, data):
    mutated = data.draw(mutated_file(case))
    base, raw_rows = pristine(case), parse_fixture(case)[0]
    outcomes = {i: mutation[3] for i, mutation in mutated.rows.items()}
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(shutil.copytree(RELEASE / case.folder, Path(tmp) / case.folder))
        lines = write(case, mutated, data_dir / case.file)
        handler = Collect()
        logging.getLogger("datasets_scripts").addHandler(handler)
        try:
            records = read(case, data_dir)
            error = None
        except ValueError as caught:
            records, error = None, caught
        finally:
            logging.getLogger("datasets_scripts").removeHandler(handler)
    where = {i: f"line {lines[i]}" + (f", entry {i + 1}" if case.format == "json" else "") for i in range(len(lines))}
    if mutated.delimiter is not None or ERROR in outcomes.values():
        assert error is not None, f"read a broken file: {records}"
        assert case.file in str(error), error
        if mutated.delimiter is None:  # a broken row: the error names its line
            assert any(f"{case.file} {where[i]}:" in str(error) for i, o in outcomes.items() if o == ERROR), error
        return
    assert error is None, f"{type(error).__name__}: {error}"
    dropped = [i for i, outcome in outcomes.items() if outcome == DROP]
    expected = [canonical(case, expected_record(case, record, raw_rows[i], mutated.rows.get(i)), lines[i])
                for i, record in enumerate(base) if i not in dropped]
    assert [canonical(case, record) for record in records] == expected
    for i in dropped:
        assert any(f"{case.file} {where[i]}" in message for message in handler.messages), (where[i], handler.messages)
    if mutated.header:
        assert any("read as a header row" in message for message in handler.messages)
