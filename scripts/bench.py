#!/usr/bin/env python3
"""make bench: end-to-end figures for CPO on this machine (never part of `make test`).

For each size (default 250, 100k, 1M, 10M customers; BENCH_SIZES overrides) it generates customers with
`cpo gen`, runs `cpo run --simulate-outcomes` on the offline providers into a fresh file:// store and prints per
stage and in total: wall time, customers/s, peak RSS (the OS's VmHWM), bytes read/written through the store,
provider calls, and a raw I/O baseline (reading and writing the same bytes with plain file I/O) with the ratio
stage time / baseline. It re-runs the same input to show that a cached run makes zero provider calls, and
measures Lambda cold start (binary sizes, time from exec to the first Runtime API request).
Figures go to target/bench/<n>.json (and summary.json) so commits can be compared.
"""

import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
PROFILE_DIR = os.path.join(TARGET, "release")
CPO = os.path.join(PROFILE_DIR, "cpo")
OUT = os.path.join(TARGET, "bench")
SIZES = [int(s) for s in os.environ.get("BENCH_SIZES", "250 100000 1000000 10000000").split()]
FUNCTIONS = ["trigger", "segment", "retrieve", "generate", "safety", "experiment", "report"]
# Stages whose work grows with the customer count. `experiment:analyze` left this set when ingest began storing
# per-(segment, arm) counts: it reads ~0.1 MiB whatever the size, and its time is the statistics of the rows.
PER_CUSTOMER = {"segment", "experiment:assign", "experiment:simulate", "experiment:ingest"}


def stage_name(task):
    return task["function"] + (":" + task["action"] if task.get("action") else "")


def raw_io_seconds(src, bytes_read, bytes_written):
    """Plain file I/O of the same volume: read `bytes_read` from src (re-reading as needed), write `bytes_written`."""
    chunk = 1 << 20
    t0 = time.perf_counter()
    left = bytes_read
    while left > 0:
        with open(src, "rb") as f:
            while left > 0:
                b = f.read(min(chunk, left))
                if not b:
                    break
                left -= len(b)
    buf = b"x" * chunk
    with tempfile.NamedTemporaryFile(dir=OUT) as f:
        left = bytes_written
        while left > 0:
            n = min(chunk, left)
            f.write(buf[:n])
            left -= n
        f.flush()
    return time.perf_counter() - t0


