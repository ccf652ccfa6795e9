"""The adb phone backend, against a fake `adb` (tests/fake_adb/adb) that emulates a Pixel 4
running TFLite's benchmark_model, and the output parser against real benchmark_model output."""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import pytest

from latency_models.measurement.adb import (
    AdbBackend,
    BenchmarkOutputError,
    failure_reason,
    find_version,
    parse_benchmark_output,
    parse_benchmark_stats,
)
from latency_models.measurement.backends import Backend, BlockError, DeviceError, Timing

FAKE_DIR = Path(__file__).resolve().parent / "fake_adb"
SERIAL = "FAKE0PIXEL4"
BINARY = "/data/local/tmp/benchmark_model"
REMOTE_DIR = "/data/local/tmp/nas_blocks"


@pytest.fixture
def phone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh emulated phone; the fake adb is first on PATH. Returns its state directory."""
    for name in list(os.environ):
        if name.startswith("FAKE_ADB_"):
            monkeypatch.delenv(name)
    root = tmp_path / "phone"
    root.mkdir()
    monkeypatch.setenv("FAKE_ADB_ROOT", str(root))
    monkeypatch.setenv("PATH", f"{FAKE_DIR}{os.pathsep}{os.environ.get('PATH', '')}")
    return root


def model(tmp_path: Path, name: str, size: int) -> Path:
    """A .tflite-named file of `size` bytes (the fake times a model by its size)."""
    path = tmp_path / name
    path.write_bytes((b"\x1c\x00\x00\x00TFL3" + bytes(size))[:size])
    return path


def base_us(size: int) -> int:
    return 100 + size // 10  # tests/fake_adb/adb: per-inference time of a model of `size` bytes


def truth(root: Path) -> dict:
    return json.loads((root / "truth.json").read_text())


def calls(root: Path) -> list[list[str]]:
    return [json.loads(line) for line in (root / "calls.log").read_text().splitlines()]


def on_phone(root: Path, device_path: str) -> Path:
    return root / "fs" / device_path.lstrip("/")


def one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message and message.strip() == message
    return message


# --- timing ------------------------------------------------------------------------------


def test_backend_protocol_and_the_fake_is_executable(phone: Path) -> None:
    assert os.access(FAKE_DIR / "adb", os.X_OK)
    backend: Backend = AdbBackend(SERIAL)
    assert hasattr(backend, "metadata") and hasattr(backend, "time_model")


def test_times_a_model_in_milliseconds(phone: Path, tmp_path: Path) -> None:
    path = model(tmp_path, "mbconv_k3_e6.tflite", 3000)
    timing = AdbBackend(SERIAL, min_secs=0).time_model(path)
    true = truth(phone)
    assert isinstance(timing, Timing)
    assert timing.count == 50 == true["count"]
    assert timing.median_ms == pytest.approx(true["median_us"] / 1000) == pytest.approx(base_us(3000) / 1000)
    assert timing.mean_ms == pytest.approx(true["avg_us"] / 1000, rel=1e-5)  # printed with 6 digits
    assert timing.std_ms == pytest.approx(true["std_us"] / 1000)
    assert 0.3 < timing.median_ms < 0.5  # 400 us, not 400 ms


def test_timed_runs_not_warmup_and_count_from_min_secs(phone: Path, tmp_path: Path) -> None:
    # Without min_secs benchmark_model keeps the timed runs going for 1 s: a fast block runs far
    # more often than num_runs. The warm-up (first run 3x slower) must not leak into the stats.
    size = 1000
    timing = AdbBackend(SERIAL).time_model(model(tmp_path, "small.tflite", size))
    assert timing.count == max(50, math.ceil(1e6 / base_us(size))) == truth(phone)["count"]
    assert timing.median_ms == pytest.approx(base_us(size) / 1000)
    assert timing.mean_ms < 1.01 * base_us(size) / 1000


def test_bigger_model_is_slower_and_files_are_cleaned_up(phone: Path, tmp_path: Path) -> None:
    backend = AdbBackend(SERIAL, min_secs=0)
    small = backend.time_model(model(tmp_path, "a.tflite", 2000))
    big = backend.time_model(model(tmp_path, "b.tflite", 20000))
    assert big.median_ms > 5 * small.median_ms
    assert list(on_phone(phone, REMOTE_DIR).iterdir()) == []
    backend.close()  # it created the model directory, so it removes it
    assert not on_phone(phone, REMOTE_DIR).exists()
    assert on_phone(phone, BINARY).exists()


def test_command_line_carries_threads_affinity_and_delegate(phone: Path, tmp_path: Path) -> None:
    backend = AdbBackend(SERIAL, threads=4, cpu_mask="0xF0", use_xnnpack=True, warmup_runs=3, num_runs=20, min_secs=0)
    backend.time_model(model(tmp_path, "block 1.tflite", 1500))  # a space in the name: pushed as block_1
    log = calls(phone)
    assert all(argv[:2] == ["-s", SERIAL] for argv in log)
    pushes = [argv for argv in log if argv[2] == "push"]
    assert pushes == [["-s", SERIAL, "push", str(tmp_path / "block 1.tflite"), f"{REMOTE_DIR}/block_1.tflite"]]
    runs = [argv[3] for argv in log if argv[2] == "shell" and "benchmark_model --graph" in argv[3]]
    assert len(runs) == 1
    assert runs[0].startswith(f"taskset f0 {BINARY} --graph={REMOTE_DIR}/block_1.tflite ")
    for flag in ("--num_threads=4", "--warmup_runs=3", "--num_runs=20", "--use_xnnpack=true", "--min_secs=0"):
        assert flag in runs[0].split()
    assert truth(phone)["threads"] == 4 and truth(phone)["xnnpack"] is True
    assert backend.benchmark_command("/x.tflite")[:2] == ["taskset", "f0"]


def test_old_output_format_has_no_median(phone: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_ADB_OLD_FORMAT", "1")  # TF 2.8: no "INFO: ", no p5/median/p95
    timing = AdbBackend(SERIAL, min_secs=0).time_model(model(tmp_path, "m.tflite", 3000))
    assert timing.median_ms is None
    assert timing.mean_ms == pytest.approx(truth(phone)["avg_us"] / 1000, rel=1e-5)
    assert timing.count == 50


# --- metadata ----------------------------------------------------------------------------


def test_metadata(phone: Path) -> None:
    backend = AdbBackend(SERIAL, threads=1, cpu_mask="80", warmup_runs=5, num_runs=50, runtime_version="2.16.1")
    meta = backend.metadata("int8")
    assert meta.device == "Google Pixel 4"
    assert meta.soc == "Qualcomm SM8150"
    assert (meta.runtime, meta.runtime_version, meta.threads, meta.delegate, meta.precision) == (
        "tflite",
        "2.16.1",
        1,
        "none",
        "int8",
    )
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", meta.date)
    for part in ("5 warm-up runs", "at least 50 timed runs", "taskset 80", "num_threads=1", "use_xnnpack=false"):
        assert part in meta.protocol
    assert "median" in meta.protocol
    assert SERIAL in meta.source and BINARY in meta.source
    assert "Android 13" in meta.notes and "cpu_mask 80" in meta.notes
    assert AdbBackend(SERIAL, use_xnnpack=True).metadata("fp32").delegate == "xnnpack"


@pytest.mark.parametrize(
    ("removed", "soc"),
    [(["ro.soc.model"], "msmnile"), (["ro.soc.model", "ro.board.platform"], "flame")],
)
def test_metadata_soc_falls_back_on_older_android(
    phone: Path, monkeypatch: pytest.MonkeyPatch, removed: list[str], soc: str
) -> None:
    monkeypatch.setenv("FAKE_ADB_PROPS", json.dumps(dict.fromkeys(removed, "")))
    meta = AdbBackend(SERIAL).metadata("fp32")
    assert meta.soc == soc
    assert "TFLite version unknown" in meta.notes


# --- the device is unusable: DeviceError, one clear line ------------------------------------


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("offline", f"device {SERIAL} is offline: reconnect it or check `adb devices`"),
        ("unauthorized", f"device {SERIAL} is unauthorized: unlock it and accept"),
        ("missing", f"device {SERIAL} not found:"),
    ],
)
def test_device_states(phone: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, state: str, expected: str) -> None:
    monkeypatch.setenv("FAKE_ADB_STATE", state)
    with pytest.raises(DeviceError) as exc:
        AdbBackend(SERIAL).time_model(model(tmp_path, "m.tflite", 1000))
    assert one_line(exc).startswith(expected)
    with pytest.raises(DeviceError, match=re.escape(expected)):
        AdbBackend(SERIAL).metadata("fp32")


def test_wrong_serial_is_not_found(phone: Path) -> None:
    with pytest.raises(DeviceError, match="device OTHER123 not found: plug it in"):
        AdbBackend("OTHER123").check()


def test_binary_missing(phone: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_ADB_NO_BINARY", "1")
    with pytest.raises(DeviceError) as exc:
        AdbBackend(SERIAL).time_model(model(tmp_path, "m.tflite", 1000))
    assert one_line(exc) == (
        f"benchmark_model not found at {BINARY} on {SERIAL}: push it with "
        f"`adb -s {SERIAL} push benchmark_model {BINARY} && adb -s {SERIAL} shell chmod +x {BINARY}`"
    )
    with pytest.raises(DeviceError, match="not found at /data/local/tmp/bm2 on"):
        AdbBackend(SERIAL, binary="/data/local/tmp/bm2").check()


def test_binary_not_executable(phone: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_ADB_NOEXEC", "1")
    with pytest.raises(DeviceError) as exc:
        AdbBackend(SERIAL).check()
    assert one_line(exc) == (
        f"benchmark_model at {BINARY} on {SERIAL} is not executable: run `adb -s {SERIAL} shell chmod +x {BINARY}`"
    )


def test_adb_itself_missing(phone: Path, tmp_path: Path) -> None:
    with pytest.raises(DeviceError) as exc:
        AdbBackend(SERIAL, adb=str(tmp_path / "no-adb")).check()
    assert one_line(exc).startswith("adb not found (")


def test_adb_found_on_path_by_default(phone: Path, tmp_path: Path) -> None:
    assert AdbBackend(SERIAL).adb == "adb"
    AdbBackend(SERIAL).check()
    assert calls(phone)[0] == ["-s", SERIAL, "get-state"]


def test_timeout_is_a_device_error(phone: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_ADB_HANG", "1")
    backend = AdbBackend(SERIAL, timeout_s=2)
    with pytest.raises(DeviceError) as exc:
        backend.time_model(model(tmp_path, "m.tflite", 1000))
    assert "timed out after 2 s" in one_line(exc)
    assert list(on_phone(phone, REMOTE_DIR).iterdir()) == []  # still cleaned up


def test_bad_cpu_mask_for_this_phone(phone: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_ADB_CPUS", "4")  # cpu7 does not exist
    with pytest.raises(DeviceError) as exc:
        AdbBackend(SERIAL, cpu_mask="80").time_model(model(tmp_path, "m.tflite", 1000))
    assert one_line(exc).startswith(f"taskset 80 failed on {SERIAL} (taskset: sched_setaffinity: Invalid argument)")


# --- one model fails: BlockError, and the next one still works --------------------------------


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("prepare", "SizeOfDimension(filter, 3) (0 != 32) / Failed to allocate tensors!"),
        ("invoke", "Node number 5 (CONV_2D) failed to invoke."),
        ("crash", "Segmentation fault"),
    ],
)
def test_failing_model_is_a_block_error(
    phone: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str, reason: str
) -> None:
    monkeypatch.setenv("FAKE_ADB_FAIL_MODEL", "se_h_swish")
    monkeypatch.setenv("FAKE_ADB_FAIL_KIND", kind)
    backend = AdbBackend(SERIAL, min_secs=0)
    with pytest.raises(BlockError) as exc:
        backend.time_model(model(tmp_path, "mbconv_se_h_swish.tflite", 2000))
    message = one_line(exc)
    assert message.startswith(f"mbconv_se_h_swish.tflite failed on {SERIAL}: ")
    assert reason in message
    assert "Benchmarking failed." not in message
    if kind == "crash":
        assert "SIGSEGV" in message and "exit status 139" in message
    assert list(on_phone(phone, REMOTE_DIR).iterdir()) == []
    good = backend.time_model(model(tmp_path, "mbconv_plain.tflite", 2000))
    assert good.median_ms == pytest.approx(base_us(2000) / 1000)


def test_missing_local_model_is_a_block_error(phone: Path, tmp_path: Path) -> None:
    with pytest.raises(BlockError, match="gone.tflite: no such model file"):
        AdbBackend(SERIAL).time_model(tmp_path / "gone.tflite")


def test_device_dying_mid_run_keeps_earlier_rows(phone: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_ADB_DIE_AFTER", "2")
    monkeypatch.setenv("FAKE_ADB_FAIL_MODEL", "b_bad")
    backend = AdbBackend(SERIAL, min_secs=0)
    paths = [model(tmp_path, f"{name}.tflite", 1000 + 500 * i) for i, name in enumerate("a b_bad c d e".split())]
    rows: dict[str, Timing] = {}
    failed: list[str] = []
    with pytest.raises(DeviceError) as exc:
        for path in paths:  # what a measuring loop does: skip a bad block, stop on a dead device
            try:
                rows[path.name] = backend.time_model(path)
            except BlockError:
                failed.append(path.name)
    assert one_line(exc) == f"device {SERIAL} is offline: reconnect it or check `adb devices`"
    assert failed == ["b_bad.tflite"]
    assert sorted(rows) == ["a.tflite", "c.tflite"]  # the two rows measured before it died
    assert rows["c.tflite"].median_ms == pytest.approx(base_us(2000) / 1000)
    with pytest.raises(DeviceError, match="is offline"):
        backend.time_model(paths[-1])


# --- configuration -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"cpu_mask": "zz"}, "cpu_mask must be a non-zero hex"),
        ({"cpu_mask": "0"}, "cpu_mask must be a non-zero hex"),
        ({"threads": 0}, "threads must be >= 1"),
        ({"num_runs": 0}, "num_runs >= 1"),
        ({"binary": "benchmark_model"}, "binary must be an absolute path"),
        ({"remote_dir": "/"}, "remote_dir must be an absolute path"),
        ({"timeout_s": 0}, "timeout_s must be positive"),
    ],
)
def test_bad_configuration(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        AdbBackend(SERIAL, **kwargs)


def test_from_target() -> None:
    assert AdbBackend.from_target("adb:192.168.1.7:5555", threads=2).serial == "192.168.1.7:5555"
    with pytest.raises(ValueError, match="adb:SERIAL"):
        AdbBackend.from_target("adb:")
    with pytest.raises(ValueError, match="adb:SERIAL"):
        AdbBackend.from_target("host")


# --- the parser on real benchmark_model output -----------------------------------------------

# benchmark_model on a TI AM62x board (Cortex-A53), as printed in TI's Processor SDK docs: recent
# TFLite, "INFO: " prefix, p5/median/p95, avg in scientific notation.
REAL_RECENT = """\
   INFO: STARTING!
   INFO: Log parameter values verbosely: [0]
   INFO: Graph: [/usr/share/oob-demo-assets/models/ssd_mobilenet_v2_coco.tflite]
   INFO: Signature to run: []
   INFO: Use xnnpack: [0]
   INFO: Loaded model /usr/share/oob-demo-assets/models/ssd_mobilenet_v2_coco.tflite
   INFO: The input model file size (MB): 67.3128
   INFO: Initialized session in 5.579ms.
   INFO: Running benchmark for at least 1 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds.
   INFO: count=1 curr=1357602 p5=1357602 median=1357602 p95=1357602

   INFO: Running benchmark for at least 50 iterations and at least 1 seconds but terminate if exceeding 150 seconds.
   INFO: count=50 first=1249964 curr=1240143 min=1238588 max=1252566 avg=1.24027e+06 std=2565 p5=1238753 median=1239807 p95=1247415

   INFO: Inference timings in us: Init: 5579, First inference: 1357602, Warmup (avg): 1.3576e+06, Inference (avg): 1.24027e+06
   INFO: Note: as the benchmark tool itself affects memory footprint, the following is only APPROXIMATE to the actual memory footprint of the model at runtime. Take the information at your discretion.
   INFO: Memory footprint delta from the start of the tool (MB): init=6.36328 overall=109.832
