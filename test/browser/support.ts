/**
 * What the browser tests share: the local stack with the built web UI served (as `npm run dev` does),
 * Chromium through playwright-core, pages that fail the test on console errors (a Content-Security-
 * Policy violation shows up there), and screenshots under test-artifacts/screenshots/.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, expect, inject } from 'vitest';
import type { AwsEndpoints } from '../../infra/local/aws-endpoints.ts';
import { type LocalStack, startLocalStack } from '../../infra/local/local-stack.ts';
import { serveWebApp } from '../../infra/local/static-site.ts';
import { REPO_ROOT } from '../../infra/paths.ts';
import { WEB_DIST } from '../../infra/web-stack.ts';
import { ensureTestAdmin, TEST_ADMIN } from '../support/local-stack.ts';

export { TEST_ADMIN };

export const SCREENSHOTS = join(REPO_ROOT, 'test-artifacts', 'screenshots');
export const PHONE = { width: 375, height: 740 };
export const DESKTOP = { width: 1280, height: 860 };

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export interface WebHandle {
  readonly url: string;
  readonly stack: LocalStack;
  /** A new browser context (its own storage) with one page, closed after the file. */
  page(viewport?: { width: number; height: number }): Promise<Page>;
}

/** Starts the stack with the UI and a browser for one test file. */
export function useWebStack(
  options: {
    environment?: Record<string, string>;
    /** Services on another emulator than the run's (the strict-S3 tests put S3 on SeaweedFS). */
    endpoints?: Partial<AwsEndpoints>;
    bucketNotifications?: boolean;
  } = {},
): WebHandle {
  let stack: LocalStack | undefined;
  let browser: Browser | undefined;
  const contexts: BrowserContext[] = [];
  const problems: string[] = [];

  beforeAll(async () => {
    if (!existsSync(join(WEB_DIST, 'index.html')))
      throw new Error('web/dist is missing: run `npm run build:web` (npm run test:browser does).');
    if (!existsSync(CHROMIUM))
      throw new Error(`No Chromium at ${CHROMIUM}: apt-get install -y chromium, or set CHROMIUM_PATH.`);
    mkdirSync(SCREENSHOTS, { recursive: true });
    const endpoints = { ...inject('awsEndpoints'), ...options.endpoints };
    const [started, launched] = await Promise.all([
      startLocalStack({
        port: 0,
        endpoints,
        prefix: `w${randomBytes(4).toString('hex')}`,
        ...(options.bucketNotifications === false ? { bucketNotifications: false } : {}),
        visibilityTimeoutSeconds: 5,
        ...(options.environment ? { environment: options.environment } : {}),
        staticFiles: serveWebApp({ connectSources: () => [new URL(endpoints.s3).origin] }),
      }),
      chromium.launch({
        executablePath: CHROMIUM,
        args: [
          '--no-sandbox',
          '--disable-gpu',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
          '--no-first-run',
          '--disable-quic',
        ],
      }),
    ]);
    stack = started;
    browser = launched;
    await ensureTestAdmin();
  });

  afterEach(() => {
    // Console errors of the app (CSP violations, uncaught exceptions) fail the test that caused them.
    const seen = problems.splice(0);
    expect(seen, 'errors in the browser console').toEqual([]);
  });

  afterAll(async () => {
    for (const context of contexts) await context.close().catch(() => {});
    await browser?.close();
    await stack?.stop();
  });

  const started = () => {
    if (!stack || !browser) throw new Error('The web stack is not started (use inside tests).');
    return { stack, browser };
  };

  return {
    get url() {
      return started().stack.url;
    },
    get stack() {
      return started().stack;
    },
    async page(viewport = DESKTOP) {
      const context = await started().browser.newContext({
        viewport,
        baseURL: started().stack.url,
        acceptDownloads: true,
        reducedMotion: 'reduce',
      });
      contexts.push(context);
      const page = await context.newPage();
      page.on('console', (message) => {
        if (message.type() !== 'error') return;
        const text = message.text();
        // Answers the app expects and shows (401 on a spent session, 402, 403, 404 of a report) are
        // logged by Chromium as failed resource loads; those are not errors of the app.
        if (/Failed to load resource: the server responded with a status of 4\d\d/.test(text)) return;
        problems.push(text);
      });
      page.on('pageerror', (error) => problems.push(`uncaught: ${error.message}`));
      return page;
    },
  };
}

export async function screenshot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

/** No horizontal scrolling: the page is not wider than the viewport (once the layout has settled). */
export async function expectNoHorizontalScroll(page: Page): Promise<void> {
  const overflow = async () => {
    const widths = await page.evaluate('[document.documentElement.scrollWidth, window.innerWidth]');
    const [scrollWidth, innerWidth] = widths as [number, number];
    return scrollWidth - innerWidth;
  };
  // Names the elements that stick out, to say what to fix.
  const tooWide = `[...document.querySelectorAll('body *')]
    .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 0.5)
    .slice(-5)
    .map((e) => e.tagName.toLowerCase() + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))
    .join(', ')`;
  await expect
    .poll(overflow, { message: 'pixels wider than the viewport', timeout: 3000 })
    .toBeLessThanOrEqual(0)
    .catch(async (error: unknown) => {
      throw new Error(`${String(error)}; too wide: ${String(await page.evaluate(tooWide))}`);
    });
}

export function uniqueEmail(label: string): string {
  return `${label}-${randomBytes(5).toString('hex')}@example.com`;
}

/** Parses the number out of "1,234 credits". */
export function creditsIn(text: string | null): number {
  const match = /(-?[\d,]+)\s*credit/.exec(text ?? '');
  if (!match?.[1]) throw new Error(`No credits in "${text}"`);
  return Number(match[1].replaceAll(',', ''));
}

/** Registers through the UI and lands on the models page, signed in. */
export async function registerInUi(
  page: Page,
  email: string,
  password = 'correct-horse-battery',
): Promise<void> {
  await page.goto('/register');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.getByRole('heading', { level: 1, name: 'Models' }).waitFor();
}

export async function signInInUi(page: Page, email: string, password: string): Promise<void> {
  await page.goto('/sign-in');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { level: 1, name: 'Models' }).waitFor();
}

export async function headerBalance(page: Page): Promise<number> {
  return creditsIn(await page.getByTestId('header-balance').textContent());
}

/**
 * Every visible button's text against its own background reaches WCAG AA (4.5:1); disabled buttons
 * are exempt, as WCAG exempts inactive controls. Catches a button whose text vanishes into its fill.
 */
export async function expectReadableButtons(page: Page): Promise<void> {
  const failures = await page.evaluate(`(() => {
    const rgb = (value) => (value.match(/[\\d.]+/g) || []).map(Number);
    const luminance = ([r, g, b]) => {
      const channel = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
      return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
    };
    const contrast = (a, b) => { const [x, y] = [luminance(a), luminance(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
    return [...document.querySelectorAll('button, a.button')]
      .filter((e) => e.offsetParent !== null && !e.disabled && e.textContent.trim())
      .map((e) => {
        const style = getComputedStyle(e);
        const background = rgb(style.backgroundColor);
        if (background.length === 4 && background[3] === 0) return null;
        const ratio = contrast(rgb(style.color), background);
        return ratio < 4.5 ? e.textContent.trim() + ' ' + ratio.toFixed(2) : null;
      })
      .filter(Boolean);
  })()`);
  expect(failures, 'buttons whose text does not stand out from their background').toEqual([]);
}
