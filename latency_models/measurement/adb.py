"""Time .tflite models on an Android phone over adb with TFLite's `benchmark_model`.

`--target adb:SERIAL` measures with this backend: each block model is pushed to the phone,
timed there by the stock benchmark tool (optionally pinned to some cores with `taskset`), its
output parsed, and the pushed file removed again:

    adb -s SERIAL push block.tflite /data/local/tmp/nas_blocks/block.tflite
    adb -s SERIAL shell 'taskset 80 /data/local/tmp/benchmark_model \\
        --graph=/data/local/tmp/nas_blocks/block.tflite --num_threads=1 --warmup_runs=5 \\
        --num_runs=50 --use_xnnpack=false 2>&1; echo __NAS_STATUS=$?'
    adb -s SERIAL shell 'rm -f /data/local/tmp/nas_blocks/block.tflite ...'

The exit status is echoed by the phone's shell because adb itself only forwards it with the
shell v2 protocol; a command that comes back without it lost its connection to the phone.

The binary is not pushed for you: build it for the phone
(`bazel build -c opt --config=android_arm64 //tensorflow/lite/tools/benchmark:benchmark_model`
or take the nightly prebuilt), then `adb push benchmark_model /data/local/tmp/ && adb shell
chmod +x /data/local/tmp/benchmark_model`.

What benchmark_model prints (tensorflow/lite/tools/benchmark/benchmark_model.cc; the statistics
line is Stat::OutputToStream in tensorflow/core/util/stats_calculator.h, since moved to
xla/tsl/util/stats_calculator.h), all times in microseconds:

    INFO: Running benchmark for at least 5 iterations and at least 0.5 seconds but terminate ...
    INFO: count=2500 first=1200 curr=420 min=420 max=1200 avg=420.624 std=22 p5=420 median=420 p95=420
    INFO: Running benchmark for at least 50 iterations and at least 1 seconds but terminate ...
    INFO: count=2500 first=440 curr=398 min=395 max=440 avg=400.016 std=3 p5=395 median=400 p95=405
    INFO: Inference timings in us: Init: 1530, First inference: 1200, Warmup (avg): 420.624, ...

(numbers from tests/fake_adb/adb). The first statistics line is the warm-up, the second the timed
runs (the ones kept). Versions differ: TF 2.8 printed no "INFO: " prefix, only recent versions
print p5/median/p95 (StatWithPercentiles), old ones wrote "curr=... count=...", doubles print with
6 significant digits (avg=2.95034e+06), and when every run took the same time the line is
"count=50 curr=1234(all same)". With --enable_op_profiling, "Timings (microseconds): count=..."
summary lines follow; they are not the timed runs.
"""

from __future__ import annotations

import posixpath
import re
import shlex
import signal
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from latency_models.measurement.backends import BlockError, DeviceError, Timing
from latency_models.tables.latency_table import TableMetadata

DEFAULT_BINARY = "/data/local/tmp/benchmark_model"
DEFAULT_REMOTE_DIR = "/data/local/tmp/nas_blocks"

_STATUS = "__NAS_STATUS="  # the phone's shell echoes the command's exit status after this
_QUICK_TIMEOUT_S = 30.0  # get-state, getprop, test, rm: anything but a push or a benchmark run

# Log prefixes benchmark_model may put before a line: tools/logging.h ("INFO: ", "ERROR: ", ...),
# or logcat ("I tflite  : ", with or without a date/pid/tid in front) when the output was copied
# from `adb logcat`.
_PREFIX = re.compile(r"^(?:(?:INFO|WARN|WARNING|ERROR|FATAL|VERBOSE): ?|(?:\S+\s+)*?[VDIWEF]\s+tflite\s*: ?)")
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?nan|[-+]?inf"
_FIELD = re.compile(rf"\b([a-z0-9_]+)=({_NUMBER})")
_VERSION = re.compile(
    r"\b(?:TensorFlow Lite|TFLite|LiteRT)\b[^\n]*?\bversion\b\W*v?(\d+\.\d+(?:\.\d+)?(?:[-.\w]*))", re.IGNORECASE
)
_FAILURE_WORDS = re.compile(
    r"fail|error|abort|segmentation|fault|not found|denied|killed|didn't find|unsupported|not supported|"
    r"invalid|cannot|can't|unable|unconsumed",
    re.IGNORECASE,
)
# The binary itself cannot run here (wrong ABI, missing shared library): every model would fail.
_BROKEN_BINARY = re.compile(r"CANNOT LINK EXECUTABLE|Exec format error|not executable: \d+-bit ELF", re.IGNORECASE)
_GENERIC_FAILURES = {"Benchmarking failed."}  # benchmark_main.cc's last word on any failure