"""  # noqa: E501

# TF 2.8 benchmark_model with --enable_op_profiling=true (meta-tensorflow-lite's README, qemu
# riscv64; op tables shortened): no prefix, no percentiles, and "Timings (microseconds): count="
# summary lines that are not the timed runs.
REAL_TF28_PROFILING = """\
STARTING!
Log parameter values verbosely: [0]
Num threads: [4]
Graph: [./mobilenet_v1_1.0_224.tflite]
Enable op profiling: [1]
#threads used for CPU inference: [4]
Loaded model ./mobilenet_v1_1.0_224.tflite
The input model file size (MB): 16.9008
Initialized session in 17.187ms.
Running benchmark for at least 1 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds.
count=1 curr=3512391

Running benchmark for at least 50 iterations and at least 1 seconds but terminate if exceeding 150 seconds.
count=50 first=2990275 curr=2913402 min=2727568 max=3189954 avg=2.95034e+06 std=109798

Inference timings in us: Init: 17187, First inference: 3512391, Warmup (avg): 3.51239e+06, Inference (avg): 2.95034e+06
Note: as the benchmark tool itself affects memory footprint, the following is only APPROXIMATE to the actual memory footprint of the model at runtime. Take the information at your discretion.
Memory footprint delta from the start of the tool (MB): init=4.21094 overall=46.0859
Profiling Info for Benchmark Initialization:
============================== Run Order ==============================
\t             [node type]\t          [start]\t  [first]\t [avg ms]\t     [%]\t  [cdf%]\t  [mem KB]\t[times called]\t[Name]
\t         AllocateTensors\t            0.000\t    1.356\t    1.356\t100.000%\t100.000%\t     0.000\t        1\tAllocateTensors/0

