/**
 * A prediction form generated from a model's input signature: one numeric field per feature for a
 * tabular model (one input of shape [N, F]), the 8×8 drawing pad for 64 pixel values, and a JSON
 * editor for anything else. Shows the outputs with the cost and the new balance.
 */
import { useId, useMemo, useState } from 'preact/hooks';
import {
  type ApiError,
  api,
  idempotencyKey,
  invalidInput,
  type Model,
  type PredictionResult,
  type Tensor,
  type TensorSpec,
  toApiError,
} from '../api.ts';
import { credits, number, shape } from '../format.ts';
import { Link } from '../router.ts';
import { setBalance } from '../state.ts';
import { DigitsCanvas, emptyImage, GRID, SAMPLE_ZERO } from './digits-canvas.tsx';
import { Notice, ProblemAlert, TextAreaField, TextField } from './ui.tsx';

/** Above this many features a form of fields is unwieldy; the JSON editor takes over. */
const MAX_FIELDS = 256;

export type Signature =
  | { kind: 'table'; input: TensorSpec; features: number }
  | { kind: 'image'; input: TensorSpec; features: number }
  | { kind: 'json' };

const numericType = /^(float|double|u?int|bool)/;

export function signatureOf(model: Model): Signature {
  const [input] = model.inputs;
  if (model.inputs.length !== 1 || !input) return { kind: 'json' };
  const features = input.shape[1];
  if (input.shape.length !== 2 || typeof features !== 'number' || !numericType.test(input.type))
    return { kind: 'json' };
  if (features === GRID * GRID) return { kind: 'image', input, features };
  if (features < 1 || features > MAX_FIELDS) return { kind: 'json' };
  return { kind: 'table', input, features };
}

function exampleTensor(spec: TensorSpec): Tensor {
  const build = (dims: (number | null)[]): Tensor => {
    if (dims.length === 0) return 0;
    const [first, ...rest] = dims;
    return Array.from({ length: first ?? 1 }, () => build(rest));
  };
  return build(spec.shape);
}

export function PredictForm({ model }: { model: Model }) {
  const signature = useMemo(() => signatureOf(model), [model]);
  const features = signature.kind === 'json' ? 0 : signature.features;
  const [values, setValues] = useState<string[]>(() => new Array(features).fill(''));
  const [image, setImage] = useState<number[]>(emptyImage);
  const [typed, setTyped] = useState(false);
  const [json, setJson] = useState(() =>
    JSON.stringify(Object.fromEntries(model.inputs.map((i) => [i.name, exampleTensor(i)]))),
  );
  const [paste, setPaste] = useState('');
  const [result, setResult] = useState<PredictionResult | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);
  const padLabel = useId();

  const fieldErrors: Record<number, string> = {};
  for (const problem of error?.problem.errors ?? []) {
    const index = /^\/?features\/(\d+)$/.exec(problem.path)?.[1];
    if (index !== undefined) fieldErrors[Number(index)] = problem.message;
  }

  const inputs = (): Record<string, Tensor> | ApiError => {
    if (signature.kind === 'json') {
      try {
        const parsed: unknown = JSON.parse(json);
        if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed))
          return invalidInput([{ path: '/inputs', message: 'Enter a JSON object keyed by input name.' }]);
        return parsed as Record<string, Tensor>;
      } catch {
        return invalidInput([{ path: '/inputs', message: 'This is not valid JSON.' }]);
      }
    }
    if (signature.kind === 'image' && !typed) return { [signature.input.name]: image };
    const problems = values.flatMap((raw, i) =>
      raw.trim() === '' || !Number.isFinite(Number(raw))
        ? [
            {
              path: `/features/${i}`,
              message: raw.trim() === '' ? 'Enter a number.' : 'This is not a number.',
            },
          ]
        : [],
    );
    if (problems.length)
      return invalidInput(problems, `${problems.length} of ${values.length} features need a number.`);
    return { [signature.input.name]: values.map(Number) };
  };

  const submit = async (event: Event) => {
    event.preventDefault();
    setError(null);
    const body = inputs();
    if (body instanceof Error) {
      setError(body);
      return;
    }
    setBusy(true);
    try {
      const answer = await api.predict(model.id, body, idempotencyKey());
      setResult(answer);
      setBalance(answer.balance);
    } catch (failure) {
      setResult(null);
      setError(toApiError(failure));
    } finally {
      setBusy(false);
    }
  };

  const fillFromPaste = () => {
    const numbers = paste
      .split(/[\s,;]+/)
      .map((s) => s.trim())
      .filter(Boolean);
    setValues(values.map((old, i) => numbers[i] ?? old));
  };

  return (
    <form class="predict-form" onSubmit={submit} noValidate aria-labelledby="predict-heading">
      <h2 id="predict-heading">Run a prediction</h2>
      <p class="muted">
        Costs {credits(model.price)} per row; one row here. Nothing is charged if the prediction fails.
      </p>

      {signature.kind === 'image' && (
        <fieldset class="segmented">
          <legend class="visually-hidden">How to enter the pixels</legend>
          <button
            type="button"
            aria-pressed={!typed}
            onClick={() => {
              const numbers = values.map(Number);
              if (values.every((v) => v.trim() !== '') && numbers.every(Number.isFinite)) setImage(numbers);
              setTyped(false);
            }}
          >
            Draw
          </button>
          <button
            type="button"
            aria-pressed={typed}
            onClick={() => {
              setValues(image.map(String));
              setTyped(true);
            }}
          >
            Type 64 values
          </button>
        </fieldset>
      )}

      {signature.kind === 'image' && !typed && (
        <fieldset class="pad-fieldset">
          <legend id={padLabel}>Drawing pad: 8 × 8 pixels, intensity 0 to 16</legend>
          <DigitsCanvas value={image} onChange={setImage} labelId={padLabel} />
          <div class="button-row">
            <button
              type="button"
              class="button button--secondary button--small"
              onClick={() => setImage(emptyImage())}
            >
              Clear
            </button>
            <button
              type="button"
              class="button button--secondary button--small"
              onClick={() => setImage([...SAMPLE_ZERO])}
            >
              Load a sample digit
            </button>
          </div>
          <details>
            <summary>Show the 64 values</summary>
            <pre class="values" data-testid="digits-values">
              {Array.from({ length: GRID }, (_, row) =>
                image.slice(row * GRID, row * GRID + GRID).join(', '),
              ).join('\n')}
            </pre>
          </details>
        </fieldset>
      )}

      {(signature.kind === 'table' || (signature.kind === 'image' && typed)) && (
        <fieldset>
          <legend>
            Features of <code>{signature.input.name}</code> ({signature.input.type}, {features} values)
          </legend>
          <div class="paste-row">
            <TextField
              label="Paste a row"
              name="paste"
              value={paste}
              onValue={setPaste}
              hint="Comma- or space-separated numbers fill the fields in order."
              fieldClass="grow"
            />
            <button type="button" class="button button--secondary" onClick={fillFromPaste}>
              Fill
            </button>
          </div>
          <div class="feature-grid">
            {values.map((v, i) => (
              <TextField
                key={i}
                label={`Feature ${i}`}
                name={`feature-${i}`}
                type="text"
                inputMode="decimal"
                autoComplete="off"
                required
                value={v}
                onValue={(next) => setValues(values.map((old, j) => (j === i ? next : old)))}
                error={fieldErrors[i]}
              />
            ))}
          </div>
        </fieldset>
      )}

      {signature.kind === 'json' && (
        <TextAreaField
          label="Inputs (JSON)"
          name="inputs"
          rows={6}
          spellcheck={false}
          value={json}
          onValue={setJson}
          error={error?.fieldErrors.inputs}
          hint={`An object keyed by input name: ${model.inputs.map((i) => `${i.name} ${i.type} [${shape(i.shape)}]`).join(', ')}.`}
        />
      )}

      <button type="submit" class="button" disabled={busy}>
        {busy ? 'Predicting…' : `Predict (${credits(model.price)})`}
      </button>

      <div aria-live="polite" aria-atomic="true" class="result-region">
        {error && (
          <ProblemAlert
            error={error}
            fields={signature.kind === 'json' ? ['inputs'] : values.map((_, i) => `features.${i}`)}
          >
            {error.code === 'insufficient-credits' && (
              <p>
                Add credits on your <Link href="/account">account page</Link> (or ask an administrator for a
                grant), then run the prediction again.
              </p>
            )}
          </ProblemAlert>
        )}
        {result && <PredictionOutcome result={result} model={model} />}
      </div>
    </form>
  );
}

