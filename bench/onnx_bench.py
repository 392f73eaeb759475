"""The native ONNX runtime (runtime-shim's onnx backend on ONNX Runtime) against MLflow's
own serving of the same ONNX model (`mlflow models serve` / `mlflow models predict`,
Python + onnxruntime), on the same rows. Run by bench/onnx.sh (`make bench`), which
says what it needs; standard library only, so any Python 3 runs it.

For each model of testdata/onnx it measures, RUNS times each, alternating:
  start-up   spawn to ready: the shim's GET /readyz 200, MLflow's GET /ping 200;
  batch      the whole process on ROWS rows: `runtime-shim score` (CSV in, CSV out)
             against `mlflow models predict` (JSON tensors in, JSON out), wall seconds
             and peak RSS (/usr/bin/time);
  REST       one server each, ROWS rows in requests of REQUEST_ROWS rows, one connection
             (rows/s), then ONE_ROW_REQUESTS requests of one row (requests/s, p50 and p99
             latency); then the peak RSS of the server's whole process tree (VmHWM of
             each process, summed: MLflow's CLI process, uvicorn and its worker).
The shim gets `{"fields", "rows"}` (the MLOps API), MLflow `{"inputs": {tensor: ...}}`
(its tensor input for ONNX models); both bodies are encoded once, before timing, and
the replies are read but not parsed, so the client costs both the same.
"""

import argparse
import csv
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_http(port, path, proc, limit=600.0):
    """Seconds until GET path answers 200 (polled every 10 ms)."""
    start = time.monotonic()
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering {path}")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", path)
            r = c.getresponse()
            r.read()
            c.close()
            if r.status == 200:
                return time.monotonic() - start
        except OSError:
            pass
        if time.monotonic() - start > limit:
            raise RuntimeError(f"no 200 from {path} within {limit} s")
        time.sleep(0.01)


def tree(pid):
    """pid and all its descendants."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def peak_rss_kib(pid):
    total = 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def stop(proc):
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def post_loop(port, path, bodies, count):
    """Sends `count` requests (cycling `bodies`) on one kept-alive connection; returns the
    latencies in seconds."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    lat = []
    for i in range(count):
        body = bodies[i % len(bodies)]
        t = time.perf_counter()
        c.request("POST", path, body=body, headers={"content-type": "application/json"})
        r = c.getresponse()
        data = r.read()
        lat.append(time.perf_counter() - t)
        if r.status != 200:
            raise RuntimeError(f"{path}: {r.status} {data[:300]!r}")
    c.close()
    return lat


class Model:
    def __init__(self, name, work, processor):
        self.name = name
        self.mlflow_dir = os.path.join(REPO, "testdata", "onnx", name)
        self.dir = os.path.join(work, name)
        if os.path.exists(self.dir):
            shutil.rmtree(self.dir)
        subprocess.run([processor, "--source", self.mlflow_dir, "--target", self.dir,
                        "--model-type", "onnx"], check=True, stdout=subprocess.DEVNULL)
        with open(os.path.join(self.dir, "model.json")) as f:
            m = json.load(f)
        self.types = {c["name"]: c["type"] for c in m["input_schema"]}
        self.tensors = [(t["name"], t["type"], t["columns"])
                        for t in m["metadata"]["onnx_graph"]["inputs"]]
        # MLflow takes a bare array for a model whose signature input is unnamed.
        sig = json.loads(m["metadata"]["mlmodel"]["signature"]["inputs"])
        self.unnamed = len(sig) == 1 and "name" not in sig[0]
        with open(os.path.join(REPO, "testdata", "onnx", name + ".input.csv")) as f:
            r = csv.reader(f)
            self.fields = next(r)
            self.base_rows = list(r)

    def rows(self, n):
        b = self.base_rows
        return [b[i % len(b)] for i in range(n)]

    def value(self, col, cell):
        ty = self.types[col]
        if ty.startswith("Float"):
            return float(cell) if cell != "" else float("nan")
        if ty.startswith("Int"):
            return int(float(cell))
        if ty == "Boolean":
            return cell.lower() in ("true", "1")
        return cell

    def shim_body(self, rows):
        return json.dumps({"fields": self.fields, "rows": rows}).encode()

    def mlflow_inputs(self, rows):
        idx = {f: i for i, f in enumerate(self.fields)}
        out = {}
        for name, onnx_type, cols in self.tensors:
            rank = onnx_type.split("[", 1)[1].count(",") + 1
            if rank == 1:
                out[name] = [self.value(cols[0], r[idx[cols[0]]]) for r in rows]
            else:
                out[name] = [[self.value(c, r[idx[c]]) for c in cols] for r in rows]
        if self.unnamed:
            return {"inputs": next(iter(out.values()))}
        return {"inputs": out}

    def mlflow_body(self, rows):
        return json.dumps(self.mlflow_inputs(rows)).encode()