class BenchmarkOutputError(ValueError):
    """benchmark_model's output holds no statistics for the timed runs."""


@dataclass(frozen=True)
class RunStats:
    """One statistics line of benchmark_model (a Stat<int64_t>), in microseconds."""

    count: int
    mean_us: float
    std_us: float | None
    median_us: float | None
    min_us: float | None
    max_us: float | None
    first_us: float | None

    def timing(self) -> Timing:
        return Timing(
            mean_ms=self.mean_us / 1000.0,
            median_ms=None if self.median_us is None else self.median_us / 1000.0,
            std_ms=None if self.std_us is None else self.std_us / 1000.0,
            count=self.count,
        )


def _strip_prefix(line: str) -> str:
    return _PREFIX.sub("", line.strip(), count=1).strip()


def parse_stats_line(line: str) -> RunStats | None:
    """The statistics in one line ("count=50 first=... avg=... std=... median=..."), or None
    when the line is not one (op-profiling summaries such as "Timings (microseconds): count=..."
    are not: only lines that start with the statistics count)."""
    text = _strip_prefix(line)
    if not text.startswith(("count=", "curr=")):
        return None
    fields = {key: float(value) for key, value in _FIELD.findall(text)}
    if "count" not in fields:
        return None
    count = int(fields["count"])
    if count <= 0:
        return RunStats(0, float("nan"), None, None, None, None, None)
    if "avg" in fields:
        mean, std = fields["avg"], fields.get("std")
    elif "curr" in fields:  # "(all same)" or a single run: every run took `curr`
        mean, std = fields["curr"], 0.0
    else:
        return None
    return RunStats(
        count=count,
        mean_us=mean,
        std_us=std,
        median_us=fields.get("median"),
        min_us=fields.get("min", mean if "avg" not in fields else None),
        max_us=fields.get("max", mean if "avg" not in fields else None),
        first_us=fields.get("first", fields.get("curr") if count == 1 else None),
    )


def parse_benchmark_stats(text: str) -> RunStats:
    """Statistics of the timed runs in benchmark_model's output.

    benchmark_model announces each phase with "Running benchmark for ..." and follows it with
    one statistics line: the first phase is the warm-up, the last one the timed runs. Raises
    BenchmarkOutputError when the timed runs left no statistics (the tool stopped early)."""
    phases: list[RunStats | None] = []
    unannounced: list[RunStats] = []
    for line in text.splitlines():
        stripped = _strip_prefix(line)
        if stripped.startswith("Running benchmark for"):
            phases.append(None)
            continue
        stats = parse_stats_line(stripped)
        if stats is None:
            continue
        if phases and phases[-1] is None:
            phases[-1] = stats
        else:
            unannounced.append(stats)
    if len(phases) >= 2:
        timed = phases[-1]
        if timed is None:
            raise BenchmarkOutputError("benchmark_model started the timed runs but printed no statistics for them")
    elif len(phases) == 1:
        raise BenchmarkOutputError("benchmark_model stopped after the warm-up runs (no timed-run statistics)")
    elif len(unannounced) >= 2:
        timed = unannounced[-1]  # a format without the "Running benchmark" lines: warm-up, then timed
    else:
        raise BenchmarkOutputError("no timing statistics in benchmark_model's output")
    if timed.count <= 0:
        raise BenchmarkOutputError("benchmark_model's timed runs have count=0")
    return timed


def parse_benchmark_output(text: str) -> Timing:
    """Timing (milliseconds) of the timed runs in benchmark_model's output; the median is
    benchmark_model's p50 where it prints one, else None."""
    return parse_benchmark_stats(text).timing()


