"""The row schema: results.csv as the store writes it and as `hpt results` reads it back."""

from __future__ import annotations

import gc
import io
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from hpt.layout import RESULTS_CSV
from hpt.results import load_results
from hpt.rows import (
    LEADING_COLUMNS,
    TRAILING_COLUMNS,
    TypedLines,
    is_param,
    param_column,
    param_columns,
    param_name,
    params_of,
    parse_csv,
    parse_row,
    read_csv,
    read_lines,
    rows_frame,
    to_csv,
)
from hpt.sinks import open_sink
from hpt.store import ResultStore


def _row(tid: str, finished: str, **values: Any) -> dict[str, Any]:
    error = values.pop("error", "")
    r: dict[str, Any] = {"run_id": "r1", "trial_id": tid, "config_id": f"c-{tid}", "status": "ok", "architecture": "mlp",
                         "fidelity": "full", "period_start": "2013-01-01", "period_end": "2013-01-15",
                         "seed": 1234567}
    r.update(values)
    r.update({"device": "cpu-0", "started_at": "2026-01-01T00:00:00.000+00:00", "finished_at": finished,
              "error": error, "model_uri": "", "baseline_key": "e0dd40cee02b"})
    return r


ERROR = 'RuntimeError: bad value, "x"\nsecond line\r\nthird'
ROWS = [
    _row("t1", "2026-01-01T00:03:00.000+00:00", param_hidden_size=8, param_lr=0.001, param_bidir=True, param_opt="adam",
         val_mse=0.123456789012345, val_mae=None, epochs=3),
    _row("t2", "2026-01-01T00:01:00.000+00:00", param_lr=1.0, param_bidir=False, param_opt='a,b "q"',
         val_mse=float("nan"), val_mae=1e-12, epochs=2, status="diverged", error=ERROR),  # no hidden_size: another run's row
    _row("t3", "2026-01-01T00:02:00.000+00:00", param_hidden_size=16, param_lr=3e-05, param_bidir=None, param_opt=None,
         val_mse=2.5, val_mae=0.25, epochs=None, round=2),
]


def test_results_csv_reads_back_the_values_the_rows_had(tmp_path: Path) -> None:
    (tmp_path / RESULTS_CSV).write_text(to_csv(ROWS))  # results.csv alone: no row objects to fall back on
    frame = load_results(str(tmp_path)).set_index("trial_id")
    assert list(frame.index) == ["t2", "t3", "t1"]  # by finished_at
    hidden = frame["param_hidden_size"]
    assert [hidden["t1"], hidden["t2"], hidden["t3"]] == [8, None, 16] and type(hidden["t1"]) is int
    lr = frame["param_lr"]
    assert [lr["t1"], lr["t2"], lr["t3"]] == [0.001, 1.0, 3e-05] and type(lr["t2"]) is float
    bidir = frame["param_bidir"]
    assert [bidir["t1"], bidir["t2"], bidir["t3"]] == [True, False, None]
    assert [frame["param_opt"][t] for t in ("t1", "t2", "t3")] == ["adam", 'a,b "q"', None]
    assert frame["val_mse"]["t1"] == 0.123456789012345 and math.isnan(frame["val_mse"]["t2"])
    assert math.isnan(frame["val_mae"]["t1"]) and frame["val_mae"]["t2"] == 1e-12
    assert frame["error"]["t2"] == ERROR and pd.isna(frame["error"]["t1"])  # empty error text: no error
    assert frame["round"]["t3"] == 2 and pd.isna(frame["round"]["t1"])


def test_results_csv_cells() -> None:
    text = to_csv(ROWS)
    header = text.splitlines()[0].split(",")
    assert header == [*LEADING_COLUMNS, "param_bidir", "param_hidden_size", "param_lr", "param_opt",
                      "val_mse", "val_mae", "epochs", "round", *TRAILING_COLUMNS]
    cells = parse_csv(text.encode())
    assert cells["t1"]["param_hidden_size"] == "8" and cells["t2"]["param_hidden_size"] == ""  # never 8.0
    assert cells["t2"]["param_lr"] == "1.0" and cells["t3"]["param_lr"] == "3e-05"  # floats as repr
    assert cells["t1"]["param_bidir"] == "True" and cells["t3"]["param_bidir"] == ""
    assert cells["t2"]["val_mse"] == "" and cells["t1"]["val_mae"] == ""  # NaN and None: empty
    assert cells["t3"]["epochs"] == "" and cells["t1"]["epochs"] == "3"
    assert cells["t2"]["error"] == ERROR and cells["t2"]["param_opt"] == 'a,b "q"'


