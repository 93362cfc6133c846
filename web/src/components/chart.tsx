/**
 * A Chart.js chart with an accessible name and its data as a table, for screen readers and for
 * anyone who wants the numbers. Chart.js itself is loaded on first use.
 */

import type { Chart as ChartInstance } from 'chart.js';
import { useEffect, useId, useRef, useState } from 'preact/hooks';

export interface Series {
  label: string;
  data: number[];
  color: string;
}

/** Colours that keep at least 3:1 against white (non-text contrast) and differ for colour-blind eyes. */
export const palette = ['#1d4ed8', '#c2410c', '#047857', '#7e22ce', '#b91c1c', '#0e7490', '#a16207'];

export function ChartView({
  title,
  labels,
  series,
  type = 'bar',
  stacked = false,
  horizontal = false,
  categoryHeading = 'Category',
}: {
  title: string;
  labels: string[];
  series: Series[];
  type?: 'bar' | 'line';
  stacked?: boolean;
  horizontal?: boolean;
  categoryHeading?: string;
}) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const [failed, setFailed] = useState(false);
  const captionId = useId();

  // Redrawn when the data changes, not whenever the caller re-renders with equal arrays.
  const data = JSON.stringify([labels, series, type, stacked, horizontal]);
  useEffect(() => {
    let chart: ChartInstance | undefined;
    let cancelled = false;
    import('../charts.ts').then(
      ({ Chart }) => {
        if (cancelled || !canvas.current) return;
        chart = new Chart(canvas.current, {
          type,
          data: {
            labels,
            datasets: series.map((s) => ({
              label: s.label,
              data: s.data,
              backgroundColor: s.color,
              borderColor: s.color,
              borderWidth: type === 'line' ? 2 : 0,
              pointRadius: type === 'line' ? 3 : 0,
              maxBarThickness: 36,
            })),
          },
          options: {
            responsive: true,
            maintainAspectRatio: false,
            indexAxis: horizontal ? 'y' : 'x',
            plugins: { legend: { display: series.length > 1, position: 'bottom' } },
            scales: {
              // Category labels stay horizontal; Chart.js skips some when they do not fit.
              x: horizontal
                ? { stacked, beginAtZero: true, ticks: { precision: 0 } }
                : { stacked, ticks: { maxRotation: 0, autoSkipPadding: 16 } },
              y: horizontal ? { stacked } : { stacked, beginAtZero: true, ticks: { precision: 0 } },
            },
          },
        });
      },
      () => setFailed(true),
    );
    return () => {
      cancelled = true;
      chart?.destroy();
    };
  }, [data]);

  const totals = series.map((s) => `${s.label}: ${s.data.reduce((a, b) => a + b, 0)} in total`).join('; ');
  const height = horizontal ? Math.max(160, labels.length * 36 + 60) : 260;

  return (
    <figure class="chart" aria-labelledby={captionId}>
      <figcaption id={captionId}>{title}</figcaption>
      {failed ? (
        <p class="muted">The chart could not be drawn; the numbers are in the table below.</p>
      ) : (
        <div class="chart-box" style={{ height: `${height}px` }}>
          <canvas
            ref={canvas}
            role="img"
            aria-label={`${title}. ${totals}. The data is in the table below.`}
          />
        </div>
      )}
      <details>
        <summary>Show the data</summary>
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">{categoryHeading}</th>
                {series.map((s) => (
                  <th scope="col" class="num" key={s.label}>
                    {s.label}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {labels.map((label, i) => (
                <tr key={label}>
                  <th scope="row">{label}</th>
                  {series.map((s) => (
                    <td class="num" key={s.label}>
                      {(s.data[i] ?? 0).toLocaleString('en-US')}
                    </td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </details>
    </figure>
  );
}
