"""Generate testdata/mlflow/h2o_mojo_wrapped/: an MLflow model wrapping an H2O-3 MOJO.

The model is written by the real `h2o_mlflow_flavor` package (PyPI
`h2o-mlflow-flavor` 0.1.0; flavor name `h2o_mojo_pojo`, pyfunc
`loader_module: h2o_mlflow_flavor`) with
`h2o_mlflow_flavor.save_model(model, path, model_type="MOJO", signature=...)`.

How to run (from the repository root; needs Java 17 on PATH, only PyPI is used):

    python3.11 -m venv /tmp/h2o-mlflow-venv
    /tmp/h2o-mlflow-venv/bin/pip install "h2o==3.46.0.11" "mlflow-skinny==3.17.2" \
        "pandas==3.1.1" "scipy==1.17.1"
    /tmp/h2o-mlflow-venv/bin/pip install --no-deps "h2o-mlflow-flavor==0.1.0"
    /tmp/h2o-mlflow-venv/bin/python testdata/mlflow/generate_h2o_wrapped.py

(`h2o-mlflow-flavor` declares `Requires-Dist: mlflow`, i.e. the full package;
`--no-deps` keeps the venv on `mlflow-skinny`, which has every module the flavor
imports. Installing it with its dependencies instead pulls `mlflow==3.17.2`.
scipy is needed because mlflow-skinny does not bring it but `infer_signature`
imports scipy.sparse; without it the signature silently becomes `[Any]`.)

Versions used for the committed artifact:
    Python 3.11.7, OpenJDK 17.0.15, h2o 3.46.0.11, h2o-mlflow-flavor 0.1.0,
    mlflow-skinny 3.17.2, pandas 3.1.1, numpy 2.4.6, scipy 1.17.1.

What it does: starts a local H2O-3 (port 54779, 1 GB, 1 thread), builds a
small synthetic frame with numpy (default_rng(7): numeric `x1`, `x2`, categorical
`color`, binomial response `label` with levels no/yes), trains a tiny GBM
(ntrees=3, max_depth=2, seed=1), and saves it as a MOJO through the flavor. The
signature is inferred from a pandas frame of the inputs and H2O's prediction
frame (`predict`, `no`, `yes`). It then loads the saved folder back with
`mlflow.pyfunc.load_model` and checks that the flavor's Java scorer
(hex.genmodel.tools.PredictCsv) gives the same predictions as the in-cluster
model. Finally it deletes `h2o-genmodel.jar` (~5 MB) that the flavor writes next
to the MOJO: the flavor needs it at scoring time, and it can be recreated from
the h2o package; it is the entry `www/3/h2o-genmodel.jar` of the jar in the h2o
wheel (5154801 bytes for 3.46.0.11):

    unzip -j -o "$(/tmp/h2o-mlflow-venv/bin/python -c 'import h2o,os;print(os.path.join(os.path.dirname(h2o.__file__),"backend","bin","h2o.jar"))')" \
        www/3/h2o-genmodel.jar -d testdata/mlflow/h2o_mojo_wrapped

`model_uuid` and `utc_time_created` are fixed (as in generate.py). The MOJO zip
itself is not byte-reproducible (H2O writes the training/save time into it).

Reference predictions for the native runtime (the `h2o3_mojo` model type of this
model): `h2o_mojo_wrapped.input.csv` (24 rows with missing cells, an unseen level and an
all-missing row) and `h2o_mojo_wrapped.predictions.csv`, genmodel's PredictCsv on the
wrapped MOJO, hex floats rewritten as shortest round-trip decimals. `main()` writes them
after saving; `--reference-only --jar h2o-genmodel.jar` rewrites them for the committed
MOJO without retraining (needs only java).
"""

import argparse
import csv
import os
import subprocess
import shutil
import tempfile
import uuid

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
NAME = "h2o_mojo_wrapped"
OUT = os.path.join(HERE, NAME)
FIXED_TIME = "2025-01-01 00:00:00.000000"
N_ROWS = 200
FEATURES = ["x1", "x2", "color"]


def make_data():
    rng = np.random.default_rng(7)
    import pandas as pd

    x1 = np.round(rng.normal(0.0, 1.0, N_ROWS), 4)
    x2 = np.round(rng.uniform(-2.0, 2.0, N_ROWS), 4)
    color = rng.choice(["red", "green", "blue"], N_ROWS)
    logit = 1.2 * x1 - 0.8 * x2 + np.where(color == "red", 1.0, np.where(color == "blue", -1.0, 0.0))
    p = 1.0 / (1.0 + np.exp(-logit))
    label = np.where(rng.uniform(0.0, 1.0, N_ROWS) < p, "yes", "no")
    return pd.DataFrame({"x1": x1, "x2": x2, "color": color.astype(object), "label": label.astype(object)})


