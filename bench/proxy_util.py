"""Helpers of bench/proxy.sh (standard library only).

    proxy_util.py inputs MODEL_DIR REQUEST_JSON OUT_PREFIX ROWS...
        From a testdata model's split-orient request (<model>.request.json), writes
        OUT_PREFIX.csv (the rows as the text cells of an MLOps request, for shim-load --csv)
        and OUT_PREFIX-<n>.json for each n of ROWS: the /invocations body the shim's
        mlflow_pyfunc backend sends for those n rows (the rows cycled, as shim-load
        cycles them): {"dataframe_split": {"columns": [...], "data": [...]}} with each cell
        typed by the processed model's input schema (model.json), compact JSON.
    proxy_util.py agree MLFLOW_URL SHIM_URL OUT_PREFIX ROWS
        Posts OUT_PREFIX-<ROWS>.json to MLFLOW_URL/invocations and the same rows as an
        MLOps request to SHIM_URL/model/score, and fails unless both give the same
        predictions (labels equal, numbers within 1e-9 relative).
    proxy_util.py group-hwm PGID
        The sum of the peak RSS (VmHWM, KiB) of the processes of a process group, and
        their count.
    proxy_util.py cpu ID...
        The CPU time (seconds on a CPU, all threads, from the scheduler's exact count)
        used so far by each ID: a process (PID), or the live processes of a process group
        (-PGID).
"""

import csv
import json
import os
import sys
import urllib.request


def cell_text(v):
    return v if isinstance(v, str) else json.dumps(v)


def typed(ty, v):
    """A cell as the shim's json_cell sends it, from the request's value."""
    if v is None:
        return None
    if ty in ("Int32", "Int64"):
        return int(float(v))
    if ty in ("Float32", "Float64"):
        return float(v)
    if ty == "Boolean":
        return v if isinstance(v, bool) else str(v).lower() in ("true", "1")
    return cell_text(v)


def cycled(rows, n):
    return [rows[i % len(rows)] for i in range(n)]


def inputs(model_dir, request, prefix, sizes):
    split = json.load(open(request))
    columns, rows = split["columns"], split["data"]
    manifest = json.load(open(os.path.join(model_dir, "model.json")))
    types = {c["name"]: c["type"] for c in manifest["input_schema"]}
    missing = [c for c in types if c not in columns]
    if missing:
        sys.exit(f"{request}: no column for the model inputs {missing}")
    with open(prefix + ".csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(columns)
        for r in rows:
            w.writerow(["" if v is None else cell_text(v) for v in r])
    order = [c["name"] for c in manifest["input_schema"]]
    pos = [columns.index(c) for c in order]
    for n in sizes:
        data = [[typed(types[c], r[p]) for c, p in zip(order, pos)] for r in cycled(rows, int(n))]
        body = {"dataframe_split": {"columns": order, "data": data}}
        with open(f"{prefix}-{n}.json", "w") as f:
            json.dump(body, f, separators=(",", ":"))


def post(url, body):
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.load(r)


def agree(mlflow_url, shim_url, prefix, n):
    split = open(f"{prefix}-{n}.json", "rb").read()
    with open(prefix + ".csv", newline="") as f:
        table = list(csv.reader(f))
    fields, rows = table[0], cycled(table[1:], int(n))
    a = post(mlflow_url + "/invocations", split)
    b = post(shim_url + "/model/score", json.dumps({"fields": fields, "rows": rows}).encode())
    preds = a["predictions"] if isinstance(a, dict) and "predictions" in a else a
    outputs, score = b["fields"], b["score"]
    if isinstance(preds, dict):  # columns
        preds = [dict(zip(preds, vals)) for vals in zip(*preds.values())]
    assert len(preds) == len(score), f"{len(preds)} predictions, {len(score)} score rows"
    for i, (p, s) in enumerate(zip(preds, score)):
        if isinstance(p, dict):
            p = [p[o] if o in p else list(p.values())[j] for j, o in enumerate(outputs)]
        elif not isinstance(p, list):
            p = [p]
        assert len(p) == len(s), f"row {i}: MLflow {p}, shim {s}"
        for x, y in zip(p, s):
            if isinstance(x, (int, float)) and not isinstance(x, bool):
                fy = float(y)
                assert abs(x - fy) <= 1e-9 * max(abs(x), abs(fy), 1e-300), f"row {i}: MLflow {p}, shim {s}"
            else:
                assert ("" if x is None else cell_text(x).strip('"')) == y, f"row {i}: MLflow {p}, shim {s}"
    print(f"  answers agree on {len(score)} rows ({len(outputs)} output(s): {', '.join(outputs)})")


def stat_fields(pid):
    """/proc/PID/stat after the command name (which may hold blanks): state is [0]."""
    stat = open(f"/proc/{pid}/stat").read()
    return stat[stat.rindex(")") + 2:].split()


def task_seconds(pid):
    """CPU time of every thread of a process so far, from the scheduler's own count
    (/proc/PID/task/*/schedstat, nanoseconds on the CPU: exact, not tick samples)."""
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0.0
    for t in tasks:
        try:
            total += int(open(f"/proc/{pid}/task/{t}/schedstat").read().split()[0])
        except (OSError, ValueError, IndexError):
            continue
    return total / 1e9


def cpu(ids):
    out = []
    for i in map(int, ids):
        if i == 0:
            out.append("0")
            continue
        pids = [i] if i > 0 else [p for p in filter(str.isdigit, os.listdir("/proc")) if in_group(p, -i)]
        out.append(f"{sum(task_seconds(p) for p in pids):.6f}")
    print(*out)


def in_group(pid, pgid):
    try:
        return int(stat_fields(pid)[2]) == pgid
    except (OSError, ValueError):
        return False


def group_hwm(pgid):
    total = count = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        if not in_group(pid, int(pgid)):
            continue
        try:
            for line in open(f"/proc/{pid}/status"):
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
                    count += 1
        except (OSError, ValueError):
            continue
    print(total, count)


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "inputs":
        inputs(args[0], args[1], args[2], args[3:])
    elif cmd == "agree":
        agree(*args)
    elif cmd == "cpu":
        cpu(args)
    elif cmd == "group-hwm":
        group_hwm(args[0])
    else:
        sys.exit(f"unknown command {cmd}")
