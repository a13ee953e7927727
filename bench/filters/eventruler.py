"""bench/filters' event-ruler path: AWS's reference engine (Java) run beside esm's matcher.

``EventRuler`` builds the harness in bench/filters/eventruler/ (a pom naming event-ruler 2.1.0
and one Java file) with Maven into a cache directory, once per version of those two files, then
keeps one JVM running for the whole bench: each case is loaded once (rules added, JIT warmed for
two seconds, the per-event match answers written to a file) and then timed one pass at a time,
so the bench can take turns between event-ruler and esm on the same events. Needs ``java`` (17
or later) and ``mvn``; Maven fetches event-ruler and its dependencies on the first build.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

HARNESS = Path(__file__).with_name("eventruler")
VERSION = "2.1.0"


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "esm-bench" / "event-ruler"


def build(cache: Path | None = None) -> tuple[Path, str]:
    """Compile the harness (when its sources changed) and return (classes dir, classpath)."""
    digest = hashlib.sha256()
    for name in ("pom.xml", "EventRulerBench.java"):
        digest.update((HARNESS / name).read_bytes())
    where = (cache or cache_root()) / digest.hexdigest()[:16]
    classes, classpath = where / "classes", where / "classpath.txt"
    if not (classes / "EventRulerBench.class").exists() or not classpath.exists():
        for tool in ("mvn", "java"):
            if shutil.which(tool) is None:
                raise SystemExit(f"event-ruler path: `{tool}` not found (install a JDK 17+ and Maven)")
        done = subprocess.run(
            ["mvn", "-q", "-B", "-f", str(HARNESS / "pom.xml"), f"-DbuildDir={where}", "compile",
             "dependency:build-classpath", f"-Dmdep.outputFile={classpath}"],
            capture_output=True, text=True, timeout=900,
        )
        if done.returncode != 0:
            raise SystemExit(f"event-ruler path: the Maven build failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return classes, classpath.read_text().strip()


class EventRuler:
    """One JVM running the harness; ``load`` a case, then ``time`` passes over it."""

    def __init__(self) -> None:
        classes, classpath = build()
        self.workdir = Path(tempfile.mkdtemp(prefix="esm-bench-er-"))
        # Serial GC: the matching thread is the only one doing work, as in esm's loop.
        self.process = subprocess.Popen(
            ["java", "-XX:+UseSerialGC", "-Xms1g", "-Xmx1g", "-cp", f"{classes}{os.pathsep}{classpath}",
             "EventRulerBench"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, encoding="utf-8",
        )

    def _ask(self, line: str) -> str:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline().strip()
        if not answer or answer.startswith("error"):
            raise SystemExit(f"event-ruler harness: {answer or 'no answer (it exited)'} after {line.split(chr(9))[0]!r}")
        return answer

    def load(self, name: str, blobs: list[bytes], patterns: list[str]) -> list[bool]:
        """Add ``patterns`` as rules over ``blobs`` (one JSON event each); returns, per event,
        whether any rule matched."""
        events, rules, matched = (self.workdir / f"{name}.{suffix}" for suffix in ("events", "patterns", "matched"))
        events.write_bytes(b"".join(blob + b"\n" for blob in blobs))
        rules.write_text("".join(pattern + "\n" for pattern in patterns), encoding="utf-8")
        answer = self._ask(f"load\t{name}\t{events}\t{rules}\t{matched}")
        bits = matched.read_text()
        if len(bits) != len(blobs) or answer.split("\t")[1] != str(bits.count("1")):
            raise SystemExit(f"event-ruler harness: unexpected answer {answer!r} for {len(blobs)} events")
        return [bit == "1" for bit in bits]

    def time(self, name: str) -> tuple[float, float]:
        """Seconds of wall-clock and of thread CPU time for one pass over the case's events
        (parse and match, one thread)."""
        wall, cpu = self._ask(f"time\t{name}").split("\t")
        return float(wall), float(cpu)

    def close(self) -> None:
        try:
            assert self.process.stdin is not None
            self.process.stdin.write("quit\n")
            self.process.stdin.close()
            self.process.wait(timeout=30)
        finally:
            if self.process.poll() is None:
                self.process.kill()
            shutil.rmtree(self.workdir, ignore_errors=True)
