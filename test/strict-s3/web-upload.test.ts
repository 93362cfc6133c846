/**
 * The web UI's upload against a strict S3 (SeaweedFS): the page declares the file's size and
 * SHA-256, PUTs it from the browser with the headers the API handed back, and SeaweedFS, which
 * checks the signature, the signed length and the checksum, accepts it.
 */
import { PutBucketCorsCommand } from '@aws-sdk/client-s3';
import { beforeAll, describe, expect, it } from 'vitest';
import { registerInUi, uniqueEmail, useWebStack } from '../browser/support.ts';
import { strictS3, strictS3Environment, useStrictS3 } from '../support/strict-s3.ts';

const web = useWebStack({
  endpoints: { s3: strictS3().endpoint },
  bucketNotifications: false,
  environment: strictS3Environment(),
});
const seaweed = useStrictS3(() => web.stack);

beforeAll(async () => {
  // What the deployed stack's bucket CORS rule allows: PUTs from the UI's origin.
  await seaweed.client().send(
    new PutBucketCorsCommand({
      Bucket: web.stack.resources.batchBucket,
      CORSConfiguration: {
        CORSRules: [
          {
            AllowedOrigins: [new URL(web.url).origin],
            AllowedMethods: ['PUT'],
            AllowedHeaders: ['*'],
            MaxAgeSeconds: 600,
          },
        ],
      },
    }),
  );
});

describe('the web UI on a strict S3', () => {
  it('uploads a CSV file that SeaweedFS accepts as signed, and the batch runs', async () => {
    const page = await web.page();
    await registerInUi(page, uniqueEmail('strict-web'));
    await page.goto('/batches');
    await page.getByRole('heading', { level: 1, name: 'Batches' }).waitFor();
    const iris = page.getByLabel('Model', { exact: true }).locator('option', { hasText: /^iris v\d+/ });
    await page.getByLabel('Model', { exact: true }).selectOption((await iris.getAttribute('value')) ?? '');
    const csv = 'sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,0.2\n6.2,2.9,4.3,1.3\n';
    await page
      .getByLabel('File', { exact: true })
      .setInputFiles({ name: 'flowers.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
    const created = page.waitForResponse(
      (response) => response.url().endsWith('/v1/batches') && response.request().method() === 'POST',
    );
    await page.getByRole('button', { name: 'Upload and run' }).click();
    const request = JSON.parse((await created).request().postData() ?? '{}') as Record<string, unknown>;
    expect(request).toMatchObject({ size: Buffer.byteLength(csv), checksumSha256: expect.any(String) });

    const bucket = web.stack.resources.batchBucket;
    let keys: string[] = [];
    await expect
      .poll(async () => {
        keys = await seaweed.keys(bucket, 'inbox/');
        return keys.length;
      })
      .toBe(1);
    await seaweed.notifyCreated(web.stack.resources.batchQueueUrl, bucket, keys[0] ?? '');
    const done = page.getByTestId('batch-done');
    await done.waitFor({ timeout: 60_000 });
    expect(await done.textContent()).toMatch(/2 rows succeeded, 0 failed/);
  });
});
