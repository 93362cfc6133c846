"""Train the service's built-in models and export them to ONNX.

Regenerate everything under models/ (from the repository root):

    python3 -m venv models/.venv \
      && models/.venv/bin/pip install -r models/requirements.txt \
      && models/.venv/bin/python models/train.py

Then check the exported models from the project's runtime (Node,
onnxruntime-node):

    npx node models/check.mjs

What it writes:

* models/<name>/model.onnx     the model (one float32 input ``input`` [N, F];
                               classifiers output ``label`` int64 [N] and
                               ``probabilities`` float32 [N, K]; the regressor
                               outputs ``value`` float32 [N, 1])
* models/<name>/metadata.json  name, description, price, I/O signature,
                               feature names, classes, training versions
* models/<name>/golden.json    20 single-row cases + 1 five-row case whose
                               expected outputs are scikit-learn's own
                               predictions on the float32-cast inputs
* models/fixtures/             invalid models for the upload-validation tests:
                               iris-zipmap.onnx (non-tensor output),
                               corrupt.onnx (not a protobuf),
                               runtime-error.onnx (loads, fails on every run)

The data sets all ship inside scikit-learn (nothing is downloaded), every
estimator has a fixed random_state or is deterministic, and the golden rows are
chosen by fixed index arithmetic, so reruns produce the same files.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import skl2onnx
import sklearn
from onnx import TensorProto, helper
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_iris
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

MODELS_DIR = Path(__file__).resolve().parent
FIXTURES_DIR = MODELS_DIR / "fixtures"

# ai.onnx opset 17 / ai.onnx.ml 3: supported by onnxruntime 1.30 (Python and Node).
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}
IR_VERSION = 8  # the IR version that goes with opset 17

N_SINGLE_CASES = 20
N_MULTI_ROWS = 5

# Tolerances used for the Python-side check (check.mjs uses the same ones).
PROB_ABS_TOL = 1e-5
VALUE_REL_TOL = 1e-5


def log(msg: str) -> None:
    print(msg, file=sys.stderr)


# --------------------------------------------------------------------------
# Model specs
# --------------------------------------------------------------------------

MODEL_SPECS = [
    {
        "name": "iris",
        "kind": "classifier",
        "price": 1,
        "load": load_iris,
        "estimator": lambda: LogisticRegression(max_iter=1000, random_state=0),
        "description": (
            "Predicts the species of an iris flower (0 = setosa, 1 = versicolor, "
            "2 = virginica) from 4 measurements in centimetres: sepal length, "
            "sepal width, petal length and petal width."
        ),
    },
    {
        "name": "breast-cancer",
        "kind": "classifier",
        "price": 2,
        "load": load_breast_cancer,
        "estimator": lambda: make_pipeline(
            StandardScaler(), LogisticRegression(max_iter=1000, random_state=0)
        ),
        "description": (
            "Predicts whether a breast mass is malignant (0) or benign (1) from 30 "
            "features computed from a digitized fine-needle-aspirate image of the "
            "cell nuclei: the mean, standard error and worst value of radius, "
            "texture, perimeter, area, smoothness, compactness, concavity, concave "
            "points, symmetry and fractal dimension."
        ),
    },
    {
        "name": "diabetes",
        "kind": "regressor",
        "price": 2,
        "load": load_diabetes,
        "estimator": lambda: Ridge(alpha=0.01),
        "description": (
            "Predicts a quantitative measure of diabetes disease progression one "
            "year after baseline from 10 baseline variables (age, sex, body mass "
            "index, average blood pressure and six blood serum measurements s1-s6), "
            "each mean-centred and scaled by its standard deviation times the "
            "square root of the number of samples, as in scikit-learn's diabetes "
            "data set."
        ),
    },
    {
        "name": "digits",
        "kind": "classifier",
        "price": 3,
        "load": load_digits,
        "estimator": lambda: make_pipeline(
            StandardScaler(), LogisticRegression(max_iter=2000, random_state=0)
        ),
        "description": (
            "Predicts which handwritten digit (0-9) an 8x8 grayscale image shows, "
            "from its 64 pixel intensities in row-major order, each an integer "
            "from 0 (white) to 16 (black)."
        ),
    },
]


def class_names(spec: dict, data) -> list[str]:
    if spec["name"] == "digits":
        return [str(c) for c in range(10)]
    return [str(n) for n in data.target_names]


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def f32_json(x: np.ndarray) -> list:
    """float32 values as the shortest decimal that round-trips to the same float32."""
    return [[float(str(np.float32(v))) for v in row] for row in np.asarray(x, dtype=np.float32)]


def golden_indices(n: int) -> tuple[list[int], list[int]]:
    """20 single rows spread evenly over the data set, plus a 5-row batch."""
    singles = [int(i) for i in np.linspace(0, n - 1, N_SINGLE_CASES).round()]
    step = n // N_MULTI_ROWS
    multi = [int(step // 2 + k * step) for k in range(N_MULTI_ROWS)]
    return singles, multi


def _rename(model: onnx.ModelProto, mapping: dict[str, str]) -> None:
    graph = model.graph
    for out in graph.output:
        if out.name in mapping:
            out.name = mapping[out.name]
    for node in graph.node:
        for i, name in enumerate(node.output):
            if name in mapping:
                node.output[i] = mapping[name]
        for i, name in enumerate(node.input):
            if name in mapping:
                node.input[i] = mapping[name]
    for vi in graph.value_info:
        if vi.name in mapping:
            vi.name = mapping[vi.name]


def rename_outputs(model: onnx.ModelProto, mapping: dict[str, str]) -> None:
    """Rename graph outputs (and every reference to them) in place.

    skl2onnx may already use a target name for an intermediate value (with
    ZipMap on, 'label' and 'probabilities' are internal names), so such a
    clashing name is first moved aside to a fresh one. Outputs that do not
    exist (with ZipMap off skl2onnx already names them 'label' and
    'probabilities') are skipped; the caller asserts the final names.
    """
    graph = model.graph
    used = {n for node in graph.node for n in list(node.input) + list(node.output)}
    used |= {i.name for i in graph.input} | {o.name for o in graph.output}
    used |= {t.name for t in graph.initializer}
    outputs = {o.name for o in graph.output}
    mapping = {old: new for old, new in mapping.items() if old in outputs}
    aside = {}
    for new in mapping.values():
        if new in used and new not in mapping:
            k = 0
            while f"{new}_internal{k}" in used:
                k += 1
            aside[new] = f"{new}_internal{k}"
            used.add(aside[new])
    if aside:
        _rename(model, aside)
    _rename(model, mapping)


def to_onnx(est, n_features: int, kind: str, graph_name: str, zipmap: bool = False) -> onnx.ModelProto:
    options = None
    if kind == "classifier":
        # the option belongs to the classifier itself (the last step of a pipeline)
        final = est.steps[-1][1] if hasattr(est, "steps") else est
        options = {id(final): {"zipmap": zipmap}}
    model = convert_sklearn(
        est,
        initial_types=[("input", FloatTensorType([None, n_features]))],
        options=options,
        target_opset=TARGET_OPSET,
    )
    if kind == "classifier":
        rename_outputs(model, {"output_label": "label", "output_probability": "probabilities"})
    else:
        rename_outputs(model, {"variable": "value"})
    # skl2onnx may list the same domain twice in opset_import; keep one entry each
    opsets: dict[str, int] = {}
    for op in model.opset_import:
        opsets[op.domain] = max(opsets.get(op.domain, 0), op.version)
    del model.opset_import[:]
    model.opset_import.extend(helper.make_opsetid(d, v) for d, v in sorted(opsets.items()))
    model.graph.name = graph_name  # skl2onnx uses a random uuid: keep the output deterministic
    model.ir_version = IR_VERSION
    model.producer_name = "ml-predictions models/train.py"
    model.producer_version = f"skl2onnx {skl2onnx.__version__}"
    onnx.checker.check_model(model, full_check=True)
    return model


def tensor_sig(vi: onnx.ValueInfoProto) -> dict:
    t = vi.type.tensor_type
    elem = {TensorProto.FLOAT: "float32", TensorProto.INT64: "int64"}[t.elem_type]
    shape = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
    return {"name": vi.name, "type": elem, "shape": shape}


def _dump(obj, indent: int = 0) -> str:
    """JSON with 2-space indentation, but lists of scalars kept on one line."""
    pad, inner = "  " * indent, "  " * (indent + 1)
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [f"{inner}{json.dumps(k)}: {_dump(v, indent + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, list) and any(isinstance(v, (dict, list)) for v in obj):
        if all(isinstance(v, list) and not any(isinstance(w, (dict, list)) for w in v) for v in obj):
            return "[" + ", ".join(_dump(v) for v in obj) + "]"
        return "[\n" + ",\n".join(inner + _dump(v, indent + 1) for v in obj) + "\n" + pad + "]"
    return json.dumps(obj, allow_nan=False)


def write_json(path: Path, obj) -> None:
    text = _dump(obj) + "\n"
    assert json.loads(text) == obj
    path.write_text(text)


# --------------------------------------------------------------------------
# Building one model
# --------------------------------------------------------------------------


def build(spec: dict) -> None:
    name, kind = spec["name"], spec["kind"]
    data = spec["load"]()
    X = np.asarray(data.data, dtype=np.float32)  # train and predict on float32-cast data
    y = np.asarray(data.target)
    n, n_features = X.shape

    est = spec["estimator"]()
    est.fit(X, y)

    model = to_onnx(est, n_features, kind, graph_name=name)
    out_dir = MODELS_DIR / name
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx.save_model(model, out_dir / "model.onnx")

    # --- signature checks ---
    assert [i.name for i in model.graph.input] == ["input"], model.graph.input
    inputs = [tensor_sig(model.graph.input[0])]
    assert inputs == [{"name": "input", "type": "float32", "shape": [None, n_features]}], inputs
    outputs = [tensor_sig(o) for o in model.graph.output]
    if kind == "classifier":
        n_classes = len(est.classes_)
        assert list(est.classes_) == list(range(n_classes)), est.classes_
        expected_out = [
            {"name": "label", "type": "int64", "shape": [None]},
            {"name": "probabilities", "type": "float32", "shape": [None, n_classes]},
        ]
    else:
        expected_out = [{"name": "value", "type": "float32", "shape": [None, 1]}]
    assert outputs == expected_out, outputs

    # --- metadata ---
    metadata = {
        "name": name,
        "description": spec["description"],
        "price": spec["price"],
        "inputs": inputs,
        "outputs": outputs,
        "featureNames": [str(f) for f in data.feature_names],
    }
    assert len(metadata["featureNames"]) == n_features
    if kind == "classifier":
        metadata["classes"] = class_names(spec, data)
        assert len(metadata["classes"]) == n_classes
    metadata["trainedWith"] = {"scikit-learn": sklearn.__version__, "skl2onnx": skl2onnx.__version__}
    write_json(out_dir / "metadata.json", metadata)

    # --- golden cases: scikit-learn's own outputs on the float32 inputs ---
    singles, multi = golden_indices(n)
    cases = []
    for rows in [[i] for i in singles] + [multi]:
        xb = X[rows]
        case = {"input": f32_json(xb)}
        if kind == "classifier":
            case["label"] = [int(v) for v in est.predict(xb)]
            case["probabilities"] = [[float(p) for p in r] for r in est.predict_proba(xb)]
        else:
            case["value"] = [[float(v)] for v in est.predict(xb)]
        cases.append(case)
    write_json(out_dir / "golden.json", {"cases": cases})

    # --- Python-side check with onnxruntime ---
    sess = ort.InferenceSession(str(out_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    out_names = [o.name for o in sess.get_outputs()]
    max_abs = max_rel = 0.0
    for case in cases:
        xb = np.asarray(case["input"], dtype=np.float32)
        res = dict(zip(out_names, sess.run(None, {"input": xb})))
        if kind == "classifier":
            assert res["label"].dtype == np.int64 and res["label"].tolist() == case["label"], (res, case)
            diff = np.abs(res["probabilities"] - np.asarray(case["probabilities"])).max()
            max_abs = max(max_abs, float(diff))
        else:
            exp = np.asarray(case["value"])
            rel = (np.abs(res["value"] - exp) / np.maximum(np.abs(exp), 1e-12)).max()
            max_rel = max(max_rel, float(rel))
    assert max_abs <= PROB_ABS_TOL and max_rel <= VALUE_REL_TOL, (name, max_abs, max_rel)
    if kind == "classifier":
        acc = float((est.predict(X) == y).mean())
        log(f"{name}: train accuracy {acc:.4f}; onnxruntime max |dprob| = {max_abs:.3g}")
    else:
        r2 = float(est.score(X, y))
        log(f"{name}: train R^2 {r2:.4f}; onnxruntime max rel dvalue = {max_rel:.3g}")


# --------------------------------------------------------------------------
# Fixtures for the upload-validation tests
# --------------------------------------------------------------------------


def build_fixtures() -> None:
    FIXTURES_DIR.mkdir(parents=True, exist_ok=True)

    # 1. iris with ZipMap: 'probabilities' is a sequence of maps, not a tensor.
    iris = load_iris()
    X = np.asarray(iris.data, dtype=np.float32)
    est = MODEL_SPECS[0]["estimator"]()
    est.fit(X, iris.target)
    zipmap = to_onnx(est, X.shape[1], "classifier", graph_name="iris-zipmap", zipmap=True)
    assert zipmap.graph.output[1].type.HasField("sequence_type"), zipmap.graph.output[1]
    onnx.save_model(zipmap, FIXTURES_DIR / "iris-zipmap.onnx")

    # 2. corrupt: bytes that are not an ONNX protobuf.
    rng = random.Random(1234)
    garbage = b"this is not an ONNX model\n" + bytes(rng.randrange(256) for _ in range(374))
    corrupt_path = FIXTURES_DIR / "corrupt.onnx"
    corrupt_path.write_bytes(garbage)
    try:
        onnx.load_model(corrupt_path)
    except Exception:
        pass
    else:
        raise AssertionError("corrupt.onnx parsed as ONNX")
    try:
        ort.InferenceSession(str(corrupt_path), providers=["CPUExecutionProvider"])
    except Exception:
        pass
    else:
        raise AssertionError("corrupt.onnx loaded in onnxruntime")

    # 3. runtime-error: a valid model (input [N, 4] -> value [N, 1]) that loads
    #    but fails on every run: Gather on axis 1 with the constant index 7,
    #    out of range for a dimension of size 4.
    idx = helper.make_tensor("idx", TensorProto.INT64, dims=[1], vals=[7])
    graph = helper.make_graph(
        nodes=[helper.make_node("Gather", ["input", "idx"], ["value"], axis=1, name="gather_out_of_range")],
        name="runtime_error",
        inputs=[helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, 4])],
        outputs=[helper.make_tensor_value_info("value", TensorProto.FLOAT, [None, 1])],
        initializer=[idx],
    )
    rt = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", TARGET_OPSET[""])],
        producer_name="ml-predictions models/train.py",
    )
    rt.ir_version = IR_VERSION
    onnx.checker.check_model(rt, full_check=True)
    rt_path = FIXTURES_DIR / "runtime-error.onnx"
    onnx.save_model(rt, rt_path)
    quiet = ort.SessionOptions()
    quiet.log_severity_level = 4  # the failure is expected: don't print it as an error
    sess = ort.InferenceSession(str(rt_path), quiet, providers=["CPUExecutionProvider"])
    for rows in (0, 1, 3):
        try:
            sess.run(None, {"input": np.zeros((rows, 4), dtype=np.float32)})
        except Exception as exc:  # noqa: BLE001 - any run-time failure is what we want
            msg = str(exc).splitlines()[0]
        else:
            raise AssertionError(f"runtime-error.onnx ran on {rows} rows")
    log(f"fixtures: runtime-error.onnx fails at run time: {msg}")


def main() -> None:
    log(
        f"scikit-learn {sklearn.__version__}, skl2onnx {skl2onnx.__version__}, "
        f"onnx {onnx.__version__}, onnxruntime {ort.__version__}, numpy {np.__version__}"
    )
    for spec in MODEL_SPECS:
        build(spec)
    build_fixtures()


if __name__ == "__main__":
    main()