def write_reference(jar):
    """Scoring rows and genmodel's predictions for the wrapped MOJO (see the docstring)."""
    rng = np.random.default_rng(11)
    rows = []
    for i in range(24):
        rows.append([repr(float(np.round(rng.normal(0.0, 1.0), 3))),
                     repr(float(np.round(rng.uniform(-2.0, 2.0), 3))),
                     str(rng.choice(["red", "green", "blue"]))])
    rows[3][0] = ""
    rows[5][2] = ""
    rows[7][2] = "purple"
    rows[9][1] = ""
    rows[13] = ["", "", ""]
    inp = os.path.join(HERE, NAME + ".input.csv")
    with open(inp, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(FEATURES)
        w.writerows(rows)
    mojo = os.path.join(OUT, "gbm_h2o_wrapped.zip")
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "p.csv")
        subprocess.run(["java", "-cp", jar, "hex.genmodel.tools.PredictCsv", "--mojo", mojo,
                        "--input", inp, "--output", out], check=True)
        with open(out, newline="") as f:
            got = list(csv.reader(f))
    conv = [got[0]] + [[repr(float.fromhex(v)) if v.startswith(("0x", "-0x")) else v for v in r]
                       for r in got[1:]]
    with open(os.path.join(HERE, NAME + ".predictions.csv"), "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(conv)


def main():
    import pandas as pd  # noqa: F401  (training needs the h2o/mlflow venv)
    import h2o
    import h2o_mlflow_flavor
    import mlflow.pyfunc
    from h2o.estimators import H2OGradientBoostingEstimator
    from mlflow.models import Model, infer_signature

    df = make_data()
    h2o.init(max_mem_size="1G", nthreads=1, port=54779)
    try:
        h2o.no_progress()
        frame = h2o.H2OFrame(
            df,
            column_types={"x1": "real", "x2": "real", "color": "enum", "label": "enum"},
            destination_frame="h2o_wrapped_train",
        )
        assert frame["label"].levels()[0] == ["no", "yes"], frame["label"].levels()
        model = H2OGradientBoostingEstimator(
            model_id="gbm_h2o_wrapped", ntrees=3, max_depth=2, seed=1
        )
        model.train(x=FEATURES, y="label", training_frame=frame)

        inputs = df[FEATURES].copy()
        preds = model.predict(frame).as_data_frame()
        signature = infer_signature(inputs, preds)

        if os.path.exists(OUT):
            shutil.rmtree(OUT)
        mlflow_model = Model(
            model_uuid=uuid.uuid5(uuid.NAMESPACE_URL, "testdata/mlflow/" + NAME).hex,
            utc_time_created=FIXED_TIME,
        )
        h2o_mlflow_flavor.save_model(
            model, OUT, model_type="MOJO", signature=signature, mlflow_model=mlflow_model
        )

        # Score through MLflow (pyfunc -> flavor -> java PredictCsv) while the jar is there.
        loaded = mlflow.pyfunc.load_model(OUT)
        sample = inputs.head(10)
        got = loaded.predict(sample)
        want = preds.head(10)
        assert list(got.columns) == list(want.columns), (got.columns, want.columns)
        assert list(got["predict"]) == list(want["predict"]), (got, want)
        np.testing.assert_allclose(got[["no", "yes"]].to_numpy(), want[["no", "yes"]].to_numpy(), rtol=1e-6)
        print("pyfunc predictions (first 10 rows):")
        print(got.to_string())
    finally:
        h2o.cluster().shutdown()

    jar = os.path.join(OUT, "h2o-genmodel.jar")
    if os.path.exists(jar):
        print("removing %s (%d bytes)" % (jar, os.path.getsize(jar)))
        os.remove(jar)
    for name in sorted(os.listdir(OUT)):
        print("%8d  %s" % (os.path.getsize(os.path.join(OUT, name)), name))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--reference-only", action="store_true")
    ap.add_argument("--jar", default="/tmp/h2o-genmodel.jar")
    args = ap.parse_args()
    if not args.reference_only:
        main()
    write_reference(args.jar)
