// dashboard.test.mjs: the Stellar dashboard in a real browser (issue #7).
//
// Starts stellar_http_serve (tests/browser/serve.c) on a fresh SQLite file,
// puts real jobs through it with the HTTP API, then drives Debian's
// chromium with playwright-core:
// - the overview shows the counts the API gives;
// - a failed job is retried with a click, leaves the failed list and runs;
// - params, queue names and errors carrying <script> and <img onerror>
//   show as text, and no script runs (no dialog, no page error);
// - a screenshot of each page, at desktop and phone width, goes to
//   $STELLAR_SCREENSHOTS.
// Run by run.sh, which sets STELLAR_SERVE_BIN, STELLAR_SCREENSHOTS and
// STELLAR_CHROMIUM.
import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {spawn} from 'node:child_process';
import {mkdtempSync, mkdirSync, rmSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {chromium} from 'playwright-core';

const SERVE = process.env.STELLAR_SERVE_BIN;
const SHOTS = process.env.STELLAR_SCREENSHOTS;
const CHROMIUM = process.env.STELLAR_CHROMIUM || '/usr/bin/chromium';
assert.ok(SERVE && SHOTS, 'run me with run.sh');

const XSS_PARAMS = {html: '<script>alert(1)</script>', img: '"><img src=x onerror=alert(2)>'};
const XSS_QUEUE = '<b>parked</b>"><img src=x onerror=alert(3)>';
const XSS_QUEUED = {note: '<script>alert(4)</script>'};
const PAGES = ['overview', 'queues', 'workers', 'failed', 'delayed', 'tasks', 'locks'];

let tmp, server, base, context, page;
const dialogs = [], pageErrors = [];

function waitForLine(proc, re, ms) {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error('server did not start: ' + buf)), ms);
    proc.stdout.on('data', (d) => {
      buf += d;
      const m = buf.match(re);
      if (m) { clearTimeout(timer); resolve(m); }
    });
    proc.on('exit', (code) => reject(new Error('server exited with ' + code + ': ' + buf)));
  });
}

async function api(method, path, body) {
  const headers = {Accept: 'application/json'};
  if (method !== 'GET') headers['X-Stellar-CSRF'] = '1';
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const r = await fetch(base + 'api/' + path, {method, headers, body: body === undefined ? undefined : JSON.stringify(body)});
  const doc = await r.json();
  if (!r.ok) throw new Error(method + ' ' + path + ': ' + r.status + ' ' + JSON.stringify(doc));
  return doc;
}

async function until(what, fn, ms = 15000) {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > end) throw new Error('timed out waiting for ' + what);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function shot(name) {
  await page.screenshot({path: join(SHOTS, name + '.png'), fullPage: true});
}

async function open(hash) {
  await page.goto(base + '#' + hash);
  await page.waitForSelector('#status.live');
}

before(async () => {
  mkdirSync(SHOTS, {recursive: true});
  tmp = mkdtempSync(join(tmpdir(), 'stellar-browser-'));
  server = spawn(SERVE, ['0', 'sqlite:' + join(tmp, 'stellar.db')], {stdio: ['ignore', 'pipe', 'inherit']});
  const m = await waitForLine(server, /listening on (http:\/\/127\.0\.0\.1:\d+\/)/, 15000);
  base = m[1];
  // Whatever happens to this process, the server does not outlive it.
  process.on('exit', () => { if (server.exitCode === null) server.kill('SIGKILL'); });

  // Real jobs: three that succeed, one that fails once (flaky), one that
  // always fails with hostile params, a long one to keep a worker busy,
  // parked jobs (no processor takes that queue), and delayed ones.
  for (let i = 1; i <= 3; i++) await api('POST', 'enqueue', {task: 'echo', params: {i}});
  await api('POST', 'enqueue', {task: 'flaky', params: {order: 7}});
  await api('POST', 'enqueue', {task: 'boom', params: XSS_PARAMS});
  await api('POST', 'enqueue', {task: 'slow', params: {ms: 120000}, queue: 'critical'});
  await api('POST', 'enqueue', {task: 'echo', params: XSS_QUEUED, queue: XSS_QUEUE});
  await api('POST', 'enqueue', {task: 'locked', params: {k: 1}});
  await api('POST', 'enqueue', {task: 'echo', params: XSS_PARAMS, in: 300000});
  await api('POST', 'enqueue', {task: 'echo', params: {soon: true}, in: 90000});
  // Three echo jobs and the periodic tick's first run; two failures.
  await until('jobs to run', async () => {
    const s = await api('GET', 'stats');
    return Number(s.processed) === 4 && Number(s.failed) === 2;
  });

  const profile = join(tmp, 'profile');
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-quic', '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
    viewport: {width: 1280, height: 860},
  });
  page = context.pages()[0] || await context.newPage();
  page.on('dialog', async (d) => { dialogs.push(d.type() + ': ' + d.message()); await d.dismiss(); });
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') pageErrors.push('console: ' + m.text()); });
});

