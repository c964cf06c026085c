"""Annotation files broken the ways users' files break (copies of tests/fixtures/release): every bad row is one
ValueError naming the dataset, the file, the line and the field; BOM and CRLF files read as they are; a row without
question or answer is dropped and logged, never read as the answer "none"; nothing is skipped silently."""

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from datasets_scripts import MSRVTTQA, TGIFQA, ActivityNetQA, How2QA, load_videoqa
from datasets_scripts.annotations import read_rows
from modeling_siasamrea.video_io import write_video

RELEASE = Path(__file__).parent / "fixtures" / "release"


def release_copy(tmp_path: Path, dataset: str) -> Path:
    return Path(shutil.copytree(RELEASE / dataset, tmp_path / dataset))


def read(builder_cls, data_dir: Path, split: str, config: str | None = None) -> list[dict]:
    """The records of one split as the builder reads them (no videos needed)."""
    builder = builder_cls(data_dir=str(data_dir), cache_dir=str(data_dir.parent / "cache"), config_name=config)
    return builder.read_annotations(split)


def replace_line(path: Path, number: int, text: str) -> None:
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[number - 1] = text + "\n"
    path.write_text("".join(lines), encoding="utf-8")


def rewrite(path: Path, old: str, new: str) -> None:
    path.write_text(path.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")


def jsonl_line(path: Path, number: int) -> dict:
    return json.loads(path.read_text(encoding="utf-8").splitlines()[number - 1])


# ---------------------------------------------------------------- JSON lines (MSRVTT-QA, MSVD-QA, ClipBERT's TGIF-QA)


def test_a_line_that_is_not_json_is_named_by_file_and_line(tmp_path):
    data_dir = release_copy(tmp_path, "msrvtt_qa")
    replace_line(data_dir / "train.jsonl", 2, '{"answer": "woman" "question": "who is singing a song?"}')
    with pytest.raises(ValueError, match=r"^msrvtt_qa: .*train\.jsonl line 2: not valid JSON: Expecting ',' "
                                         r"delimiter \(column 20\)"):
        read(MSRVTTQA, data_dir, "train")


@pytest.mark.parametrize("field", ["answer", "question", "video_id"])
def test_a_line_without_a_field_names_file_line_and_field(tmp_path, field):
    data_dir = release_copy(tmp_path, "msrvtt_qa")
    row = jsonl_line(data_dir / "val.jsonl", 2)
    del row[field]
    replace_line(data_dir / "val.jsonl", 2, json.dumps(row))
    with pytest.raises(ValueError, match=rf"^msrvtt_qa: .*val\.jsonl line 2: {field}: missing \(the row has "):
        read(MSRVTTQA, data_dir, "val")


def test_a_field_of_the_wrong_kind_says_what_was_expected(tmp_path):
    data_dir = release_copy(tmp_path, "msrvtt_qa")
    replace_line(data_dir / "val.jsonl", 1, json.dumps({**jsonl_line(data_dir / "val.jsonl", 1), "question": ["x"]}))
    with pytest.raises(ValueError, match=r"val\.jsonl line 1: question: expected text, got \[\"x\"\]"):
        read(MSRVTTQA, data_dir, "val")


@pytest.fixture
def msrvtt_with_videos(tmp_path) -> Path:
    data_dir = release_copy(tmp_path, "msrvtt_qa")
    (data_dir / "videos").mkdir()
    for name in ("video7010", "video7020"):
        write_video(data_dir / "videos" / f"{name}.mp4", np.zeros((8, 16, 16, 3), np.uint8))
    return data_dir


@pytest.mark.parametrize("field, value", [("answer", None), ("question", None), ("answer", " "), ("question", "")])
def test_a_null_or_empty_question_or_answer_is_dropped_and_logged_never_read_as_text(msrvtt_with_videos, tmp_path,
                                                                                    caplog, field, value):
    train = msrvtt_with_videos / "train.jsonl"
    replace_line(train, 2, json.dumps({**jsonl_line(train, 2), field: value}))
    with caplog.at_level(logging.WARNING):
        dataset = load_videoqa("msrvtt_qa", msrvtt_with_videos, "train", cache_dir=tmp_path / "cache")
    assert dataset["question"] == ["what is a man doing?", "what is the man cutting?"]
    assert sorted(dataset.features["label"].names) == ["cook", "onion"]  # no "none", no "" answer
    assert f"msrvtt_qa: dropped 1 rows with an empty or null '{field}' (e.g. train.jsonl line 2)" in caplog.text


def test_a_file_saved_with_a_bom_and_crlf_line_ends_reads_as_the_plain_file(tmp_path):
    plain = read(MSRVTTQA, release_copy(tmp_path / "a", "msrvtt_qa"), "train")
    data_dir = release_copy(tmp_path / "b", "msrvtt_qa")
    text = (data_dir / "train.jsonl").read_text(encoding="utf-8")
    (data_dir / "train.jsonl").write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode())
    assert read(MSRVTTQA, data_dir, "train") == plain


