/**
 * Removing the segments of an assembled results file: DeleteObjects answers 200 even when keys were
 * not deleted (on AWS, each key the role may not delete comes back AccessDenied in `Errors`), so
 * the adapter reads `Errors`, logs and counts what stayed, and leaves it to the lifecycle rule.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { S3BatchFiles } from '../../shared/adapters/batch-files.ts';
import type { S3Files } from '../../shared/adapters/s3-files.ts';
import { logger } from '../../shared/observability/logger.ts';

function filesAnswering(answer: unknown) {
  const send = vi.fn(async (_command: unknown) => answer);
  const files = new S3BatchFiles({ send } as unknown as S3Client, {} as S3Files, 'batches');
  return { files, send };
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('deleting assembled segments', () => {
  it('counts and logs the keys DeleteObjects reports in Errors', async () => {
    const warn = vi.spyOn(logger, 'warn').mockImplementation(() => undefined);
    const segments = ['results/u/b.parts/000000', 'results/u/b.parts/000001'];
    const { files, send } = filesAnswering({
      Errors: segments.map((Key) => ({ Key, Code: 'AccessDenied', Message: 'Access Denied' })),
    });
    expect(await files.deleteSegments(segments)).toBe(2);
    const [command] = send.mock.calls[0] ?? [];
    expect((command as { input: { Delete: { Objects: unknown[] } } }).input.Delete.Objects).toEqual(
      segments.map((Key) => ({ Key })),
    );
    expect(warn).toHaveBeenCalledWith(
      'Batch segments not deleted',
      expect.objectContaining({
        notDeleted: 2,
        of: 2,
        errors: [
          { key: segments[0], code: 'AccessDenied', message: 'Access Denied' },
          { key: segments[1], code: 'AccessDenied', message: 'Access Denied' },
        ],
      }),
    );
  });

  it('logs nothing when every key was deleted', async () => {
    const warn = vi.spyOn(logger, 'warn').mockImplementation(() => undefined);
    const { files } = filesAnswering({});
    expect(await files.deleteSegments(['results/u/b.parts/000000'])).toBe(0);
    expect(warn).not.toHaveBeenCalled();
  });
});
