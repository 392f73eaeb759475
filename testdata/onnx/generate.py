"""Generate the ONNX sample models of testdata/onnx/ and their reference outputs.

Run with the pinned tools of the MLflow test venv (testdata/mlflow/requirements.txt:
mlflow 3.17.2, scikit-learn 1.9.1, onnx 1.23.2, skl2onnx 1.20.0, onnxruntime 1.32.0,
numpy 2.4.6, pandas 3.1.1):

    "$(.ci/setup-mlflow-venv.sh)/bin/python" testdata/onnx/generate.py

Each model is an MLflow model saved with `mlflow.onnx.save_model` (what
`mlflow-processor --model-type onnx` reads), with a signature, next to

- `<name>.input.csv`: the rows, with a header of the MLOps input columns the graph maps
  to (a `[-1, k]` tensor is `<tensor>_0` ... `<tensor>_<k-1>`, a `[-1]` or `[-1, 1]`
  tensor is its own name); float32 cells are the shortest decimal of the float32 value,
  so parsing the text gives the exact value fed to onnxruntime here; an empty cell is
  missing (NaN for a float input, "" for a string input);
- `<name>.expected.csv`: onnxruntime's own outputs for those rows (all in one run),
  header = the MLOps output columns (a label tensor under its name, probabilities under
  the class labels, a `[-1, k]` tensor as `<tensor>_<i>`); floats are the shortest
  decimal of each float32 (or float64) value, so the shim's cells must parse to the same
  bits;
- `<name>.expected_one_by_one.csv`: the same, each row run alone (ONNX Runtime may round
  differently for another batch size).

Data is synthetic (numpy default_rng); model_uuid and utc_time_created are fixed, so a
re-run writes the same files.
"""

import csv
import os
import shutil
import uuid

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
from onnx import TensorProto, helper, numpy_helper

import mlflow.onnx
from mlflow.models import Model, ModelSignature
from mlflow.types.schema import Schema, TensorSpec

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = 20260101
FIXED_TIME = "2025-01-01 00:00:00.000000"
N_ROWS = 40
OPSET = {"": 17, "ai.onnx.ml": 3}


def fixed_model(name):
    return Model(
        model_uuid=uuid.uuid5(uuid.NAMESPACE_URL, "testdata/onnx/" + name).hex,
        utc_time_created=FIXED_TIME,
    )


def num_text(v):
    if isinstance(v, (np.floating,)) and v.dtype == np.float32:
        if np.isnan(v):
            return "NaN"
        return np.format_float_positional(v, unique=True, trim="-")
    if isinstance(v, (np.floating, float)):
        v = np.float64(v)
        if np.isnan(v):
            return "NaN"
        return np.format_float_positional(v, unique=True, trim="-")
    if isinstance(v, (np.integer, int)):
        return str(int(v))
    if isinstance(v, bytes):
        return v.decode()
    return str(v)


def write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def save(name, onnx_model, feeds, signature):
    # skl2onnx lists opset imports in set order, which varies between runs: sort them.
    opsets = sorted({(o.domain, o.version) for o in onnx_model.opset_import})
    del onnx_model.opset_import[:]
    for domain, version in opsets:
        onnx_model.opset_import.add(domain=domain, version=version)
    path = os.path.join(HERE, name)
    if os.path.exists(path):
        shutil.rmtree(path)
    mlflow.onnx.save_model(
        onnx_model,
        path,
        signature=signature,
        mlflow_model=fixed_model(name),
    )
    # The file MLflow wrote is the one the shim serves: score that one.
    sess = ort.InferenceSession(os.path.join(path, "model.onnx"), providers=["CPUExecutionProvider"])
    return sess, sess.run(None, feeds)


def write_expected(name, sess, feeds, header, to_rows):
    """<name>.expected.csv: onnxruntime's outputs for all rows in one run;
    <name>.expected_one_by_one.csv: for each row run alone. ONNX Runtime's kernels may
    round differently for different batch sizes (the pipeline's LinearClassifier does),
    so a request of one row is compared with the second file."""
    write_csv(os.path.join(HERE, name + ".expected.csv"), header, to_rows(sess.run(None, feeds)))
    n = len(next(iter(feeds.values())))
    rows = []
    for i in range(n):
        rows += to_rows(sess.run(None, {k: v[i:i + 1] for k, v in feeds.items()}))
    write_csv(os.path.join(HERE, name + ".expected_one_by_one.csv"), header, rows)


