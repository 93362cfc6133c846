import { afterEach, describe, expect, it, vi } from 'vitest';
import { signUp } from '../support/api.ts';
import { useLocalStack } from '../support/local-stack.ts';

const requestLines: string[] = [];
// Metrics on for this file (the suite turns them off elsewhere to keep test output short).
const local = useLocalStack({
  environment: { POWERTOOLS_METRICS_DISABLED: 'false' },
  onRequest: (line) => requestLines.push(line),
});

afterEach(() => {
  vi.restoreAllMocks();
});

describe('what `npm run dev` shows an operator', () => {
  it('prints one line per request: method, path, status and milliseconds', async () => {
    const user = await signUp(local.url, 'observed');
    await user.api.get('/v1/account');
    await fetch(`${local.url}/v1/nothing`);
    expect(requestLines).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^POST \/v1\/users 201 \d+(\.\d+)?ms$/),
        expect.stringMatching(/^GET \/v1\/account 200 \d+(\.\d+)?ms$/),
        expect.stringMatching(/^GET \/v1\/nothing 404 \d+(\.\d+)?ms$/),
      ]),
    );
  });

  it('writes the prediction metrics to the log in CloudWatch Embedded Metric Format', async () => {
    const user = await signUp(local.url, 'metrics');
    const written: string[] = [];
    const original = process.stdout.write.bind(process.stdout);
    vi.spyOn(process.stdout, 'write').mockImplementation(((chunk: string | Uint8Array, ...rest: never[]) => {
      written.push(String(chunk));
      return original(chunk, ...rest);
    }) as typeof process.stdout.write);
    const prediction = await user.api.post('/v1/models/iris/predictions', {
      inputs: { input: [5.1, 3.5, 1.4, 0.2] },
    });
    expect(prediction.status).toBe(201);

    const emf = written
      .flatMap((text) => text.split('\n'))
      .filter((line) => line.includes('"_aws"'))
      .map(
        (line) =>
          JSON.parse(line) as {
            _aws: { CloudWatchMetrics: { Namespace: string; Metrics: { Name: string }[] }[] };
          } & Record<string, unknown>,
      );
    expect(emf).toHaveLength(1);
    const [document] = emf;
    const directive = document?._aws.CloudWatchMetrics[0];
    expect(directive?.Namespace).toBe('CreditPredictions');
    expect(directive?.Metrics.map((m) => m.Name)).toEqual(
      expect.arrayContaining(['Predictions', 'CreditsCharged', 'PredictionLatency']),
    );
    expect(document).toMatchObject({ Predictions: 1, CreditsCharged: 1, stage: 'dev' });
  });
});