def find_version(text: str) -> str | None:
    """A TFLite version the output states, if any (stock benchmark_model prints none)."""
    match = _VERSION.search(text)
    return match.group(1) if match else None


def failure_reason(text: str, status: int | None = None) -> str:
    """One line saying why benchmark_model (or a shell command) failed: its first and last
    error lines (often the cause, then what gave up), else its last line, plus the signal that
    killed it if one did."""
    relevant: list[str] = []
    lines: list[str] = []
    for raw in text.splitlines():
        line = _strip_prefix(raw)
        if not line or line.startswith(_STATUS):
            continue
        lines.append(line)
        flagged = raw.lstrip().startswith(("ERROR", "FATAL")) or _FAILURE_WORDS.search(line)
        if flagged and line not in _GENERIC_FAILURES and line not in relevant:
            relevant.append(line)
    parts = [relevant[0], relevant[-1]] if len(relevant) > 1 else relevant or lines[-1:]
    if status is not None and status > 128:  # the shell reports death by signal N as 128 + N
        try:
            killed = f"killed by {signal.Signals(status - 128).name}"
        except ValueError:
            killed = ""
        if killed and not any(killed in part for part in parts):
            parts.append(killed)
    reason = " / ".join(parts) or "no output"
    return reason if len(reason) <= 400 else reason[:397] + "..."


def _one_line(text: str) -> str:
    lines = [line.strip() for line in text.replace("\r", "\n").splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith("* daemon")]  # adb starting its server
    return " / ".join(lines[-2:]) if lines else "no output"


def _marker(text: str, name: str) -> int | None:
    match = re.search(rf"^{re.escape(name)}(\d+)\s*$", text, re.MULTILINE)
    return int(match.group(1)) if match else None


