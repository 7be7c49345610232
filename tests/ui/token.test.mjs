// The page against a dynkeyd that needs a token (`--token-file`): it asks
// for it, keeps it in session storage, sends it as `Authorization: Bearer`
// (never a cookie), and a wrong token shows the 401 clearly.

import { after, afterEach, before, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { FIXTURES, expectText, flags, launch, needRoute, openPage, startDynkeyd, tokenFile } from './lib.mjs';

const TOKEN = 'ui-test-token-4f2a9c';
const SITES = path.join(FIXTURES, 'kernel-like.json');

let browser;
let server;
let ui;

before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});
beforeEach(async () => {
  server = await startDynkeyd(['--sites', SITES, '--token-file', tokenFile(`${TOKEN}\n`)]);
});
afterEach(async () => {
  try {
    if (ui) await ui.done();
  } finally {
    ui = null;
    await server.stop();
  }
});

/** Every header the page sent with its mutating requests. */
function recordMutations(page) {
  const seen = [];
  page.on('request', (r) => {
    if (r.method() !== 'GET') seen.push(r.allHeaders().then((headers) => ({ url: r.url(), headers })));
  });
  return () => Promise.all(seen);
}

test('asks for the token on load; a wrong one shows the 401; the right one is kept for the tab', async () => {
  await needRoute(server, '/info');
  ui = await openPage(browser, server);
  const { page } = ui;
  const mutations = recordMutations(page);
  const field = page.getByRole('textbox', { name: 'Token', exact: true });
  await field.waitFor({ state: 'visible' });
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'token', 'the Token field has the focus');

  await field.fill('not-the-token');
  await field.press('Enter');
  const alert = page.getByRole('alert');
  await expectText(alert, /^401 Unauthorized/);
  assert.match(await alert.innerText(), /E_UNAUTHORIZED/);
  assert.match(await alert.innerText(), /needs a valid token/);
  await field.waitFor({ state: 'visible' });
  assert.equal(await page.evaluate(() => sessionStorage.getItem('dynkey.token')), null, 'a refused token is not kept');

  await field.fill(TOKEN);
  await field.press('Enter');
  await expectText(page.getByRole('status'), /^Token accepted/);
  await field.waitFor({ state: 'hidden' });
  assert.equal(await page.evaluate(() => sessionStorage.getItem('dynkey.token')), TOKEN);

  await page.getByRole('textbox', { name: 'Query', exact: true }).fill('module virtio_net +p');
  await page.getByRole('button', { name: 'Apply', exact: true }).click();
  await expectText(page.getByRole('status'), /^Applied: 3 sites matched, 3 changed/);
  assert.equal((await flags(server))['drivers/net/virtio_net.c:120'], 'p');
  const post = (await mutations()).find((r) => new URL(r.url).pathname === '/control');
  assert.equal(post.headers.authorization, `Bearer ${TOKEN}`);
  assert.equal(post.headers.cookie, undefined);
  assert.deepEqual(await page.context().cookies(), [], 'the page set a cookie');

  // A reload of the tab keeps the token (session storage) and asks nothing.
  await page.reload();
  await expectText(page.locator('#count'), /of 17 sites/);
  assert.equal(await field.isVisible(), false);
});

test('a change without a token, or with a wrong one, shows the 401 and asks for the token', async () => {
  ui = await openPage(browser, server);
  const { page } = ui;
  await expectText(page.locator('#count'), /of 17 sites/);
  const box = page.getByRole('textbox', { name: 'Query', exact: true });
  await box.fill('module virtio_net +p');
  await page.getByRole('button', { name: 'Apply', exact: true }).click();
  const alert = page.getByRole('alert');
  await expectText(alert, /^401 Unauthorized/);
  const field = page.getByRole('textbox', { name: 'Token', exact: true });
  await field.waitFor({ state: 'visible' });
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'token');
  assert.equal((await flags(server))['drivers/net/virtio_net.c:120'], '_');

  // A wrong token: refused at the latest by the next change.
  await field.fill('wrong');
  await field.press('Enter');
  await page.getByRole('button', { name: 'Apply', exact: true }).click();
  await expectText(alert, /^401 Unauthorized/);
  assert.match(await alert.innerText(), /E_UNAUTHORIZED/);
  assert.equal((await flags(server))['drivers/net/virtio_net.c:120'], '_');

  await field.fill(TOKEN);
  await field.press('Enter');
  await expectText(page.getByRole('status'), /^Token (accepted|kept)/);
  await page.getByRole('button', { name: 'Apply', exact: true }).click();
  await expectText(page.getByRole('status'), /^Applied: 3 sites matched, 3 changed/);
  assert.equal((await flags(server))['drivers/net/virtio_net.c:120'], 'p');
});