def test_text_rows_are_written_back_unchanged() -> None:
    """The store merges results.csv as text rows with new row dicts: the text must survive unchanged."""
    first = to_csv(ROWS)
    again = to_csv(list(parse_csv(first.encode()).values()))
    assert again == first
    new = _row("t4", "2026-01-01T00:00:30.000+00:00", param_lr=0.5, val_mse=0.5, epochs=4)
    merged = to_csv([*parse_csv(first.encode()).values(), new])
    lines = merged.splitlines()
    assert lines[1].startswith("r1,t4,")  # the earliest finished
    assert parse_csv(merged.encode())["t1"] == parse_csv(first.encode())["t1"]


def test_results_csv_lines_type_back_to_the_rows_they_were() -> None:
    """What a run takes from results.csv's ok lines instead of reading their row objects (ResultStore.rows)."""
    lines = TypedLines(*_lines(to_csv(ROWS)))
    typed = lines.rows
    for row in ROWS:
        back = typed[row["trial_id"]]
        expected = {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}  # NaN: no value
        assert {k: back[k] for k in row} == expected
        assert [type(back[k]) for k in row] == [type(v) for v in expected.values()]  # 8 an int, 1.0 a float, True...
        assert all(back[k] is None for k in back.keys() - row.keys())  # columns of other rows: no value
    listed = _row("t5", "2026-01-01T00:04:00.000+00:00", param_layers=[64, 32], val_mse=0.1)
    with_list = TypedLines(*_lines(to_csv([*ROWS, listed])))
    assert list(with_list.rows) == ["t2", "t3", "t1"]  # a list: not typed
    assert with_list.damaged == set() and lines.damaged == set()  # a parameter's list is no damage (its object says it)
    text = _row("t6", "2026-01-01T00:05:00.000+00:00", val_mse="abc")  # text where a number belongs: damage
    damaged = TypedLines(*_lines(to_csv([*ROWS, text])))
    assert damaged.damaged == {"t6"} and "t6" not in damaged.rows
    for table, ids in ((lines, ["t1", "t3", "t2"]), (with_list, ["t3", "t1"])):  # the frame of a run's summary
        pd.testing.assert_frame_equal(table.frame(ids), rows_frame(table.rows[t] for t in ids), check_exact=True)
    floats = [_row(f"f{i}", "2026-01-01T00:00:00.000+00:00", val_mse=v) for i, v in enumerate([0.1, 1e-300, 2.0, 7e22])]
    back = TypedLines(*_lines(to_csv(floats))).rows  # a column of floats typed in one call: still floats, exactly
    assert [(type(r["val_mse"]), r["val_mse"]) for r in back.values()] == [(float, r["val_mse"]) for r in floats]


def test_only_lines_written_whole_are_taken_for_rows() -> None:
    """A store takes an ok line for its row only when the line is whole: a file cut short is damaged at its end."""
    text = to_csv(ROWS)
    cut = text[: text.rindex("2026-01-01T00:03")] + "2026-01-01T00:0"  # inside the last line's finished_at
    assert list(parse_csv(cut.encode())) == ["t2", "t3", "t1"]  # read, padded, by hpt results
    assert [cells[1] for cells in _lines(cut, whole=True)[1]] == ["t2", "t3"]
    assert [cells[1] for cells in _lines(text[:-1], whole=True)[1]] == ["t2", "t3"]  # no final line break: cut?
    blank = text.replace("\nr1,t3,", "\n\nr1,t3,")
    assert [cells[1] for cells in _lines(blank, whole=True)[1]] == ["t2", "t3", "t1"]  # a blank line is no damage


