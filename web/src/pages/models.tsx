/** The active models with their price and signature, and one model's page with its prediction form. */
import { api, type Model, type TensorSpec } from '../api.ts';
import { PredictForm } from '../components/predict-form.tsx';
import { Loading, PageHeading, ProblemAlert, useAsync } from '../components/ui.tsx';
import { credits, shape } from '../format.ts';
import { Link } from '../router.ts';

/** Active versions, by name, newest version first. */
export function activeModels(models: Model[]): Model[] {
  return models
    .filter((m) => m.status === 'active')
    .sort((a, b) => a.name.localeCompare(b.name) || b.version - a.version);
}

function Signature({ specs }: { specs: TensorSpec[] }) {
  return (
    <ul class="signature">
      {specs.map((spec) => (
        <li key={spec.name}>
          <code>{spec.name}</code> {spec.type} [{shape(spec.shape)}]
        </li>
      ))}
    </ul>
  );
}

export function ModelsPage() {
  const models = useAsync(() => api.allModels(), []);
  const active = models.data ? activeModels(models.data) : [];
  return (
    <>
      <PageHeading title="Models" />
      <p class="lead">Pick a model to run a prediction. You pay its price per row, only when it succeeds.</p>
      <ProblemAlert error={models.error} />
      {models.loading && !models.data && <Loading />}
      {models.data && active.length === 0 && <p>No model is available right now.</p>}
      <ul class="model-list">
        {active.map((model) => (
          <li key={model.id} class="card model-card">
            <div class="model-card-head">
              <h2>
                <Link href={`/models/${encodeURIComponent(model.id)}`}>
                  {model.name} <span class="muted">v{model.version}</span>
                </Link>
              </h2>
              <p class="price">
                <strong>{credits(model.price)}</strong> <span class="muted">per row</span>
              </p>
            </div>
            <p class="description">{model.description || 'No description.'}</p>
            <div class="signature-pair">
              <div>
                <h3>Inputs</h3>
                <Signature specs={model.inputs} />
              </div>
              <div>
                <h3>Outputs</h3>
                <Signature specs={model.outputs} />
              </div>
            </div>
            <Link
              class="button button--small"
              href={`/models/${encodeURIComponent(model.id)}`}
              aria-label={`Try ${model.name} version ${model.version}`}
            >
              Try it
            </Link>
          </li>
        ))}
      </ul>
    </>
  );
}

export function ModelPage({ modelRef }: { modelRef: string }) {
  const model = useAsync(() => api.model(modelRef), [modelRef]);
  const data = model.data;
  return (
    <>
      <p class="breadcrumb">
        <Link href="/models">← All models</Link>
      </p>
      <PageHeading title={data ? `${data.name} v${data.version}` : 'Model'} />
      {model.loading && !data && <Loading />}
      <ProblemAlert error={model.error} />
      {data && (
        <div class="grid grid--model">
          <section class="card" aria-labelledby="about-heading">
            <h2 id="about-heading">About</h2>
            <p>{data.description || 'No description.'}</p>
            <dl class="facts">
              <dt>Price</dt>
              <dd>{credits(data.price)} per row</dd>
              <dt>Inputs</dt>
              <dd>
                <Signature specs={data.inputs} />
              </dd>
              <dt>Outputs</dt>
              <dd>
                <Signature specs={data.outputs} />
              </dd>
              <dt>ID</dt>
              <dd>
                <code class="wrap-anywhere">{data.id}</code>
              </dd>
            </dl>
          </section>
          <section class="card">
            <PredictForm key={data.id} model={data} />
          </section>
        </div>
      )}
    </>
  );
}
