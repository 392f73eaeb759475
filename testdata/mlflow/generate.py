"""Generate the MLflow sample models under testdata/mlflow/.

How to run (from the repository root):

    python3.11 -m venv /tmp/mlflow-venv
    /tmp/mlflow-venv/bin/pip install -r testdata/mlflow/requirements.txt
    /tmp/mlflow-venv/bin/python testdata/mlflow/generate.py
    MLFLOW_VENV=/tmp/mlflow-venv bash testdata/mlflow/verify_serving.sh   # real server check

Versions used for the committed artifacts (see requirements.txt):
    Python 3.11.7, mlflow 3.17.2, scikit-learn 1.9.1, xgboost 3.2.0,
    lightgbm 4.7.0, statsmodels 0.15.0, onnx 1.23.2, skl2onnx 1.20.0,
    onnxruntime 1.32.0, pandas 3.1.1, numpy 2.4.6, cloudpickle 3.1.3.

All data is synthetic (numpy, fixed seed); no tracking server is used: every
model is written with mlflow.<flavor>.save_model.  `model_uuid`,
`utc_time_created`, the ONNX graph name and archive timestamps are fixed, so a
re-run with the same versions reproduces every file byte for byte except the two
python_model.pkl files (cloudpickle embeds a random class-tracker id).

Outputs (relative to this folder):
    <name>/                    model folder (MLmodel at its root)
    <name>.request.json        {"columns": [...], "data": [[...], ...]}  (pandas split orient)
    <name>.predictions.json    what pyfunc predict returns on that request, serialized the
                               way `mlflow models serve` serializes it (the value of the
                               "predictions" key of the reply)
    sklearn_pipeline.zip, sklearn_pipeline_flat.zip, sklearn_pipeline.tar.gz,
    xgboost.zip, xgboost_flat.zip, xgboost.tar.gz
                               archive layouts of two of the folders

    onnx_tensor.request.json, sklearn_proba.request.json
                               for the 2-D tensor models: {"inputs": ...}, MLflow's tensor
                               request (the generator only, `generate.py onnx_tensor
                               sklearn_proba`, rebuilds just these two)

    v1/sklearn_1_29/, v1/sklearn_2_9/
                               MLflow 1.29.0 / 2.9.2 style model folders: MLmodel and env
                               files written with yaml.safe_dump exactly as those releases
                               laid them out (metadata values of that era), plus a tiny
                               placeholder model.pkl pickled with the current venv.
"""

import io
import json
import os
import shutil
import sys
import tarfile
import uuid
import zipfile

import numpy as np
import pandas as pd

import mlflow
import mlflow.lightgbm
import mlflow.onnx
import mlflow.pyfunc
import mlflow.sklearn
import mlflow.statsmodels
import mlflow.xgboost
from mlflow.models import Model, infer_signature
from mlflow.pyfunc.scoring_server import predictions_to_json
from mlflow.utils.proto_json_utils import dataframe_from_parsed_json

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = 20240501
FIXED_TIME = "2025-01-01 00:00:00.000000"
ARCHIVE_DATE = (2025, 1, 1, 0, 0, 0)
ARCHIVE_MTIME = 1735689600  # 2025-01-01T00:00:00Z
N_REQUEST_ROWS = 10


def out(*parts):
    return os.path.join(HERE, *parts)


def fixed_model(name):
    """Model metadata with a deterministic uuid and creation time."""
    return Model(
        model_uuid=uuid.uuid5(uuid.NAMESPACE_URL, "testdata/mlflow/" + name).hex,
        utc_time_created=FIXED_TIME,
    )


def fresh_dir(name):
    path = out(name)
    if os.path.exists(path):
        shutil.rmtree(path)
    return path


def write_json(path, obj):
    """JSON with one list item (row / record) per line; values as json.dumps writes them."""
    if isinstance(obj, dict) and "data" in obj:
        text = "{\n \"columns\": %s,\n \"data\": [\n  %s\n ]\n}" % (
            json.dumps(obj["columns"]),
            ",\n  ".join(json.dumps(row) for row in obj["data"]),
        )
    elif isinstance(obj, list):
        text = "[\n " + ",\n ".join(json.dumps(item) for item in obj) + "\n]"
    elif isinstance(obj, dict) and all(isinstance(v, list) for v in obj.values()):
        text = "{\n" + ",\n".join(
            " %s: [\n  %s\n ]" % (json.dumps(k), ",\n  ".join(json.dumps(i) for i in v))
            for k, v in obj.items()
        ) + "\n}"
    else:
        text = json.dumps(obj, indent=1)
    with open(path, "w") as f:
        f.write(text + "\n")