def _lines(text: str, whole: bool = False) -> tuple[list[str], list[list[str]]]:
    table = read_lines(text.encode(), whole)
    assert table is not None
    return table


def test_rows_finished_at_the_same_time_keep_their_order() -> None:
    rows = [_row(t, "2026-01-01T00:00:00.000+00:00", val_mse=0.1) for t in ("b", "a", "c")]
    assert list(parse_csv(to_csv(rows).encode())) == ["b", "a", "c"]


def test_no_rows_is_a_header() -> None:
    assert to_csv([]) == ",".join(LEADING_COLUMNS + TRAILING_COLUMNS) + "\n"
    assert parse_csv(to_csv([]).encode()) == {}


@pytest.mark.parametrize("data", [b"a,b\n1,2\n", b"trial_id,x\nt1,1,2\n", b"\xff\xfe trial_id", b""])
def test_a_damaged_or_foreign_results_csv_is_no_rows(data: bytes) -> None:
    assert parse_csv(data) == {}


NOT_ROWS = [b"{bad", b"[1, 2]", b'{"trial_id": "x", "status": "ok"}', b'{"trial_id": "x", "config_id": "c"}',
            b'{"trial_id": 5, "config_id": "c", "status": "ok"}', b"\xff\xfe"]


def test_the_store_and_results_agree_on_what_a_row_object_is(tmp_path: Path) -> None:
    (tmp_path / "rows").mkdir()
    good = _row("good", "2026-01-01T00:00:00.000+00:00", val_mse=0.1)
    (tmp_path / "rows" / "good.json").write_text(json.dumps(good))
    for i, data in enumerate(NOT_ROWS):
        (tmp_path / "rows" / f"x{i}.json").write_bytes(data)
        assert parse_row(data) is None
    assert parse_row(json.dumps(good).encode()) == good
    assert list(ResultStore(open_sink(str(tmp_path))).rows()) == ["good"]
    assert list(load_results(str(tmp_path))["trial_id"]) == ["good"]


def test_the_param_codec_reads_back_what_a_row_and_results_csv_record(tmp_path: Path) -> None:
    """params_of gives the tuned parameters by name, as the row objects and the CSV both record them."""
    assert params_of(ROWS[0]) == {"hidden_size": 8, "lr": 0.001, "bidir": True, "opt": "adam"}
    assert params_of(ROWS[2]) == {"hidden_size": 16, "lr": 3e-05}  # those without a value left out
    frame = read_csv(to_csv(ROWS).encode())
    by_id = {r["trial_id"]: params_of(r) for _, r in frame.iterrows()}
    assert by_id == {r["trial_id"]: params_of(r) for r in ROWS}
    assert type(by_id["t1"]["hidden_size"]) is int and type(by_id["t2"]["lr"]) is float  # plain JSON values
    assert param_columns(frame.columns) == ["param_bidir", "param_hidden_size", "param_lr", "param_opt"]
    assert [param_name(c) for c in param_columns(frame.columns)] == ["bidir", "hidden_size", "lr", "opt"]
    assert param_column("lr") == "param_lr" and is_param("param_lr") and not is_param("val_mse")


