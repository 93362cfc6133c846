/** Administration: publish, reprice and retire models; grant credits; service-wide statistics. */
import { useEffect, useRef, useState } from 'preact/hooks';
import {
  type AdminStats,
  type ApiError,
  api,
  declareFile,
  idempotencyKey,
  invalidInput,
  type Model,
  toApiError,
  uploadFile,
} from '../api.ts';
import { ChartView, palette } from '../components/chart.tsx';
import {
  FileField,
  Loading,
  Notice,
  PageHeading,
  ProblemAlert,
  ProgressBar,
  TextAreaField,
  TextField,
  useAsync,
} from '../components/ui.tsx';
import { bytes, count, credits, isoDate, percent, shape, when } from '../format.ts';
import { Link } from '../router.ts';
import { loadMe, useMe } from '../state.ts';
import { modelLabel, perDay, Stat } from './usage.tsx';

const sections = [
  { id: 'models', label: 'Models' },
  { id: 'credits', label: 'Credits' },
  { id: 'stats', label: 'Statistics' },
];

export function AdminPage({ section }: { section: string }) {
  const current = sections.find((s) => s.id === section) ?? sections[0];
  return (
    <>
      <PageHeading title={`Admin: ${current?.label ?? ''}`} />
      <nav aria-label="Admin sections" class="subnav">
        <ul class="nav-list">
          {sections.map((s) => (
            <li key={s.id}>
              <Link href={`/admin/${s.id}`} aria-current={s.id === current?.id ? 'page' : undefined}>
                {s.label}
              </Link>
            </li>
          ))}
        </ul>
      </nav>
      {current?.id === 'models' && <AdminModels />}
      {current?.id === 'credits' && <GrantCredits />}
      {current?.id === 'stats' && <AdminStatsView />}
    </>
  );
}

// ---- Models ---------------------------------------------------------------------------------------

const POLL_MS = 1000;
/** Validation loads the model in onnxruntime; give up following it after this long. */
const VALIDATION_TIMEOUT_MS = 120_000;

type UploadPhase =
  | { step: 'idle' }
  | { step: 'uploading'; fraction: number }
  | { step: 'validating'; model: Model }
  | { step: 'done'; model: Model };