def write_reference(name, request_df):
    """Write <name>.request.json and <name>.predictions.json.

    The request is the pandas "split" orient without the index, i.e. exactly
    what goes under "dataframe_split" in a /invocations call.  The reference
    predictions come from the pyfunc loaded back from disk, fed the DataFrame
    that the scoring server builds from that JSON (dataframe_from_parsed_json
    with the model's input schema), and are serialized
    with the scoring server's own predictions_to_json.
    """
    split = json.loads(request_df.to_json(orient="split", index=False))
    request = {"columns": split["columns"], "data": split["data"]}
    write_json(out(name + ".request.json"), request)

    pyfunc_model = mlflow.pyfunc.load_model(out(name))
    # Same parsing as the scoring server: split-orient JSON -> DataFrame, cast per schema.
    df = dataframe_from_parsed_json(
        request, pandas_orient="split", schema=pyfunc_model.metadata.get_input_schema()
    )
    raw = pyfunc_model.predict(df)
    buf = io.StringIO()
    predictions_to_json(raw, buf)
    reply = json.loads(buf.getvalue())
    write_json(out(name + ".predictions.json"), reply["predictions"])


# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------

rng = np.random.default_rng(SEED)


def credit_frame(n):
    """Mixed-type frame: double, long (int64) and string columns."""
    age = rng.integers(18, 80, size=n).astype(np.int64)
    num_accounts = rng.integers(0, 12, size=n).astype(np.int64)
    income = np.round(rng.normal(55000.0, 15000.0, size=n), 2)
    debt_ratio = np.round(rng.uniform(0.0, 1.0, size=n), 4)
    city = rng.choice(["berlin", "lisbon", "oslo", "prague"], size=n)
    plan = rng.choice(["basic", "plus", "premium"], size=n)
    df = pd.DataFrame(
        {
            "age": age,
            "income": income,
            "debt_ratio": debt_ratio,
            "num_accounts": num_accounts,
            "city": pd.Series(city, dtype=object),
            "plan": pd.Series(plan, dtype=object),
        }
    )
    logit = (
        0.03 * (age - 45)
        + 0.00004 * (income - 55000)
        - 2.5 * (debt_ratio - 0.5)
        + np.where(city == "oslo", 0.8, 0.0)
        + np.where(plan == "premium", 0.6, 0.0)
        + rng.normal(0, 0.5, size=n)
    )
    y = (logit > 0).astype(np.int64)
    return df, y


def numeric_frame(n, cols=("x1", "x2", "x3", "x4")):
    X = np.round(rng.normal(0.0, 1.0, size=(n, len(cols))), 4)
    return pd.DataFrame(X, columns=list(cols))


# --------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------


