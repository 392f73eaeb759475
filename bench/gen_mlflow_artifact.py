#!/usr/bin/env python3
"""Writes a deterministic MLflow-shaped artifact of about SIZE bytes for `make bench`.

About 70% of the bytes are incompressible weights, 30% compressible text, plus 2000
small files, under a `model/` folder with a valid MLmodel (signature included), so
`mlflow-processor` accepts it. Same arguments, same bytes.

    gen_mlflow_artifact.py OUT SIZE_BYTES [--format zip|tar.gz]
"""
import io
import random
import sys
import tarfile
import zipfile

MLMODEL = """artifact_path: model
flavors:
  python_function:
    env:
      conda: conda.yaml
      virtualenv: python_env.yaml
    loader_module: mlflow.sklearn
    model_path: model.pkl
    predict_fn: predict
    python_version: 3.11.7
  sklearn:
    code: null
    pickled_model: model.pkl
    serialization_format: cloudpickle
    sklearn_version: 1.9.1
mlflow_version: 3.17.2
model_size_bytes: {size}
model_uuid: 0b7c1c4e5f6a4b0c9d8e7f6a5b4c3d2e
signature:
  inputs: '[{{"type": "double", "name": "x1", "required": true}}, {{"type": "double", "name": "x2", "required": true}}]'
  outputs: '[{{"type": "long", "required": true}}]'
  params: null
utc_time_created: '2026-11-28 00:00:00.000000'
"""


def files(total):
    rnd = random.Random(20261128)
    weights = int(total * 0.70)
    text = int(total * 0.30)
    small_n = 2000
    yield "model/MLmodel", MLMODEL.format(size=total).encode()
    yield "model/conda.yaml", b"name: mlflow-env\nchannels: [conda-forge]\ndependencies:\n- python=3.11.7\n- pip:\n  - mlflow==3.17.2\n"
    yield "model/python_env.yaml", b"python: 3.11.7\nbuild_dependencies:\n- pip\ndependencies:\n- -r requirements.txt\n"
    yield "model/requirements.txt", b"mlflow==3.17.2\nscikit-learn==1.9.1\n"
    yield "model/model.pkl", rnd.randbytes(4096)
    # Weights: a few large incompressible shards.
    shard = 64 << 20
    i = 0
    while weights > 0:
        n = min(shard, weights)
        yield f"model/data/weights-{i:05d}.bin", rnd.randbytes(n)
        weights -= n
        i += 1
    # Compressible text: tokenizer-like JSON lines.
    words = [f"tok{k}" for k in range(5000)]
    i = 0
    while text > 0:
        n = min(16 << 20, text)
        buf = io.StringIO()
        while buf.tell() < n:
            buf.write('{"id": %d, "token": "%s", "score": %.6f}\n' % (rnd.randrange(1 << 30), rnd.choice(words), rnd.random()))
        yield f"model/data/vocab-{i:03d}.jsonl", buf.getvalue().encode()[:n]
        text -= n
        i += 1
    for k in range(small_n):
        body = ("# module %d\n" % k + "def f(x):\n    return x * %d\n" % k * rnd.randrange(5, 40)).encode()
        yield f"model/code/pkg/m{k // 100:02d}/mod_{k:04d}.py", body


def main():
    out, size = sys.argv[1], int(sys.argv[2])
    fmt = sys.argv[4] if len(sys.argv) > 4 and sys.argv[3] == "--format" else "zip"
    if fmt == "zip":
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as z:
            for name, data in files(size):
                info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_STORED if name.endswith(".bin") else zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                z.writestr(info, data)
    else:
        with tarfile.open(out, "w:gz", compresslevel=6) as t:
            for name, data in files(size):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                info.mtime = 1767225600
                info.mode = 0o644
                t.addfile(info, io.BytesIO(data))


if __name__ == "__main__":
    main()
