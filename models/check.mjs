// Checks the exported models from the project's runtime (onnxruntime-node):
//   npx node models/check.mjs        (from the repository root)
//
// For each built-in model: the input/output names and types match metadata.json,
// and every golden case gives scikit-learn's outputs (labels exactly,
// probabilities within 1e-5 absolute, regression values within 1e-5 relative).
// Then the fixtures: corrupt.onnx must not load, runtime-error.onnx must load but
// fail on run, and what iris-zipmap.onnx does is reported.
// Exits non-zero on any failure.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';

const MODELS_DIR = dirname(fileURLToPath(import.meta.url));
const FIXTURES_DIR = join(MODELS_DIR, 'fixtures');
const MODELS = ['iris', 'breast-cancer', 'diabetes', 'digits'];
const PROB_ABS_TOL = 1e-5;
const VALUE_REL_TOL = 1e-5;
// ORT logs failing kernels as errors; the runtime-error fixture fails on purpose.
const QUIET = { logSeverityLevel: 4 };

let failures = 0;
function check(ok, message) {
  if (!ok) {
    failures += 1;
    console.error(`FAIL ${message}`);
  }
}

function readJson(path) {
  return JSON.parse(readFileSync(path, 'utf8'));
}

function sameJson(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

// The signature the session reports, in metadata.json's terms (dynamic dims are null).
function signature(meta) {
  if (!meta.isTensor) return { name: meta.name, type: 'non-tensor' };
  const shape = meta.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : null));
  return { name: meta.name, type: meta.type, shape };
}

async function checkModel(name) {
  const dir = join(MODELS_DIR, name);
  const metadata = readJson(join(dir, 'metadata.json'));
  const golden = readJson(join(dir, 'golden.json'));
  const session = await ort.InferenceSession.create(join(dir, 'model.onnx'));

  check(sameJson(session.inputNames, ['input']), `${name}: inputNames ${session.inputNames}`);
  const expectedOutputs = metadata.outputs.map((o) => o.name);
  check(sameJson(session.outputNames, expectedOutputs), `${name}: outputNames ${session.outputNames}`);
  const inSig = session.inputMetadata.map(signature);
  const outSig = session.outputMetadata.map(signature);
  check(sameJson(inSig, metadata.inputs), `${name}: input signature ${JSON.stringify(inSig)}`);
  check(sameJson(outSig, metadata.outputs), `${name}: output signature ${JSON.stringify(outSig)}`);

  const nFeatures = metadata.inputs[0].shape[1];
  const classifier = expectedOutputs.includes('label');
  let maxAbs = 0;
  let maxRel = 0;
  let rows = 0;
  for (const [i, c] of golden.cases.entries()) {
    const n = c.input.length;
    rows += n;
    const input = new ort.Tensor('float32', Float32Array.from(c.input.flat()), [n, nFeatures]);
    const out = await session.run({ input });
    if (classifier) {
      const { label, probabilities } = out;
      check(
        label.type === 'int64' && sameJson(label.dims, [n]),
        `${name}#${i}: label ${label.type} ${label.dims}`,
      );
      const k = metadata.outputs[1].shape[1];
      check(
        probabilities.type === 'float32' && sameJson(probabilities.dims, [n, k]),
        `${name}#${i}: probabilities ${probabilities.type} ${probabilities.dims}`,
      );
      const labels = Array.from(label.data, Number);
      check(sameJson(labels, c.label), `${name}#${i}: labels ${labels} != ${c.label}`);
      c.probabilities.flat().forEach((expected, j) => {
        maxAbs = Math.max(maxAbs, Math.abs(probabilities.data[j] - expected));
      });
    } else {
      const { value } = out;
      check(
        value.type === 'float32' && sameJson(value.dims, [n, 1]),
        `${name}#${i}: value ${value.type} ${value.dims}`,
      );
      c.value.flat().forEach((expected, j) => {
        maxRel = Math.max(maxRel, Math.abs(value.data[j] - expected) / Math.max(Math.abs(expected), 1e-12));
      });
    }
  }
  if (classifier) {
    check(maxAbs <= PROB_ABS_TOL, `${name}: max |dprob| ${maxAbs} > ${PROB_ABS_TOL}`);
    console.log(
      `${name}: ${golden.cases.length} cases (${rows} rows) ok, max |dprob| = ${maxAbs.toExponential(3)}`,
    );
  } else {
    check(maxRel <= VALUE_REL_TOL, `${name}: max rel dvalue ${maxRel} > ${VALUE_REL_TOL}`);
    console.log(
      `${name}: ${golden.cases.length} cases (${rows} rows) ok, max rel dvalue = ${maxRel.toExponential(3)}`,
    );
  }
  await session.release();
}

function firstLine(err) {
  return String(err?.message ?? err).split('\n')[0];
}

async function checkFixtures() {
  // corrupt.onnx: must not load.
  try {
    await ort.InferenceSession.create(join(FIXTURES_DIR, 'corrupt.onnx'), QUIET);
    check(false, 'corrupt.onnx loaded');
  } catch (err) {
    console.log(`corrupt.onnx: load fails: ${firstLine(err)}`);
  }

  // runtime-error.onnx: loads, then every run throws (0, 1 and 3 rows).
  const rt = await ort.InferenceSession.create(join(FIXTURES_DIR, 'runtime-error.onnx'), QUIET);
  check(
    sameJson(rt.inputNames, ['input']) && sameJson(rt.outputNames, ['value']),
    'runtime-error.onnx: names',
  );
  for (const n of [0, 1, 3]) {
    const input = new ort.Tensor('float32', new Float32Array(n * 4), [n, 4]);
    try {
      await rt.run({ input });
      check(false, `runtime-error.onnx: run on ${n} rows did not throw`);
    } catch (err) {
      if (n === 1) console.log(`runtime-error.onnx: loads; run throws: ${firstLine(err)}`);
    }
  }
  await rt.release();

  // iris-zipmap.onnx: report what happens (load, metadata, run).
  let zm;
  try {
    zm = await ort.InferenceSession.create(join(FIXTURES_DIR, 'iris-zipmap.onnx'), QUIET);
  } catch (err) {
    console.log(`iris-zipmap.onnx: load fails: ${firstLine(err)}`);
    return;
  }
  console.log(`iris-zipmap.onnx: loads; outputs ${JSON.stringify(zm.outputMetadata.map(signature))}`);
  try {
    const input = new ort.Tensor('float32', Float32Array.from([5.1, 3.5, 1.4, 0.2]), [1, 4]);
    const out = await zm.run({ input });
    const shown = Object.fromEntries(
      Object.entries(out).map(([k, v]) => [k, v instanceof ort.Tensor ? `Tensor ${v.type} [${v.dims}]` : v]),
    );
    console.log(
      `iris-zipmap.onnx: run returns ${JSON.stringify(shown, (_, v) => (typeof v === 'bigint' ? Number(v) : v))}`,
    );
  } catch (err) {
    console.log(`iris-zipmap.onnx: run throws: ${firstLine(err)}`);
  }
  await zm.release();
}

for (const name of MODELS) {
  try {
    await checkModel(name);
  } catch (err) {
    check(false, `${name}: ${err?.stack ?? err}`);
  }
}
try {
  await checkFixtures();
} catch (err) {
  check(false, `fixtures: ${err?.stack ?? err}`);
}

console.log(failures === 0 ? 'models check: all ok' : `models check: ${failures} failure(s)`);
process.exitCode = failures === 0 ? 0 : 1;
