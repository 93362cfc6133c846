/** A batch through the UI: pick a model and a CSV file, watch it run, download its results. */
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { expectReadableButtons, registerInUi, screenshot, uniqueEmail, useWebStack } from './support.ts';

const web = useWebStack();

describe('batches in the web UI', () => {
  it('uploads a CSV file, follows the batch to the end and downloads the results', async () => {
    const page = await web.page();
    await registerInUi(page, uniqueEmail('batch'));
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Batches' }).click();
    await page.getByRole('heading', { level: 1, name: 'Batches' }).waitFor();
    await expect.poll(() => page.getByText('No batches yet.').count()).toBe(1);

    const iris = page.getByLabel('Model', { exact: true }).locator('option', { hasText: /^iris v\d+/ });
    await page.getByLabel('Model', { exact: true }).selectOption((await iris.getAttribute('value')) ?? '');
    const csv =
      'sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,0.2\n6.2,2.9,4.3,1.3\n7.7,3.0,6.1,2.3\n';
    await page
      .getByLabel('File', { exact: true })
      .setInputFiles({ name: 'flowers.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
    expect(await page.getByLabel('Format', { exact: true }).inputValue()).toBe('csv');
    await page.getByRole('button', { name: 'Upload and run' }).click();

    const done = page.getByTestId('batch-done');
    await done.waitFor({ timeout: 60_000 });
    expect(await done.textContent()).toMatch(/3 rows succeeded, 0 failed, 3 credits charged/);
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByTestId('batch-results').click(),
    ]);
    const results = await readFile(await download.path(), 'utf8');
    const lines = results.trim().split('\n');
    expect(lines[0]).toMatch(/^row,status,label,probabilities_0,probabilities_1,probabilities_2,error$/);
    expect(lines).toHaveLength(4);
    expect(lines.slice(1).map((line) => line.split(',').slice(0, 3).join(','))).toEqual([
      '1,ok,0',
      '2,ok,1',
      '3,ok,2',
    ]);

    const rows = page.getByTestId('batches-table').locator('tbody tr');
    await expect.poll(() => rows.count()).toBe(1);
    expect(await rows.first().textContent()).toContain('succeeded');
    await expectReadableButtons(page);
    await screenshot(page, 'batches');
  });

  it('says what is missing before anything is sent', async () => {
    const page = await web.page();
    await registerInUi(page, uniqueEmail('batch-empty'));
    await page.goto('/batches');
    await page.getByRole('button', { name: 'Upload and run' }).click();
    await expect.poll(() => page.getByText('Choose a CSV or JSONL file.').count()).toBe(1);
    expect(await page.getByLabel('File', { exact: true }).getAttribute('aria-invalid')).toBe('true');
  });
});