after(async () => {
  if (context) await context.close();
  if (server && server.exitCode === null) {
    const exited = new Promise((r) => server.on('exit', r));
    server.kill('SIGTERM');
    const timer = setTimeout(() => server.kill('SIGKILL'), 15000);
    await exited;
    clearTimeout(timer);
  }
  if (tmp) rmSync(tmp, {recursive: true, force: true});
});

test('the overview shows the counts of the API', async () => {
  await open('overview');
  const stats = await api('GET', 'stats');
  const fc = await api('GET', 'failed/count');
  await until('overview counts', async () =>
    (await page.textContent('#ov-processed')) === Number(stats.processed).toLocaleString('en-US') &&
    (await page.textContent('#ov-failed')) === String(stats.failed));
  assert.equal(await page.textContent('#ov-failed-now'), String(fc.count));
  assert.equal(await page.textContent('#ov-queued'), '2'); // the two parked jobs
  assert.equal(await page.textContent('#ov-delayed'), '3'); // two, and tick's next run
  assert.equal(await page.textContent('#ov-workers'), '2');
  assert.equal(await page.textContent('#nav-failed'), '2');
  // More jobs while the page is open: the counters and the chart follow
  // without a reload.
  for (let i = 0; i < 6; i++) {
    await api('POST', 'enqueue', {task: 'echo', params: {wave: i}});
    if (i % 2 === 0) await api('POST', 'enqueue', {task: 'boom', params: {wave: i}});
    await page.waitForTimeout(700);
  }
  await until('the counters to move', async () =>
    (await page.textContent('#ov-processed')) === String(Number(stats.processed) + 6) &&
    (await page.textContent('#ov-failed')) === String(Number(stats.failed) + 3));
  await until('the chart to show throughput', async () =>
    Number(await page.textContent('#ov-rate-ok')) > 0 || (await page.evaluate(() => {
      const c = document.getElementById('chart');
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      for (let i = 0; i < d.length; i += 4) if (d[i + 1] > 140 && d[i] < 90 && d[i + 3] > 0) return true; // green line
      return false;
    })));
  await page.waitForTimeout(2500);
  await shot('overview-desktop');
  // Back to two failed jobs for the tests below.
  const failed = await api('GET', 'failed');
  for (let i = failed.length - 1; i >= 0; i--)
    if (failed[i].payload.args[0].wave !== undefined) await api('DELETE', 'failed/' + i);
  assert.equal((await api('GET', 'failed/count')).count, 2);
});