def float_matrix(rng, n, k):
    return np.round(rng.normal(size=(n, k)), 4).astype(np.float32)


def make_regressor(rng):
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.ensemble import GradientBoostingRegressor

    X = float_matrix(rng, 300, 4)
    y = X[:, 0] * 2 - X[:, 1] + np.sin(X[:, 2]) + 0.1 * X[:, 3]
    sk = GradientBoostingRegressor(n_estimators=8, max_depth=3, random_state=0).fit(X, y)
    model = convert_sklearn(sk, initial_types=[("input", FloatTensorType([None, 4]))],
                            target_opset=OPSET, name="gbm_regressor")
    rows = float_matrix(rng, N_ROWS, 4)
    rows[3, 1] = np.nan  # a missing cell: NaN, which the trees route as missing
    sig = ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, 4))]),
        outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, 1), "variable")]),
    )
    sess, _ = save("regressor", model, {"input": rows}, sig)
    in_rows = [["" if np.isnan(v) else num_text(v) for v in r] for r in rows]
    write_csv(os.path.join(HERE, "regressor.input.csv"), [f"input_{i}" for i in range(4)], in_rows)
    write_expected("regressor", sess, {"input": rows}, ["variable"],
                   lambda outs: [[num_text(p[0])] for p in outs[0]])


def make_classifier_zipmap(rng):
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.ensemble import RandomForestClassifier

    X = float_matrix(rng, 300, 4)
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64) + (X[:, 2] > 0.8)
    sk = RandomForestClassifier(n_estimators=4, max_depth=4, random_state=0).fit(X, y)
    model = convert_sklearn(sk, initial_types=[("features", FloatTensorType([None, 4]))],
                            target_opset=OPSET, name="rf_classifier")  # zipmap on (default)
    rows = float_matrix(rng, N_ROWS, 4)
    sig = ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, 4), "features")]),
        outputs=Schema([TensorSpec(np.dtype(np.int64), (-1,), "output_label")]),
    )
    sess, _ = save("classifier_zipmap", model, {"features": rows}, sig)
    classes = [int(c) for c in sk.classes_]
    write_csv(os.path.join(HERE, "classifier_zipmap.input.csv"), [f"features_{i}" for i in range(4)],
              [[num_text(v) for v in r] for r in rows])
    write_expected(
        "classifier_zipmap", sess, {"features": rows}, ["output_label"] + [str(c) for c in classes],
        lambda outs: [[num_text(lab)] + [num_text(np.float32(pm[c])) for c in classes]
                      for lab, pm in zip(outs[0], outs[1])])