def test_text_columns_read_back_as_written_whatever_they_look_like(monkeypatch: pytest.MonkeyPatch) -> None:
    """read_csv tells pandas only the seed and error columns are text (telling it every text column costs 0.3 s of
    100,000 rows): one that pandas reads as numbers or nothing all the same is read again, as text."""
    rows = [_row("t1", "2026-01-01T00:00:01.000+00:00", run_id="0456", period_start="2013", param_lr=0.5, val_mse=0.25),
            _row("t2", "2026-01-01T00:00:02.000+00:00", run_id="123", period_start="2014", param_lr=8, val_mse=0.5)]
    rows[0]["device"], rows[1]["device"] = "1e5", "7"
    told: list[dict[str, Any]] = []
    real = pd.read_csv

    def spy(*args: Any, **kwargs: Any) -> pd.DataFrame:
        told.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(pd, "read_csv", spy)
    frame = read_csv(to_csv(rows).encode())
    header = to_csv(rows).split("\n")[0].split(",")
    assert set(told[0]["dtype"]) == {"seed", "error", "param_lr"}  # the other text columns pandas reads as text itself
    again = ("run_id", "period_start", "device", "model_uri")  # numbers, or (model_uri) nothing: read again
    assert told[1]["usecols"] == [header.index(c) for c in again] and len(told) == 2
    assert frame["run_id"].tolist() == ["0456", "123"] and frame["device"].tolist() == ["1e5", "7"]
    assert frame["period_start"].tolist() == ["2013", "2014"] and frame["seed"].tolist() == ["1234567"] * 2
    assert frame["error"].isna().all() and frame["param_lr"].tolist() == [0.5, 8]
    text = pd.api.types.pandas_dtype(str)
    assert all(frame[c].dtype == text for c in (*LEADING_COLUMNS, *TRAILING_COLUMNS))
    explicit = real(io.BytesIO(to_csv(rows).encode()), dtype={c: str for c in (*LEADING_COLUMNS, *TRAILING_COLUMNS)})
    pd.testing.assert_frame_equal(frame.drop(columns="param_lr"), explicit.drop(columns="param_lr"), check_exact=True)


def test_results_csv_lines_are_typed_with_the_collector_paused_into_objects_it_does_not_walk(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run on 100,000 done trials types results.csv's lines into rows: the garbage collector, walking the cells
    again and again as they pile up, cost half a second of it."""
    rows = [_row(f"t{i:03d}", f"2026-01-01T00:00:{i % 60:02d}.000+00:00", param_lr=i / 1000, val_mse=i / 7)
            for i in range(300)]
    (tmp_path / "rows").mkdir()
    for row in rows:
        (tmp_path / "rows" / f"{row['trial_id']}.json").write_text(json.dumps(row))
    (tmp_path / RESULTS_CSV).write_text(to_csv(rows))
    collecting: list[bool] = []
    made: list[TypedLines] = []
    real = TypedLines.__init__

    def spy(self: TypedLines, *args: Any) -> None:
        collecting.append(gc.isenabled())
        real(self, *args)
        made.append(self)

    monkeypatch.setattr(TypedLines, "__init__", spy)
    store = ResultStore(open_sink(str(tmp_path)))
    got = store.rows()
    assert collecting == [False] and gc.isenabled()  # paused while typing, and on again after
    assert store.objects_read == 0 and got == {r["trial_id"]: r for r in rows}
    assert not any(gc.is_tracked(column) for column in made[0].columns)  # arrays of objects: never walked
    assert not any(gc.is_tracked(row) for row in got.values())  # dicts of text and numbers: never walked


def test_a_parameter_list_in_results_csv_is_no_damage_to_warn_of_or_rewrite(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A builder's list-valued parameter is written as text ("[64, 32]"): its line is read from its row object,
    as before, but it is not damage: no warning, results.csv left as it is, hpt sync replaces nothing."""
    rows = [_row("t1", "2026-01-01T00:00:00.000+00:00", param_layers=[64, 32], val_mse=0.1),
            _row("t2", "2026-01-01T00:00:01.000+00:00", param_layers=[8], val_mse=0.2)]
    (tmp_path / "rows").mkdir()
    for r in rows:
        (tmp_path / "rows" / f"{r['trial_id']}.json").write_text(json.dumps(r))
    (tmp_path / "results.csv").write_text(to_csv(rows))
    before = (tmp_path / "results.csv").stat().st_mtime_ns
    store = ResultStore(open_sink(str(tmp_path)))
    assert set(store.rows()) == {"t1", "t2"}
    store.write_csv()
    assert "damaged" not in caplog.text and (tmp_path / "results.csv").stat().st_mtime_ns == before
    report = ResultStore(open_sink(str(tmp_path))).sync()
    assert (report.repaired, report.damaged, report.rows) == (0, 0, 2)
    assert "damaged" not in "".join(load_results(str(tmp_path)).columns) and "damaged" not in caplog.text
