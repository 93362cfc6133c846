/**
 * A service with self-service top-ups turned off and no signup bonus, as production is by default:
 * a prediction the balance does not cover is explained (402), and the top-up form says it is off (403).
 */
import { describe, expect, it } from 'vitest';
import { registerInUi, screenshot, uniqueEmail, useWebStack } from './support.ts';

const web = useWebStack({ environment: { SELF_SERVICE_TOP_UPS: 'false', SIGNUP_BONUS: '0' } });

describe('a user without credits', () => {
  it('is told how to get credits when a prediction costs more than the balance', async () => {
    const page = await web.page();
    await registerInUi(page, uniqueEmail('broke'));
    await page.getByRole('link', { name: /^Try iris version/ }).click();
    for (const [i, value] of ['5.1', '3.5', '1.4', '0.2'].entries())
      await page.getByLabel(`Feature ${i}`).fill(value);
    await page.getByRole('button', { name: /^Predict/ }).click();
    const alert = page.getByRole('alert');
    await alert.waitFor();
    expect(await alert.textContent()).toMatch(/Add credits on your account page/);
    expect(await page.getByTestId('prediction-result').count()).toBe(0);
    await screenshot(page, 'model-insufficient-credits');

    await alert.getByRole('link', { name: 'account page' }).click();
    await page.getByRole('heading', { level: 1, name: 'Account' }).waitFor();
    await page.getByRole('button', { name: 'Add credits' }).click();
    await expect
      .poll(() => page.getByText('Self-service top-ups are turned off on this service.').count())
      .toBe(1);
    expect(await page.getByRole('button', { name: 'Add credits' }).count()).toBe(0);
    await screenshot(page, 'account-top-ups-off');
  });
});
