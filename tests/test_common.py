"""The neutral layer: argparse types say what they refuse, the runner turns any user-caused
error into one line and exit 2 (and nothing else), an atomic write keeps the old file on failure."""

from __future__ import annotations

import argparse
import re

import numpy as np
import pytest

from common.cli import ArgumentParser, UserError, float_in, int_at_least, positive_float, run
from common.errors import InputError
from common.files import read_bounded, read_json, write_atomic
from nas.options import cpu_device_count
from search_spaces.arch_spec import SpecError


@pytest.mark.parametrize(
    "parse, text, message",
    [
        (int_at_least(1), "0", "must be >= 1, got 0"),
        (int_at_least(2), "x", "expected an integer, got 'x'"),
        (float_in(0.0, 1.0), "1", "must be in [0, 1), got 1"),
        (float_in(0.0, 1.0), "nan", "must be in [0, 1), got nan"),
        (positive_float, "0", "must be in (0, inf), got 0"),
        (positive_float, "inf", "must be in (0, inf), got inf"),
        (cpu_device_count, "0", "must be >= 1, got 0"),
        (cpu_device_count, "many", "expected a number or auto, got 'many'"),
    ],
)
def test_a_type_refuses_with_its_reason(parse, text, message):
    with pytest.raises(argparse.ArgumentTypeError, match=re.escape(message)):
        parse(text)


def test_types_accept_their_range():
    assert int_at_least(1)("3") == 3 and float_in(0.0, 1.0)("0") == 0.0 and positive_float("1e-9") == 1e-9
    assert cpu_device_count("2") == 2 and cpu_device_count("auto") >= 1


def test_a_flag_out_of_range_is_one_line_and_exit_2(capsys):
    parser = ArgumentParser(prog="prog")
    parser.add_argument("--n", type=int_at_least(1))
    with pytest.raises(SystemExit) as exited:
        parser.parse_args(["--n", "0"])
    assert exited.value.code == 2
    assert capsys.readouterr().err == "prog: error: argument --n: must be >= 1, got 0\n"


@pytest.mark.parametrize("error", [UserError("bad flag"), SpecError("bad spec"), InputError("bad file")])
def test_the_runner_reports_any_input_error_as_one_line(error, capsys):
    def main(argv):
        raise error

    with pytest.raises(SystemExit) as exited:
        run(main, "prog", [])
    assert exited.value.code == 2
    assert capsys.readouterr().err == f"prog: error: {error}\n"


def test_the_runner_lets_a_bug_through():
    def main(argv):
        raise KeyError("a bug, not a user's mistake")

    with pytest.raises(KeyError):
        run(main, "prog", [])


def test_an_atomic_write_that_fails_keeps_the_old_file(tmp_path):
    path = tmp_path / "a.json"
    write_atomic(path, '{"v": 1}')
    with pytest.raises(TypeError):
        write_atomic(path, 3.5)  # neither str nor bytes: fails after the temporary file exists
    assert read_json(path, InputError) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_read_json_names_the_file(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{")
    with pytest.raises(InputError, match=f"{path}: not JSON"):
        read_json(path, InputError)
    with pytest.raises(InputError, match="cannot read"):
        read_json(tmp_path / "missing.json", InputError)


def test_read_bounded_refuses_a_file_over_its_bound_or_unreadable(tmp_path):
    path = tmp_path / "blob"
    path.write_bytes(b"x" * (2 << 20))
    assert read_bounded(path, 4 << 20, InputError) == b"x" * (2 << 20)
    with pytest.raises(InputError, match="^larger than 1 MiB$"):
        read_bounded(path, 1 << 20, InputError)
    with pytest.raises(InputError, match="^cannot read "):
        read_bounded(tmp_path / "missing", 1 << 20, InputError)


def test_one_number_check_for_what_files_hold():
    from common.values import all_finite, is_number

    assert all(is_number(v) for v in (0, -3, 2.5, np.float32(1.5), np.int64(7)))
    assert not any(is_number(v) for v in (True, np.bool_(True), float("nan"), float("inf"), "1", None, [1]))
    assert all_finite([[1.0, 2.0], [3.0, 4.0]]) and all_finite(5)
    assert not all_finite([1.0, float("nan")]) and not all_finite(np.array([[1.0], [-np.inf]]))


def test_json_lines_name_the_bad_line_and_drop_only_a_torn_last_one(tmp_path):
    from common.files import parse_json_lines, read_json_lines

    text = '{"a": 1}\n\n[2]\n{"b": '
    lines = parse_json_lines(text, InputError, "f.jsonl", torn_last_line=True)
    assert lines.records == [(1, {"a": 1}), (3, [2])]
    assert lines.torn == (4, "not JSON (Expecting value, line 1 column 7)")
    with pytest.raises(InputError, match=r"^f.jsonl: line 4: not JSON \(Expecting value, line 1 column 7\)$"):
        parse_json_lines(text, InputError, "f.jsonl")
    with pytest.raises(InputError, match=r"^f.jsonl: line 1: not JSON"):  # a bad line before the last is never torn
        parse_json_lines('{"a": \n{"b": 2}\n', InputError, "f.jsonl", torn_last_line=True)
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b"\xff\xfe{}\n")
    with pytest.raises(InputError, match=r"bad.jsonl: not a UTF-8 text \(JSON lines\) file"):
        read_json_lines(path, InputError)