def run_os(cmd):
    """Run `cmd`; wall time and the OS's own accounting of the child (peak RSS, user/system CPU) via wait4."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise subprocess.CalledProcessError(p.returncode, cmd)
    # ru_maxrss is in KiB on Linux.
    return wall, {"os_peak_rss_bytes": ru.ru_maxrss * 1024, "user_s": ru.ru_utime, "sys_s": ru.ru_stime}


def run_cpo(args, metrics):
    wall, os_figures = run_os([CPO, *args, "--metrics-out", metrics])
    with open(metrics) as f:
        return wall, os_figures, json.load(f)


def run_shape(store_dir, run_id):
    """Segments, tones and variants of the run, read back from the store: what provider calls should scale with."""
    run = os.path.join(store_dir, "runs", run_id)
    with open(os.path.join(run, "input.json")) as f:
        tones = len(json.load(f)["config"]["tones"])
    with open(os.path.join(run, "segments.json")) as f:
        segments = len(json.load(f)["segments"])
    variants_dir = os.path.join(run, "variants")
    variants = 0
    for name in os.listdir(variants_dir) if os.path.isdir(variants_dir) else []:
        with open(os.path.join(variants_dir, name)) as f:
            variants += len(json.load(f).get("variants", []))
    return {"segments": segments, "tones": tones, "variants": variants}


def bench_size(n):
    reuse = os.path.join(OUT, f"{n}.json")
    if os.environ.get("BENCH_REUSE") and os.path.exists(reuse):
        # Figures of an earlier run of this script (same JSON), so a long size need not be re-run to redo the summary.
        with open(reuse) as f:
            return json.load(f)
    load_before = os.getloadavg()
    csv = os.path.join(OUT, f"customers-{n}.csv")
    gen = None
    if not os.path.exists(csv):
        tmp = csv + ".tmp"
        gen_wall, gen_os = run_os([CPO, "gen", "customers", "--n", str(n), "--seed", "7", "--out", tmp])
        os.replace(tmp, csv)
        gen = {"wall_ms": gen_wall * 1000, **gen_os}
    store_dir = os.path.join(OUT, f"store-{n}")
    shutil.rmtree(store_dir, ignore_errors=True)
    store = "file://" + store_dir
    args = ["run", "--input", csv, "--store", store, "--simulate-outcomes"]
    wall, os_run, m = run_cpo(args, os.path.join(OUT, f"run-{n}.metrics.json"))
    rewall, os_rerun, rem = run_cpo(args, os.path.join(OUT, f"rerun-{n}.metrics.json"))
    shape = run_shape(store_dir, m["run_id"])
    stages = {}
    for t in m["tasks"]:
        s = stages.setdefault(stage_name(t), {"wall_ms": 0.0, "cpu_ms": 0.0, "bytes_read": 0, "bytes_written": 0, "peak_rss_bytes": 0, "tasks": 0})
        s["wall_ms"] += t["wall_ms"]
        # Process CPU during the Task (10 ms ticks): above wall time when a stage uses several cores.
        s["cpu_ms"] += t.get("cpu_ms") or 0.0
        s["bytes_read"] += t["bytes_read"]
        s["bytes_written"] += t["bytes_written"]
        s["peak_rss_bytes"] = max(s["peak_rss_bytes"], t.get("peak_rss_bytes") or 0)
        s["tasks"] += 1
    for name, s in stages.items():
        s["customers_per_s"] = n / (s["wall_ms"] / 1000) if s["wall_ms"] > 0 else None
        if name in PER_CUSTOMER:
            base = raw_io_seconds(csv, s["bytes_read"], s["bytes_written"])
            s["raw_io_ms"] = base * 1000
            s["ratio_to_raw_io"] = (s["wall_ms"] / 1000) / base if base > 0 else None
    result = {
        "customers": n,
        "accepted": m.get("customers"),
        "input_bytes": os.path.getsize(csv),
        "wall_ms": wall * 1000,
        "customers_per_s": n / wall,
        # VmHWM read by the process at exit, and the kernel's wait4 figure for the whole child: they should agree.
        "peak_rss_bytes": m["peak_rss_bytes"],
        "os_peak_rss_bytes": os_run["os_peak_rss_bytes"],
        "user_cpu_s": os_run["user_s"],
        "sys_cpu_s": os_run["sys_s"],
        "bytes_read": m["bytes_read"],
        "bytes_written": m["bytes_written"],
        "provider_calls": m["provider_calls"],
        **shape,
        "rerun_wall_ms": rewall * 1000,
        "rerun_peak_rss_bytes": os_rerun["os_peak_rss_bytes"],
        "rerun_provider_calls": rem.get("provider_calls_this_process", rem["provider_calls"]),
        "gen": gen,
        # The machine is shared: load average before and after, to read the wall times against CPU time.
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "stages": stages,
    }
    with open(os.path.join(OUT, f"{n}.json"), "w") as f:
        json.dump(result, f, indent=2)
    return result


class FirstRequest(http.server.BaseHTTPRequestHandler):
    seen = None

    def do_GET(self):
        if FirstRequest.seen is None:
            FirstRequest.seen = time.perf_counter()
        self.send_response(500)
        self.end_headers()

    def log_message(self, *a):
        pass


def cold_start_once(path, fn):
    FirstRequest.seen = None
    srv = http.server.HTTPServer(("127.0.0.1", 0), FirstRequest)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    env = dict(os.environ, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{srv.server_port}", CPO_STORE="mem://",
               AWS_LAMBDA_FUNCTION_NAME=fn, AWS_LAMBDA_FUNCTION_MEMORY_SIZE="512", AWS_LAMBDA_FUNCTION_VERSION="1",
               AWS_REGION="eu-west-1", CPO_BUCKET="bench", CPO_CAMPAIGN_STATE_MACHINE_ARN="x",
               CPO_ANALYSIS_STATE_MACHINE_ARN="x")
    t0 = time.perf_counter()
    p = subprocess.Popen([path], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while FirstRequest.seen is None and time.perf_counter() - t0 < 10 and p.poll() is None:
        time.sleep(0.0005)
    init_ms = (FirstRequest.seen - t0) * 1000 if FirstRequest.seen else None
    p.kill()
    p.wait()
    srv.shutdown()
    srv.server_close()
    return init_ms


def cold_start(repeats=5):
    """Time from exec to the first `GET /runtime/invocation/next`: everything `main` does before serving.
    Each binary is started `repeats` times (the page cache is warm after the first: that is the best case)."""
    out = {}
    for fn in FUNCTIONS:
        path = os.path.join(PROFILE_DIR, fn)
        if not os.path.exists(path):
            continue
        times = [cold_start_once(path, fn) for _ in range(repeats)]
        ok = sorted(t for t in times if t is not None)
        out[fn] = {
            "binary_bytes": os.path.getsize(path),
            "init_ms": ok[len(ok) // 2] if ok else None,
            "init_ms_first": times[0],
            "init_ms_min": ok[0] if ok else None,
            "init_ms_max": ok[-1] if ok else None,
            "failed_starts": len(times) - len(ok),
        }
    return out


def machine():
    u = os.uname()
    m = {"sysname": u.sysname, "release": u.release, "machine": u.machine, "cpus": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as f:
            m["cpu_model"] = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), None)
        with open("/proc/meminfo") as f:
            m["mem_total_kib"] = int(next(l for l in f if l.startswith("MemTotal")).split()[1])
    except (OSError, StopIteration, ValueError):
        pass
    return m


def targets(results):
    """Issue 9 item 3, checked against this run's figures (None: size not run)."""
    by_n = {r["customers"]: r for r in results}
    t = {}

    def wall_rss(n, wall_s, rss):
        r = by_n.get(n)
        if r is None:
            return None
        peak = max(r["peak_rss_bytes"] or 0, r["os_peak_rss_bytes"] or 0)
        ok = (wall_s is None or r["wall_ms"] / 1000 <= wall_s) and (rss is None or peak <= rss)
        return {"met": ok, "wall_s": r["wall_ms"] / 1000, "peak_rss_bytes": peak, "limit_wall_s": wall_s,
                "limit_rss_bytes": rss}

    t["250_end_to_end_le_0.5s"] = wall_rss(250, 0.5, None)
    t["1M_le_10s_and_1GiB"] = wall_rss(1_000_000, 10.0, 1 << 30)
    t["10M_completes_le_4GiB"] = wall_rss(10_000_000, None, 4 << 30)
    largest = max(results, key=lambda r: r["customers"]) if results else None
    if largest:
        ratios = {k: s["ratio_to_raw_io"] for k, s in largest["stages"].items() if k in PER_CUSTOMER and s.get("ratio_to_raw_io")}
        t["per_customer_stages_le_3x_raw_io"] = {"customers": largest["customers"], "ratios": ratios,
                                                "met": all(v <= 3.0 for v in ratios.values())}
    # Calls must equal segments × tones, plus at most one validation retry per variant (safety calls are counted
    # by the safety step; the offline providers make none), whatever the customer count: a small file has fewer
    # segments, so compare with the run's own segments × tones rather than across sizes.
    calls = {r["customers"]: {"calls": r["provider_calls"], "segments_x_tones": r["segments"] * r["tones"],
                              "variants": r["variants"]} for r in results}
    t["provider_calls_segments_x_tones"] = {
        "calls": calls,
        "met": all(c["segments_x_tones"] <= c["calls"] <= c["segments_x_tones"] + c["variants"] for c in calls.values()),
    }
    t["cached_rerun_zero_calls"] = {"calls": {r["customers"]: r["rerun_provider_calls"] for r in results},
                                    "met": all(r["rerun_provider_calls"] == 0 for r in results)}
    return t