def make_pipeline(rng):
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    def frame(n):
        return pd.DataFrame({
            "age": np.round(rng.normal(45, 12, n), 1).astype(np.float32),
            "income": np.round(rng.normal(52000, 15000, n), 2).astype(np.float32),
            "city": rng.choice(["berlin", "paris", "rome", "oslo"], n),
            "plan": rng.choice(["basic", "plus", "pro"], n),
        })

    df = frame(400)
    score = (df.age - 45) / 12 + (df.income - 52000) / 15000 + (df.plan == "pro") - (df.city == "rome")
    label = np.where(score > 0, "yes", "no")
    sk = Pipeline([
        ("pre", ColumnTransformer([
            ("num", StandardScaler(), ["age", "income"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["city", "plan"]),
        ])),
        ("lr", LogisticRegression()),
    ]).fit(df, label)
    types = [("age", FloatTensorType([None, 1])), ("income", FloatTensorType([None, 1])),
             ("city", StringTensorType([None, 1])), ("plan", StringTensorType([None, 1]))]
    model = convert_sklearn(sk, initial_types=types, target_opset=OPSET, name="credit_pipeline",
                            options={id(sk): {"zipmap": False}})
    rows = frame(N_ROWS)
    rows.loc[5, "city"] = "madrid"  # a category unseen in training: all one-hot slots 0
    rows.loc[6, "city"] = ""        # a missing string cell is the empty string
    feeds = {
        "age": rows.age.to_numpy().reshape(-1, 1),
        "income": rows.income.to_numpy().reshape(-1, 1),
        "city": rows.city.to_numpy().astype(object).reshape(-1, 1),
        "plan": rows.plan.to_numpy().astype(object).reshape(-1, 1),
    }
    sig = ModelSignature(
        inputs=Schema([
            TensorSpec(np.dtype(np.float32), (-1, 1), "age"),
            TensorSpec(np.dtype(np.float32), (-1, 1), "income"),
            TensorSpec(np.dtype(str), (-1, 1), "city"),
            TensorSpec(np.dtype(str), (-1, 1), "plan"),
        ]),
        outputs=Schema([
            TensorSpec(np.dtype(str), (-1,), "label"),
            TensorSpec(np.dtype(np.float32), (-1, 2), "probabilities"),
        ]),
    )
    sess, _ = save("pipeline", model, feeds, sig)
    write_csv(os.path.join(HERE, "pipeline.input.csv"), ["age", "income", "city", "plan"],
              [[num_text(np.float32(r.age)), num_text(np.float32(r.income)), r.city, r.plan] for r in rows.itertuples()])
    classes = [str(c) for c in sk.classes_]
    write_expected("pipeline", sess, feeds, ["label"] + classes,
                   lambda outs: [[str(l)] + [num_text(p) for p in ps] for l, ps in zip(outs[0], outs[1])])


def make_mlp(rng):
    """A two-layer network written with onnx.helper: x float [N, 3] and k int64 [N, 1] in,
    softmax scores float [N, 2] and a float64 total [N] out."""
    W1 = rng.normal(size=(4, 8)).astype(np.float32)
    b1 = rng.normal(size=(8,)).astype(np.float32)
    W2 = rng.normal(size=(8, 2)).astype(np.float32)
    b2 = rng.normal(size=(2,)).astype(np.float32)
    nodes = [
        helper.make_node("Cast", ["k"], ["k_float"], to=TensorProto.FLOAT),
        helper.make_node("Concat", ["x", "k_float"], ["xk"], axis=1),
        helper.make_node("Gemm", ["xk", "W1", "b1"], ["h1"]),
        helper.make_node("Relu", ["h1"], ["a1"]),
        helper.make_node("Gemm", ["a1", "W2", "b2"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["scores"], axis=1),
        helper.make_node("Cast", ["a1"], ["a1_double"], to=TensorProto.DOUBLE),
        helper.make_node("ReduceSum", ["a1_double", "axes"], ["total"], keepdims=0),
    ]
    graph = helper.make_graph(
        nodes, "mlp",
        inputs=[helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3]),
                helper.make_tensor_value_info("k", TensorProto.INT64, ["N", 1])],
        outputs=[helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", 2]),
                 helper.make_tensor_value_info("total", TensorProto.DOUBLE, ["N"])],
        initializer=[numpy_helper.from_array(W1, "W1"), numpy_helper.from_array(b1, "b1"),
                     numpy_helper.from_array(W2, "W2"), numpy_helper.from_array(b2, "b2"),
                     numpy_helper.from_array(np.array([1], dtype=np.int64), "axes")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="onnx.helper")
    model.ir_version = 8
    onnx.checker.check_model(model)
    x = float_matrix(rng, N_ROWS, 3)
    k = rng.integers(-3, 4, size=(N_ROWS, 1)).astype(np.int64)
    sig = ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, 3), "x"),
                       TensorSpec(np.dtype(np.int64), (-1, 1), "k")]),
        outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, 2), "scores"),
                        TensorSpec(np.dtype(np.float64), (-1,), "total")]),
    )
    sess, _ = save("mlp", model, {"x": x, "k": k}, sig)
    write_csv(os.path.join(HERE, "mlp.input.csv"), ["x_0", "x_1", "x_2", "k"],
              [[num_text(v) for v in xr] + [num_text(kr[0])] for xr, kr in zip(x, k)])
    write_expected("mlp", sess, {"x": x, "k": k}, ["scores_0", "scores_1", "total"],
                   lambda outs: [[num_text(s[0]), num_text(s[1]), num_text(t)]
                                 for s, t in zip(outs[0], outs[1])])


def main():
    rng = np.random.default_rng(SEED)
    make_regressor(rng)
    make_classifier_zipmap(rng)
    make_pipeline(rng)
    make_mlp(rng)


if __name__ == "__main__":
    main()
