"""H2O's own mini-batch scoring client (h2o-mlops-scoring-client) against a running shim.

Run by runtime-shim/tests/cli/scoring_client.rs with the venv of
.ci/setup-scoring-client-venv.sh:

    check_client.py --url http://127.0.0.1:PORT --model gbm_binomial --testdata DIR
        [--passphrase P] [--contributions ORIGINAL|TRANSFORMED] [--refused WRONG]

- scores testdata/h2o3/<model>.input.csv, with an id column, in mini-batches of 7 rows on
  2 threads, and compares every row with H2O's own <model>.predictions.csv (labels equal,
  numbers within 1e-12 relative) and the id column with the ids sent, in order;
- with --contributions, scores again with request_contributions and compares the
  contribution columns with the shim's /model/contribution answer for the same rows;
- with --refused, checks that no passphrase and WRONG are each refused with 401 before
  any row is scored.

Prints one line per check and exits 1 on the first failure.
"""

import argparse
import sys

import pandas as pd
import requests

import h2o_mlops_scoring_client as client

ID = "row_id"


def fail(msg):
    print(f"FAILED: {msg}", flush=True)
    sys.exit(1)


def close(got, want):
    return got == want or abs(got - want) <= 1e-12 * abs(want)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--testdata", required=True)
    ap.add_argument("--passphrase")
    ap.add_argument("--contributions", choices=["ORIGINAL", "TRANSFORMED"])
    ap.add_argument("--refused")
    a = ap.parse_args()
    score_url = f"{a.url}/model/score"

    # Every cell as text, as the CSV holds it ("" is missing): what a user would load
    # with dtype=str; the client sends each cell as a string.
    df = pd.read_csv(f"{a.testdata}/{a.model}.input.csv", dtype=str, keep_default_na=False)
    df.insert(0, ID, [f"id-{i}" for i in range(len(df))])
    want = pd.read_csv(f"{a.testdata}/{a.model}.predictions.csv", dtype=str, keep_default_na=False)

    if a.refused is not None:
        for name, p in [("no passphrase", None), ("wrong passphrase", a.refused)]:
            try:
                client.score_data_frame(
                    mlops_endpoint_url=score_url, id_column=ID, data_frame=df,
                    passphrase=p, cpus=2, mini_batch_size=7,
                )
            except requests.exceptions.HTTPError as e:
                if e.response is None or e.response.status_code != 401:
                    fail(f"{name}: {e}")
                print(f"ok: {name} refused with 401")
                continue
            fail(f"{name}: the client scored without a valid passphrase")

    caps = client.get_capabilities(score_url, passphrase=a.passphrase)
    schema = client.get_schema(score_url, passphrase=a.passphrase)
    print(f"ok: capabilities {caps}, {len(schema['inputFields'])} inputs")

    got = client.score_data_frame(
        mlops_endpoint_url=score_url, id_column=ID, data_frame=df,
        passphrase=a.passphrase, cpus=2, mini_batch_size=7,
    )
    if list(got[ID]) != list(df[ID]):
        fail(f"ids {list(got[ID])[:5]}... differ from those sent")
    outputs = [c for c in got.columns if c != ID]
    if outputs != list(want.columns):
        fail(f"output columns {outputs} != H2O's {list(want.columns)}")
    if len(got) != len(want):
        fail(f"{len(got)} rows scored, H2O has {len(want)}")
    for r in range(len(want)):
        for c in want.columns:
            w, g = want.at[r, c], got.at[r, c]
            try:
                wv = float(w)
            except ValueError:
                if str(g) != w:
                    fail(f"row {r} {c}: {g!r} != H2O's {w!r}")
                continue
            if not close(float(g), wv):
                fail(f"row {r} {c}: {g!r} != H2O's {w!r}")
    print(f"ok: {len(got)} rows in mini-batches equal H2O's predictions, ids kept")

    if a.contributions:
        got = client.score_data_frame(
            mlops_endpoint_url=score_url, id_column=ID, data_frame=df,
            passphrase=a.passphrase, cpus=2, mini_batch_size=7,
            request_contributions=client.FeatureType[a.contributions],
        )
        headers = {"Authorization": f"Bearer {a.passphrase}"} if a.passphrase else {}
        fields = [f["name"] for f in schema["inputFields"]]
        r = requests.post(
            f"{a.url}/model/contribution",
            json={
                "requestShapleyValueType": a.contributions,
                "fields": fields,
                "rows": df[fields].values.tolist(),
            },
            headers=headers,
            timeout=60,
        )
        r.raise_for_status()
        ref = r.json()
        features = ref["features"]
        rows = ref["contributionGroups"][0]["contributions"]
        missing = [f for f in features if f not in got.columns]
        if missing:
            fail(f"contribution columns {missing} missing from {list(got.columns)}")
        if list(got[ID]) != list(df[ID]):
            fail("ids changed with contributions")
        for i, row in enumerate(rows):
            for f, v in zip(features, row):
                if float(got.at[i, f]) != float(v):
                    fail(f"row {i} {f}: {got.at[i, f]!r} != /model/contribution's {v!r}")
        print(f"ok: {a.contributions} contributions of {len(rows)} rows "
              f"({len(features)} features) equal /model/contribution")
    print("client checks passed")


if __name__ == "__main__":
    main()