test('params, queue names and errors with markup show as text and run nothing', async () => {
  await open('failed');
  await page.waitForSelector('article.failure >> nth=1');
  const boom = page.locator('article.failure', {hasText: 'boom'});
  assert.ok((await boom.locator('.params').textContent()).includes('<script>alert(1)</script>'));
  assert.ok((await boom.locator('.params').textContent()).includes('"><img src=x onerror=alert(2)>'));
  assert.ok((await boom.locator('.error').textContent()).includes('<script>alert(1)</script>'));
  await shot('failed-desktop');

  await open('queues');
  const link = page.getByRole('link', {name: XSS_QUEUE});
  await link.waitFor();
  // The queue's latency: the age of its oldest job (SQLite knows it).
  const row = page.locator('#queues-table tr', {has: link});
  assert.match(await row.locator('td.latency').textContent(), /^\d+(s|m \d+s)$/);
  // Issue 15: pause and resume from the queues view.
  await row.getByRole('button', {name: 'Pause'}).click();
  await row.locator('td.paused').waitFor();
  await row.getByRole('button', {name: 'Resume'}).click();
  await row.locator('td.paused').waitFor({state: 'detached'});
  await shot('queues-desktop');
  await link.click();
  await page.waitForSelector('#qd-table td');
  assert.equal(await page.textContent('#qd-name'), XSS_QUEUE);
  assert.ok((await page.textContent('#qd-table')).includes('<script>alert(4)</script>'));
  await shot('queue-detail-desktop');

  await open('delayed');
  await page.waitForSelector('.slot >> nth=2');
  assert.ok((await page.textContent('#delayed-list')).includes('<script>alert(1)</script>'));

  // Nothing the jobs carried became markup.
  assert.equal(await page.locator('img').count(), 0);
  assert.equal(await page.locator('b').count(), 0);
  assert.equal(await page.evaluate(() => document.scripts.length), 1);
  assert.deepEqual(dialogs, []);
  assert.deepEqual(pageErrors, []);
});

test('a failed job is retried with a click, leaves the failed list and runs', async () => {
  const before = Number((await api('GET', 'stats')).processed);
  await open('failed');
  const flaky = page.locator('article.failure', {hasText: 'flaky'});
  await flaky.waitFor();
  await flaky.locator('button.retry').click();
  await flaky.waitFor({state: 'detached'});
  await until('the retried job to run', async () => Number((await api('GET', 'stats')).processed) === before + 1);
  const failed = await api('GET', 'failed');
  assert.equal(failed.length, 1);
  assert.equal(failed[0].payload.class, 'boom');
  await until('the failed count on the page', async () => (await page.textContent('#failed-count')) === '(1)');
  assert.equal(await page.locator('article.failure').count(), 1);
});

test('every page renders, at desktop and phone width', async () => {
  await open('workers');
  await page.waitForSelector('#workers-table >> text=slow');
  await shot('workers-desktop');
  await open('delayed');
  await page.waitForSelector('.timeline .mark >> nth=2');
  await shot('delayed-desktop');
  await open('tasks');
  await page.waitForSelector('#tasks-table >> text=tick');
  // Cron schedules: each on the timeline, listed with its next runs.
  await page.waitForSelector('#schedules-table >> text=every-minute');
  await page.waitForSelector('#schedules-table >> text=America/New_York');
  await page.waitForSelector('#sched-timeline .mark');
  await shot('tasks-desktop');
  await page.click('#schedules-table tr:has-text("every-minute") >> text=Pause');
  await page.waitForSelector('#schedules-table tr:has-text("every-minute") >> text=Resume');
  await page.click('#schedules-table tr:has-text("every-minute") >> text=Resume');
  await page.waitForSelector('#schedules-table tr:has-text("every-minute") >> text=Pause');
  await open('locks');
  await page.waitForSelector('#locks-table td');
  await shot('locks-desktop');

  await page.setViewportSize({width: 390, height: 844});
  for (const p of PAGES) {
    await open(p);
    await page.waitForTimeout(300);
    // Nothing wider than the screen: no sideways scrolling.
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 1, p + ' is ' + overflow + 'px wider than a phone screen');
    await shot(p + '-phone');
  }
  assert.deepEqual(dialogs, []);
  assert.deepEqual(pageErrors, []);
});
