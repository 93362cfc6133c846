/** The caller's usage: credits and predictions per day and per model, over a date range. */
import { useState } from 'preact/hooks';
import { api, invalidInput, type Model, type UsageItem } from '../api.ts';
import { ChartView, palette } from '../components/chart.tsx';
import { Loading, Notice, PageHeading, ProblemAlert, TextField, useAsync } from '../components/ui.tsx';
import { count, credits, isoDate } from '../format.ts';

const MAX_DAYS = 366;
const DAY_MS = 86_400_000;

/** Every date from `from` to `to` inclusive (UTC), so that days without use show as zero. */
export function daysBetween(from: string, to: string): string[] {
  const start = Date.parse(`${from}T00:00:00Z`);
  const end = Date.parse(`${to}T00:00:00Z`);
  if (Number.isNaN(start) || Number.isNaN(end) || end < start) return [];
  const days: string[] = [];
  for (let t = start; t <= end && days.length < MAX_DAYS; t += DAY_MS)
    days.push(new Date(t).toISOString().slice(0, 10));
  return days;
}

/** Items per day on a continuous axis; periods that are not dates in the range keep the API's order. */
export function perDay(items: UsageItem[], from: string, to: string) {
  const days = daysBetween(from, to);
  const day = (item: UsageItem) => String(item.period ?? '').slice(0, 10);
  const dated = days.length > 0 && items.every((item) => days.includes(day(item)));
  const labels = dated ? days : items.map((item) => String(item.period ?? '?'));
  const byLabel = new Map(items.map((item) => [dated ? day(item) : String(item.period ?? '?'), item]));
  return {
    labels,
    predictions: labels.map((label) => byLabel.get(label)?.predictions ?? 0),
    failed: labels.map((label) => byLabel.get(label)?.failed ?? 0),
    credits: labels.map((label) => byLabel.get(label)?.credits ?? 0),
  };
}

export function modelLabel(id: string | undefined, models: Model[], name?: string): string {
  if (name) return name;
  if (!id) return 'unknown model';
  const model = models.find((m) => m.id === id);
  return model ? `${model.name} v${model.version}` : id;
}

export function UsagePage() {
  const [from, setFrom] = useState(isoDate(29));
  const [to, setTo] = useState(isoDate(0));
  const [range, setRange] = useState({ from, to });
  const [rangeError, setRangeError] = useState<ReturnType<typeof invalidInput> | null>(null);

  const report = useAsync(async () => {
    const [byDay, byModel, models] = await Promise.all([
      api.usage({ ...range, groupBy: 'day' }),
      api.usage({ ...range, groupBy: 'model' }),
      api.allModels().catch(() => [] as Model[]),
    ]);
    return { byDay, byModel, models };
  }, [range.from, range.to]);

  const apply = (event: Event) => {
    event.preventDefault();
    if (!from || !to || from > to) {
      setRangeError(
        invalidInput([{ path: '/to', message: 'The end date must be on or after the start date.' }]),
      );
      return;
    }
    setRangeError(null);
    setRange({ from, to });
  };

  const notAvailable = report.error?.status === 404;
  const data = report.data;
  const days = data ? perDay(data.byDay.items, range.from, range.to) : null;
  const modelLabels = data ? data.byModel.items.map((item) => modelLabel(item.modelId, data.models)) : [];

  return (
    <>
      <PageHeading title="Usage" />
      <form class="toolbar" onSubmit={apply} noValidate>
        <TextField label="From" type="date" name="from" value={from} onValue={setFrom} max={to} />
        <TextField
          label="To"
          type="date"
          name="to"
          value={to}
          onValue={setTo}
          min={from}
          error={rangeError?.fieldErrors.to}
        />
        <button type="submit" class="button">
          Show
        </button>
      </form>
      {notAvailable ? (
        <Notice kind="info">
          <p class="alert-title">Usage reports are not available yet.</p>
          <p>This service does not offer usage reports yet; your predictions are listed under History.</p>
        </Notice>
      ) : (
        <ProblemAlert error={report.error} />
      )}
      {report.loading && <Loading />}
      {data && days && (
        <>
          <div class="stats">
            <Stat label="Predicted rows" value={count(data.byDay.totals.predictions)} />
            <Stat label="Failed rows" value={count(data.byDay.totals.failed)} />
            <Stat label="Credits spent" value={credits(data.byDay.totals.credits)} />
          </div>
          <div class="grid grid--two">
            <section class="card">
              <ChartView
                title="Credits spent per day"
                categoryHeading="Day"
                labels={days.labels}
                series={[{ label: 'Credits', data: days.credits, color: palette[0] ?? '#1d4ed8' }]}
              />
            </section>
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
                title="Credits spent per model"
                categoryHeading="Model"
                horizontal
                labels={modelLabels}
                series={[
                  {
                    label: 'Credits',
                    data: data.byModel.items.map((i) => i.credits),
                    color: palette[0] ?? '#1d4ed8',
                  },
                ]}
              />
            </section>
            <section class="card">
              <ChartView
                title="Predictions per model"
                categoryHeading="Model"
                horizontal
                stacked
                labels={modelLabels}
                series={[
                  {
                    label: 'Succeeded',
                    data: data.byModel.items.map((i) => i.predictions),
                    color: palette[2] ?? '#047857',
                  },
                  {
                    label: 'Failed',
                    data: data.byModel.items.map((i) => i.failed),
                    color: palette[4] ?? '#b91c1c',
                  },
                ]}
              />
            </section>
          </div>
        </>
      )}
    </>
  );
}

export function Stat({ label, value }: { label: string; value: string }) {
  return (
    <div class="stat">
      <p class="stat-label">{label}</p>
      <p class="stat-value">{value}</p>
    </div>
  );
}