def timed(cmd, env):
    """Runs cmd under /usr/bin/time; returns (wall s, peak RSS KiB, cpu s)."""
    out = subprocess.run(["/usr/bin/time", "-f", "TIME %e %M %U %S"] + cmd, env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    line = [l for l in out.stderr.splitlines() if l.startswith("TIME ")]
    if out.returncode != 0 or not line:
        raise RuntimeError(f"{cmd[0]} failed ({out.returncode}):\n{out.stderr[-3000:]}")
    _, wall, rss, user, sys_ = line[-1].split()
    return float(wall), int(rss), float(user) + float(sys_)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shim", required=True)
    ap.add_argument("--processor", required=True)
    ap.add_argument("--venv", required=True)
    ap.add_argument("--ort-lib", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--rows", type=int, default=100000)
    ap.add_argument("--request-rows", type=int, default=1000)
    ap.add_argument("--one-row-requests", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("models", nargs="+")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    env = dict(os.environ)
    env["PATH"] = os.path.join(a.venv, "bin") + os.pathsep + env.get("PATH", "")
    env["ORT_DYLIB_PATH"] = a.ort_lib
    env.pop("MODEL_PATH", None)
    mlflow = os.path.join(a.venv, "bin", "mlflow")
    results = []
    for name in a.models:
        m = Model(name, a.work, a.processor)
        rows = m.rows(a.rows)
        big_csv = os.path.join(a.work, f"{name}.{a.rows}.csv")
        with open(big_csv, "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(m.fields)
            w.writerows(rows)
        big_json = os.path.join(a.work, f"{name}.{a.rows}.json")
        with open(big_json, "w") as f:
            json.dump(m.mlflow_inputs(rows), f)
        res = {"model": name, "start": {"native": [], "mlflow": []},
               "batch": {"native": [], "mlflow": []}, "rest": {}, "one": {}, "rss": {}}
        # Batch, alternating.
        for run in range(a.runs + 1):
            out_csv = os.path.join(a.work, f"{name}.out.csv")
            out_json = os.path.join(a.work, f"{name}.out.json")
            n = timed([a.shim, "score", "--model-path", m.dir, "--input", big_csv,
                       "--output", out_csv], env)
            p = timed([mlflow, "models", "predict", "-m", m.mlflow_dir, "-i", big_json,
                       "-t", "json", "-o", out_json, "--env-manager", "local"], env)
            if run == 0:
                # Warm-up run (page cache, Python bytecode); check the outputs once.
                with open(out_csv) as f:
                    got = sum(1 for _ in f) - 1
                with open(out_json) as f:
                    pred = json.load(f)
                pred = pred.get("predictions", pred)
                first = next(iter(pred.values())) if isinstance(pred, dict) else pred
                if got != a.rows or len(first) != a.rows:
                    raise RuntimeError(f"{name}: {got} and {len(first)} rows, want {a.rows}")
                continue
            res["batch"]["native"].append(n)
            res["batch"]["mlflow"].append(p)
        # Servers: start-up each run; REST throughput and memory on the last.
        big_bodies = {
            "native": [m.shim_body(rows[:a.request_rows])],
            "mlflow": [m.mlflow_body(rows[:a.request_rows])],
        }
        one_bodies = {
            "native": [m.shim_body([r]) for r in m.base_rows],
            "mlflow": [m.mlflow_body([r]) for r in m.base_rows],
        }
        for run in range(a.runs):
            for kind in ("native", "mlflow"):
                port = free_port()
                if kind == "native":
                    cmd = [a.shim]
                    senv = dict(env, MODEL_PATH=m.dir, PORT=str(port), HOST="127.0.0.1",
                                RUST_LOG="warn")
                    ready, path = "/readyz", "/model/score"
                else:
                    cmd = [mlflow, "models", "serve", "-m", m.mlflow_dir, "--env-manager",
                           "local", "-h", "127.0.0.1", "-p", str(port)]
                    senv = env
                    ready, path = "/ping", "/invocations"
                proc = subprocess.Popen(cmd, env=senv, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, start_new_session=True)
                try:
                    res["start"][kind].append(wait_http(port, ready, proc))
                    if run == a.runs - 1:
                        post_loop(port, path, big_bodies[kind], 3)  # warm-up
                        count = max(1, a.rows // a.request_rows)
                        t = time.perf_counter()
                        post_loop(port, path, big_bodies[kind], count)
                        res["rest"][kind] = count * a.request_rows / (time.perf_counter() - t)
                        lat = sorted(post_loop(port, path, one_bodies[kind], a.one_row_requests))
                        res["one"][kind] = (len(lat) / sum(lat), lat[len(lat) // 2],
                                            lat[min(len(lat) - 1, int(len(lat) * 0.99))])
                        res["rss"][kind] = peak_rss_kib(proc.pid)
                finally:
                    stop(proc)
        results.append(res)
        report([res], a)
    if len(results) > 1:
        report(results, a)


def report(results, a):
    med = statistics.median
    print()
    print(f"ONNX: native runtime-shim (ONNX Runtime) vs MLflow (mlflow models serve/predict), "
          f"{a.rows} rows, median of {a.runs} runs, load average {os.getloadavg()[0]:.1f}")
    print()
    print("| model | start-up to ready, native | MLflow | batch rows/s, native | MLflow | speed "
          "| batch peak RSS, native | MLflow |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        n = r["batch"]["native"]
        p = r["batch"]["mlflow"]
        nr, pr = a.rows / med([x[0] for x in n]), a.rows / med([x[0] for x in p])
        print(f"| {r['model']} | {med(r['start']['native']):.3f} s | {med(r['start']['mlflow']):.2f} s "
              f"| {nr:,.0f} | {pr:,.0f} | {nr / pr:.1f}x "
              f"| {max(x[1] for x in n) / 1024:.1f} MiB | {max(x[1] for x in p) / 1024:.0f} MiB |")
    print()
    print(f"| model | REST rows/s ({a.request_rows}-row requests), native | MLflow | speed "
          f"| 1-row requests/s, native | MLflow | p50 / p99, native | MLflow "
          f"| server peak RSS, native | MLflow |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        rn, rp = r["rest"]["native"], r["rest"]["mlflow"]
        on, op = r["one"]["native"], r["one"]["mlflow"]
        print(f"| {r['model']} | {rn:,.0f} | {rp:,.0f} | {rn / rp:.1f}x | {on[0]:,.0f} | {op[0]:,.0f} "
              f"| {on[1] * 1e3:.2f} / {on[2] * 1e3:.2f} ms | {op[1] * 1e3:.2f} / {op[2] * 1e3:.2f} ms "
              f"| {r['rss']['native'] / 1024:.1f} MiB | {r['rss']['mlflow'] / 1024:.0f} MiB |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
