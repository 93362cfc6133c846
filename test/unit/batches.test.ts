/** The rules of a batch's checkpoint, called directly. */
import { describe, expect, it } from 'vitest';
import { type BatchCheckpoint, emptyCheckpoint, settleChunk } from '../../shared/domain/batches.ts';

describe('settleChunk: where a batch is once a chunk is settled', () => {
  const after2: BatchCheckpoint = {
    ...emptyCheckpoint(),
    rowsDone: 10,
    nextChunk: 2,
    segments: 1,
    succeeded: 9,
    failed: 1,
    cost: 18,
  };

  it('counts the paid rows as succeeded and every other row of the chunk as failed', () => {
    // 5 rows: 4 predicted (one invalid), all 4 paid at price 2.
    expect(settleChunk(after2, { index: 2, rows: 5, wanted: 4, paid: 4 }, 2)).toEqual({
      ...after2,
      rowsDone: 15,
      nextChunk: 3,
      succeeded: 13,
      failed: 2,
      cost: 26,
      creditsExhausted: false,
    });
  });

  it('marks the credits exhausted when fewer rows were paid than predicted', () => {
    const settled = settleChunk(after2, { index: 2, rows: 5, wanted: 5, paid: 3 }, 2);
    expect(settled).toMatchObject({ succeeded: 12, failed: 3, cost: 24, creditsExhausted: true });
    // Once exhausted, it stays so, even for a chunk whose rows all failed before any charge.
    expect(settleChunk(settled, { index: 3, rows: 5, wanted: 0, paid: 0 }, 2)).toMatchObject({
      rowsDone: 20,
      nextChunk: 4,
      failed: 8,
      creditsExhausted: true,
    });
  });

  it('leaves the segments alone (they move when a results segment is written)', () => {
    expect(settleChunk(after2, { index: 2, rows: 1, wanted: 1, paid: 1 }, 0)).toMatchObject({
      segments: 1,
      cost: 18,
    });
  });
});
