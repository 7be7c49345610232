// Helpers for the browser tests: a real dynkeyd on a free loopback port,
// Debian's Chromium driven by playwright-core, every request the page
// makes recorded, every console error and uncaught exception collected.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const FIXTURES = path.join(ROOT, 'fixtures');
export const DYNKEYD = process.env.DYNKEYD || path.join(ROOT, 'target/debug/dynkeyd');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

/** A dynkeyd child on 127.0.0.1:0; `addr` is what it printed. */
export async function startDynkeyd(args = [], env = {}) {
  assert.ok(existsSync(DYNKEYD), `${DYNKEYD} is missing: cargo build -p dynkey-server --bin dynkeyd`);
  const clean = { ...process.env };
  for (const v of ['DYNKEY_QUERY', 'DYNKEY_TOKEN', 'DYNKEY_SITES', 'DYNKEY_RENDEZVOUS', 'DYNKEY_QUEUE']) delete clean[v];
  const child = spawn(DYNKEYD, [...args, '--listen', '127.0.0.1:0'], {
    env: { ...clean, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  const addr = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`dynkeyd did not listen within 30 s:\n${log}`)), 30_000);
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk) => {
      log += chunk;
      // The whole address: a chunk may end in the middle of the line.
      const m = /listening on http:\/\/(\S+)\s/.exec(log);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`dynkeyd exited (${code}) before listening:\n${log}`));
    });
  });
  const base = `http://${addr}`;
  return {
    addr,
    base,
    log: () => log,
    /** A request from the test itself (no Origin header: like curl). */
    async http(method, route, body, headers = {}) {
      const res = await fetch(base + route, { method, body, headers });
      const text = await res.text();
      let json = null;
      try {
        json = JSON.parse(text);
      } catch {
        // text reply
      }
      return { status: res.status, text, json };
    },
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await once(child, 'exit');
      clearTimeout(killer);
    },
  };
}

/** A token file with `content`; returns its path. */
export function tokenFile(content) {
  const dir = mkdtempSync(path.join(tmpdir(), 'dynkey-ui-'));
  const file = path.join(dir, 'token');
  writeFileSync(file, content, { mode: 0o600 });
  return file;
}

/** Debian's Chromium, headless, no network of its own. */
export function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--headless',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--no-first-run',
    ],
  });
}

// The browser's own line for a 4xx reply (expected for 400/401 answers),
// not something the page's scripts threw.
const LOAD_FAILED = /^Failed to load resource: the server responded with a status of 4\d\d/;

/**
 * A new page (own context: fresh session storage) at `server`'s /ui/ that
 * records every request and every problem. `done()` asserts that the page
 * asked nothing of any other origin and that its scripts threw nothing
 * and logged no error, then closes it.
 */
export async function openPage(browser, server, { viewport = { width: 1280, height: 900 }, path: route = '/ui/' } = {}) {
  const context = await browser.newContext({ viewport, serviceWorkers: 'block' });
  const page = await context.newPage();
  const requests = [];
  const problems = [];
  page.on('request', (r) => requests.push({ method: r.method(), url: r.url() }));
  page.on('pageerror', (e) => problems.push(`uncaught: ${e.stack || e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !LOAD_FAILED.test(m.text())) problems.push(`console.error: ${m.text()}`);
    if (m.type() === 'warning' && /Content.Security.Policy/i.test(m.text())) problems.push(`csp: ${m.text()}`);
  });
  page.on('requestfailed', (r) => {
    // Requests cut short by closing the page are not the page's fault.
    if (!page.isClosed() && !/ERR_ABORTED/.test(r.failure()?.errorText || '')) {
      problems.push(`request failed: ${r.method()} ${r.url()} ${r.failure()?.errorText}`);
    }
  });
  await page.goto(server.base + route);
  return {
    page,
    requests,
    problems,
    async done() {
      const foreign = requests.filter((r) => new URL(r.url).origin !== server.base);
      await context.close();
      assert.deepEqual(foreign, [], 'the page asked another origin');
      assert.ok(requests.length > 0, 'no request recorded');
      assert.deepEqual(problems, [], 'the page reported errors');
    },
  };
}

/** Fails with a clear message when this dynkeyd lacks a route the test
 * needs (routes of the durable-state issue, not yet on every branch). */
export async function needRoute(server, route, from = 'issue 13 / API-STATE.md') {
  const r = await server.http('GET', route);
  assert.notEqual(r.status, 404, `dynkeyd has no GET ${route} yet (${from}); this test waits for it`);
}

/** The flags of the listing's rows as `file:line -> flags`. */
export async function flags(server) {
  const r = await server.http('GET', '/control?format=json');
  assert.equal(r.status, 200);
  return Object.fromEntries(r.json.sites.map((s) => [`${s.file}:${s.line}`, s.flags]));
}

/** Polls `f` until it returns a truthy value (at most `ms`). */
export async function until(f, what, ms = 10_000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Waits until `locator`'s text (trimmed) is `want` (a string: exactly;
 * a RegExp: matches). */
export async function expectText(locator, want, ms = 10_000) {
  let last = '';
  const ok = (t) => (want instanceof RegExp ? want.test(t) : t === want);
  const end = Date.now() + ms;
  for (;;) {
    last = ((await locator.count()) ? await locator.first().innerText() : '').trim();
    if (ok(last)) return last;
    if (Date.now() > end) assert.fail(`expected ${want} in ${locator}, found ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
