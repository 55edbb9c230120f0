import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { chromium } from 'playwright-core';
import { startTestPlatform } from '../support/platform.ts';

// /docs in a real browser: Debian's chromium (installed by .ci/run), driven by playwright-core.

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

const browserTest = existsSync(CHROMIUM) ? test : test.skip;
if (!existsSync(CHROMIUM)) {
  console.warn(`docs.chromium.test.ts: SKIPPED, ${CHROMIUM} is not installed (apt-get install -y chromium)`);
}

browserTest('/docs renders the operations in Chromium, logs in, and fetches nothing off the host', async (t) => {
  const platform = await startTestPlatform();
  const screenshots = await mkdtemp(join(tmpdir(), 'strata-docs-'));
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
  t.teardown(async () => {
    await browser.close();
    await platform.stop();
    await rm(screenshots, { recursive: true, force: true });
  });
  const origin = new URL(platform.platform.url).origin;
  const context = await browser.newContext({ viewport: { width: 1280, height: 2000 } });
  const offHost: string[] = [];
  await context.route('**/*', async (route) => {
    const url = route.request().url();
    if (url.startsWith(`${origin}/`) || url.startsWith('data:') || url.startsWith('blob:')) return route.continue();
    offHost.push(url);
    return route.abort();
  });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console: ${message.text()}`);
  });

  const response = await page.goto(`${platform.platform.url}/docs`, { waitUntil: 'load' });
  t.is(response?.status(), 200);
  await page.getByText('Create functions', { exact: true }).first().waitFor({ state: 'visible', timeout: 60_000 });
  await page.getByText('Get function metrics', { exact: true }).first().waitFor({ state: 'visible' });
  t.is((await page.locator('.opblock').count()) >= 30, true, 'every operation is listed');

  // Log in through the login operation: the page is then authorized with the token it returned.
  const login = page.locator('#operations-Authentication-logIn');
  await login.locator('.opblock-summary').click();
  await login
    .locator('textarea.body-param__text')
    .fill(JSON.stringify({ username: 'admin@example.com', password: 'Admin123!' }));
  await login.getByRole('button', { name: 'Execute' }).click();
  await login.locator('.live-responses-table .response-col_status', { hasText: '200' }).first().waitFor();
  await page.locator('.auth-wrapper .authorize.locked').waitFor({ timeout: 10_000 });

  const screenshot = join(screenshots, 'docs.png');
  await page.screenshot({ path: screenshot, fullPage: false });
  const png = await readFile(screenshot);
  t.true(png.subarray(0, 8).equals(PNG_SIGNATURE), 'a PNG');
  t.true(png.length > 20_000, `a non-trivial screenshot (${png.length} bytes)`);

  t.deepEqual(offHost, [], 'requests that left the host');
  t.deepEqual(problems, [], 'errors in the page');
});
