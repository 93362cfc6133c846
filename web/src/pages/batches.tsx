/**
 * Batch predictions: create a batch, PUT the file to its presigned upload, follow the batch until it
 * is done, then download the results. The list below shows earlier batches with fresh result links.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import {
  type ApiError,
  api,
  type Batch,
  type BatchFormat,
  declareFile,
  invalidInput,
  toApiError,
  uploadFile,
} from '../api.ts';
import {
  FileField,
  Loading,
  Notice,
  PageHeading,
  ProblemAlert,
  ProgressBar,
  SelectField,
  useAsync,
} from '../components/ui.tsx';
import { bytes, count, credits, when } from '../format.ts';
import { loadMe } from '../state.ts';
import { activeModels } from './models.tsx';

const POLL_MS = 1000;
const finished = (status: Batch['status']) => status === 'succeeded' || status === 'failed';

type Phase =
  | { step: 'idle' }
  | { step: 'uploading'; fraction: number }
  | { step: 'processing'; batch: Batch }
  | { step: 'done'; batch: Batch };

export function BatchesPage() {
  const models = useAsync(() => api.allModels(), []);
  const active = models.data ? activeModels(models.data) : [];
  const batches = useAsync(() => api.batches({ limit: 20 }), []);
  const [modelId, setModelId] = useState('');
  const [file, setFile] = useState<File | null>(null);
  const [format, setFormat] = useState<BatchFormat>('csv');
  const [phase, setPhase] = useState<Phase>({ step: 'idle' });
  const [error, setError] = useState<ApiError | null>(null);
  const mounted = useRef(true);
  useEffect(
    () => () => {
      mounted.current = false;
    },
    [],
  );

  const chosenModel = active.find((m) => m.id === modelId) ?? active[0];
  const features = chosenModel?.inputs[0]?.shape[1];

  const chooseFile = (chosen: File | null) => {
    setFile(chosen);
    if (chosen?.name.toLowerCase().endsWith('.jsonl')) setFormat('jsonl');
    else if (chosen?.name.toLowerCase().endsWith('.csv')) setFormat('csv');
  };

  const follow = async (id: string) => {
    while (mounted.current) {
      const batch = await api.batch(id);
      if (!mounted.current) return;
      if (finished(batch.status)) {
        setPhase({ step: 'done', batch });
        batches.reload();
        // Rows were charged as they succeeded: show the new balance.
        void loadMe().catch(() => {});
        return;
      }
      setPhase({ step: 'processing', batch });
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  };

  const submit = async (event: Event) => {
    event.preventDefault();
    setError(null);
    const problems = [
      ...(chosenModel ? [] : [{ path: '/modelId', message: 'Choose a model.' }]),
      ...(file ? [] : [{ path: '/file', message: 'Choose a CSV or JSONL file.' }]),
    ];
    if (problems.length || !chosenModel || !file) {
      setError(invalidInput(problems));
      return;
    }
    try {
      setPhase({ step: 'uploading', fraction: 0 });
      const created = await api.createBatch({
        modelId: chosenModel.id,
        format,
        ...(await declareFile(file)),
      });
      await uploadFile(created.upload, file, (fraction) => {
        if (mounted.current) setPhase({ step: 'uploading', fraction });
      });
      setPhase({ step: 'processing', batch: created.batch });
      await follow(created.id);
    } catch (failure) {
      setError(toApiError(failure));
      setPhase({ step: 'idle' });
    }
  };

  const busy = phase.step === 'uploading' || phase.step === 'processing';
  const fields = error?.fieldErrors ?? {};

  return (
    <>
      <PageHeading title="Batches" />
      <section class="card" aria-labelledby="new-batch-heading">
        <h2 id="new-batch-heading">Predict a file</h2>
        <p class="muted">
          CSV: a header row, then one row of {typeof features === 'number' ? features : 'F'} numbers per line.
          JSONL: one <code>{'{"inputs": {…}}'}</code> object per line. Rows are charged as they succeed.
        </p>
        <form onSubmit={submit} noValidate class="form-grid form-grid--batch">
          <SelectField
            label="Model"
            name="modelId"
            value={chosenModel?.id ?? ''}
            onValue={setModelId}
            error={fields.modelId}
          >
            {active.map((m) => (
              <option key={m.id} value={m.id}>
                {m.name} v{m.version} ({credits(m.price)} per row)
              </option>
            ))}
          </SelectField>
          <FileField
            label="File"
            name="file"
            accept=".csv,.jsonl,text/csv,application/jsonl"
            onFile={chooseFile}
            error={fields.file ?? fields.size}
            hint={file ? `${file.name}, ${bytes(file.size)}` : undefined}
          />
          <SelectField
            label="Format"
            name="format"
            value={format}
            onValue={(v) => setFormat(v as BatchFormat)}
          >
            <option value="csv">CSV</option>
            <option value="jsonl">JSON Lines</option>
          </SelectField>
          <div class="form-actions">
            <button type="submit" class="button" disabled={busy || models.loading}>
              {busy ? 'Working…' : 'Upload and run'}
            </button>
          </div>
        </form>
        <ProblemAlert error={error} fields={['modelId', 'file', 'size']} />
        <div aria-live="polite" class="result-region">
          {phase.step === 'uploading' && <ProgressBar label="Uploading the file" value={phase.fraction} />}
          {phase.step === 'processing' && (
            <ProgressBar
              label={`Batch ${phase.batch.status.replace('_', ' ')}: ${count(phase.batch.processed)} of ${
                phase.batch.rows === null ? '?' : count(phase.batch.rows)
              } rows`}
              value={phase.batch.rows ? phase.batch.processed / phase.batch.rows : null}
            />
          )}
          {phase.step === 'done' && <BatchOutcome batch={phase.batch} />}
        </div>
      </section>

      <section class="card" aria-labelledby="batches-heading">
        <h2 id="batches-heading">Your batches</h2>
        <ProblemAlert error={batches.error} />
        {batches.loading && !batches.data && <Loading />}
        {batches.data && batches.data.items.length === 0 && <p>No batches yet.</p>}
        {batches.data && batches.data.items.length > 0 && (
          <div class="table-wrap">
            <table class="stack" data-testid="batches-table">
              <caption class="visually-hidden">Your batches, newest first</caption>
              <thead>
                <tr>
                  <th scope="col">Created</th>
                  <th scope="col">Model</th>
                  <th scope="col">Status</th>
                  <th scope="col" class="num">
                    Rows
                  </th>
                  <th scope="col" class="num">
                    Failed
                  </th>
                  <th scope="col" class="num">
                    Cost
                  </th>
                  <th scope="col">Results</th>
                </tr>
              </thead>
              <tbody>
                {batches.data.items.map((b) => (
                  <tr key={b.id}>
                    <td data-label="Created">{when(b.createdAt)}</td>
                    <td data-label="Model">
                      {b.modelName} <span class="muted">v{b.modelVersion}</span>
                    </td>
                    <td data-label="Status">
                      <span class={`status status--${b.status}`}>{b.status.replace('_', ' ')}</span>
                    </td>
                    <td data-label="Rows" class="num">
                      {b.rows === null ? '—' : count(b.rows)}
                    </td>
                    <td data-label="Failed" class="num">
                      {count(b.failed)}
                    </td>
                    <td data-label="Cost" class="num">
                      {credits(b.cost)}
                    </td>
                    <td data-label="Results">
                      {b.results ? (
                        <a href={b.results.url} download>
                          Download<span class="visually-hidden"> the results of batch {b.id}</span>
                        </a>
                      ) : b.status === 'succeeded' ? (
                        <ResultsButton batchId={b.id} />
                      ) : (
                        (b.statusReason ?? '—')
                      )}
                    </td>
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

/** A list item has no results link; a fresh one (presigned, short-lived) is fetched on demand. */
function ResultsButton({ batchId }: { batchId: string }) {
  const [error, setError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);
  const download = async () => {
    setBusy(true);
    setError(null);
    try {
      const batch = await api.batch(batchId);
      if (batch.results) window.location.assign(batch.results.url);
      else setError(invalidInput([], 'This batch has no results file.'));
    } catch (failure) {
      setError(toApiError(failure));
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <button type="button" class="button button--small button--secondary" onClick={download} disabled={busy}>
        Download<span class="visually-hidden"> the results of batch {batchId}</span>
      </button>
      {error && (
        <span class="field-error" role="alert">
          {error.problem.detail}
        </span>
      )}
    </>
  );
}

function BatchOutcome({ batch }: { batch: Batch }) {
  if (batch.status === 'failed')
    return (
      <div class="alert alert--error" role="alert">
        <p class="alert-title">The batch could not be processed; nothing was charged.</p>
        {batch.statusReason && <p>{batch.statusReason}</p>}
      </div>
    );
  return (
    <Notice kind="success">
      <p class="alert-title" data-testid="batch-done">
        Done: {count(batch.succeeded)} rows succeeded, {count(batch.failed)} failed, {credits(batch.cost)}{' '}
        charged.
      </p>
      {batch.results && (
        <p>
          <a class="button" href={batch.results.url} download data-testid="batch-results">
            Download results
          </a>
        </p>
      )}
    </Notice>
  );
}