def mib(b):
    return f"{b / 1048576:.1f} MiB" if b else "-"


def main():
    os.makedirs(OUT, exist_ok=True)
    results = [bench_size(n) for n in SIZES]
    cs = cold_start()
    tg = targets(results)
    summary = {"sizes": results, "cold_start": cs, "targets": tg, "machine": machine(),
               "cpus": os.cpu_count()}
    with open(os.path.join(OUT, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    with open(os.path.join(OUT, "cold_start.json"), "w") as f:
        json.dump(cs, f, indent=2)
    print(f"\n{'customers':>10} {'wall':>9} {'CPU':>8} {'cust/s':>11} {'peak RSS':>10} {'OS RSS':>10} {'read':>10} {'written':>10} "
          f"{'seg×tone':>8} {'calls':>6} {'re-run':>8} {'re-run calls':>12}")
    for r in results:
        cpu = r['user_cpu_s'] + r['sys_cpu_s']
        print(f"{r['customers']:>10} {r['wall_ms']/1000:>8.2f}s {cpu:>7.2f}s {r['customers_per_s']:>11.0f} {mib(r['peak_rss_bytes']):>10} "
              f"{mib(r['os_peak_rss_bytes']):>10} {mib(r['bytes_read']):>10} {mib(r['bytes_written']):>10} "
              f"{r['segments']}×{r['tones']:<6} {r['provider_calls']:>6} {r['rerun_wall_ms']/1000:>7.2f}s {r['rerun_provider_calls']:>12}")
    for r in results:
        print(f"\nper stage, {r['customers']} customers")
        print(f"  {'stage':<22} {'wall':>9} {'CPU':>8} {'cust/s':>12} {'read':>10} {'written':>10} {'RSS at end':>11} {'raw I/O':>9} {'×raw':>6}")
        for name, s in r["stages"].items():
            ratio = f"{s['ratio_to_raw_io']:.1f}" if s.get("ratio_to_raw_io") else "-"
            raw = f"{s['raw_io_ms']/1000:.3f}s" if s.get("raw_io_ms") is not None else "-"
            cps = f"{s['customers_per_s']:.0f}" if s.get("customers_per_s") else "-"
            print(f"  {name:<22} {s['wall_ms']/1000:>8.3f}s {s.get('cpu_ms', 0)/1000:>7.2f}s {cps:>12} {mib(s['bytes_read']):>10} {mib(s['bytes_written']):>10} {mib(s['peak_rss_bytes']):>11} {raw:>9} {ratio:>6}")
    print("\nLambda cold start (release, this machine's architecture)")
    for fn, c in cs.items():
        init = f"{c['init_ms']:.1f} ms" if c["init_ms"] is not None else "-"
        print(f"  {fn:<12} {mib(c['binary_bytes']):>10} init {init} (median of 5; first {c['init_ms_first'] or 0:.1f} ms)")
    print("\nTargets (issue 9 item 3)")
    for name, t in tg.items():
        if t is None:
            print(f"  {name:<42} not run")
        else:
            detail = {k: v for k, v in t.items() if k != "met"}
            print(f"  {name:<42} {'MET' if t['met'] else 'MISSED'}  {json.dumps(detail)}")
    print(f"\nJSON: {OUT}/<n>.json, {OUT}/summary.json")


if __name__ == "__main__":
    sys.exit(main())
