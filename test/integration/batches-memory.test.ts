/**
 * A big batch is streamed, not loaded: while the worker (running in this process, fed by the queue
 * pump) processes a 50,000-row iris CSV, the heap grows by a bounded amount, far below what holding
 * the file's rows in memory takes. This is a memory check, not a timing (the emulator sets the pace).
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { parse } from 'csv-parse/sync';
import { beforeAll, describe, expect, it } from 'vitest';
import { type SignedInUser, signIn } from '../support/api.ts';
import {
  awaitBatch,
  createBatch,
  downloadResults,
  irisRows,
  newUser,
  runBatch,
  toCsv,
  uploadFile,
} from '../support/batches.ts';
import { ensureTestAdmin, TEST_ADMIN, useLocalStack } from '../support/local-stack.ts';
import { useReconciler } from '../support/reconcile.ts';

const ROWS = 50_000;
/** Fewer, larger chunks than the default keep the emulator's share of the time down; 2,000 rows are still small. */
const CHUNK = 2000;
const MB = 1024 * 1024;
/** Peak growth of the heap as sampled every 50 ms (garbage included) while the batch runs. */
const PEAK_BOUND = 64 * MB;
/**
 * Peak growth of the live heap (sampled right after a full collection, every 100 ms) while the
 * batch runs: what the worker retains, the measure that would show a file or its results held.
 */
const LIVE_BOUND = 10 * MB;

const local = useLocalStack({ environment: { SIGNUP_BONUS: '0', BATCH_CHUNK_SIZE: String(CHUNK) } });
const ledger = useReconciler(local);

/** A full garbage collection: `global.gc` when node runs with --expose-gc, else enabled here. */
function collector(): () => void {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (exposed) return exposed;
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

/** The heap the file's rows take once parsed (measured in a scope of its own, then released). */
function parsedSize(file: string, gc: () => void): { bytes: number; rows: number } {
  gc();
  const before = process.memoryUsage().heapUsed;
  const parsed = parse(file, { from_line: 2 }) as string[][];
  gc();
  return { bytes: process.memoryUsage().heapUsed - before, rows: parsed.length };
}

let admin: SignedInUser;
beforeAll(async () => {
  await ensureTestAdmin();
  admin = await signIn(local.url, TEST_ADMIN.email, TEST_ADMIN.password);
});

describe('a 50,000-row batch', () => {
  it('is processed with the heap growing by a bounded amount, far below the file held in memory', async () => {
    const gc = collector();
    const user = await newUser(local.url, admin.api, ROWS + 100);
    // Warm up the worker first (model loaded, clients and code paths in use), so the baseline is a
    // warm container's.
    const warm = await runBatch(user.api, 'iris', 'csv', toCsv(irisRows(50, 401)));
    expect(warm.batch.status).toBe('succeeded');

    const file = toCsv(irisRows(ROWS, 402));
    const created = await createBatch(user.api, 'iris', 'csv');

    // What holding the file would take: its rows parsed, as a non-streaming worker would keep them.
    const reference = parsedSize(file, gc);
    expect(reference.rows).toBe(ROWS);
    const inMemory = reference.bytes;

    gc();
    gc();
    const baseline = process.memoryUsage().heapUsed;
    let peak = Number.NEGATIVE_INFINITY;
    let livePeak = Number.NEGATIVE_INFINITY;
    let samples = 0;
    let liveSamples = 0;
    const sampler = setInterval(() => {
      samples += 1;
      if (samples % 2 === 0) {
        gc();
        liveSamples += 1;
        livePeak = Math.max(livePeak, process.memoryUsage().heapUsed - baseline);
      }
      peak = Math.max(peak, process.memoryUsage().heapUsed - baseline);
    }, 50);
    let batch: any;
    try {
      await uploadFile(created.upload, file);
      batch = await awaitBatch(user.api, created.id, 85_000);
    } finally {
      clearInterval(sampler);
    }

    expect(batch).toMatchObject({ status: 'succeeded', rows: ROWS, succeeded: ROWS, failed: 0, cost: ROWS });
    const summary = {
      fileMB: (file.length / MB).toFixed(2),
      parsedRowsMB: (inMemory / MB).toFixed(1),
      peakGrowthMB: (peak / MB).toFixed(1),
      livePeakGrowthMB: (livePeak / MB).toFixed(1),
      samples,
      liveSamples,
    };
    console.log(`50,000-row batch heap: ${JSON.stringify(summary)}`);
    expect(samples).toBeGreaterThan(10);
    expect(liveSamples).toBeGreaterThan(1);
    // The bounds mean something: the parsed rows alone are more than the live bound.
    expect(inMemory).toBeGreaterThan(LIVE_BOUND);
    expect(peak).toBeLessThan(PEAK_BOUND);
    expect(livePeak).toBeLessThan(LIVE_BOUND);

    // And the results are all there, in order.
    const results = await downloadResults(batch);
    const lines = results.split('\n').filter((line) => line !== '');
    expect(lines).toHaveLength(ROWS + 1);
    expect(lines[1]?.startsWith('1,ok,')).toBe(true);
    expect(lines[ROWS]?.startsWith(`${ROWS},ok,`)).toBe(true);
    for (let i = 1; i <= ROWS; i++) {
      if (!lines[i]?.startsWith(`${i},ok,`)) throw new Error(`results line ${i} is ${lines[i]}`);
    }
    await ledger.expectReconciled(user.id);
  }, 120_000);
});