def make_sklearn_pipeline():
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    name = "sklearn_pipeline"
    X, y = credit_frame(200)
    pre = ColumnTransformer(
        [
            ("num", StandardScaler(), ["age", "income", "debt_ratio", "num_accounts"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["city", "plan"]),
        ]
    )
    model = Pipeline([("pre", pre), ("clf", LogisticRegression(max_iter=200))])
    model.fit(X, y)
    sample = X.head(N_REQUEST_ROWS)
    signature = infer_signature(X, model.predict(X))
    mlflow.sklearn.save_model(
        model,
        fresh_dir(name),
        serialization_format="cloudpickle",
        signature=signature,
        input_example=X.head(3),
        mlflow_model=fixed_model(name),
    )
    write_reference(name, sample)


def make_xgboost():
    import xgboost as xgb

    name = "xgboost"
    X = numeric_frame(200)
    y = 2.0 * X["x1"] - X["x2"] + 0.5 * X["x3"] * X["x4"] + rng.normal(0, 0.1, 200)
    model = xgb.XGBRegressor(n_estimators=5, max_depth=3, learning_rate=0.3, random_state=0)
    model.fit(X, y)
    signature = infer_signature(X, model.predict(X))
    mlflow.xgboost.save_model(
        model,
        fresh_dir(name),
        signature=signature,
        input_example=X.head(3),
        mlflow_model=fixed_model(name),
    )
    write_reference(name, X.head(N_REQUEST_ROWS))


def make_lightgbm():
    import lightgbm as lgb

    name = "lightgbm"
    X = numeric_frame(200, cols=("f_a", "f_b", "f_c"))
    y = ((X["f_a"] + X["f_b"] * X["f_c"]) > 0).astype(np.int64)
    model = lgb.LGBMClassifier(
        n_estimators=5, num_leaves=4, min_child_samples=5, random_state=0, verbose=-1
    )
    model.fit(X, y)
    signature = infer_signature(X, model.predict(X))
    mlflow.lightgbm.save_model(
        model,
        fresh_dir(name),
        serialization_format="cloudpickle",
        signature=signature,
        input_example=X.head(3),
        mlflow_model=fixed_model(name),
    )
    write_reference(name, X.head(N_REQUEST_ROWS))


def make_statsmodels():
    import statsmodels.api as sm

    name = "statsmodels"
    X = numeric_frame(100, cols=("const", "x1", "x2"))
    X["const"] = 1.0
    y = 3.0 + 1.5 * X["x1"] - 0.7 * X["x2"] + rng.normal(0, 0.2, 100)
    results = sm.OLS(y, X).fit()
    signature = infer_signature(X, results.predict(X))
    mlflow.statsmodels.save_model(
        results,
        fresh_dir(name),
        remove_data=True,
        signature=signature,
        input_example=X.head(3),
        mlflow_model=fixed_model(name),
    )
    write_reference(name, X.head(N_REQUEST_ROWS))


def make_onnx():
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import LinearRegression

    name = "onnx"
    X64 = numeric_frame(100).to_numpy()
    X = X64.astype(np.float32)
    y = X @ np.array([1.0, -2.0, 0.5, 0.25], dtype=np.float32) + 0.1
    sk_model = LinearRegression().fit(X, y)
    onnx_model = convert_sklearn(
        sk_model,
        initial_types=[("input", FloatTensorType([None, 4]))],
        target_opset=17,
        name="linear_regression",  # fixed graph name (default is a random uuid)
    )
    import onnxruntime as ort

    # The ONNX pyfunc returns {output_name: tensor} for an ndarray input; infer the
    # signature from the float32 input and the onnxruntime outputs.
    sess = ort.InferenceSession(onnx_model.SerializeToString(), providers=["CPUExecutionProvider"])
    outputs = {o.name: v for o, v in zip(sess.get_outputs(), sess.run(None, {"input": X}))}
    signature = infer_signature(X, outputs)
    mlflow.onnx.save_model(
        onnx_model,
        fresh_dir(name),
        signature=signature,
        input_example=X[:3],
        mlflow_model=fixed_model(name),
    )
    # JSON numbers are cast to float32 by the scoring server (tensor schema).
    request = pd.DataFrame(X64[:N_REQUEST_ROWS])
    request.columns = [str(c) for c in request.columns]
    write_reference(name, request)


class LinearScorer(mlflow.pyfunc.PythonModel):
    """Linear score from coefficients kept in an artifact JSON file."""

    def load_context(self, context):
        with open(context.artifacts["coefficients"]) as f:
            spec = json.load(f)
        self.intercept = float(spec["intercept"])
        self.coef = {k: float(v) for k, v in spec["coefficients"].items()}

    def predict(self, context, model_input, params=None):
        score = np.full(len(model_input), self.intercept)
        for col, w in self.coef.items():
            score = score + w * model_input[col].to_numpy(dtype=np.float64)
        return pd.Series(score, name="score")


class RiskBands(mlflow.pyfunc.PythonModel):
    """Two named outputs: a probability and a band label; `threshold` is a param."""

    def load_context(self, context):
        pass

    def predict(self, context, model_input, params=None):
        threshold = 0.5
        if params and "threshold" in params:
            threshold = float(params["threshold"])
        z = 0.8 * model_input["x1"].to_numpy(dtype=np.float64) - 0.4 * model_input[
            "x2"
        ].to_numpy(dtype=np.float64)
        prob = 1.0 / (1.0 + np.exp(-z))
        band = np.where(prob >= threshold, "high", "low")
        return pd.DataFrame({"probability": np.round(prob, 6), "band": band.astype(object)})


def make_custom_pyfunc():
    name = "custom_pyfunc"
    # Written outside the repo: MLmodel records this source path as the artifact "uri".
    coef_dir = "/tmp/mlflow-testdata-artifacts"
    os.makedirs(coef_dir, exist_ok=True)
    coef_path = os.path.join(coef_dir, "coefficients.json")
    write_json(
        coef_path,
        {"intercept": 0.25, "coefficients": {"x1": 1.5, "x2": -0.75, "x3": 0.1}},
    )
    X = numeric_frame(50, cols=("x1", "x2", "x3"))
    model = LinearScorer()
    ctx = mlflow.pyfunc.PythonModelContext(artifacts={"coefficients": coef_path}, model_config={})
    model.load_context(ctx)
    signature = infer_signature(X, model.predict(ctx, X))
    try:
        mlflow.pyfunc.save_model(
            fresh_dir(name),
            python_model=LinearScorer(),
            artifacts={"coefficients": coef_path},
            signature=signature,
            input_example=X.head(3),
            mlflow_model=fixed_model(name),
        )
    finally:
        os.remove(coef_path)
    write_reference(name, X.head(N_REQUEST_ROWS))


def make_multi_output():
    name = "multi_output"
    X = numeric_frame(50, cols=("x1", "x2"))
    model = RiskBands()
    signature = infer_signature(X, model.predict(None, X), params={"threshold": 0.5})
    mlflow.pyfunc.save_model(
        fresh_dir(name),
        python_model=RiskBands(),
        signature=signature,
        input_example=X.head(3),
        mlflow_model=fixed_model(name),
    )
    write_reference(name, X.head(N_REQUEST_ROWS))


def make_no_signature():
    from sklearn.tree import DecisionTreeRegressor

    name = "no_signature"
    X = numeric_frame(100, cols=("a", "b", "c"))
    y = X["a"] * 2.0 + X["b"] - X["c"]
    model = DecisionTreeRegressor(max_depth=3, random_state=0).fit(X, y)
    mlflow.sklearn.save_model(
        model,
        fresh_dir(name),
        serialization_format="cloudpickle",
        mlflow_model=fixed_model(name),
    )
    write_reference(name, X.head(N_REQUEST_ROWS))


def make_tensor_signature():
    from sklearn.linear_model import LogisticRegression

    name = "tensor_signature"
    X = np.round(rng.normal(0.0, 1.0, size=(150, 4)), 4)  # float64, no column names
    y = (X[:, 0] - X[:, 2] > 0).astype(np.int64)
    model = LogisticRegression().fit(X, y)
    signature = infer_signature(X, model.predict(X))  # tensor [-1, 4] float64 -> tensor [-1] int64
    mlflow.sklearn.save_model(
        model,
        fresh_dir(name),
        serialization_format="cloudpickle",
        signature=signature,
        input_example=X[:3],
        mlflow_model=fixed_model(name),
    )
    request = pd.DataFrame(X[:N_REQUEST_ROWS])
    request.columns = [str(c) for c in request.columns]
    write_reference(name, request)


# --------------------------------------------------------------------------
# 2-D tensor signatures ([-1, k] with a fixed k: k positional columns)
# --------------------------------------------------------------------------
#
# Each has its own generator (seeded from SEED and its name), so adding or re-running
# them leaves the models above byte for byte as they were.


def own_rng(name):
    return np.random.default_rng([SEED, *name.encode()])


def make_onnx_tensor():
    """An ONNX regressor with a named input tensor `features` [-1, 3] and a named output
    tensor `variable` [-1, 2] (two targets), saved with the onnx flavor."""
    import onnxruntime as ort
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import LinearRegression

    name = "onnx_tensor"
    r = own_rng(name)
    X64 = np.round(r.normal(0.0, 1.0, size=(100, 3)), 4)
    X = X64.astype(np.float32)
    W = np.array([[1.5, -0.5], [-2.0, 0.25], [0.75, 1.0]], dtype=np.float32)
    y = X @ W + np.array([0.1, -0.3], dtype=np.float32)
    sk_model = LinearRegression().fit(X, y)
    onnx_model = convert_sklearn(
        sk_model,
        initial_types=[("features", FloatTensorType([None, 3]))],
        target_opset=17,
        name="linear_regression_2_targets",
    )
    sess = ort.InferenceSession(onnx_model.SerializeToString(), providers=["CPUExecutionProvider"])
    outputs = {o.name: v for o, v in zip(sess.get_outputs(), sess.run(None, {"features": X}))}
    # A dict of named tensors: the signature names the input tensor "features".
    signature = infer_signature({"features": X}, outputs)
    mlflow.onnx.save_model(
        onnx_model,
        fresh_dir(name),
        signature=signature,
        input_example={"features": X[:3]},
        mlflow_model=fixed_model(name),
    )
    write_tensor_reference(name, {"features": X64[:N_REQUEST_ROWS]})


def make_sklearn_proba():
    """A scikit-learn classifier whose pyfunc returns predict_proba: output [-1, 2]."""
    from sklearn.linear_model import LogisticRegression

    name = "sklearn_proba"
    r = own_rng(name)
    X = np.round(r.normal(0.0, 1.0, size=(150, 3)), 4)  # float64, no column names
    y = (X[:, 0] + 0.5 * X[:, 1] - X[:, 2] > 0).astype(np.int64)
    model = LogisticRegression().fit(X, y)
    # tensor float64 [-1, 3] -> tensor float64 [-1, 2]
    signature = infer_signature(X, model.predict_proba(X))
    mlflow.sklearn.save_model(
        model,
        fresh_dir(name),
        serialization_format="cloudpickle",
        signature=signature,
        input_example=X[:3],
        pyfunc_predict_fn="predict_proba",
        mlflow_model=fixed_model(name),
    )
    write_tensor_reference(name, X[:N_REQUEST_ROWS])


def write_tensor_reference(name, inputs):
    """Write <name>.request.json ({"inputs": ...}, MLflow's tensor request) and
    <name>.predictions.json, the way the scoring server parses and answers it
    (parse_tf_serving_input with the model's input schema, then predictions_to_json)."""
    from mlflow.utils.proto_json_utils import parse_tf_serving_input

    if isinstance(inputs, dict):
        request = {"inputs": {k: v.tolist() for k, v in inputs.items()}}
    else:
        request = {"inputs": inputs.tolist()}
    with open(out(name + ".request.json"), "w") as f:
        json.dump(request, f)
        f.write("\n")
    pyfunc_model = mlflow.pyfunc.load_model(out(name))
    data = parse_tf_serving_input(request, schema=pyfunc_model.metadata.get_input_schema())
    buf = io.StringIO()
    predictions_to_json(pyfunc_model.predict(data), buf)
    write_json(out(name + ".predictions.json"), json.loads(buf.getvalue())["predictions"])


# --------------------------------------------------------------------------
# Archive layouts
# --------------------------------------------------------------------------


def model_files(name):
    root = out(name)
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for fn in sorted(filenames):
            full = os.path.join(dirpath, fn)
            files.append((os.path.relpath(full, root).replace(os.sep, "/"), full))
    return files


def write_zip(name, flat):
    path = out(name + ("_flat.zip" if flat else ".zip"))
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for rel, full in model_files(name):
            arc = rel if flat else name + "/" + rel
            info = zipfile.ZipInfo(arc, date_time=ARCHIVE_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            with open(full, "rb") as f:
                zf.writestr(info, f.read())


def write_tar_gz(name):
    """tar.gz with the model folder at the root, directory entries included."""
    path = out(name + ".tar.gz")

    def normalize(ti):
        ti.mtime = ARCHIVE_MTIME
        ti.uid = ti.gid = 0
        ti.uname = ti.gname = ""
        ti.mode = 0o755 if ti.isdir() else 0o644
        return ti

    import gzip

    with open(path, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
            with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tf:
                tf.add(out(name), arcname=name, recursive=False, filter=normalize)
                subdirs = set()
                for rel, full in model_files(name):
                    parts = rel.split("/")[:-1]
                    for i in range(1, len(parts) + 1):
                        d = "/".join(parts[:i])
                        if d not in subdirs:
                            subdirs.add(d)
                            tf.add(out(name, d), arcname=name + "/" + d, recursive=False,
                                   filter=normalize)
                    tf.add(full, arcname=name + "/" + rel, recursive=False, filter=normalize)


def write_archives(name):
    write_zip(name, flat=False)
    write_zip(name, flat=True)
    write_tar_gz(name)


# --------------------------------------------------------------------------
# MLflow 1.29 / 2.9 style fixtures (v1/)
# --------------------------------------------------------------------------
#
# These reproduce what mlflow 1.29.0 and 2.9.2 wrote for a *logged* sklearn model
# (mlflow.sklearn.log_model -> Model.save -> yaml.safe_dump(sort_keys=True)),
# following mlflow/models/model.py (Model.__init__/to_dict), mlflow/pyfunc/__init__.py
# (add_to_model), mlflow/sklearn/__init__.py (save_model), mlflow/types/schema.py
# (ColSpec/TensorSpec/ParamSpec.to_dict) and mlflow/utils/environment.py
# (_mlflow_conda_env, _PythonEnv.to_yaml) of those releases.  Library versions in
# the metadata are those of the era; model.pkl itself is a tiny placeholder
# LinearRegression pickled (cloudpickle) with the versions of requirements.txt, so
# the current MLflow can still load and serve these fixtures.


def _v1_pickle(path):
    import cloudpickle
    from sklearn.linear_model import LinearRegression

    X = pd.DataFrame(
        {"x1": [0.0, 1.0, 1.0, 2.0, 3.0], "x2": np.array([1, 0, 1, 1, 2], dtype=np.int64)}
    )
    y = np.array([1.0, 2.0, 3.0, 5.0, 7.5])
    model = LinearRegression().fit(X, y)
    with open(path, "wb") as f:
        cloudpickle.dump(model, f)


def _write_text(path, text):
    with open(path, "w") as f:
        f.write(text)


def _write_yaml(path, obj, sort_keys=True):
    import yaml

    with open(path, "w") as f:
        yaml.safe_dump(obj, f, default_flow_style=False, sort_keys=sort_keys)


def write_v1_fixtures():
    v1_example = {"columns": ["x1", "x2"], "data": [[0.5, 1], [2.0, 3]]}

    # ---- MLflow 1.29.0 (Sep 2022): env is a string, no params, ColSpec without required
    d = out("v1", "sklearn_1_29")
    if os.path.exists(d):
        shutil.rmtree(d)
    os.makedirs(d)
    _write_text(os.path.join(d, "input_example.json"), json.dumps(v1_example))
    _v1_pickle(os.path.join(d, "model.pkl"))
    reqs = [
        "mlflow",
        "cloudpickle==2.2.0",
        "psutil==5.9.2",
        "scikit-learn==1.1.2",
        "typing-extensions==4.3.0",
    ]
    mlmodel = {
        "artifact_path": "model",
        "flavors": {
            "python_function": {
                "env": "conda.yaml",
                "loader_module": "mlflow.sklearn",
                "model_path": "model.pkl",
                "predict_fn": "predict",
                "python_version": "3.8.13",
            },
            "sklearn": {
                "code": None,
                "pickled_model": "model.pkl",
                "serialization_format": "cloudpickle",
                "sklearn_version": "1.1.2",
            },
        },
        "mlflow_version": "1.29.0",
        "model_uuid": "5c9bd1f1a3b54b0c9d6f0e7a2b1c3d4e",
        "run_id": "8f2e4c6a1b3d4e5f9a7b6c5d4e3f2a1b",
        "saved_input_example_info": {
            "artifact_path": "input_example.json",
            "pandas_orient": "split",
            "type": "dataframe",
        },
        "signature": {
            "inputs": json.dumps(
                [{"name": "x1", "type": "double"}, {"name": "x2", "type": "long"}]
            ),
            "outputs": json.dumps(
                [{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1]}}]
            ),
        },
        "utc_time_created": "2022-09-28 14:03:11.482913",
    }
    _write_yaml(os.path.join(d, "MLmodel"), mlmodel)
    _write_yaml(
        os.path.join(d, "conda.yaml"),
        {
            "name": "mlflow-env",
            "channels": ["conda-forge"],
            "dependencies": ["python=3.8.13", "pip<=22.2.2", {"pip": reqs}],
        },
    )
    _write_text(os.path.join(d, "requirements.txt"), "\n".join(reqs))
    _write_yaml(
        os.path.join(d, "python_env.yaml"),
        {
            "python": "3.8.13",
            "build_dependencies": ["pip==22.2.2", "setuptools==63.4.1", "wheel==0.37.1"],
            "dependencies": ["-r requirements.txt"],
        },
        sort_keys=False,
    )

    # ---- MLflow 2.9.2 (Dec 2023): env is {conda, virtualenv}, signature has params,
    # model_size_bytes, mlflow pinned in requirements, ColSpec still without "required".
    d = out("v1", "sklearn_2_9")
    if os.path.exists(d):
        shutil.rmtree(d)
    os.makedirs(d)
    _write_text(os.path.join(d, "input_example.json"), json.dumps(v1_example))
    _v1_pickle(os.path.join(d, "model.pkl"))
    size = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
    reqs = [
        "mlflow==2.9.2",
        "cloudpickle==3.0.0",
        "numpy==1.26.2",
        "scikit-learn==1.3.2",
        "scipy==1.11.4",
    ]
    mlmodel = {
        "artifact_path": "model",
        "flavors": {
            "python_function": {
                "env": {"conda": "conda.yaml", "virtualenv": "python_env.yaml"},
                "loader_module": "mlflow.sklearn",
                "model_path": "model.pkl",
                "predict_fn": "predict",
                "python_version": "3.10.12",
            },
            "sklearn": {
                "code": None,
                "pickled_model": "model.pkl",
                "serialization_format": "cloudpickle",
                "sklearn_version": "1.3.2",
            },
        },
        "mlflow_version": "2.9.2",
        "model_size_bytes": size,
        "model_uuid": "0b7d1c2e3f4a4b5c8d9e0f1a2b3c4d5e",
        "run_id": "3e1f5a7c9b2d4f6e8a0c1e3f5a7b9c2d",
        "saved_input_example_info": {
            "artifact_path": "input_example.json",
            "pandas_orient": "split",
            "type": "dataframe",
        },
        "signature": {
            "inputs": json.dumps(
                [{"type": "double", "name": "x1"}, {"type": "long", "name": "x2"}]
            ),
            "outputs": json.dumps(
                [{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1]}}]
            ),
            "params": json.dumps(
                [
                    {"name": "clip_min", "type": "double", "default": 0.0, "shape": None},
                    {"name": "round", "type": "boolean", "default": False, "shape": None},
                ]
            ),
        },
        "utc_time_created": "2023-12-14 09:41:27.118402",
    }
    _write_yaml(os.path.join(d, "MLmodel"), mlmodel)
    _write_yaml(
        os.path.join(d, "conda.yaml"),
        {
            "name": "mlflow-env",
            "channels": ["conda-forge"],
            "dependencies": ["python=3.10.12", "pip<=23.3.1", {"pip": reqs}],
        },
    )
    _write_text(os.path.join(d, "requirements.txt"), "\n".join(reqs))
    _write_yaml(
        os.path.join(d, "python_env.yaml"),
        {
            "python": "3.10.12",
            "build_dependencies": ["pip==23.3.1", "setuptools==68.2.2", "wheel==0.41.3"],
            "dependencies": ["-r requirements.txt"],
        },
        sort_keys=False,
    )


TENSOR_MODELS = {"onnx_tensor": make_onnx_tensor, "sklearn_proba": make_sklearn_proba}


def main():
    print("mlflow", mlflow.__version__, "python", sys.version.split()[0])
    # `generate.py onnx_tensor ...`: only those (self-seeded) models.
    if len(sys.argv) > 1:
        for name in sys.argv[1:]:
            TENSOR_MODELS[name]()
        print("done")
        return
    make_sklearn_pipeline()
    make_xgboost()
    make_lightgbm()
    make_statsmodels()
    make_onnx()
    make_custom_pyfunc()
    make_multi_output()
    make_no_signature()
    make_tensor_signature()
    for name in ("sklearn_pipeline", "xgboost"):
        write_archives(name)
    write_v1_fixtures()
    v1_request = pd.DataFrame(
        {"x1": [0.5, 2.0, -1.25, 3.0], "x2": np.array([1, 3, 0, 2], dtype=np.int64)}
    )
    for name in ("v1/sklearn_1_29", "v1/sklearn_2_9"):
        write_reference(name, v1_request)
    for make in TENSOR_MODELS.values():
        make()
    print("done")


if __name__ == "__main__":
    main()