function AdminModels() {
  const models = useAsync(() => api.allModels(), []);
  return (
    <>
      <UploadModel onChange={models.reload} />
      <section class="card" aria-labelledby="versions-heading">
        <h2 id="versions-heading">All model versions</h2>
        <ProblemAlert error={models.error} />
        {models.loading && !models.data && <Loading />}
        {models.data && (
          <div class="table-wrap">
            <table class="stack" data-testid="admin-models">
              <caption class="visually-hidden">Every version of every model</caption>
              <thead>
                <tr>
                  <th scope="col">Model</th>
                  <th scope="col">Status</th>
                  <th scope="col">Inputs</th>
                  <th scope="col">Price per row</th>
                  <th scope="col">
                    <span class="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {[...models.data]
                  .sort((a, b) => a.name.localeCompare(b.name) || b.version - a.version)
                  .map((model) => (
                    <ModelRow key={`${model.id}:${model.updatedAt}`} model={model} onChange={models.reload} />
                  ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
    </>
  );
}

function ModelRow({ model, onChange }: { model: Model; onChange: () => void }) {
  const [price, setPrice] = useState(String(model.price));
  const [error, setError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);
  const label = `${model.name} v${model.version}`;

  const patch = async (body: { price?: number; status?: 'active' | 'retired' }) => {
    setError(null);
    setBusy(true);
    try {
      await api.updateModel(model.id, body);
      onChange();
    } catch (failure) {
      setError(toApiError(failure));
    } finally {
      setBusy(false);
    }
  };
  const savePrice = (event: Event) => {
    event.preventDefault();
    const value = Number(price);
    if (!Number.isInteger(value) || value < 0 || value > 1_000_000) {
      setError(invalidInput([{ path: '/price', message: 'A whole number from 0 to 1,000,000.' }]));
      return;
    }
    void patch({ price: value });
  };

  return (
    <tr>
      <td data-label="Model">
        <strong>{model.name}</strong> <span class="muted">v{model.version}</span>
        <div class="muted small">
          {when(model.createdAt)}
          {model.sizeBytes ? ` · ${bytes(model.sizeBytes)}` : ''}
        </div>
      </td>
      <td data-label="Status">
        <span class={`status status--${model.status}`}>{model.status.replace('_', ' ')}</span>
        {model.statusReason && <div class="small negative">{model.statusReason}</div>}
      </td>
      <td data-label="Inputs" class="small">
        {model.inputs.map((i) => (
          <div key={i.name}>
            <code>{i.name}</code> [{shape(i.shape)}]
          </div>
        ))}
      </td>
      <td data-label="Price per row">
        <form class="inline-form inline-form--tight" onSubmit={savePrice} noValidate>
          <TextField
            label={<span class="visually-hidden">Price of {label}</span>}
            type="number"
            name="price"
            min={0}
            step={1}
            inputMode="numeric"
            value={price}
            onValue={setPrice}
            error={error?.fieldErrors.price}
            fieldClass="price-field"
          />
          <button
            type="submit"
            class="button button--small button--secondary"
            disabled={busy || price === String(model.price)}
            aria-label={`Save the price of ${label}`}
          >
            Save
          </button>
        </form>
        <ProblemAlert error={error} fields={['price']} />
      </td>
      <td data-label="Actions" class="actions">
        {model.status === 'active' && (
          <button
            type="button"
            class="button button--small button--danger"
            disabled={busy}
            onClick={() => patch({ status: 'retired' })}
            aria-label={`Retire ${label}`}
          >
            Retire
          </button>
        )}
        {model.status === 'retired' && (
          <button
            type="button"
            class="button button--small button--secondary"
            disabled={busy}
            onClick={() => patch({ status: 'active' })}
            aria-label={`Reactivate ${label}`}
          >
            Reactivate
          </button>
        )}
      </td>
    </tr>
  );
}

function UploadModel({ onChange }: { onChange: () => void }) {
  const [name, setName] = useState('');
  const [description, setDescription] = useState('');
  const [price, setPrice] = useState('1');
  const [file, setFile] = useState<File | null>(null);
  const [phase, setPhase] = useState<UploadPhase>({ step: 'idle' });
  const [error, setError] = useState<ApiError | null>(null);
  const mounted = useRef(true);
  useEffect(
    () => () => {
      mounted.current = false;
    },
    [],
  );

  const follow = async (id: string) => {
    const deadline = Date.now() + VALIDATION_TIMEOUT_MS;
    while (mounted.current && Date.now() < deadline) {
      const model = await api.model(id).catch((failure: unknown) => {
        // A version that is not active yet may not be readable by reference; keep waiting.
        if (toApiError(failure).status === 404) return null;
        throw failure;
      });
      if (model && model.status !== 'pending_upload') {
        setPhase({ step: 'done', model });
        onChange();
        return;
      }
      if (model) setPhase({ step: 'validating', model });
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
    if (mounted.current)
      setError(
        invalidInput(
          [],
          'The model is still being validated. Its status will show in the list below when it is done.',
        ),
      );
  };

  const submit = async (event: Event) => {
    event.preventDefault();
    setError(null);
    const value = Number(price);
    const problems = [
      ...(/^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$/.test(name.trim())
        ? []
        : [
            {
              path: '/name',
              message: 'Lowercase letters, digits and dashes (1 to 64), not starting or ending with a dash.',
            },
          ]),
      ...(Number.isInteger(value) && value >= 0 && value <= 1_000_000
        ? []
        : [{ path: '/price', message: 'A whole number from 0 to 1,000,000.' }]),
      ...(file ? [] : [{ path: '/file', message: 'Choose an ONNX file.' }]),
    ];
    if (problems.length || !file) {
      setError(invalidInput(problems));
      return;
    }
    try {
      setPhase({ step: 'uploading', fraction: 0 });
      const created = await api.createModel({
        name: name.trim(),
        description: description.trim(),
        price: value,
        ...(await declareFile(file)),
      });
      onChange();
      await uploadFile(created.upload, file, (fraction) => {
        if (mounted.current) setPhase({ step: 'uploading', fraction });
      });
      setPhase({ step: 'validating', model: created.model });
      await follow(created.model.id);
    } catch (failure) {
      setError(toApiError(failure));
      setPhase({ step: 'idle' });
    }
  };

  const busy = phase.step === 'uploading' || phase.step === 'validating';
  const fields = error?.fieldErrors ?? {};
  return (
    <section class="card" aria-labelledby="upload-heading">
      <h2 id="upload-heading">Publish a model</h2>
      <p class="muted">
        Upload an ONNX file. The service loads it to read its inputs and outputs; a name that exists already
        gets a new version.
      </p>
      <form onSubmit={submit} noValidate class="form-grid">
        <TextField
          label="Name"
          name="name"
          required
          autoComplete="off"
          value={name}
          onValue={setName}
          error={fields.name}
          hint="Lowercase letters, digits and dashes."
        />
        <TextField
          label="Price per row (credits)"
          name="price"
          type="number"
          min={0}
          step={1}
          inputMode="numeric"
          required
          value={price}
          onValue={setPrice}
          error={fields.price}
        />
        <TextAreaField
          label="Description"
          name="description"
          rows={3}
          maxLength={2000}
          value={description}
          onValue={setDescription}
          error={fields.description}
        />
        <FileField
          label="ONNX file"
          name="file"
          accept=".onnx"
          onFile={setFile}
          error={fields.file ?? fields.size}
        />
        <div class="form-actions">
          <button type="submit" class="button" disabled={busy}>
            {busy ? 'Working…' : 'Upload and publish'}
          </button>
        </div>
      </form>
      <ProblemAlert error={error} fields={['name', 'price', 'description', 'file', 'size']} />
      <div aria-live="polite" class="result-region">
        {phase.step === 'uploading' && (
          <ProgressBar label="Uploading the model file" value={phase.fraction} />
        )}
        {phase.step === 'validating' && <ProgressBar label="Validating the model" value={null} />}
        {phase.step === 'done' && phase.model.status === 'active' && (
          <Notice kind="success">
            <p class="alert-title" data-testid="model-published">
              {phase.model.name} v{phase.model.version} is active at {credits(phase.model.price)} per row.
            </p>
            <p>
              Inputs:{' '}
              {phase.model.inputs.map((i) => `${i.name} ${i.type} [${shape(i.shape)}]`).join(', ') || 'none'}.{' '}
              <Link href={`/models/${encodeURIComponent(phase.model.id)}`}>Try it</Link>
            </p>
          </Notice>
        )}
        {phase.step === 'done' && phase.model.status !== 'active' && (
          <div class="alert alert--error" role="alert" data-testid="model-invalid">
            <p class="alert-title">
              {phase.model.name} v{phase.model.version} is {phase.model.status.replace('_', ' ')}.
            </p>
            {phase.model.statusReason && <p>{phase.model.statusReason}</p>}
          </div>
        )}
      </div>
    </section>
  );
}

// ---- Credits --------------------------------------------------------------------------------------

function GrantCredits() {
  const me = useMe();
  const [userId, setUserId] = useState('');
  const [amount, setAmount] = useState('100');
  const [reason, setReason] = useState('');
  const [error, setError] = useState<ApiError | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (event: Event) => {
    event.preventDefault();
    setError(null);
    setDone(null);
    const value = Number(amount);
    const problems = [
      ...(userId.trim() ? [] : [{ path: '/userId', message: "Enter the user's ID." }]),
      ...(Number.isInteger(value) && value > 0
        ? []
        : [{ path: '/amount', message: 'A whole number above 0.' }]),
      ...(reason.trim() ? [] : [{ path: '/reason', message: 'Say why, for the ledger.' }]),
    ];
    if (problems.length) {
      setError(invalidInput(problems));
      return;
    }
    setBusy(true);
    try {
      const result = await api.grant(userId.trim(), value, reason.trim(), idempotencyKey());
      setDone(`Granted ${credits(value)}. The user's balance is now ${credits(result.balance)}.`);
      if (me && userId.trim() === me.id) await loadMe();
      setReason('');
    } catch (failure) {
      setError(toApiError(failure));
    } finally {
      setBusy(false);
    }
  };

  const fields = error?.fieldErrors ?? {};
  return (
    <section class="card" aria-labelledby="grant-heading">
      <h2 id="grant-heading">Grant credits</h2>
      <p class="muted">
        Users find their ID on their account page. The grant appears in their ledger with your reason.
      </p>
      <form onSubmit={submit} noValidate class="form-grid">
        <TextField
          label="User ID"
          name="userId"
          required
          autoComplete="off"
          value={userId}
          onValue={setUserId}
          error={fields.userId}
        />
        <TextField
          label="Amount (credits)"
          name="amount"
          type="number"
          min={1}
          step={1}
          inputMode="numeric"
          required
          value={amount}
          onValue={setAmount}
          error={fields.amount}
        />
        <TextField
          label="Reason"
          name="reason"
          required
          maxLength={500}
          value={reason}
          onValue={setReason}
          error={fields.reason}
        />
        <div class="form-actions">
          <button type="submit" class="button" disabled={busy}>
            {busy ? 'Granting…' : 'Grant credits'}
          </button>
        </div>
      </form>
      <ProblemAlert error={error} fields={['userId', 'amount', 'reason']} />
      <div aria-live="polite">{done && <Notice kind="success">{done}</Notice>}</div>
    </section>
  );
}

// ---- Statistics -----------------------------------------------------------------------------------

function AdminStatsView() {
  const [from, setFrom] = useState(isoDate(29));
  const [to, setTo] = useState(isoDate(0));
  const [range, setRange] = useState({ from, to });
  const stats = useAsync(async () => {
    const [data, models] = await Promise.all([
      api.adminStats(range),
      api.allModels().catch(() => [] as Model[]),
    ]);
    return { data, models };
  }, [range.from, range.to]);

  const apply = (event: Event) => {
    event.preventDefault();
    if (from && to && from <= to) setRange({ from, to });
  };

  if (stats.error?.status === 404)
    return (
      <Notice kind="info">
        <p class="alert-title">Statistics are not available yet.</p>
        <p>This service does not offer service-wide statistics yet.</p>
      </Notice>
    );
  return (
    <>
      <form class="toolbar" onSubmit={apply} noValidate>
        <TextField label="From" type="date" name="from" value={from} onValue={setFrom} max={to} />
        <TextField label="To" type="date" name="to" value={to} onValue={setTo} min={from} />
        <button type="submit" class="button">
          Show
        </button>
      </form>
      <ProblemAlert error={stats.error} />
      {stats.loading && <Loading />}
      {stats.data && <StatsBody stats={stats.data.data} models={stats.data.models} range={range} />}
    </>
  );
}

function StatsBody({
  stats,
  models,
  range,
}: {
  stats: AdminStats;
  models: Model[];
  range: { from: string; to: string };
}) {
  const days = perDay(stats.byDay ?? [], range.from, range.to);
  const added = new Map((stats.byDay ?? []).map((d) => [d.period.slice(0, 10), d.creditsAdded ?? 0]));
  const byModel = stats.byModel ?? [];
  const modelLabels = byModel.map((m) =>
    m.modelName
      ? `${m.modelName}${m.modelVersion ? ` v${m.modelVersion}` : ''}`
      : modelLabel(m.modelId, models),
  );
  const latency = (ms: number | null | undefined) =>
    ms === null || ms === undefined ? '—' : `≤ ${count(ms)} ms`;

  return (
    <>
      <div class="stats">
        <Stat label="Users" value={count(stats.users ?? 0)} />
        <Stat label="Active users" value={count(stats.activeUsers ?? 0)} />
        <Stat label="Predicted rows" value={count(stats.predictions ?? 0)} />
        <Stat label="Failed rows" value={count(stats.failed ?? 0)} />
        <Stat label="Error rate" value={percent(stats.errorRate ?? 0)} />
        <Stat label="Credits charged" value={credits(stats.creditsCharged ?? 0)} />
        <Stat label="Credits added" value={credits(stats.creditsAdded ?? 0)} />
      </div>
      <div class="grid grid--two">
        <section class="card">
          <ChartView
            title="Predictions per day"
            categoryHeading="Day"
            labels={days.labels}
            stacked
            series={[
              { label: 'Succeeded', data: days.predictions, color: palette[2] ?? '#047857' },
              { label: 'Failed', data: days.failed, color: palette[4] ?? '#b91c1c' },
            ]}
          />
        </section>
        <section class="card">
          <ChartView
            title="Credits per day"
            categoryHeading="Day"
            labels={days.labels}
            series={[
              { label: 'Charged', data: days.credits, color: palette[0] ?? '#1d4ed8' },
              {
                label: 'Added',
                data: days.labels.map((d) => added.get(d) ?? 0),
                color: palette[1] ?? '#c2410c',
              },
            ]}
          />
        </section>
        <section class="card">
          <ChartView
            title="Credits charged per model"
            categoryHeading="Model"
            horizontal
            labels={modelLabels}
            series={[
              { label: 'Credits', data: byModel.map((m) => m.credits), color: palette[0] ?? '#1d4ed8' },
            ]}
          />
        </section>
        <section class="card">
          <ChartView
            title="Predicted rows per model"
            categoryHeading="Model"
            horizontal
            stacked
            labels={modelLabels}
            series={[
              { label: 'Succeeded', data: byModel.map((m) => m.predictions), color: palette[2] ?? '#047857' },
              { label: 'Failed', data: byModel.map((m) => m.failed), color: palette[4] ?? '#b91c1c' },
            ]}
          />
        </section>
      </div>
      <section class="card" aria-labelledby="per-model-heading">
        <h2 id="per-model-heading">Models</h2>
        {byModel.length === 0 ? (
          <p>No predictions in this period.</p>
        ) : (
          <div class="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">Model</th>
                  <th scope="col" class="num">
                    Rows
                  </th>
                  <th scope="col" class="num">
                    Error rate
                  </th>
                  <th scope="col" class="num">
                    Latency p50
                  </th>
                  <th scope="col" class="num">
                    Latency p95
                  </th>
                  <th scope="col" class="num">
                    Credits
                  </th>
                </tr>
              </thead>
              <tbody>
                {byModel.map((m, i) => (
                  <tr key={m.modelId}>
                    <th scope="row">{modelLabels[i]}</th>
                    <td class="num">{count(m.predictions + m.failed)}</td>
                    <td class="num">{percent(m.errorRate ?? 0)}</td>
                    <td class="num">{latency(m.p50LatencyMs)}</td>
                    <td class="num">{latency(m.p95LatencyMs)}</td>
                    <td class="num">{count(m.credits)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
      <section class="card" aria-labelledby="top-users-heading">
        <h2 id="top-users-heading">Top users</h2>
        {(stats.topUsers ?? []).length === 0 ? (
          <p>No usage in this period.</p>
        ) : (
          <div class="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">User</th>
                  <th scope="col" class="num">
                    Rows
                  </th>
                  <th scope="col" class="num">
                    Failed
                  </th>
                  <th scope="col" class="num">
                    Credits
                  </th>
                </tr>
              </thead>
              <tbody>
                {stats.topUsers.map((u) => (
                  <tr key={u.userId}>
                    <th scope="row" class="wrap-anywhere">
                      {u.email ?? u.userId}
                      {u.email && <div class="muted small">{u.userId}</div>}
                    </th>
                    <td class="num">{count(u.predictions)}</td>
                    <td class="num">{count(u.failed)}</td>
                    <td class="num">{count(u.credits)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
    </>
  );
}
