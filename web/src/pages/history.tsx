/** The caller's predictions, newest first, filtered by model. */
import { useEffect, useState } from 'preact/hooks';
import { type ApiError, api, type Prediction, toApiError } from '../api.ts';
import { Loading, PageHeading, ProblemAlert, SelectField, useAsync } from '../components/ui.tsx';
import { count, credits, when } from '../format.ts';
import { navigate, useLocation } from '../router.ts';

const PAGE_SIZE = 20;

export function HistoryPage() {
  const location = useLocation();
  const modelFilter = location.query.get('model') ?? '';
  const models = useAsync(() => api.allModels(), []);
  const names = [...new Set((models.data ?? []).map((m) => m.name))].sort();
  const [items, setItems] = useState<Prediction[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<ApiError | null>(null);

  const load = async (from: string | null, replace: boolean) => {
    setLoading(true);
    setError(null);
    try {
      const page = await api.predictions({
        limit: PAGE_SIZE,
        cursor: from,
        ...(modelFilter ? { modelId: modelFilter } : {}),
      });
      setItems((previous) => (replace ? page.items : [...previous, ...page.items]));
      setCursor(page.nextCursor);
    } catch (failure) {
      setError(toApiError(failure));
    } finally {
      setLoading(false);
    }
  };

  useEffect(() => {
    setItems([]);
    void load(null, true);
  }, [modelFilter]);

  return (
    <>
      <PageHeading title="History" />
      <div class="toolbar">
        <SelectField
          label="Model"
          name="model"
          value={modelFilter}
          onValue={(value) => navigate(value ? `/history?model=${encodeURIComponent(value)}` : '/history')}
        >
          <option value="">All models</option>
          {names.map((name) => (
            <option key={name} value={name}>
              {name}
            </option>
          ))}
        </SelectField>
      </div>
      <section class="card" aria-label="Predictions">
        <ProblemAlert error={error} />
        {!loading && items.length === 0 && !error && (
          <p>No predictions{modelFilter ? ` with ${modelFilter}` : ''} yet.</p>
        )}
        {items.length > 0 && (
          <div class="table-wrap">
            <table class="stack" data-testid="predictions-table">
              <caption class="visually-hidden">Predictions, newest first</caption>
              <thead>
                <tr>
                  <th scope="col">When</th>
                  <th scope="col">Model</th>
                  <th scope="col">Status</th>
                  <th scope="col" class="num">
                    Rows
                  </th>
                  <th scope="col" class="num">
                    Cost
                  </th>
                  <th scope="col" class="num">
                    Latency
                  </th>
                  <th scope="col">Outputs</th>
                </tr>
              </thead>
              <tbody>
                {items.map((p) => (
                  <tr key={p.id}>
                    <td data-label="When">{when(p.createdAt)}</td>
                    <td data-label="Model">
                      {p.modelName} <span class="muted">v{p.modelVersion}</span>
                    </td>
                    <td data-label="Status">
                      <span class={`status status--${p.status}`}>{p.status}</span>
                      {p.refundedAt && <span class="status status--refunded">refunded</span>}
                    </td>
                    <td data-label="Rows" class="num">
                      {count(p.rows)}
                    </td>
                    <td data-label="Cost" class="num">
                      {credits(p.cost)}
                    </td>
                    <td data-label="Latency" class="num">
                      {count(p.latencyMs)} ms
                    </td>
                    <td data-label="Outputs">
                      {p.error ? (
                        <span class="negative">
                          {p.error.code}: {p.error.message}
                        </span>
                      ) : p.outputs ? (
                        <details>
                          <summary>Show</summary>
                          <pre class="values">{JSON.stringify(p.outputs)}</pre>
                        </details>
                      ) : (
                        '—'
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        {loading && <Loading />}
        {cursor && !loading && (
          <p class="pager">
            <button type="button" class="button button--secondary" onClick={() => load(cursor, false)}>
              Load older predictions
            </button>
          </p>
        )}
      </section>
    </>
  );
}
