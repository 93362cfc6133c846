/**
 * A user's way through the UI: register (with the API's field errors shown next to the fields),
 * top up, predict and see the balance drop by the price, draw a digit, stay signed in across a
 * reload, create an API key that works from outside the browser, read the history, sign out.
 */
import { describe, expect, it } from 'vitest';
import {
  creditsIn,
  expectNoHorizontalScroll,
  expectReadableButtons,
  headerBalance,
  PHONE,
  registerInUi,
  screenshot,
  uniqueEmail,
  useWebStack,
} from './support.ts';

const web = useWebStack();

describe('a user in the web UI', () => {
  it('sees the API’s validation errors next to the fields when registering', async () => {
    const page = await web.page();
    await page.goto('/');
    await page.getByRole('heading', { level: 1, name: 'Sign in' }).waitFor();
    await screenshot(page, 'sign-in');
    await page.getByRole('link', { name: 'Create an account' }).click();
    await page.getByLabel('Email').fill('not-an-email');
    await page.getByLabel('Password').fill('short');
    await page.getByRole('button', { name: 'Create account' }).click();
    const alert = page.getByRole('alert');
    await expect.poll(() => alert.textContent()).toContain('Your request is not valid');
    const email = page.getByLabel('Email');
    await expect.poll(() => email.getAttribute('aria-invalid')).toBe('true');
    const described = await email.getAttribute('aria-describedby');
    expect(await page.locator(`#${described?.split(' ').pop()}`).textContent()).toMatch(/valid email/);
    expect(await page.locator('.field-error').count()).toBe(2);
    await screenshot(page, 'register-errors');
  });

  it('tops up, predicts with iris and pays its price, and stays signed in across a reload', async () => {
    const page = await web.page();
    await registerInUi(page, uniqueEmail('flow'));

    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Account' }).click();
    await page.getByRole('heading', { level: 1, name: 'Account' }).waitFor();
    const before = await headerBalance(page);
    await page.getByLabel('Amount (credits)').fill('50');
    await page.getByRole('button', { name: 'Add credits' }).click();
    await expect.poll(() => page.getByText(/Added 50 credits/).count()).toBe(1);
    expect(await headerBalance(page)).toBe(before + 50);
    await expect.poll(() => page.getByRole('cell', { name: 'Top-up' }).count()).toBeGreaterThan(0);
    await screenshot(page, 'account');

    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Models' }).click();
    await page.getByRole('link', { name: /^Try iris version/ }).click();
    await page.getByRole('heading', { level: 1, name: /^iris v\d+/ }).waitFor();
    const price = creditsIn(await page.getByRole('button', { name: /^Predict/ }).textContent());
    const balance = await headerBalance(page);
    for (const [i, value] of ['5.1', '3.5', '1.4', '0.2'].entries())
      await page.getByLabel(`Feature ${i}`).fill(value);
    await page.getByRole('button', { name: /^Predict/ }).click();
    const result = page.getByTestId('prediction-result');
    await result.waitFor();
    expect(await page.getByTestId('output-label').textContent()).toBe('0');
    expect(creditsIn(await page.getByTestId('prediction-cost').textContent())).toBe(price);
    expect(creditsIn(await page.getByTestId('prediction-balance').textContent())).toBe(balance - price);
    expect(await headerBalance(page)).toBe(balance - price);
    await expectReadableButtons(page);
    await screenshot(page, 'model-iris-prediction');

    // A reload keeps the session (the refresh token is kept and rotated).
    const refreshBefore = await page.evaluate("localStorage.getItem('credit-predictions.refresh-token')");
    await page.reload();
    await page.getByRole('heading', { level: 1, name: /^iris v\d+/ }).waitFor();
    expect(await headerBalance(page)).toBe(balance - price);
    const refreshAfter = await page.evaluate("localStorage.getItem('credit-predictions.refresh-token')");
    expect(refreshAfter).toBeTruthy();
    expect(refreshAfter).not.toBe(refreshBefore);

    // A missing feature is caught next to its field before anything is sent.
    for (const [i, value] of ['5.1', '3.5', '', '0.2'].entries())
      await page.getByLabel(`Feature ${i}`).fill(value);
    await page.getByRole('button', { name: /^Predict/ }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('1 of 4 features need a number');
    expect(await page.getByRole('alert').textContent()).not.toContain('/features/');
    expect(await page.getByLabel('Feature 2').getAttribute('aria-invalid')).toBe('true');

    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'History' }).click();
    await page.getByRole('heading', { level: 1, name: 'History' }).waitFor();
    const rows = page.getByTestId('predictions-table').locator('tbody tr');
    await expect.poll(() => rows.count()).toBe(1);
    expect(await rows.first().textContent()).toContain('iris');
    await page.getByLabel('Model', { exact: true }).selectOption('digits');
    await expect.poll(() => page.getByText('No predictions with digits yet.').count()).toBe(1);
    await page.getByLabel('Model', { exact: true }).selectOption('iris');
    await expect.poll(() => rows.count()).toBe(1);
    await screenshot(page, 'history');

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { level: 1, name: 'Sign in' }).waitFor();
    expect(await page.evaluate("localStorage.getItem('credit-predictions.refresh-token')")).toBeNull();
    await page.goto('/account');
    await page.getByRole('heading', { level: 1, name: 'Sign in' }).waitFor();
    expect(new URL(page.url()).search).toBe('?next=%2Faccount');
  });

  it('predicts a digit drawn on the 8×8 canvas', async () => {
    const page = await web.page();
    await registerInUi(page, uniqueEmail('digits'));
    await page.getByRole('link', { name: /^Try digits/ }).click();
    await page.getByRole('heading', { level: 1, name: /^digits v\d+/ }).waitFor();
    const canvas = page.getByTestId('digits-canvas');
    const box = await canvas.boundingBox();
    if (!box) throw new Error('no canvas');
    // A "1": a vertical stroke down the middle column.
    const x = box.x + box.width * (4.5 / 8);
    await page.mouse.move(x, box.y + box.height * (0.5 / 8));
    await page.mouse.down();
    for (let row = 1; row <= 7; row++)
      await page.mouse.move(x, box.y + box.height * ((row + 0.5) / 8), { steps: 3 });
    await page.mouse.up();
    await page.getByText('Show the 64 values').click();
    const values = (await page.getByTestId('digits-values').textContent())
      ?.split(/[,\s]+/)
      .filter(Boolean)
      .map(Number);
    expect(values).toHaveLength(64);
    expect(values?.filter((v) => v === 16)).toHaveLength(8);

    // The keyboard draws too: focus the pad, move right and toggle a cell.
    await canvas.focus();
    await page.keyboard.press('ArrowRight');
    await page.keyboard.press('Space');
    await expect
      .poll(async () => (await page.getByTestId('digits-values').textContent())?.split(/[,\s]+/)[1])
      .toBe('16');
    await page.keyboard.press('Space');

    await page.getByRole('button', { name: /^Predict/ }).click();
    await page.getByTestId('prediction-result').waitFor();
    expect(Number(await page.getByTestId('output-label').textContent())).toBeGreaterThanOrEqual(0);
    await screenshot(page, 'model-digits-canvas');

    await page.getByRole('button', { name: 'Load a sample digit' }).click();
    await page.getByRole('button', { name: /^Predict/ }).click();
    await expect.poll(() => page.getByTestId('output-label').textContent()).toBe('0');
  });

  it('creates an API key whose secret works from outside the browser, then revokes it', async () => {
    const page = await web.page();
    const email = uniqueEmail('keys');
    await registerInUi(page, email);
    await page.goto('/account');
    await page.getByLabel('Key name').fill('nightly job');
    await page.getByRole('button', { name: 'Create key' }).click();
    const secret = (await page.getByTestId('api-key-secret').textContent()) ?? '';
    expect(secret.length).toBeGreaterThan(20);
    await expectReadableButtons(page);
    await screenshot(page, 'account-api-key');

    const me = await fetch(`${web.url}/v1/users/me`, { headers: { authorization: `Bearer ${secret}` } });
    expect(me.status).toBe(200);
    expect(((await me.json()) as { email: string }).email).toBe(email);

    await page.getByRole('button', { name: 'I have saved it' }).click();
    expect(await page.getByTestId('api-key-secret').count()).toBe(0);
    await page.getByRole('button', { name: 'Revoke nightly job' }).click();
    await page.getByRole('button', { name: 'Revoke “nightly job” now' }).click();
    await expect.poll(() => page.getByText('You have no API keys.').count()).toBe(1);
    const revoked = await fetch(`${web.url}/v1/users/me`, { headers: { authorization: `Bearer ${secret}` } });
    expect(revoked.status).toBe(401);
  });

  it('fits a phone screen without horizontal scrolling', async () => {
    const page = await web.page(PHONE);
    await page.goto('/sign-in');
    await page.getByRole('heading', { level: 1, name: 'Sign in' }).waitFor();
    await expectNoHorizontalScroll(page);
    await registerInUi(page, uniqueEmail('phone'));
    await expectNoHorizontalScroll(page);
    await screenshot(page, 'phone-models');
    await page.getByRole('link', { name: /^Try iris version/ }).click();
    for (const [i, value] of ['5.1', '3.5', '1.4', '0.2'].entries())
      await page.getByLabel(`Feature ${i}`).fill(value);
    await page.getByRole('button', { name: /^Predict/ }).click();
    await page.getByTestId('prediction-result').waitFor();
    await expectNoHorizontalScroll(page);
    await screenshot(page, 'phone-prediction');
    for (const [path, heading, name] of [
      ['/account', 'Account', 'phone-account'],
      ['/history', 'History', 'phone-history'],
      ['/batches', 'Batches', 'phone-batches'],
      ['/usage', 'Usage', 'phone-usage'],
    ] as const) {
      await page.goto(path);
      await page.getByRole('heading', { level: 1, name: heading }).waitFor();
      await page.waitForLoadState('networkidle');
      await expectNoHorizontalScroll(page);
      await screenshot(page, name);
    }
    await page.goto('/models');
    await page.getByRole('link', { name: /^Try breast-cancer/ }).click();
    await page.getByLabel('Feature 29').waitFor();
    await expectNoHorizontalScroll(page);
    await screenshot(page, 'phone-model-form');
    await page.goto('/models');
    await page.getByRole('link', { name: /^Try digits/ }).click();
    await page.getByTestId('digits-canvas').waitFor();
    await expectNoHorizontalScroll(page);
    await screenshot(page, 'phone-digits');
  });

  it('is usable with the keyboard: a skip link, then the navigation, with a visible focus ring', async () => {
    const page = await web.page();
    await registerInUi(page, uniqueEmail('keyboard'));
    await page.reload();
    await page.getByRole('heading', { level: 1, name: 'Models' }).waitFor();
    await page.keyboard.press('Tab');
    const skip = page.getByRole('link', { name: 'Skip to content' });
    expect(await skip.evaluate((element) => element === element.ownerDocument.activeElement)).toBe(true);
    await page.keyboard.press('Tab');
    await page.keyboard.press('Tab');
    const focused = page.locator(':focus');
    expect(await focused.textContent()).toBe('Models');
    const outline = await page.evaluate('getComputedStyle(document.activeElement).outlineStyle');
    expect(outline).toBe('solid');
    await page.keyboard.press('Tab');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 1, name: 'History' }).waitFor();
    // The new page's heading takes the focus, so a screen reader announces it.
    await expect.poll(() => page.evaluate('document.activeElement?.tagName')).toBe('H1');
  });
});