Timings (microseconds): count=1 curr=1356
Memory (bytes): count=0
1 nodes observed

Operator-wise Profiling Info for Regular Benchmark Runs:
Number of nodes executed: 31
Timings (microseconds): count=50 first=2989660 curr=2912978 min=2727203 max=3189476 avg=2.9499e+06 std=109770
Memory (bytes): count=0
31 nodes observed
"""  # noqa: E501


def test_parser_on_recent_real_output() -> None:
    timing = parse_benchmark_output(REAL_RECENT)
    assert timing == Timing(mean_ms=pytest.approx(1240.27), median_ms=1239.807, std_ms=2.565, count=50)
    stats = parse_benchmark_stats(REAL_RECENT)
    assert (stats.min_us, stats.max_us, stats.first_us) == (1238588, 1252566, 1249964)


def test_parser_on_tf28_output_with_op_profiling() -> None:
    timing = parse_benchmark_output(REAL_TF28_PROFILING)
    assert timing.count == 50
    assert timing.mean_ms == pytest.approx(2950.34)
    assert timing.std_ms == pytest.approx(109.798)
    assert timing.median_ms is None


def test_parser_variants() -> None:
    header = (
        "Running benchmark for at least 1 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds."
    )
    # logcat lines, CRLF (adb without shell v2), every timed run equally long
    logcat = (
        f"01-02 10:00:00.000  4242  4242 I tflite  : {header}\r\n"
        "01-02 10:00:00.001  4242  4242 I tflite  : count=3 first=900 curr=800 min=800 max=900 avg=833.333 std=47\r\n"
        f"I tflite  : {header}\r\n"
        "I tflite  : count=50 curr=812(all same) p5=812 median=812 p95=812\r\n"
    )
    assert parse_benchmark_output(logcat) == Timing(mean_ms=0.812, median_ms=0.812, std_ms=0.0, count=50)
    # TF 1.x order: curr first
    old = f"{header}\ncurr=1000 count=1\n{header}\ncurr=990 count=10 min=980 max=1010 avg=995.5 std=9\n"
    assert parse_benchmark_output(old) == Timing(mean_ms=0.9955, median_ms=None, std_ms=0.009, count=10)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "no timing statistics"),
        (REAL_RECENT.split("   INFO: Running benchmark for at least 50")[0], "stopped after the warm-up"),
        (REAL_RECENT.split("   INFO: count=50")[0], "printed no statistics for them"),
    ],
)
def test_parser_refuses_output_without_timed_runs(text: str, match: str) -> None:
    with pytest.raises(BenchmarkOutputError, match=match):
        parse_benchmark_output(text)


def test_failure_reason() -> None:
    out = (
        "INFO: Loaded model /data/local/tmp/x.tflite\n"
        "ERROR: Didn't find op for builtin opcode 'HARD_SWISH' version '1'.\n"
        "ERROR: Registration failed.\n"
        "ERROR: Failed to initialize the interpreter\n"
        "ERROR: Benchmarking failed.\n"
    )
    assert failure_reason(out, 1) == (
        "Didn't find op for builtin opcode 'HARD_SWISH' version '1'. / Failed to initialize the interpreter"
    )
    assert failure_reason("", 139) == "killed by SIGSEGV"
    assert failure_reason("something odd\n", 2) == "something odd"


def test_binary_that_cannot_run_here_is_a_device_error(phone: Path, tmp_path: Path) -> None:
    backend = AdbBackend(SERIAL)
    out = f'CANNOT LINK EXECUTABLE "{BINARY}": library "libc++_shared.so" not found\n'
    with pytest.raises(DeviceError, match="does not run on FAKE0PIXEL4 .*libc\\+\\+_shared.so.*push a build"):
        backend._timing("m.tflite", 1, out)
    with pytest.raises(DeviceError, match="cannot be run"):
        backend._timing("m.tflite", 127, f"/system/bin/sh: {BINARY}: inaccessible or not found\n")


def test_find_version() -> None:
    assert find_version(REAL_RECENT) is None  # stock benchmark_model prints no version
    assert find_version("INFO: TfLite version: 2.16.1\n") == "2.16.1"
