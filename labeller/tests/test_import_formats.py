"""The streaming readers on their own, without a database."""
import io

import pytest

from labeller.import_formats import ParsedRow, RowError, UnsupportedFile, format_for, read_rows


def rows(content: bytes, fmt: str):
    return list(read_rows(io.BytesIO(content), fmt))


def test_it_reads_csv_rows_with_line_numbers_and_external_ids():
    parsed = rows(b'external_id,text\n1,hello\n2,"two\nlines"\n3,bye\n', "csv")
    assert [(r.row, r.line, r.external_id, r.data) for r in parsed] == [
        (1, 2, "1", {"text": "hello"}),
        (2, 4, "2", {"text": "two\nlines"}),
        (3, 5, "3", {"text": "bye"}),
    ]


def test_it_accepts_a_utf8_byte_order_mark():
    assert rows("\ufefftext\ncafé\n".encode("utf-8"), "csv")[0].data == {"text": "café"}


def test_it_reports_a_row_with_the_wrong_number_of_columns_and_goes_on():
    parsed = rows(b"text,source\na,web\nb\nc,app\n", "csv")
    assert isinstance(parsed[1], RowError)
    assert (parsed[1].line, parsed[1].message) == (3, "expected 2 columns, found 1")
    assert isinstance(parsed[2], ParsedRow) and parsed[2].data == {"text": "c", "source": "app"}


def test_it_refuses_a_file_that_is_not_utf8():
    parsed = rows("text\ncaf\xe9\n".encode("latin-1"), "csv")
    assert isinstance(parsed[-1], RowError)
    assert "not valid UTF-8" in parsed[-1].message


def test_it_refuses_markup_whatever_the_extension_says():
    with pytest.raises(UnsupportedFile, match="HTML, SVG or XML"):
        rows(b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', "csv")


def test_it_refuses_files_of_other_types():
    with pytest.raises(UnsupportedFile, match=r"unsupported file type '\.svg'"):
        format_for("drawing.svg")
    with pytest.raises(UnsupportedFile, match=r"'\.html'"):
        format_for("page.html")


def test_it_reads_jsonl_flat_objects_and_reports_malformed_lines():
    parsed = rows(b'{"text": "a", "external_id": 7}\n\n{"text": \n["not", "an object"]\n', "jsonl")
    assert parsed[0].data == {"text": "a"} and parsed[0].external_id == "7"
    assert isinstance(parsed[1], RowError) and parsed[1].line == 3 and "malformed JSON" in parsed[1].message
    assert isinstance(parsed[2], RowError) and parsed[2].line == 4 and "expected a JSON object" in parsed[2].message


def test_it_reads_label_studio_tasks_with_their_annotations():
    content = b"""[
      {"data": {"text": "where is my card"}, "annotations": [
        {"result": [{"type": "choices", "value": {"choices": ["card_arrival"]}}]},
        {"result": [{"type": "choices", "value": {"choices": ["lost_card"]}}], "was_cancelled": true}
      ]},
      {"data": {"text": "rate?"}, "external_id": "x2"}
    ]"""
    first, second = rows(content, "json")
    assert first.data == {"text": "where is my card"} and first.annotations == [["card_arrival"]]
    assert second.external_id == "x2" and second.annotations == []


def test_it_reports_a_truncated_json_file():
    parsed = rows(b'[{"data": {"text": "a"}}, {"data": ', "json")
    assert isinstance(parsed[-1], RowError) and "malformed JSON" in parsed[-1].message