function PredictionOutcome({ result, model }: { result: PredictionResult; model: Model }) {
  return (
    <div class="result" data-testid="prediction-result">
      <h3>Result</h3>
      {Object.entries(result.outputs).map(([name, value]) => (
        <OutputView key={name} name={name} value={value} spec={model.outputs.find((o) => o.name === name)} />
      ))}
      <Notice kind="success">
        <p>
          Charged <strong data-testid="prediction-cost">{credits(result.cost)}</strong>. Your balance is now{' '}
          <strong data-testid="prediction-balance">{credits(result.balance)}</strong>.
        </p>
        <p class="muted small">
          Prediction <code>{result.id}</code> · model version {result.modelVersion}
        </p>
      </Notice>
    </div>
  );
}

/** One output of the first row: a single value big, a probability vector as bars, anything else as JSON. */
function OutputView({ name, value, spec }: { name: string; value: unknown; spec: TensorSpec | undefined }) {
  const row = Array.isArray(value) && value.length === 1 ? value[0] : value;
  const isNumbers = Array.isArray(row) && row.every((x) => typeof x === 'number');
  if (typeof row === 'number' || typeof row === 'boolean' || typeof row === 'string') {
    return (
      <div class="output">
        <p class="output-name">{name}</p>
        <p class="output-value" data-testid={`output-${name}`}>
          {typeof row === 'number' ? number(row) : String(row)}
        </p>
      </div>
    );
  }
  if (isNumbers && (row as number[]).length === 1) {
    return <OutputView name={name} value={(row as number[])[0]} spec={spec} />;
  }
  if (isNumbers && (row as number[]).every((p) => p >= 0 && p <= 1)) {
    const probabilities = row as number[];
    const best = probabilities.indexOf(Math.max(...probabilities));
    return (
      <div class="output">
        <p class="output-name">{name}</p>
        <ul class="bars">
          {probabilities.map((p, i) => (
            <li key={i} class={i === best ? 'best' : ''}>
              <span class="bar-label">Class {i}</span>
              <span class="bar" aria-hidden="true">
                <span style={{ width: `${Math.round(p * 100)}%` }} />
              </span>
              <span class="bar-value">{(p * 100).toFixed(1)} %</span>
            </li>
          ))}
        </ul>
      </div>
    );
  }
  return (
    <div class="output">
      <p class="output-name">
        {name} {spec && <span class="muted">({spec.type})</span>}
      </p>
      <pre class="values">{JSON.stringify(value)}</pre>
    </div>
  );
}
