/**
 * An administrator publishes a model from an ONNX file, reprices it, grants credits and retires it;
 * a user predicts with the new model in between. Also the usage and statistics pages.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../infra/paths.ts';
import {
  creditsIn,
  expectNoHorizontalScroll,
  expectReadableButtons,
  headerBalance,
  PHONE,
  registerInUi,
  screenshot,
  signInInUi,
  TEST_ADMIN,
  uniqueEmail,
  useWebStack,
} from './support.ts';

const web = useWebStack();

describe('the admin pages', () => {
  it('publish a model that a user then predicts with, reprice it, grant credits and retire it', async () => {
    const admin = await web.page();
    await signInInUi(admin, TEST_ADMIN.email, TEST_ADMIN.password);
    await admin.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Admin' }).click();
    await admin.getByRole('heading', { level: 1, name: 'Admin: Models' }).waitFor();

    const name = `iris-copy-${randomBytes(3).toString('hex')}`;
    await admin.getByLabel('Name', { exact: true }).fill(name);
    await admin.getByLabel('Price per row (credits)').fill('2');
    await admin.getByLabel('Description').fill('The iris classifier, published again from the UI.');
    await admin.getByLabel('ONNX file').setInputFiles(join(REPO_ROOT, 'models', 'iris', 'model.onnx'));
    await admin.getByRole('button', { name: 'Upload and publish' }).click();
    const published = admin.getByTestId('model-published');
    await published.waitFor({ timeout: 60_000 });
    expect(await published.textContent()).toBe(`${name} v1 is active at 2 credits per row.`);
    await admin
      .getByTestId('admin-models')
      .locator('tr', { hasText: name })
      .locator('.status--active')
      .waitFor();
    await expectReadableButtons(admin);
    await screenshot(admin, 'admin-models');

    // Reprice: 2 → 3 credits per row.
    const price = admin.getByLabel(`Price of ${name} v1`, { exact: true });
    await price.fill('3');
    await admin.getByRole('button', { name: `Save the price of ${name} v1` }).click();
    await expect
      .poll(() => admin.getByRole('button', { name: `Save the price of ${name} v1` }).isDisabled())
      .toBe(true);
    expect(await price.inputValue()).toBe('3');

    // A user predicts with it and pays the new price.
    const user = await web.page();
    await registerInUi(user, uniqueEmail('buyer'));
    await user.getByRole('link', { name: `Try ${name} version 1` }).click();
    await user.getByRole('heading', { level: 1, name: `${name} v1` }).waitFor();
    const balance = await headerBalance(user);
    for (const [i, value] of ['6.3', '3.3', '6.0', '2.5'].entries())
      await user.getByLabel(`Feature ${i}`).fill(value);
    await user.getByRole('button', { name: 'Predict (3 credits)' }).click();
    await user.getByTestId('prediction-result').waitFor();
    expect(await user.getByTestId('output-label').textContent()).toBe('2');
    expect(creditsIn(await user.getByTestId('prediction-balance').textContent())).toBe(balance - 3);

    // The admin grants the user credits, by the ID the user's account page shows.
    await user.goto('/account');
    const userId = (await user.locator('dd code').first().textContent()) ?? '';
    await admin
      .getByRole('navigation', { name: 'Admin sections' })
      .getByRole('link', { name: 'Credits' })
      .click();
    await admin.getByLabel('User ID').fill(userId);
    await admin.getByLabel('Amount (credits)').fill('25');
    await admin.getByLabel('Reason').fill('Thanks for testing');
    await admin.getByRole('button', { name: 'Grant credits' }).click();
    await expect
      .poll(() =>
        admin.getByText(`Granted 25 credits. The user's balance is now ${balance - 3 + 25} credits.`).count(),
      )
      .toBe(1);
    await screenshot(admin, 'admin-credits');
    await user.reload();
    await expect.poll(() => headerBalance(user)).toBe(balance - 3 + 25);

    // Retired, it leaves the users' list.
    await admin
      .getByRole('navigation', { name: 'Admin sections' })
      .getByRole('link', { name: 'Models' })
      .click();
    await admin.getByRole('button', { name: `Retire ${name} v1` }).click();
    await admin.getByRole('button', { name: `Reactivate ${name} v1` }).waitFor();
    await user.goto('/models');
    await user.getByRole('link', { name: /^Try iris version/ }).waitFor();
    expect(await user.getByRole('link', { name: `Try ${name} version 1` }).count()).toBe(0);
  });

  it('says why an uploaded file is not a valid model', async () => {
    const admin = await web.page();
    await signInInUi(admin, TEST_ADMIN.email, TEST_ADMIN.password);
    await admin.goto('/admin/models');
    await admin.getByLabel('Name', { exact: true }).fill(`not-a-model-${randomBytes(3).toString('hex')}`);
    await admin.getByLabel('ONNX file').setInputFiles({
      name: 'model.onnx',
      mimeType: 'application/octet-stream',
      buffer: Buffer.from('this is not an ONNX file'),
    });
    await admin.getByRole('button', { name: 'Upload and publish' }).click();
    const invalid = admin.getByTestId('model-invalid');
    await invalid.waitFor({ timeout: 60_000 });
    expect(await invalid.textContent()).toMatch(/v1 is invalid\..+/);
    await screenshot(admin, 'admin-model-invalid');
  });

  it('shows the statistics, or says they are not available yet', async () => {
    const admin = await web.page();
    await signInInUi(admin, TEST_ADMIN.email, TEST_ADMIN.password);
    await admin.goto('/admin/stats');
    await admin.getByRole('heading', { level: 1, name: 'Admin: Statistics' }).waitFor();
    await admin.waitForLoadState('networkidle');
    await expect
      .poll(
        async () =>
          (await admin.getByText('Statistics are not available yet.').count()) +
          (await admin.locator('.stat-label', { hasText: /^Users$/ }).count()),
      )
      .toBe(1);
    await screenshot(admin, 'admin-stats');
    await admin.setViewportSize(PHONE);
    await admin.waitForTimeout(500);
    await screenshot(admin, 'phone-admin-stats');
    await expectNoHorizontalScroll(admin);
    await admin.goto('/admin/models');
    await admin.getByRole('heading', { level: 1, name: 'Admin: Models' }).waitFor();
    await admin.getByTestId('admin-models').waitFor();
    await expectNoHorizontalScroll(admin);
    await screenshot(admin, 'phone-admin-models');
  });

  it('shows a user their usage as charts, or says reports are not available yet', async () => {
    const page = await web.page();
    await registerInUi(page, uniqueEmail('usage'));
    await page.getByRole('link', { name: /^Try iris version/ }).click();
    for (const [i, value] of ['5.1', '3.5', '1.4', '0.2'].entries())
      await page.getByLabel(`Feature ${i}`).fill(value);
    await page.getByRole('button', { name: /^Predict/ }).click();
    await page.getByTestId('prediction-result').waitFor();
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Usage' }).click();
    await page.getByRole('heading', { level: 1, name: 'Usage' }).waitFor();
    await expect
      .poll(
        async () =>
          (await page.getByText('Usage reports are not available yet.').count()) +
          (await page.locator('figure.chart canvas').count()),
      )
      .toBeGreaterThan(0);
    await page.waitForLoadState('networkidle');
    await screenshot(page, 'usage');
  });
});
