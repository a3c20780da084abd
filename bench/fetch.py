"""`digest fetch` on 500 real feeds beside the floor (and lemon24/reader when it is installed).

The workload of the shared peers-fetch harness: 500 feeds cycling the real-feed files of 5 to
200 KiB (about 24 MB), served from another process on 127.0.0.1 with gzip, a strong ETag per
body (304 on If-None-Match) and a fixed latency of 50 + (i*37 % 151) ms for feed i. Three rows:

- one host each, cold: 500 feeds on 500 ports (500 servers), an empty database;
- one host each, all 304: the same again, every feed answering "not modified";
- all on one host, cold: the 500 feeds on one port, as many feeds of one publisher.

Every client runs as its own process, interleaved, and is measured whole (wall time, CPU, peak
RSS), imports included: the project (`python -m digest fetch` on a fresh SQLite file), the
floor (one aiohttp session without limits and fastfeedparser, storing nothing:
bench/fetch_floor.py) and, if a virtualenv with `reader` exists at $BENCH_READER_VENV or
../venv-reader, lemon24/reader with 500 threads (bench/fetch_reader.py); with
$BENCH_FETCH_BASELINE set to another checkout of the project (an earlier commit), that one
too, as "baseline". Ratios are medians over the floor's of the same run.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import multiprocessing
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
REAL_FEEDS = ROOT.parent / "shared" / "data" / "real-feeds"
FEEDS = 500
SIZES = (5 * 1024, 200 * 1024)
REPS = int(os.environ.get("BENCH_FETCH_REPS", "3"))
READER_VENV = Path(os.environ.get("BENCH_READER_VENV", ROOT.parent / "venv-reader"))
#: Another checkout of the project (a previous commit, say) to run beside this one.
BASELINE = os.environ.get("BENCH_FETCH_BASELINE")
#: The issue's goals: ratios to the floor of the same run, and the project's peak memory.
GOAL_COLD, GOAL_WARM, GOAL_RSS_MB = 2.0, 1.5, 150.0


def documents() -> list[bytes]:
    files = sorted(
        path
        for path in REAL_FEEDS.iterdir()
        if path.is_file()
        and not path.name.lower().startswith("readme")
        and SIZES[0] <= path.stat().st_size <= SIZES[1]
    )
    corpus = [path.read_bytes() for path in files]
    return [corpus[index % len(corpus)] for index in range(FEEDS)]


def latency(index: int) -> float:
    return (50 + index * 37 % 151) / 1000


def serve(ports: int, ready: Any, found: Any) -> None:
    """The feed server: ``ports`` ports for the one-host-each rows, one more for the last."""
    from aiohttp import web

    bodies = documents()
    zipped = [gzip.compress(body, compresslevel=6, mtime=0) for body in bodies]
    tags = [hashlib.sha1(body).hexdigest() for body in bodies]
    counts: dict[str, int] = {}

    async def feed(request: web.Request) -> web.Response:
        index = int(request.match_info["index"])
        await asyncio.sleep(latency(index))
        use_gzip = "gzip" in request.headers.get("Accept-Encoding", "").lower()
        etag = f'"{tags[index]}-gz"' if use_gzip else f'"{tags[index]}"'
        headers = {"ETag": etag, "Vary": "Accept-Encoding"}
        if etag in request.headers.get("If-None-Match", ""):
            counts["304"] = counts.get("304", 0) + 1
            return web.Response(status=304, headers=headers)
        counts["200"] = counts.get("200", 0) + 1
        if use_gzip:
            headers["Content-Encoding"] = "gzip"
        body = zipped[index] if use_gzip else bodies[index]
        return web.Response(body=body, content_type="application/xml", headers=headers)

    async def stats(_request: web.Request) -> web.Response:
        answer = web.json_response(dict(counts))
        counts.clear()
        return answer

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/feed/{index}", feed)
        app.router.add_get("/stats", stats)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        listening = []
        for _ in range(ports + 1):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            listening.append(sock.getsockname()[1])
            await web.SockSite(runner, sock, backlog=1024).start()
        found.put(listening)
        ready.set()
        await asyncio.Event().wait()

    asyncio.run(main())


@dataclass(frozen=True)
class Pass:
    wall: float
    cpu: float
    rss_mb: float
    #: Entries the client stored (project, reader) or parsed (floor).
    entries: int
    ok: int
    not_modified: int


def run(command: list[str], env: dict[str, str], control: str, work: Path) -> tuple[Pass, str]:
    """One client pass as its own process: wall, user+sys CPU and peak RSS from wait4."""
    out, err = work / "stdout", work / "stderr"
    started = time.perf_counter()
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(command, env={**os.environ, **env}, stdout=stdout, stderr=stderr)
        _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        said = out.read_text()[-3000:] + err.read_text()[-2000:]
        raise SystemExit(f"bench: {' '.join(command[:4])} failed:\n{said}")
    with urllib.request.urlopen(f"{control}/stats", timeout=30) as response:
        counts = json.loads(response.read())
    cpu = usage.ru_utime + usage.ru_stime
    measured = Pass(
        wall, cpu, usage.ru_maxrss / 1024, 0, counts.get("200", 0), counts.get("304", 0)
    )
    return measured, out.read_text()


def project(work: Path, config: Path, control: str, phases: int, tree: Path = ROOT) -> list[Pass]:
    database = work / "digest.db"
    env = {
        "DIGEST_DB": f"sqlite:///{database}",
        "DIGEST_OUTBOX": str(work / "outbox"),
        "PYTHONPATH": os.pathsep.join([str(tree), os.environ.get("PYTHONPATH", "")]),
    }
    command = [sys.executable, "-m", "digest", "--config", str(config), "fetch"]
    passes = []
    for _phase in range(phases):
        measured, _ = run(command, env, control, work)
        with sqlite3.connect(database) as connection:
            (entries,) = connection.execute("select count(*) from items").fetchone()
        passes.append(_with_entries(measured, entries))
    return passes


def floor(work: Path, urls: Path, control: str, phases: int) -> list[Pass]:
    script = str(ROOT / "bench" / "fetch_floor.py")
    command = [sys.executable, script, str(urls), str(work / "etags.json")]
    return [_json_pass(command, control, work) for _phase in range(phases)]


def reader(work: Path, urls: Path, control: str, phases: int) -> list[Pass]:
    command = [str(READER_VENV / "bin" / "python"), str(ROOT / "bench" / "fetch_reader.py")]
    command += [str(work / "reader.db"), str(urls)]
    cold = _json_pass([*command, "--add"], control, work)
    return [cold, *(_json_pass(command, control, work) for _phase in range(phases - 1))]


def _json_pass(command: list[str], control: str, work: Path) -> Pass:
    measured, said = run(command, {}, control, work)
    return _with_entries(measured, json.loads(said.splitlines()[-1])["entries"])


def _with_entries(measured: Pass, entries: int) -> Pass:
    return Pass(
        measured.wall, measured.cpu, measured.rss_mb, entries, measured.ok, measured.not_modified
    )


def write_workload(work: Path, name: str, ports: list[int]) -> tuple[Path, Path]:
    """The URL list and a project configuration (the sample edition, 500 feeds)."""
    urls = [f"http://127.0.0.1:{ports[i % len(ports)]}/feed/{i}" for i in range(FEEDS)]
    url_file = work / f"{name}.urls"
    url_file.write_text("".join(url + "\n" for url in urls))
    sample = (ROOT / "samples" / "feeds.yaml").read_text().splitlines()
    start = sample.index("edition:")
    edition = [sample[start]]
    for line in sample[start + 1 :]:
        if line and not line.startswith((" ", "#")):
            break
        edition.append(line)
    sections = ["stocks", "crypto", "markets"]
    feeds = "".join(
        f"  - {{name: Feed {i}, url: '{url}', section: {sections[i % 3]}}}\n"
        for i, url in enumerate(urls)
    )
    config = work / f"{name}.yaml"
    config.write_text("\n".join(edition) + "\nallow_private_hosts: true\nfeeds:\n" + feeds)
    return config, url_file


def main() -> None:
    if not REAL_FEEDS.is_dir():
        print(f"fetch: skipped, no real-feed corpus at {REAL_FEEDS}")
        return
    context = multiprocessing.get_context("spawn")
    ready, found = context.Event(), context.Queue()
    server = context.Process(target=serve, args=(FEEDS, ready, found), daemon=True)
    server.start()
    with_reader = (READER_VENV / "bin" / "python").exists()
    try:
        if not ready.wait(120):
            raise SystemExit("bench: the feed server did not start")
        ports = found.get(timeout=10)
        control = f"http://127.0.0.1:{ports[0]}"
        results = measure(ports, control, with_reader)
    finally:
        server.terminate()
        server.join()
    report(results, with_reader)


def baseline(work: Path, config: Path, control: str, phases: int) -> list[Pass]:
    return project(work, config, control, phases, Path(BASELINE or ROOT))


Results = dict[tuple[str, str], list[Pass]]
Client = Callable[[Path, Path, str, int], list[Pass]]
CLIENTS: dict[str, Client] = {
    "project": project,
    "floor": floor,
    "reader": reader,
    "baseline": baseline,
}


def clients(with_reader: bool) -> list[str]:
    return [
        *(["baseline"] if BASELINE else []),
        "project",
        "floor",
        *(["reader"] if with_reader else []),
    ]


def measure(ports: list[int], control: str, with_reader: bool) -> Results:
    results: Results = {}
    with tempfile.TemporaryDirectory(prefix="bench-fetch-") as folder:
        work = Path(folder)
        spread = write_workload(work, "spread", ports[:FEEDS])
        one = write_workload(work, "one", ports[FEEDS:])
        for rep in range(REPS):
            for layout, (config, urls) in (("spread", spread), ("one", one)):
                for client in clients(with_reader):
                    if layout == "one" and client == "reader" and rep:
                        continue  # 16 s a pass: once is enough to place it
                    place = work / f"{client}-{layout}-{rep}"
                    place.mkdir()
                    # All on one host, the project takes turns (fetch.per_host): cold only.
                    phases = 1 if layout == "one" else 2
                    own = client in ("project", "baseline")
                    passes = CLIENTS[client](place, config if own else urls, control, phases)
                    for phase, measured in zip(("cold", "warm"), passes, strict=False):
                        results.setdefault((client, f"{layout}-{phase}"), []).append(measured)
    return results


def report(results: Results, with_reader: bool) -> None:
    def median(client: str, row: str, field: str) -> float:
        return float(statistics.median(getattr(p, field) for p in results[(client, row)]))

    print(
        f"fetch: {FEEDS} real feeds, {sum(map(len, documents())) / 1e6:.1f} MB, 50-200 ms each, "
        f"every client its own process; medians of {REPS}"
    )
    rows = [
        ("one host each, cold", "spread-cold", "ok", GOAL_COLD),
        ("one host each, all 304", "spread-warm", "not_modified", GOAL_WARM),
        ("all on one host, cold", "one-cold", "ok", None),
    ]
    for title, row, answered, goal in rows:
        print(f"  {title}")
        floor_wall = median("floor", row, "wall")
        for client in clients(with_reader):
            passes = results[(client, row)]
            wall = median(client, row, "wall")
            ratio = wall / floor_wall
            rss = max(p.rss_mb for p in passes)
            line = (
                f"    {client:8} wall {wall:6.2f} s  {ratio:5.2f}x floor  "
                f"cpu {median(client, row, 'cpu'):6.2f} s  rss {rss:5.0f} MB"
                f"  answered {min(getattr(p, answered) for p in passes)}/{FEEDS}"
            )
            if client in ("project", "baseline"):
                line += f"  stored {min(p.entries for p in passes)} entries"
            if client == "project" and goal is not None:
                line += f"  (goal <= {goal:g}x: {'met' if ratio <= goal else 'NOT met'})"
            print(line)
    peak = max(p.rss_mb for (client, _), ps in results.items() if client == "project" for p in ps)
    verdict = "met" if peak <= GOAL_RSS_MB else "NOT met"
    print(f"  project peak RSS {peak:.0f} MB (goal <= {GOAL_RSS_MB:g} MB: {verdict})")
    if not with_reader:
        print(
            f"  reader: not run (no virtualenv at {READER_VENV}; python3 -m venv "
            f"{READER_VENV} && {READER_VENV}/bin/pip install reader sgmllib3k)"
        )


if __name__ == "__main__":
    main()
