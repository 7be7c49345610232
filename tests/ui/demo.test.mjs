// The page against the demo (`dynkeyd` with no --sites: 8,077 sites, the
// key DEMO_VERIFY, the call DEMO_CHECKSUM, the param drm.debug): paging
// and filtering the whole listing, a key and a call, live figures, phone
// width, and the README's screenshot.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { ROOT, expectText, launch, openPage, startDynkeyd } from './lib.mjs';

const SCREENSHOT = 'docs/ui.png';

let browser;
let server;

before(async () => {
  browser = await launch();
  server = await startDynkeyd(['--workers', '1']);
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

async function open(options) {
  const ui = await openPage(browser, server, options);
  await expectText(ui.page.locator('#count'), /of 8,077 sites$/, 20_000);
  return ui;
}

test('the 8,077 demo sites are shown a page at a time and filtered by typing', async () => {
  const ui = await open();
  const { page } = ui;
  await expectText(page.locator('#count'), 'Rows 1–100 of 8,077 sites');
  assert.equal(await page.locator('#sites tbody tr').count(), 100);
  await page.getByRole('button', { name: 'Next page', exact: true }).click();
  await expectText(page.locator('#count'), 'Rows 101–200 of 8,077 sites');
  await expectText(page.locator('#page-info'), 'Page 2 of 81');
  const filter = page.getByRole('searchbox', { name: 'Filter', exact: true });
  const started = Date.now();
  await filter.pressSequentially('amdgpu');
  await expectText(page.locator('#count'), 'Rows 1–100 of 4,532 sites (filtered from 8,077)');
  console.log(`# typing "amdgpu" and drawing the filtered rows: ${Date.now() - started} ms (6 keystrokes)`);
  for (const text of await page.locator('#sites tbody tr td:nth-child(3)').allInnerTexts()) assert.equal(text, 'amdgpu');
  await filter.fill('amdgpu =p');
  await expectText(page.locator('#count'), 'No sites (filtered from 8,077)');
  await filter.fill('');
  await page.getByRole('combobox', { name: 'Rows per page', exact: true }).selectOption('500');
  await expectText(page.locator('#count'), 'Rows 1–500 of 8,077 sites');
  await ui.done();
});

test('the demo key is a switch and the demo call a combobox, named by them', async () => {
  const ui = await open();
  const { page } = ui;
  const key = page.getByRole('switch', { name: 'DEMO_VERIFY', exact: true });
  await key.click();
  await expectText(page.getByRole('status'), /^Key DEMO_VERIFY on: 1 changed, [01] rendezvous/);
  assert.equal((await server.http('GET', '/keys')).json.keys.find((k) => k.name === 'DEMO_VERIFY').enabled, true);
  await key.press('Space');
  await expectText(page.getByRole('status'), /^Key DEMO_VERIFY off/);
  assert.equal((await server.http('GET', '/keys')).json.keys.find((k) => k.name === 'DEMO_VERIFY').enabled, false);
  const call = page.getByRole('combobox', { name: 'DEMO_CHECKSUM', exact: true });
  await call.selectOption('adler32');
  await expectText(page.getByRole('status'), /^Call DEMO_CHECKSUM now goes to adler32/);
  assert.equal((await server.http('GET', '/keys')).json.calls.find((c) => c.name === 'DEMO_CHECKSUM').target, 'adler32');
  await call.selectOption('fnv32');
  await expectText(page.getByRole('status'), /^Call DEMO_CHECKSUM now goes to fnv32/);
  await ui.done();
});

test('live figures: the active rendezvous method and rates from /metrics', async () => {
  const ui = await open();
  const { page } = ui;
  const method = (await server.http('GET', '/control?format=json')).json.rendezvous_method;
  await expectText(page.locator('#method'), method);
  // The first rate needs two samples a tick apart.
  await expectText(page.locator('#commits-rate'), /^\d+(\.\d)?$/, 15_000);
  await expectText(page.locator('#rendezvous-rate'), /^\d+(\.\d)?$/);
  await ui.done();
});

test('at phone width the page fits the screen and still applies a query', async () => {
  const ui = await open({ viewport: { width: 390, height: 844 } });
  const { page } = ui;
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page is ${overflow} px wider than the phone`);
  // Rows are cards: each cell labelled, one above the other.
  const display = await page.locator('#sites tbody td').first().evaluate((td) => getComputedStyle(td).display);
  assert.equal(display, 'grid');
  await page.getByRole('textbox', { name: 'Query', exact: true }).fill('module virtio_balloon -p');
  await page.getByRole('button', { name: 'Apply', exact: true }).click();
  await expectText(page.getByRole('status'), /^Applied: /);
  await ui.done();
});

test('a screenshot of the demo page is written for the README', async () => {
  const ui = await open({ viewport: { width: 1200, height: 760 } });
  const { page } = ui;
  await page.getByRole('searchbox', { name: 'Filter', exact: true }).fill('virtio_net');
  await page.getByRole('textbox', { name: 'Query', exact: true }).fill('module virtio_net +p');
  if ((await server.http('GET', '/info')).status === 200) {
    await page.getByRole('button', { name: 'Preview', exact: true }).click();
    await expectText(page.getByRole('status'), /would change$/);
  }
  await expectText(page.locator('#commits-rate'), /^\d/, 15_000);
  const out = path.join(ROOT, 'target/ui/demo.png');
  mkdirSync(path.dirname(out), { recursive: true });
  await page.screenshot({ path: out });
  const png = readFileSync(out);
  assert.equal(png.subarray(1, 4).toString(), 'PNG');
  assert.equal(png.readUInt32BE(16), 1200);
  assert.equal(png.readUInt32BE(20), 760);
  if (process.env.UPDATE_SCREENSHOT === '1') copyFileSync(out, path.join(ROOT, SCREENSHOT));
  // The README shows the committed one.
  assert.match(readFileSync(path.join(ROOT, 'README.md'), 'utf8'), new RegExp(`\\]\\(${SCREENSHOT.replace('.', '\\.')}\\)`));
  assert.ok(statSync(path.join(ROOT, SCREENSHOT)).size < 400_000, `${SCREENSHOT} should stay small`);
  await ui.done();
});