def test_a_file_that_is_not_utf8_names_its_line(tmp_path):
    data_dir = release_copy(tmp_path, "msrvtt_qa")
    with (data_dir / "train.jsonl").open("ab") as f:
        f.write('{"answer": "caf\xe9", "question": "q?", "video_id": "video7010"}\n'.encode("latin-1"))
    with pytest.raises(ValueError, match=r"train\.jsonl line 4: not UTF-8 text"):
        read(MSRVTTQA, data_dir, "train")


def test_a_file_with_a_bom_that_is_not_utf8_names_the_line_and_byte_of_the_file(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_bytes(b"\xef\xbb\xbfx,y\n1,2\n\xe9t\xe9,3\n")
    with pytest.raises(ValueError, match=r"rows\.csv line 3: not UTF-8 text \(invalid continuation byte at byte 11\)"):
        list(read_rows("test", path))


# ---------------------------------------------------------------- How2QA's headerless csv


def test_a_how2qa_row_without_its_window_is_an_error_not_a_skipped_header(tmp_path):
    data_dir = release_copy(tmp_path, "how2qa")
    replace_line(data_dir / "how2QA_train_release.csv", 1, "fixtvid0001,cuts the bread,pours the milk,opens the oven,"
                                                           "What does the man do with the knife?,spreads the butter")
    with pytest.raises(ValueError, match=r"^how2qa: .*how2QA_train_release\.csv line 1: has 6 fields, expected 7 "
                                         r"comma-separated \(vid_id, window, wrong1"):
        read(How2QA, data_dir, "train")


@pytest.mark.parametrize("window", ["[1.0-5.0]", "1.0:5.0", "[5.0:1.0]", "[nan:2]", "[1.0:]"])
def test_a_how2qa_window_that_does_not_parse_names_file_line_and_field(tmp_path, window):
    data_dir = release_copy(tmp_path, "how2qa")
    replace_line(data_dir / "how2QA_val_release.csv", 2, f"fixtvid0001,{window},red,blue,green,What colour?,white")
    with pytest.raises(ValueError, match=r"how2QA_val_release\.csv line 2: window: expected \[start:end\] in seconds"):
        read(How2QA, data_dir, "val")


def test_a_how2qa_header_row_is_recognised_by_its_content_and_logged(tmp_path, caplog):
    plain = read(How2QA, release_copy(tmp_path / "a", "how2qa"), "train")
    data_dir = release_copy(tmp_path / "b", "how2qa")
    path = data_dir / "how2QA_train_release.csv"
    path.write_text("vid_id,timesteps,a1,a2,a3,question,answer\n" + path.read_text())
    with caplog.at_level(logging.WARNING):
        records = read(How2QA, data_dir, "train")
    assert "how2QA_train_release.csv line 1 read as a header row (vid_id, timesteps" in caplog.text
    # the same rows; their ids name their line in the file, one further down now
    assert [{**r, "question_id": None, "choices": sorted(r["choices"]), "label": None} for r in records] == [
        {**r, "question_id": None, "choices": sorted(r["choices"]), "label": None} for r in plain]
    assert [r["question_id"] for r in records] == ["fixtvid0001_1", "fixtvid0001_2", "fixtvid0002_3"]


def test_a_how2qa_header_row_with_a_trailing_comma_is_recognised_as_a_header(tmp_path):
    plain = read(How2QA, release_copy(tmp_path / "a", "how2qa"), "train")
    data_dir = release_copy(tmp_path / "b", "how2qa")
    path = data_dir / "how2QA_train_release.csv"
    path.write_text("vid_id,timesteps,a1,a2,a3,question,answer,\n" + path.read_text())
    records = read(How2QA, data_dir, "train")
    assert [r["question"] for r in records] == [r["question"] for r in plain]


# ---------------------------------------------------------------- TGIF-QA's original tsv


def test_a_tgif_qa_csv_written_with_commas_says_tabs_were_expected(tmp_path):
    data_dir = release_copy(tmp_path, "tgif_qa")
    rewrite(data_dir / "Train_count_question.csv", "\t", ",")
    with pytest.raises(ValueError, match=r"^tgif_qa: .*Train_count_question\.csv line 1: expected a header row of "
                                         r"tab-separated columns including gif_name, question, answer; found commas"):
        read(TGIFQA, data_dir, "train", config="count")


def test_a_tgif_qa_row_with_four_of_its_five_columns_names_its_line(tmp_path):
    data_dir = release_copy(tmp_path, "tgif_qa")
    replace_line(data_dir / "Test_count_question.csv", 2, "tumblr_fixtureb2_400\tHow many times ?\t2\tCOUNT4")
    with pytest.raises(ValueError, match=r"Test_count_question\.csv line 2: has 4 fields, expected 5 tab-separated "
                                         r"\(gif_name, question, answer, vid_id, key\)"):
        read(TGIFQA, data_dir, "test", config="count")


def test_a_tgif_qa_answer_index_outside_the_options_is_named(tmp_path):
    data_dir = release_copy(tmp_path, "tgif_qa_original")
    rewrite(data_dir / "Test_action_question.csv", "\tkick\t0\t", "\tkick\t5\t")
    with pytest.raises(ValueError, match=r"Test_action_question\.csv line 2: answer: expected an integer in \[0, 4\] "
                                         r"\(the index of the correct option\), got '5'"):
        read(TGIFQA, data_dir, "test", config="action")


def test_the_original_tgif_qa_tsv_fixtures_read_with_their_release_ids(tmp_path):
    data_dir = release_copy(tmp_path, "tgif_qa_original")
    frameqa = read(TGIFQA, data_dir, "train", config="frameqa")
    assert [(r["question_id"], r["answer"], r["answer_type"]) for r in frameqa] == [
        ("FRAMEQA101", "red", "color"), ("FRAMEQA102", "cat", "object")]
    (action,) = read(TGIFQA, data_dir, "test", config="action")
    assert (action["choices"], action["label"], action["answer"]) == (["spin", "shrug", "step", "bow", "kick"], 0,
                                                                      "spin")


# ---------------------------------------------------------------- ActivityNet-QA's question and answer files


def test_an_activitynet_qa_answer_type_outside_the_nine_is_named(tmp_path):
    data_dir = release_copy(tmp_path, "activitynet_qa")
    rewrite(data_dir / "train_a.json", '"type": 4', '"type": 12')
    with pytest.raises(ValueError, match=r"^activitynet_qa: .*train_a\.json line 1, entry 2: type: expected an "
                                         r"integer in \[0, 8\] \(motion, spatial_relation, .*other\), got 12"):
        read(ActivityNetQA, data_dir, "val")  # the vocabulary is read from train first


def test_an_activitynet_qa_question_file_without_its_answer_file_names_the_missing_file(tmp_path):
    data_dir = release_copy(tmp_path, "activitynet_qa")
    (data_dir / "train_a.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"train_q\.json has no train_a\.json beside it"):
        read(ActivityNetQA, data_dir, "val")


def test_an_activitynet_qa_question_without_an_answer_is_named(tmp_path):
    data_dir = release_copy(tmp_path, "activitynet_qa")
    path = data_dir / "val_a.json"
    path.write_text(json.dumps(json.loads(path.read_text())[:1]))
    with pytest.raises(ValueError, match=r"val_q\.json line 1, entry 2: question_id: 'v_fixtAnet001_8' has no "
                                         r"answer in .*val_a\.json"):
        read(ActivityNetQA, data_dir, "val")


def test_a_truncated_json_array_says_so(tmp_path):
    data_dir = release_copy(tmp_path, "activitynet_qa")
    path = data_dir / "val_q.json"
    path.write_text(path.read_text()[:-40])
    with pytest.raises(ValueError, match=r"val_q\.json line 1, entry 2: not valid JSON: Unterminated string"):
        read(ActivityNetQA, data_dir, "val")


@pytest.mark.parametrize("text", ["[]", " [ ]\n"])
def test_an_empty_json_array_reads_as_an_empty_annotation_file(tmp_path, text):
    data_dir = release_copy(tmp_path, "activitynet_qa")
    (data_dir / "val_q.json").write_text(text)
    assert read(ActivityNetQA, data_dir, "val") == []