class AdbBackend:
    """A Backend (latency_models.measurement.backends) that times models on an Android phone over adb.

    serial:       the phone, as `adb devices` lists it
    binary:       benchmark_model's path on the phone
    threads:      --num_threads
    cpu_mask:     hex CPU mask for `taskset` (e.g. "80": cpu7, the Cortex-A76 prime core of a
                  Pixel 4; "f0": its four big cores); None runs without pinning
    use_xnnpack:  --use_xnnpack (always passed explicitly: recent TFLite applies XNNPACK by default)
    warmup_runs, num_runs: --warmup_runs, --num_runs (minimums: benchmark_model keeps running
                  for at least warmup_min_secs=0.5 s / min_secs, so a fast block runs more often)
    min_secs:     --min_secs for the timed runs; None keeps benchmark_model's default (1 s)
    remote_dir:   where models are pushed (created if missing; each model is removed after its run)
    adb:          the adb executable
    timeout_s:    limit for one push or one benchmark run; quick commands get at most 30 s
    runtime_version: the TFLite version benchmark_model was built from, for the table header
                  (stock benchmark_model prints none)
    """

    def __init__(
        self,
        serial: str,
        binary: str = DEFAULT_BINARY,
        threads: int = 1,
        cpu_mask: str | None = None,
        use_xnnpack: bool = False,
        warmup_runs: int = 5,
        num_runs: int = 50,
        min_secs: float | None = None,
        remote_dir: str = DEFAULT_REMOTE_DIR,
        adb: str = "adb",
        timeout_s: float = 300.0,
        runtime_version: str = "",
    ):
        if not serial or any(ch.isspace() for ch in serial):
            raise ValueError(f"adb serial must be a non-empty word (see `adb devices`), got {serial!r}")
        if cpu_mask is not None:
            mask = cpu_mask.lower().removeprefix("0x")
            if not re.fullmatch(r"[0-9a-f]+", mask) or int(mask, 16) == 0:
                raise ValueError(
                    f"cpu_mask must be a non-zero hex CPU mask for taskset (e.g. 80 or f0), got {cpu_mask!r}"
                )
            cpu_mask = mask
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        if warmup_runs < 0 or num_runs < 1:
            raise ValueError(f"need warmup_runs >= 0 and num_runs >= 1, got {warmup_runs} and {num_runs}")
        if min_secs is not None and min_secs < 0:
            raise ValueError(f"min_secs must be >= 0, got {min_secs}")
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        for name, path in (("binary", binary), ("remote_dir", remote_dir)):
            if not path.startswith("/") or posixpath.normpath(path) == "/":
                raise ValueError(f"{name} must be an absolute path on the phone below /, got {path!r}")
        self.serial = serial
        self.binary = binary
        self.threads = threads
        self.cpu_mask = cpu_mask
        self.use_xnnpack = use_xnnpack
        self.warmup_runs = warmup_runs
        self.num_runs = num_runs
        self.min_secs = min_secs
        self.remote_dir = posixpath.normpath(remote_dir)
        self.adb = adb
        self.timeout_s = float(timeout_s)
        self.runtime_version = runtime_version
        self._checked = False
        self._created_remote_dir = False
        self._seen_version: str | None = None

    @classmethod
    def from_target(cls, target: str, **options: Any) -> AdbBackend:
        """AdbBackend for a `--target` value "adb:SERIAL" (a serial may hold ':', e.g. host:port)."""
        kind, _, serial = target.partition(":")
        if kind != "adb" or not serial:
            raise ValueError(f"an adb target is written adb:SERIAL (see `adb devices`), got {target!r}")
        return cls(serial, **options)

    # --- talking to the phone: every adb command line is built here ------------------------

    def _adb(self, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
        command = [self.adb, "-s", self.serial, *args]
        try:
            proc = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                errors="replace",
                timeout=timeout,
                check=False,
            )
        except FileNotFoundError:
            raise DeviceError(
                f"adb not found ({self.adb!r}): install Android platform-tools or pass the path to adb"
            ) from None
        except PermissionError:
            raise DeviceError(f"adb at {self.adb!r} is not executable") from None
        except subprocess.TimeoutExpired:
            what = args[0] if args[0] != "shell" else f"shell {args[1].split()[0]} ..."
            raise DeviceError(
                f"`adb -s {self.serial} {what}` timed out after {timeout:g} s: check the phone responds"
                " (`adb devices`) or raise the timeout"
            ) from None
        stdout = proc.stdout.replace("\r\n", "\n")  # adb without shell v2 turns \n into \r\n
        return subprocess.CompletedProcess(command, proc.returncode, stdout, proc.stderr)

    def _shell(self, command: str, timeout: float, doing: str) -> tuple[int, str]:
        """Run `command` in the phone's shell; its exit status and its output (stderr merged)."""
        proc = self._adb("shell", f"{command} 2>&1; echo {_STATUS}$?", timeout=timeout)
        status = _marker(proc.stdout, _STATUS)
        if status is None:
            self._raise_device_problem(proc, doing)
        return status, proc.stdout[: proc.stdout.rfind(_STATUS)]

    def _classify(self, text: str) -> str | None:
        """adb's complaint about the device, as a one-line DeviceError message (None if none)."""
        low = text.lower()
        s = self.serial
        if "unauthorized" in low:
            return (
                f"device {s} is unauthorized: unlock it and accept the 'Allow USB debugging' prompt,"
                " then check `adb devices`"
            )
        if "offline" in low:
            return f"device {s} is offline: reconnect it or check `adb devices`"
        if "no permissions" in low or "insufficient permissions" in low:
            return f"no permission to use device {s}: fix its udev rule (see `adb devices`)"
        if "not found" in low or "no devices" in low:
            return f"device {s} not found: plug it in with USB debugging on; `adb devices` lists the serials"
        return None

    def _state_problem(self) -> str | None:
        """None when `adb get-state` says the phone is usable, else why not (one line)."""
        proc = self._adb("get-state", timeout=min(_QUICK_TIMEOUT_S, self.timeout_s))
        words = proc.stdout.split()
        if proc.returncode == 0 and words and words[-1] == "device":
            return None
        said = proc.stderr + "\n" + proc.stdout
        if classified := self._classify(said):
            return classified
        if proc.returncode == 0 and words:
            return f"device {self.serial} is in {words[-1]} mode, not booted into Android: reboot it (`adb reboot`)"
        return f"device {self.serial} is not usable: adb get-state says {_one_line(said)!r}"

    def _raise_device_problem(self, proc: subprocess.CompletedProcess[str], doing: str) -> None:
        """A command failed in adb itself (no exit status from the phone): say why, as DeviceError."""
        said = proc.stderr + "\n" + proc.stdout
        problem = self._classify(said) or self._state_problem()
        if problem is None:
            problem = f"adb failed on {self.serial} while {doing}: {_one_line(said)}"
        raise DeviceError(problem)

    # --- the device check -------------------------------------------------------------------

    def check(self) -> None:
        """Make sure the phone is online and authorized, benchmark_model is there and executable,
        and the model directory exists. Done once; raises DeviceError with what to do."""
        if self._checked:
            return
        if problem := self._state_problem():
            raise DeviceError(problem)
        s, b, d = self.serial, self.binary, self.remote_dir
        q = shlex.quote
        status, out = self._shell(
            f"test -e {q(b)}; echo __NAS_E=$?; test -x {q(b)}; echo __NAS_X=$?; "
            f"test -d {q(d)}; echo __NAS_D=$?; mkdir -p {q(d)}",
            timeout=min(_QUICK_TIMEOUT_S, self.timeout_s),
            doing="checking benchmark_model",
        )
        if _marker(out, "__NAS_E=") != 0:
            raise DeviceError(
                f"benchmark_model not found at {b} on {s}: push it with "
                f"`adb -s {s} push benchmark_model {b} && adb -s {s} shell chmod +x {b}`"
            )
        if _marker(out, "__NAS_X=") != 0:
            raise DeviceError(f"benchmark_model at {b} on {s} is not executable: run `adb -s {s} shell chmod +x {b}`")
        if status != 0:
            raise DeviceError(f"cannot create {d} on {s}: {failure_reason(out)}")
        self._created_remote_dir = _marker(out, "__NAS_D=") != 0
        self._checked = True

    def close(self) -> None:
        """Remove the model directory if this backend created it (and it is empty)."""
        if self._checked and self._created_remote_dir:
            try:
                self._shell(
                    f"rmdir {shlex.quote(self.remote_dir)}", min(_QUICK_TIMEOUT_S, self.timeout_s), "cleaning up"
                )
            except DeviceError:
                pass
            self._created_remote_dir = False

    def __enter__(self) -> AdbBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- Backend ----------------------------------------------------------------------------

    def getprops(self) -> dict[str, str]:
        """All system properties of the phone (`getprop`)."""
        self.check()
        status, out = self._shell("getprop", min(_QUICK_TIMEOUT_S, self.timeout_s), "reading getprop")
        if status != 0:
            raise DeviceError(f"getprop failed on {self.serial}: {failure_reason(out, status)}")
        return dict(re.findall(r"^\[([^\]]+)\]: \[(.*)\]\s*$", out, re.MULTILINE))

    def protocol(self) -> str:
        secs = f"{self.min_secs:g} s" if self.min_secs is not None else "1 s, benchmark_model's default min_secs"
        pinning = f"taskset {self.cpu_mask}" if self.cpu_mask else "no CPU pinning"
        return (
            f"TFLite benchmark_model over adb: {self.warmup_runs} warm-up runs (at least 0.5 s), then at least"
            f" {self.num_runs} timed runs (at least {secs}); one Invoke per run on random inputs, model file"
            " pushed before and removed after; statistics of the timed runs (mean, std, median = benchmark_model's"
            f" p50 where it prints one); num_threads={self.threads}, use_xnnpack={str(self.use_xnnpack).lower()},"
            f" {pinning}"
        )

    def metadata(self, precision: str) -> TableMetadata:
        props = self.getprops()
        model = props.get("ro.product.model", "").strip()
        maker = props.get("ro.product.manufacturer", "").strip()
        device = model if not maker or model.lower().startswith(maker.lower()) else f"{maker} {model}"
        soc_model = props.get("ro.soc.model", "").strip()
        soc_maker = props.get("ro.soc.manufacturer", "").strip()
        if soc_model:
            soc = (
                soc_model
                if not soc_maker or soc_model.lower().startswith(soc_maker.lower())
                else f"{soc_maker} {soc_model}"
            )
        else:
            soc = props.get("ro.board.platform", "").strip() or props.get("ro.hardware", "").strip()
        release = props.get("ro.build.version.release", "?")
        notes = [
            f"serial {self.serial}",
            f"Android {release} (SDK {props.get('ro.build.version.sdk', '?')}, build {props.get('ro.build.id', '?')})",
            f"abi {props.get('ro.product.cpu.abi', '?')}",
            f"hardware {props.get('ro.hardware', '?')}",
            f"cpu_mask {self.cpu_mask or 'none'}",
            f"binary {self.binary}",
        ]
        version = self.runtime_version or self._seen_version or ""
        if not version:
            notes.append("TFLite version unknown (benchmark_model prints none; pass runtime_version)")
        return TableMetadata(
            device=device or self.serial,
            runtime="tflite",
            runtime_version=version,
            soc=soc,
            threads=self.threads,
            delegate="xnnpack" if self.use_xnnpack else "none",
            precision=precision,
            date=datetime.now(UTC).strftime("%Y-%m-%d"),
            protocol=self.protocol(),
            source=f"measured over adb on {self.serial} with {self.binary}",
            notes="; ".join(notes),
        )

    def benchmark_command(self, remote_model: str) -> list[str]:
        """The words of the shell command that times `remote_model` on the phone."""
        words = ["taskset", self.cpu_mask] if self.cpu_mask else []
        words += [
            self.binary,
            f"--graph={remote_model}",
            f"--num_threads={self.threads}",
            f"--warmup_runs={self.warmup_runs}",
            f"--num_runs={self.num_runs}",
            f"--use_xnnpack={str(self.use_xnnpack).lower()}",
        ]
        if self.min_secs is not None:
            words.append(f"--min_secs={self.min_secs:g}")
        return words

    def time_model(self, model_path: Path) -> Timing:
        path = Path(model_path)
        name = path.name
        if not path.is_file():
            raise BlockError(f"{name}: no such model file ({path})")
        self.check()
        remote = posixpath.join(self.remote_dir, re.sub(r"[^A-Za-z0-9._-]", "_", name) or "model.tflite")
        proc = self._adb("push", str(path), remote, timeout=self.timeout_s)
        if proc.returncode != 0:
            self._raise_device_problem(proc, f"pushing {name} to {remote}")
        try:
            command = " ".join(shlex.quote(word) for word in self.benchmark_command(remote))
            status, out = self._shell(command, self.timeout_s, f"running benchmark_model on {name}")
        finally:
            self._remove(remote)
        self._seen_version = find_version(out) or self._seen_version
        return self._timing(name, status, out)

    def _timing(self, name: str, status: int, out: str) -> Timing:
        s = self.serial
        reason = failure_reason(out, status)
        if status in (126, 127) and self.binary in out:
            self._checked = False
            raise DeviceError(f"benchmark_model at {self.binary} on {s} cannot be run ({reason}): push it again")
        if status != 0 and _BROKEN_BINARY.search(out):
            self._checked = False
            raise DeviceError(
                f"benchmark_model at {self.binary} does not run on {s} ({reason}): push a build for this phone"
            )
        if status != 0 and re.search(r"^taskset:", out, re.MULTILINE):
            raise DeviceError(
                f"taskset {self.cpu_mask} failed on {s} ({reason}): the mask must name CPUs the phone has"
            )
        if status != 0:
            raise BlockError(f"{name} failed on {s}: {reason} (benchmark_model exit status {status})")
        try:
            return parse_benchmark_output(out)
        except BenchmarkOutputError as exc:
            raise BlockError(f"{name} on {s}: {exc}; last output: {reason}") from None

    def _remove(self, remote: str) -> None:
        """Best-effort removal of a pushed file: a phone that just went away keeps it."""
        try:
            self._shell(f"rm -f {shlex.quote(remote)}", min(10.0, self.timeout_s), "removing a model")
        except DeviceError:
            pass
