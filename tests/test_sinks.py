"""Sinks: one contract for the local folder, S3 (moto server) and GCS (fake-gcs-server); then
whole runs against the servers: two runs on one prefix, outages, preflight, reading back."""

from __future__ import annotations

import importlib.metadata
import io
import json
import os
import re
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from hpt.errors import InputError
from hpt.layout import RESULTS_CSV
from hpt.periods import Period
from hpt.sinks import Sink, SinkAccessError, open_sink, redact
from hpt.sinks.local import LocalSink
from hpt.store import ResultStore
from hpt.trial import Status, Trial, TrialResult
from tests import gated
from tests.cloud_servers import S3_SECRET, LocalServer, free_port, start_gcs, start_s3
from tests.conftest import ROOT, hpt_cli, tiny_spec, trial_rows

SCHEME = {"s3": "s3", "gcs": "gs"}


def _fast_env(tmp_path: Path) -> dict[str, str]:
    # Short timeouts and few retries, so outages show within seconds; a private journal per test.
    return {"HPT_JOURNAL": str(tmp_path / "journal"), "HPT_SINK_TIMEOUT": "3", "HPT_SINK_RETRIES": "2"}


@pytest.fixture(params=["local", "s3", "gcs"])
def sink(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Sink:
    """A fresh, empty results location of each kind."""
    if request.param == "local":
        return LocalSink(tmp_path / "results" / "some" / "prefix")
    server: LocalServer = request.getfixturevalue(f"{request.param}_server")
    for k, v in {**server.client_env(), **_fast_env(tmp_path)}.items():
        monkeypatch.setenv(k, v)
    return open_sink(f"{SCHEME[request.param]}://{server.create_bucket()}/some/prefix")


def _sibling(sink: Sink) -> Sink:
    """The location next to `sink` whose prefix starts with the same letters."""
    if isinstance(sink, LocalSink):
        return LocalSink(str(sink.root) + "2")
    return open_sink(sink.uri + "2")


# ---------------------------------------------------------------- the contract, on every sink

def test_write_read_and_replace(sink: Sink) -> None:
    assert sink.read("rows/a.json") is None
    sink.write("rows/a.json", b'{"x": 1}')
    assert sink.read("rows/a.json") == b'{"x": 1}'
    sink.write("rows/a.json", b"")
    assert sink.read("rows/a.json") == b""


def test_binary_and_large_objects_round_trip(sink: Sink) -> None:
    data = secrets.token_bytes(9 * 1024 * 1024)  # above GCS's single-request size: a resumable upload
    sink.write("models/big.pt", data)
    assert sink.read("models/big.pt") == data


def test_list_is_sorted_relative_and_scoped_to_the_prefix(sink: Sink) -> None:
    for key in ("rows/b.json", "rows/a.json", "models/a.pt", "rowsx/c.json"):
        sink.write(key, b"1")
    _sibling(sink).write("rows/z.json", b"1")
    assert sink.list("rows/") == ["rows/a.json", "rows/b.json"]
    assert sink.list("models/") == ["models/a.pt"]
    assert sink.list("nothing/") == []


def test_folders_are_the_names_just_inside_a_prefix(sink: Sink) -> None:
    for key in ("rows/b.json", "models/x/a.pt", "results.csv", "runs/r.json"):
        sink.write(key, b"1")
    _sibling(sink).write("other/z.json", b"1")
    assert sink.folders() == ["models", "rows", "runs"]  # not the file results.csv, not the sibling's
    assert sink.folders("models/") == ["x"]
    assert sink.folders("rows/") == [] and sink.folders("nothing/") == []


def test_url_names_the_object(sink: Sink) -> None:
    sink.write("models/m.pt", b"1")
    url = sink.url("models/m.pt")
    assert url.endswith("some/prefix/models/m.pt")
    if sink.remote:
        assert url == sink.uri + "/models/m.pt"
    else:
        assert Path(url).read_bytes() == b"1"


def test_check_writable_passes_and_leaves_nothing_behind(sink: Sink) -> None:
    sink.check_writable()
    sink.check_writable()
    assert not [k for k in _all_keys(sink) if "check" in k]


def _all_keys(sink: Sink) -> list[str]:
    if isinstance(sink, LocalSink):
        return [str(p.relative_to(sink.root)) for p in sink.root.rglob("*") if p.is_file()]
    return sink.list("")


def test_conditional_write_creates_updates_and_refuses_stale_versions(sink: Sink) -> None:
    assert sink.read_versioned("results.csv") is None
    v1 = sink.write_if("results.csv", b"one", None)
    assert v1
    assert sink.write_if("results.csv", b"again", None) is None  # exists already
    got = sink.read_versioned("results.csv")
    assert got == (b"one", v1)
    v2 = sink.write_if("results.csv", b"two", v1)
    assert v2 and v2 != v1
    assert sink.write_if("results.csv", b"stale", v1) is None
    assert sink.read("results.csv") == b"two"
    sink.write("results.csv", b"plain")  # a plain write moves the version on too
    assert sink.write_if("results.csv", b"stale", v2) is None
    assert sink.read("results.csv") == b"plain"


def test_delete_removes_one_object_and_a_missing_one_is_no_error(sink: Sink) -> None:
    sink.write("claims/a.json", b"1")
    sink.write("claims/b.json", b"2")
    sink.delete("claims/a.json")
    sink.delete("claims/a.json")
    sink.delete("claims/never.json")
    assert sink.read("claims/a.json") is None and sink.list("claims/") == ["claims/b.json"]
    assert sink.write_if("claims/a.json", b"again", None)  # free to be created again


def test_racing_conditional_writers_have_one_winner(sink: Sink) -> None:
    base = sink.write_if("results.csv", b"base", None)
    wins: list[int] = []
    barrier = threading.Barrier(6)

    def writer(i: int) -> None:
        barrier.wait()
        if sink.write_if("results.csv", f"writer {i}".encode(), base) is not None:
            wins.append(i)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1
    assert sink.read("results.csv") == f"writer {wins[0]}".encode()


def _result(i: int, tag: str) -> TrialResult:
    period = Period(pd.Timestamp("2013-01-01"), pd.Timestamp("2013-01-15"))
    trial = Trial(f"{tag}{i:04d}", f"c{tag}{i:04d}", "mlp", {"lr": 0.001 * (i + 1)}, ("lr",), period, 0)
    return TrialResult(trial, Status.OK, {"val_mse": 1.0 / (i + 1)}, started_at="2013-01-01T00:00:00+00:00",
                       finished_at=f"2024-01-01T00:00:{i:02d}+00:00", device="cpu-0", model=b"model", curve="epoch\n1\n")


def test_concurrent_stores_on_one_location_keep_every_row(sink: Sink) -> None:
    """Two writers merging results.csv at once: every row of both ends up in it."""
    stores = [ResultStore(sink), ResultStore(open_sink(sink.uri) if sink.remote else LocalSink(sink.uri))]

    def run(store: ResultStore, tag: str) -> None:
        for i in range(8):
            store.record(_result(i, tag), f"run-{tag}", ["val_mse"])

    threads = [threading.Thread(target=run, args=(s, tag)) for s, tag in zip(stores, "ab", strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    table = pd.read_csv(io.BytesIO(sink.read(RESULTS_CSV) or b""))
    assert sorted(table["trial_id"]) == sorted([f"a{i:04d}" for i in range(8)] + [f"b{i:04d}" for i in range(8)])
    assert len(sink.list("rows/")) == 16 and len(sink.list("models/")) == 16
    assert ResultStore(sink).done() == set(table["trial_id"])


def test_sync_adds_rows_missing_from_results_csv(sink: Sink) -> None:
    store = ResultStore(sink)
    store.record(_result(0, "a"), "run-a", ["val_mse"])
    row = json.loads(sink.read("rows/a0000.json") or b"")
    sink.write("rows/b0001.json", json.dumps({**row, "trial_id": "b0001"}).encode())  # a run that died before the CSV
    report = ResultStore(sink).sync()
    assert (report.repaired, report.rows) == (1, 2)
    assert set(pd.read_csv(io.BytesIO(sink.read(RESULTS_CSV) or b""))["trial_id"]) == {"a0000", "b0001"}


@pytest.mark.parametrize("umask", [0o022, 0o027], ids=["umask-022", "umask-027"])
def test_local_files_get_the_mode_a_plain_open_gives(tmp_path: Path, umask: int) -> None:
    """A shared results folder stays readable to whom the umask allows, not only to its writer."""
    old = os.umask(umask)
    try:
        sink = LocalSink(tmp_path / "results")
        ResultStore(sink).record(_result(0, "a"), "run-a", ["val_mse"])
        ResultStore(sink).write_run({"run_id": "run-a"})
        sink.write_if("extra.txt", b"1", None)
    finally:
        os.umask(old)
    modes = {str(p.relative_to(sink.root)): oct(p.stat().st_mode & 0o777) for p in sink.root.rglob("*") if p.is_file()}
    assert {k.split("/")[0] for k in modes} == {"results.csv", "rows", "models", "curves", "runs", "extra.txt"}
    assert modes == dict.fromkeys(modes, oct(0o666 & ~umask))


def test_local_sink_on_a_file_says_it_is_not_a_folder(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(InputError, match=f"^cannot write results to {afile}: it is a file, not a folder$"):
        LocalSink(afile).check_writable()
    with pytest.raises(InputError, match=f"^cannot write results to {afile}/sub: {afile} is a file"):
        LocalSink(afile / "sub").check_writable()


def test_a_folder_that_cannot_be_made_is_said_before_the_run_and_nothing_is_left_behind(tmp_path: Path) -> None:
    """os.access cannot tell (root may write anywhere, but not under /proc): the check makes the folders and removes
    them again; `hpt plan` checks as the run does."""
    if Path("/proc/self").is_dir():
        with pytest.raises(InputError, match="^cannot write results to /proc/hpt-nope/x: "):
            LocalSink("/proc/hpt-nope/x").check_writable()
    LocalSink(tmp_path / "a" / "b" / "c").check_writable()
    assert list(tmp_path.iterdir()) == []  # the folders it made to know are gone again
    (tmp_path / "afile").write_text("x")
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({**tiny_spec(), "sink": "afile"}))
    done = hpt_cli("plan", str(spec))
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        f"hpt: error: cannot write results to {tmp_path / 'afile'}: it is a file, not a folder"]
    checked = hpt_cli("validate", str(spec))  # as plan and the run do, naming the key
    assert checked.returncode == 2 and checked.stderr.strip().splitlines() == [
        f"hpt: error: {spec}: sink: cannot write results to {tmp_path / 'afile'}: it is a file, not a folder"]


# ---------------------------------------------------------------- remote-only behaviour

@pytest.fixture(params=["s3", "gcs"])
def server(request: pytest.FixtureRequest) -> LocalServer:
    return request.getfixturevalue(f"{request.param}_server")  # type: ignore[no-any-return]


def test_streaming_store_journals_then_delivers_and_a_dead_runs_journal_is_adopted(
        server: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in {**server.client_env(), **_fast_env(tmp_path)}.items():
        monkeypatch.setenv(k, v)
    uri = f"{SCHEME[server.kind]}://{server.create_bucket()}/p"
    store = ResultStore(open_sink(uri), stream=True)
    store.record(_result(0, "a"), "run-a", ["val_mse"])
    assert store.close() == []
    assert open_sink(uri).list("rows/") == ["rows/a0000.json"]

    # A process that journaled a trial and died before delivering it: its journal is unlocked.
    dead = ResultStore(open_sink(uri), stream=True)
    assert dead.journal is not None
    dead.journal.add([("models/a0001.pt", b"m"), ("rows/a0001.json", json.dumps({"trial_id": "a0001", "status": "ok",
                      "finished_at": "2024"}).encode())], {"trial_id": "a0001", "status": "ok", "finished_at": "2024"})
    dead.journal.close()
    assert dead.journal.count_waiting() == 1
    report = ResultStore(open_sink(uri)).sync()
    assert report.delivered == 1 and report.rows == 2
    assert dead.journal.count_waiting() == 0
    assert open_sink(uri).read("models/a0001.pt") == b"m"


def test_redact_hides_credentials_and_signatures(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t-value-123")
    text = ("GET https://b.s3.amazonaws.com/k?X-Amz-Signature=abcdef&X-Amz-Credential=AKIAABCDEFGHIJKLMNOP%2F "
            "Authorization: Bearer ya29.token-value key AKIAABCDEFGHIJKLMNOP secret s3cr3t-value-123")
    out = redact(text)
    for secret in ("abcdef", "ya29.token-value", "AKIAABCDEFGHIJKLMNOP", "s3cr3t-value-123"):
        assert secret not in out


def test_credentials_in_an_endpoint_url_never_reach_the_output(tmp_path: Path) -> None:
    """AWS_ENDPOINT_URL and STORAGE_EMULATOR_HOST with a user and password, at an address where nothing listens: every
    command that touches the bucket fails (exit 1) naming the endpoint without its user and password."""
    port = free_port()
    aws = {"AWS_ENDPOINT_URL": f"http://hpt-user:endpoint-pw-71@127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
           "AWS_SECRET_ACCESS_KEY": "key-secret-4711", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_EC2_METADATA_DISABLED": "true", **_fast_env(tmp_path), "HPT_SINK_TIMEOUT": "1"}
    gcs = {"STORAGE_EMULATOR_HOST": f"http://hpt-user:endpoint-pw-71@127.0.0.1:{port}", **_fast_env(tmp_path),
           "HPT_SINK_TIMEOUT": "1"}
    data = tmp_path / "data.csv"
    data.write_text("ts,y\n2013-01-01 00:00,1\n")
    for args, env in ((["run", str(_spec_file(tmp_path, "ep", [0.001])), "--sink", "s3://bucket-x/p"], aws),
                      (["results", "s3://bucket-x/p"], aws),
                      (["predict", "s3://bucket-x/p/models/a.pt", "--data", str(data)], aws),
                      (["results", "gs://bucket-x/p"], gcs)):
        done = _hpt(args, env)
        assert done.returncode == 1, done.stdout + done.stderr
        assert "endpoint-pw-71" not in done.stdout + done.stderr and "hpt-user" not in done.stdout + done.stderr
        assert done.stderr.startswith("hpt: error: ") and "Traceback" not in done.stderr, done.stderr
        assert f"127.0.0.1:{port}" in done.stderr, done.stderr  # where it tried, still said


def test_credentials_in_the_uri_are_refused_without_echoing_them() -> None:
    with pytest.raises(Exception) as e:
        open_sink("s3://AKIAXX:topsecret@bucket/prefix")
    assert "topsecret" not in str(e.value)


def test_the_cloud_clients_are_dependencies_and_the_old_extras_are_empty_aliases() -> None:
    meta = importlib.metadata.metadata("hpt")
    requires = meta.get_all("Requires-Dist") or []
    unconditional = [r for r in requires if ";" not in r]
    for client in ("google-cloud-storage>=", "boto3>="):
        assert any(r.startswith(client) for r in unconditional), requires
    # pip install 'hpt[gcs]' (or s3, cloud) still resolves, without a "does not provide the extra" warning
    assert {"gcs", "s3", "cloud"} <= set(meta.get_all("Provides-Extra") or [])
    assert not [r for r in requires if any(f'extra == "{x}"' in r for x in ("gcs", "s3", "cloud"))], requires


@pytest.mark.parametrize("scheme, module, requirement",
                         [("s3", "boto3", "boto3"), ("gs", "google.cloud", "google-cloud-storage")])
def test_a_client_library_that_cannot_be_imported_is_reported_as_a_broken_install(scheme: str, module: str,
                                                                                 requirement: str) -> None:
    declared = [r for r in importlib.metadata.requires("hpt") or [] if r.startswith(f"{requirement}>=") and ";" not in r]
    assert len(declared) == 1, "the client is a regular dependency of hpt"
    code = (f"import runpy, sys\nsys.modules[{module!r}] = None\nsys.argv = ['hpt', *sys.argv[1:]]\n"
            "runpy.run_module('hpt', run_name='__main__', alter_sys=True)")
    done = subprocess.run([sys.executable, "-c", code, "results", f"{scheme}://bucket/p"], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)
    assert done.returncode == 1, done.stderr  # not bad input (2): the installation is at fault
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(f"hpt: error: {scheme}:// locations need {requirement}, a dependency of hpt that cannot be "
                                  "imported (ModuleNotFoundError: "), done.stderr
    assert f"this installation of hpt is broken; repair it in hpt's environment with pip install '{declared[0]}'" in done.stderr
    assert "hpt[" not in done.stderr


# ---------------------------------------------------------------- whole runs against the servers

def _spec_file(tmp_path: Path, name: str, lrs: list[float], epochs: int = 1, gate: Path | None = None) -> Path:
    """A spec of one period; its trials wait at `gate` after their first epoch (tests/gated.py) if given."""
    doc = tiny_spec(name=name, parameters={"lr": lrs}, date_ranges=[["2013-01-01", "2013-01-15"]],
                    training={"epochs": epochs, "patience": 0})
    if gate is not None:
        doc.update(architecture=gated.ARCHITECTURE, parameters={"lr": lrs, "gate": [str(gate)]})
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(doc))
    return path


def _env(extra: dict[str, str]) -> dict[str, str]:
    """The test's environment with `extra` on top; an empty value removes the variable."""
    return {k: v for k, v in {**os.environ, **extra}.items() if v != ""}


def _popen(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "hpt", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT, env=_env(env))


def _hpt(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hpt", *args], capture_output=True, text=True, cwd=ROOT,
                          env=_env(env), timeout=timeout)


def _csv(server: LocalServer, bucket: str, prefix: str) -> pd.DataFrame:
    return trial_rows(pd.read_csv(io.BytesIO(server.get(bucket, f"{prefix}/results.csv"))))


@pytest.fixture(scope="module", params=["s3", "gcs"])
def two_runs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Two `hpt run` processes, 10 trials each, writing to one prefix at the same time."""
    server: LocalServer = request.getfixturevalue(f"{request.param}_server")
    tmp = tmp_path_factory.mktemp(f"two-runs-{request.param}")
    bucket = server.create_bucket()
    uri = f"{SCHEME[server.kind]}://{bucket}/jenkins/tiny"
    env = {**server.client_env(), **_fast_env(tmp)}
    specs = [_spec_file(tmp, f"build{b}", [round(0.0005 * (i + 1) + 0.0001 * b, 6) for i in range(10)]) for b in (1, 2)]
    procs = [_popen(["run", str(s), "--sink", uri, "--workers", "1"], env) for s in specs]
    outputs = [p.communicate(timeout=240) for p in procs]
    yield {"server": server, "bucket": bucket, "uri": uri, "env": env, "codes": [p.returncode for p in procs],
           "outputs": outputs}


def test_two_concurrent_runs_on_one_prefix_keep_all_20_rows(two_runs: dict[str, Any]) -> None:
    assert two_runs["codes"] == [0, 0], two_runs["outputs"]
    server, bucket = two_runs["server"], two_runs["bucket"]
    table = _csv(server, bucket, "jenkins/tiny")
    assert len(table) == 20 and table["trial_id"].is_unique
    assert set(table["status"]) == {"ok"}
    rows = server.keys(bucket, "jenkins/tiny/rows/")  # and the 2 naive baselines' (both specs share their ids)
    assert len(rows) == 20 + 2 and {Path(k).stem for k in rows} >= set(table["trial_id"])
    assert len(server.keys(bucket, "jenkins/tiny/models/")) == 20
    assert len(server.keys(bucket, "jenkins/tiny/runs/")) == 2
    assert server.keys(bucket, "jenkins/tiny/.hpt") == []  # the preflight probe is gone


def test_results_and_load_model_read_back_from_the_bucket(two_runs: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    done = _hpt(["results", two_runs["uri"], "--format", "csv", "--top", "0"], two_runs["env"])
    assert done.returncode == 0, done.stderr
    assert len(pd.read_csv(io.StringIO(done.stdout))) == 20  # one line per config
    for k, v in two_runs["env"].items():
        monkeypatch.setenv(k, v)
    from hpt import load_model

    table = _csv(two_runs["server"], two_runs["bucket"], "jenkins/tiny")
    uri = table["model_uri"].iloc[0]
    assert uri.startswith(two_runs["uri"] + "/models/")
    model = load_model(uri)
    assert model.trial_id == table["trial_id"].iloc[0]


def test_results_of_the_bucket_folder_above_name_the_results_inside_it(two_runs: dict[str, Any]) -> None:
    parent = two_runs["uri"].rsplit("/", 1)[0]
    done = _hpt(["results", parent], two_runs["env"])
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip() == (f"hpt: error: no results at {parent}: no results.csv; no rows/; results are in tiny "
                                   f"inside it (give one of those, e.g. {two_runs['uri']})")


def test_no_secret_reaches_output_rows_or_run_records(two_runs: dict[str, Any]) -> None:
    server, bucket = two_runs["server"], two_runs["bucket"]
    text = "".join(o + e for o, e in two_runs["outputs"])
    text += "".join(server.get(bucket, k).decode() for k in server.keys(bucket, "jenkins/tiny/runs/"))
    text += server.get(bucket, "jenkins/tiny/results.csv").decode()
    assert S3_SECRET not in text and "Traceback" not in text


def _wait_for_rows(server: LocalServer, bucket: str, prefix: str, n: int, proc: subprocess.Popen[str]) -> None:
    """Until `n` trials' rows (the two naive baselines' rows apart) are at the prefix."""
    def arrived() -> bool:
        try:
            return len(server.keys(bucket, prefix + "/rows/")) >= n + 2
        except Exception:
            return False

    gated.wait_for(arrived, f"{n} rows did not arrive", timeout=120, alive=proc)


class _Lines:
    """A process's stdout and stderr, read as they come (so that a test can wait for a line)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.out: list[str] = []
        self.err: list[str] = []
        self.readers = [threading.Thread(target=self._read, args=(stream, lines), daemon=True)
                        for stream, lines in ((proc.stdout, self.out), (proc.stderr, self.err))]
        for reader in self.readers:
            reader.start()

    @staticmethod
    def _read(stream: Any, lines: list[str]) -> None:
        lines.extend(stream)

    def said(self, text: str) -> bool:
        return any(text in line for line in list(self.err))

    def communicate(self, timeout: float) -> tuple[str, str]:
        self.proc.wait(timeout)
        for reader in self.readers:
            reader.join(timeout)
        return "".join(self.out), "".join(self.err)


def test_outage_mid_run_loses_nothing_and_duplicates_nothing(tmp_path: Path) -> None:
    """The GCS server is killed after a few trials and started again; the run carries on."""
    server = start_gcs(root=tmp_path / "gcs-data")
    gate = tmp_path / "gate"  # the trials after the first two wait until the server is down (tests/gated.py)
    try:
        bucket = server.create_bucket()
        uri = f"gs://{bucket}/p"
        env = {**server.client_env(), **_fast_env(tmp_path), "HPT_FLUSH_TIMEOUT": "60"}
        gated.let(gate, trial=0)
        gated.let(gate, trial=1)
        lrs = [0.0005 * (i + 1) for i in range(10)]
        proc = _popen(["run", str(_spec_file(tmp_path, "outage", lrs, epochs=3, gate=gate)), "--sink", uri], env)
        lines = _Lines(proc)
        _wait_for_rows(server, bucket, "p", 2, proc)
        server.stop()
        gated.let(gate, trial=2)  # a trial ends while the server is down
        gated.wait_for(lambda: lines.said("cannot deliver results now"), "no delivery failed", alive=proc)
        server.start()
        gated.let(gate)
        out, err = lines.communicate(timeout=180)
        assert proc.returncode == 0, (out, err)
        assert "cannot deliver results now" in err and "delivering again" in err
        table = _csv(server, bucket, "p")
        assert len(table) == 10 and table["trial_id"].is_unique
        assert len(server.keys(bucket, "p/rows/")) == 10 + 2 and len(server.keys(bucket, "p/models/")) == 10
        assert out.count("] ok ") == 10  # each trial trained once
        assert not list((tmp_path / "journal").rglob("manifest.json"))
    finally:
        gated.let(gate)
        server.stop()


def test_frozen_s3_server_delays_delivery_without_stopping_training(s3_server: LocalServer, tmp_path: Path) -> None:
    """A server that stops answering (requests time out) rather than refusing connections."""
    bucket = s3_server.create_bucket()
    uri = f"s3://{bucket}/p"
    env = {**s3_server.client_env(), **_fast_env(tmp_path), "HPT_SINK_TIMEOUT": "1", "HPT_FLUSH_TIMEOUT": "60"}
    proc = _popen(["run", str(_spec_file(tmp_path, "frozen", [0.0005 * (i + 1) for i in range(8)], epochs=2)),
                   "--sink", uri], env)
    try:
        _wait_for_rows(s3_server, bucket, "p", 1, proc)
        s3_server.freeze()
        time.sleep(3)
    finally:
        s3_server.thaw()
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, (out, err)
    table = _csv(s3_server, bucket, "p")
    assert len(table) == 8 and table["trial_id"].is_unique
    assert len(s3_server.keys(bucket, "p/rows/")) == 8 + 2  # and the naive baselines'


def test_results_undelivered_at_the_end_are_reported_and_hpt_sync_delivers_them(tmp_path: Path) -> None:
    server = start_gcs(root=tmp_path / "gcs-data")
    try:
        bucket = server.create_bucket()
        uri = f"gs://{bucket}/p"
        env = {**server.client_env(), **_fast_env(tmp_path), "HPT_FLUSH_TIMEOUT": "2"}
        gate = tmp_path / "gate"  # the trials after the first wait until the server is down (tests/gated.py)
        gated.let(gate, trial=0)
        spec = _spec_file(tmp_path, "down", [0.0005 * (i + 1) for i in range(5)], epochs=2, gate=gate)
        proc = _popen(["run", str(spec), "--sink", uri], env)
        _wait_for_rows(server, bucket, "p", 1, proc)
        server.stop()
        gated.let(gate)
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 1, (out, err)
        assert "could not be delivered" in out and f"hpt sync {uri}" in out, (out, err)
        assert out.count("] ok ") == 5

        server.start()
        shown = _hpt(["results", uri], env)  # the location has the first trial: the others wait here, it says
        assert re.search(rf"^note: [2-5] finished trials of {uri} wait in this machine's local journal \(a run could "
                         rf"not deliver them all\): hpt sync {uri} delivers them$", shown.stderr, re.M), shown.stderr
        assert "wait in this machine's local journal" in _hpt(["best", uri], env).stderr  # before its verdict
        synced = _hpt(["sync", uri], env)
        assert synced.returncode == 0, synced.stderr
        assert "delivered from the local journal" in synced.stdout
        assert "local journal" not in _hpt(["results", uri], env).stderr
        table = _csv(server, bucket, "p")
        assert len(table) == 5 and table["trial_id"].is_unique

        again = _hpt(["run", str(spec), "--sink", uri], env)  # resumes from the bucket: nothing to train
        assert again.returncode == 0 and "5 skipped as already done" in again.stdout, again.stdout + again.stderr
    finally:
        server.stop()


# ---------------------------------------------------------------- preflight

def _one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in done.stderr.splitlines() if line.startswith("hpt: error:")]
    assert done.returncode == 2, done.stdout + done.stderr
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert S3_SECRET not in done.stdout + done.stderr
    return lines[0]


def test_preflight_missing_bucket_is_bad_input(server: LocalServer, tmp_path: Path) -> None:
    spec = _spec_file(tmp_path, "pre", [0.001])
    line = _one_error_line(_hpt(["run", str(spec), "--sink", f"{SCHEME[server.kind]}://no-such-bucket-9/x"],
                                {**server.client_env(), **_fast_env(tmp_path)}))
    assert "no-such-bucket-9" in line and "does not exist" in line


def test_preflight_rejected_s3_credentials(tmp_path: Path) -> None:
    strict = start_s3(env={"INITIAL_NO_AUTH_ACTION_COUNT": "0"})  # moto checks keys against its IAM: ours are unknown
    try:
        line = _one_error_line(_hpt(["run", str(_spec_file(tmp_path, "pre", [0.001])), "--sink", "s3://bucket-x/p"],
                                    {**strict.client_env(), **_fast_env(tmp_path)}))
    finally:
        strict.stop()
    assert "rejected the credentials" in line and "InvalidAccessKeyId" in line


def test_preflight_absent_credentials(tmp_path: Path) -> None:
    spec = str(_spec_file(tmp_path, "pre", [0.001]))
    no_aws = {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "", "AWS_PROFILE": "",
              "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"), "AWS_CONFIG_FILE": str(tmp_path / "none"),
              "AWS_EC2_METADATA_DISABLED": "true", "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
    line = _one_error_line(_hpt(["run", spec, "--sink", "s3://bucket-x/p"], {**no_aws, **_fast_env(tmp_path)}))
    assert "no usable AWS credentials" in line
    no_gcp = {"STORAGE_EMULATOR_HOST": "", "GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / "missing-key.json"),
              "CLOUDSDK_CONFIG": str(tmp_path / "gcloud"), "GCE_METADATA_HOST": "127.0.0.1:9",
              "GCE_METADATA_IP": "127.0.0.1:9"}
    line = _one_error_line(_hpt(["run", spec, "--sink", "gs://bucket-x/p"], {**no_gcp, **_fast_env(tmp_path)}))
    assert f"GOOGLE_APPLICATION_CREDENTIALS={tmp_path / 'missing-key.json'} does not exist; point it at a service " \
           "account key file" in line  # the variable is set: which file, and what is wrong with it
    no_gcp["GOOGLE_APPLICATION_CREDENTIALS"] = str(tmp_path)
    line = _one_error_line(_hpt(["run", spec, "--sink", "gs://bucket-x/p"], {**no_gcp, **_fast_env(tmp_path)}))
    assert f"GOOGLE_APPLICATION_CREDENTIALS={tmp_path} is a folder, not a key file" in line
    no_gcp["GOOGLE_APPLICATION_CREDENTIALS"] = ""
    line = _one_error_line(_hpt(["run", spec, "--sink", "gs://bucket-x/p"], {**no_gcp, **_fast_env(tmp_path)}))
    assert "no usable Google Cloud credentials found" in line


def test_s3_permission_and_endpoint_errors_name_what_is_needed(monkeypatch: pytest.MonkeyPatch) -> None:
    # a read-only key denied a listing needs s3:ListBucket, not write access as the message said; an endpoint
    # without its scheme is named with the variable it came from
    from botocore.exceptions import ClientError

    for k, v in {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "127.0.0.1:9000")
    with pytest.raises(SinkAccessError) as e:
        open_sink("s3://bucket/p")
    assert str(e.value) == ("s3://bucket/p: cannot set up the S3 client: ValueError: Invalid endpoint: 127.0.0.1:9000 "
                            "($AWS_ENDPOINT_URL is '127.0.0.1:9000': an endpoint is a URL such as http://127.0.0.1:9000)")
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    sink: Any = open_sink("s3://bucket/p")
    denied = ClientError({"Error": {"Code": "AccessDenied"}}, "ListObjectsV2")
    assert str(sink._access_error("list rows/", denied)) == ("s3://bucket/p: permission denied to list rows/ "
                                                              "(AccessDenied); the credentials need s3:ListBucket on s3://bucket")
    assert str(sink._access_error("write rows/a.json", denied)).endswith("the credentials need s3:PutObject on s3://bucket")


def test_an_s3_call_is_one_request_per_attempt_hpt_makes(monkeypatch: pytest.MonkeyPatch) -> None:
    # botocore's max_attempts counts retries: "1" made each of hpt's attempts two requests, so an endpoint that
    # does not answer cost twice HPT_SINK_TIMEOUT x HPT_SINK_RETRIES
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                accepted.append(server.accept()[0])  # held open, never answered
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    for k, v in {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y", "AWS_DEFAULT_REGION": "us-east-1",
                 "AWS_ENDPOINT_URL": f"http://127.0.0.1:{server.getsockname()[1]}", "HPT_SINK_TIMEOUT": "1",
                 "HPT_SINK_RETRIES": "1"}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    try:
        with pytest.raises(Exception, match="no answer after 1 attempt"):
            open_sink("s3://bucket/p").read("results.csv")
        assert len(accepted) == 1
    finally:
        server.close()
        for conn in accepted:
            conn.close()


def test_bad_sink_uri_is_bad_input() -> None:
    with pytest.raises(SinkAccessError.__mro__[1]):  # InputError
        open_sink("gs://Not_A_Bucket!/x")


def test_credentials_in_a_failed_trials_error_are_not_stored_or_printed(write_spec: Any, tmp_path: Path) -> None:
    """A trial that fails with a URL holding a user and password in its error: the row (results.csv and the row
    object) and what `hpt results` prints name the host, not the user and password."""
    (tmp_path / "leaky.py").write_text(
        "def build(n_features, lookback, horizon):\n"
        "    raise ConnectionError('cannot fetch weights from https://svc-user:weights-pw-93@10.9.8.7/w.pt')\n")
    spec = write_spec(architecture="leaky:build", parameters={"lr": [0.01]})
    sink = tmp_path / "res"
    done = hpt_cli("run", str(spec), "--sink", str(sink), "--workers", "1")
    assert done.returncode == 0 and ": 2 failed" in done.stdout, done.stdout + done.stderr
    shown = hpt_cli("results", str(sink))
    stored = (sink / "results.csv").read_text() + "".join(p.read_text() for p in (sink / "rows").glob("*.json"))
    for text in (done.stdout + done.stderr, shown.stdout + shown.stderr, stored):
        assert "weights-pw-93" not in text and "svc-user" not in text
    assert "10.9.8.7" in stored and "cannot fetch weights" in stored
