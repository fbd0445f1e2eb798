// interop.test.js: Stellar and real node-resque 9 on one Redis (issues 3, 4
// and 5). Run by run.sh (ctest interop.node_resque); needs
// STELLAR_INTEROP_DRIVER = the built interop_driver.
//
// Every test gets a private redis-server on a unix socket in a temp dir
// (lib.js), Stellar's side in an interop_driver process, and node-resque's
// Queue / Worker / Scheduler in this process. Waits are conditions with
// deadlines (waitFor), never blind sleeps.
'use strict';
const { test } = require('node:test');
const { assert, waitFor, withEnv, dump, NR, DRIVER } = require('./lib.js');

if (!DRIVER) {
  console.error('STELLAR_INTEROP_DRIVER is not set (run through run.sh)');
  process.exit(2);
}

const T = { timeout: 90000 };
const WORKER_NAME = /^[^:]+:\d+\+\d+$/; // Stellar: <host>:<pid>+<n>

// Params that have to come out byte-identical on the other side.
const TRICKY = [
  { id: 'plain', n: 1 },
  { id: 'unicode', s: 'été 中文 😀 ключ', ls: '\u2028\u2029', e: 'é' },
  { id: 'slash', url: 'http://x/y', s: '</script>', b: 'a\\/b' },
  { id: 'control', s: '\u0000\u0001\u001f\b\f\n\r\t\u007f "q" \\ \u000b' },
  { id: 'numbers', a: 0.1, b: 1e21, c: 1e-7, d: 2 ** 53 + 1, e: -0, f: 1.5,
    g: -1e300, h: 123456789012, i: 5e-324, j: 0.30000000000000004, k: 100, l: -7 },
  { id: 'nested', o: { a: { b: { c: [1, { d: null }, [], {}, [[]]] } } },
    t: true, f: false, nil: null, empty: [], obj: {} },
  { id: 'keys', 'with space': 1, 'quote"key': 2, é: 3, '': 4, 'a/b': 5 },
];

const payload = (klass, queue, args) => JSON.stringify({ class: klass, queue, args });

// The params a Stellar task sees for a job's args (docs/compat.md: one
// element is passed as is, none as {}, several as the whole array).
function stellarParams(args) {
  if (args.length === 0) return '{}';
  if (args.length === 1) return JSON.stringify(args[0]);
  return JSON.stringify(args);
}

function sortedStrings(a) {
  return [...a].sort();
}

// ----------------------------------------------------------------------------

test('node-resque enqueues (now, enqueueAt, enqueueIn, tricky args) -> Stellar runs them with the same params', T,
  withEnv(async (env) => {
    const q = await env.queue();
    const d = await env.driver({ processors: 2, queues: ['q'], scheduler: true });
    const expected = [];
    const delayed = []; // [params text, earliest ms]

    for (const p of TRICKY) {
      assert.equal(await q.enqueue('q', 'record', [p]), true);
      expected.push(JSON.stringify(p));
    }
    // Not an array: node-resque wraps it. Several args, none, a scalar.
    await q.enqueue('q', 'record', { id: 'wrapped', w: [1, 2] });
    expected.push(JSON.stringify({ id: 'wrapped', w: [1, 2] }));
    for (const args of [[1, 'two', { x: [] }], [], ['scalar'], [0.1, null]]) {
      await q.enqueue('q', 'record', args);
      expected.push(stellarParams(args));
    }
    // Delayed: enqueueAt (ms, rounded to seconds) and enqueueIn.
    const now = Date.now();
    const at = now + 1500;
    for (const p of [TRICKY[1], TRICKY[4]]) {
      const dp = { ...p, id: `${p.id}-at` };
      await q.enqueueAt(at, 'q', 'record', [dp]);
      delayed.push([JSON.stringify(dp), Math.round(at / 1000) * 1000]);
    }
    const inP = { ...TRICKY[3], id: 'control-in' };
    await q.enqueueIn(1000, 'q', 'record', [inP]);
    delayed.push([JSON.stringify(inP), Math.round((now + 1000) / 1000) * 1000]);

    // Stellar reads node's queue and delayed set as node does.
    assert.deepEqual(await d.call('queued', { queue: 'q', start: 0, stop: -1 }),
      await q.queued('q', 0, -1));
    assert.deepEqual(await d.call('length', { queue: 'q' }), await q.length('q'));
    assert.deepEqual(await d.call('timestamps'), await q.timestamps());
    assert.deepEqual(await d.call('all_delayed'), await q.allDelayed());

    await d.call('start');
    const total = expected.length + delayed.length;
    const recs = await waitFor(`${total} runs in Stellar`, () => {
      const r = d.records();
      assert.ok(r.length <= total, `more runs than jobs: ${JSON.stringify(r)}`);
      return r.length === total && r;
    }, 20000);

    for (const r of recs) {
      assert.equal(r.task, 'record');
      assert.equal(r.queue, 'q');
      assert.match(r.worker, WORKER_NAME);
    }
    assert.deepEqual(sortedStrings(recs.map((r) => r.params)),
      sortedStrings([...expected, ...delayed.map((x) => x[0])]));
    // Delayed jobs did not run before their (rounded) second.
    for (const [p, earliest] of delayed) {
      const r = recs.find((x) => x.params === p);
      assert.ok(r.at >= earliest, `${p} ran at ${r.at}, before ${earliest}`);
    }
    // Same params as objects, too (not only as text).
    for (const p of TRICKY) {
      const r = recs.find((x) => x.params === JSON.stringify(p));
      assert.deepEqual(JSON.parse(r.params), JSON.parse(JSON.stringify(p)));
    }
    assert.equal(await q.length('q'), 0);
    assert.deepEqual(await q.timestamps(), []);
    await waitFor('stats processed = all', async () =>
      Number((await q.stats()).processed) === total);
  }));

test('Stellar enqueues (now, enqueueAt, enqueueIn, tricky params) -> a node-resque worker runs them with the same args', T,
  withEnv(async (env) => {
    const q = await env.queue();
    const d = await env.driver();
    const now = Date.now();
    const want = [];

    for (const p of TRICKY) {
      assert.deepEqual(await d.call('enqueue', { task: 'record', params: JSON.stringify(p) }), { rc: 0 });
      want.push(JSON.stringify([p]));
    }
    // Byte for byte what node-resque itself would have queued.
    assert.deepEqual(await env.r.lrange('resque:queue:q', 0, -1),
      TRICKY.map((p) => payload('record', 'q', [p])));
    assert.deepEqual(await env.r.smembers('resque:queues'), ['q']);

    const at = now + 1700;
    const atP = { ...TRICKY[4], id: 'numbers-at' };
    const inP = { ...TRICKY[1], id: 'unicode-in' };
    await d.call('enqueue', { task: 'record', params: JSON.stringify(atP), at });
    await d.call('enqueue', { task: 'record', params: JSON.stringify(inP), in: 1200 });
    const atS = Math.round(at / 1000);
    const atPayload = payload('record', 'q', [atP]);
    // On a slow machine the enqueueIn job (due 1.2 s after its own call,
    // which comes later) can fall in the same second: leave it out here.
    const inPayload = payload('record', 'q', [inP]);
    assert.deepEqual((await env.r.lrange(`resque:delayed:${atS}`, 0, -1))
      .filter((x) => x !== inPayload), [atPayload]);
    assert.deepEqual(await env.r.smembers(`resque:timestamps:${atPayload}`), [`delayed:${atS}`]);
    assert.equal(await env.r.zscore('resque:delayed_queue_schedule', String(atS)), String(atS));
    assert.deepEqual(await q.scheduledAt('q', 'record', [atP]), [atS]);
    const inS = (await q.scheduledAt('q', 'record', [inP]))[0];
    assert.ok(Math.abs(inS * 1000 - (now + 1200)) <= 5000, `enqueueIn went to ${inS}`);
    want.push(JSON.stringify([atP]), JSON.stringify([inP]));

    await env.worker(['q'], 'nodeworker:1');
    await env.scheduler();
    const recs = await waitFor(`${want.length} runs in node-resque`, () => {
      assert.ok(env.nodeRecords.length <= want.length);
      return env.nodeRecords.length === want.length && env.nodeRecords;
    }, 20000);
    assert.deepEqual(sortedStrings(recs.map((r) => r.args)), sortedStrings(want));
    for (const r of recs) assert.equal(r.task, 'record');
    // node's scheduler moves a job when round(now / 1000) reaches it.
    const atRun = recs.find((r) => r.args === JSON.stringify([atP]));
    assert.ok(atRun.at >= atS * 1000 - 500, `enqueueAt job ran ${atS * 1000 - atRun.at} ms early`);
    assert.deepEqual(await d.call('timestamps'), []);
    assert.equal(await d.call('length', { queue: 'q' }), 0);
  }));

test('a job that fails in Stellar is in node-resque\'s failed(), and node\'s retryAndRemoveFailed runs it again', T,
  withEnv(async (env) => {
    const q = await env.queue();
    const d = await env.driver({ processors: 1, queues: ['q'] });
    await d.call('start');
    const params = { id: 'f1', s: 'é/\u0001', n: 0.1, list: [1, { a: null }] };
    await d.call('enqueue', { task: 'failonce', params: JSON.stringify(params) });
    await d.call('enqueue', { task: 'fail', params: JSON.stringify({ id: 'f2' }) });
    await waitFor('two failed jobs', async () => (await q.failedCount()) === 2);
    const worker = d.records()[0].worker;
    assert.match(worker, WORKER_NAME);

    const failed = await q.failed(0, -1);
    assert.equal(failed.length, 2);
    const [f1, f2] = failed;
    // Member order of node-resque's failed entries (reference §2.6).
    assert.deepEqual(Object.keys(f1),
      ['worker', 'queue', 'payload', 'exception', 'error', 'backtrace', 'failed_at']);
    assert.equal(f1.worker, worker);
    assert.equal(f1.queue, 'q');
    assert.deepEqual(f1.payload, { class: 'failonce', queue: 'q', args: [params] });
    assert.deepEqual(Object.keys(f1.payload), ['class', 'queue', 'args']);
    assert.equal(f1.exception, 'Error');
    assert.match(f1.error, /failonce: the first try fails/);
    assert.ok(Array.isArray(f1.backtrace));
    const failedAt = Date.parse(f1.failed_at);
    assert.ok(Math.abs(failedAt - Date.now()) < 60000, `failed_at ${f1.failed_at}`);
    assert.match(f2.error, /stellar says no/);
    // Stored as JSON.stringify writes it: what removeFailed matches on.
    for (const raw of await env.r.lrange('resque:failed', 0, -1)) {
      assert.equal(raw, JSON.stringify(JSON.parse(raw)));
    }
    // The C API gives the same entries.
    assert.deepEqual(await d.call('failed', { start: 0, stop: -1 }), failed);
    await waitFor('stats settled', async () => {
      const s = await q.stats();
      return s.failed === '2' && s[`failed:${worker}`] === '2';
    });

    // node removes one and retries the other; Stellar runs the retried one.
    assert.equal(await q.removeFailed(f2), 1);
    assert.equal(await q.retryAndRemoveFailed(f1), true);
    assert.equal(await q.failedCount(), 0);
    assert.equal(await d.call('failed_count'), 0);
    const rerun = await waitFor('the retried job to run in Stellar', () =>
      d.records().find((r) => r.task === 'failonce' && r.phase === 'run'));
    assert.equal(rerun.params, JSON.stringify(params));
    await waitFor('stats processed 1', async () => (await q.stats()).processed === '1');
    assert.equal(await q.failedCount(), 0);
  }));

test('a job that fails in node-resque is retried (and removed) by Stellar\'s stellar_retry_and_remove_failed', T,
  withEnv(async (env) => {
    const q = await env.queue();
    const d = await env.driver();
    const params = { id: 'n1', s: 'ü "x" \\ /', deep: { a: [true, false, null, 1e21] } };
    await q.enqueue('q', 'failonce', [params]);
    await q.enqueue('q', 'fail', [{ id: 'n2' }]);
    await env.worker(['q'], 'nodeworker:1');
    await waitFor('two failed jobs', async () => (await q.failedCount()) === 2);

    const nodeFailed = await q.failed(0, -1);
    const cFailed = await d.call('failed', { start: 0, stop: -1 });
    assert.deepEqual(cFailed, nodeFailed);
    assert.equal(await d.call('failed_count'), 2);
    const [f1, f2] = cFailed;
    assert.equal(f1.worker, 'nodeworker:1');
    assert.deepEqual(f1.payload.args, [params]);

    // Stellar removes node's entry by content, and retries the other.
    assert.deepEqual(await d.call('remove_failed', { entry: f2 }), { removed: 1 });
    assert.deepEqual(await d.call('remove_failed', { entry: f2 }), { removed: 0 });
    await d.call('retry_and_remove_failed', { entry: f1 });
    await assert.rejects(d.call('retry_and_remove_failed', { entry: f1 }),
      (err) => err.code === 'ENOTFOUND' && /not in failed queue/.test(err.message));
    assert.equal(await q.failedCount(), 0);
    const rerun = await waitFor('the retried job to run in node-resque', () =>
      env.nodeRecords.find((r) => r.task === 'failonce' && r.phase === 'run'));
    assert.equal(rerun.args, JSON.stringify([params]));
    assert.equal(await q.failedCount(), 0);
  }));

// Asserts that node-resque's inspection calls and the C API's agree on the
// Redis state as it is (callers make it stable first).
async function sameAnswers(q, d, label, { delayedTs, scheduled }) {
  const msg = (what) => `${label}: ${what}`;
  const cWorkers = await d.call('workers');
  assert.deepEqual(await q.workers(),
    Object.fromEntries(Object.entries(cWorkers).map(([n, w]) => [n, w.queues])), msg('workers()'));

  const nAll = await q.allWorkingOn();
  const cAll = await d.call('all_working_on');
  assert.deepEqual(Object.keys(cAll).sort(), Object.keys(nAll).sort(), msg('allWorkingOn() names'));
  let busy = 0;
  for (const [name, n] of Object.entries(nAll)) {
    const c = cAll[name];
    if (n === 'started') {
      assert.equal(c, 'started', msg(`allWorkingOn()[${name}]`));
      continue;
    }
    busy++;
    assert.equal(n.worker, name);
    assert.equal(c.queue, n.queue, msg('allWorkingOn() queue'));
    assert.deepEqual(c.payload, n.payload, msg('allWorkingOn() payload'));
    // node reads run_at with Date.parse; the C API gives ms.
    assert.equal(Math.floor(c.run_at / 1000), Math.floor(Date.parse(n.run_at) / 1000),
      msg(`run_at ${n.run_at} vs ${c.run_at}`));
    const raw = await q.workingOn(name, cWorkers[name].queues);
    assert.deepEqual(JSON.parse(raw), n);
    assert.deepEqual(await d.call('working_on', { worker: name }), c);
  }

  const nStats = await q.stats();
  assert.deepEqual(await d.call('stats'),
    Object.fromEntries(Object.entries(nStats).map(([k, v]) => [k, Number(v)])), msg('stats()'));

  assert.deepEqual(await d.call('timestamps'), await q.timestamps(), msg('timestamps()'));
  assert.deepEqual(await d.call('all_delayed'), await q.allDelayed(), msg('allDelayed()'));
  for (const ts of delayedTs) {
    const n = await q.delayedAt(ts);
    assert.equal(n.rTimestamp, ts / 1000);
    assert.deepEqual(await d.call('delayed_at', { ts }), n.tasks, msg(`delayedAt(${ts})`));
  }
  for (const [queue, task, args] of scheduled) {
    const n = await q.scheduledAt(queue, task, args);
    assert.ok(n.length > 0, msg(`scheduledAt ${JSON.stringify(args)} is empty`));
    assert.deepEqual(await d.call('scheduled_at', { queue, task, params: JSON.stringify(args[0]) }),
      n.map((s) => s * 1000), msg('scheduledAt()'));
  }

  const nLocks = await q.locks();
  const cLocks = await d.call('locks');
  assert.deepEqual(Object.fromEntries(Object.entries(cLocks).map(([k, v]) => [k, v.value])), nLocks,
    msg('locks()'));

  const nQueues = (await q.queues()).sort();
  assert.deepEqual(await d.call('queues'), nQueues, msg('queues()'));
  const details = await d.call('details');
  for (const name of nQueues) {
    const len = await q.length(name);
    assert.equal(await d.call('length', { queue: name }), len, msg(`length(${name})`));
    assert.equal(details.queues[name].length, len, msg(`details ${name}`));
  }
  assert.equal(await d.call('failed_count'), await q.failedCount());
  return { busy, locks: nLocks, workers: cWorkers };
}

test('inspection on Stellar-written state: node-resque\'s Queue answers as the C API does', T,
  withEnv(async (env) => {
    const q = await env.queue();
    const d = await env.driver({ processors: 2, queues: ['slow', 'q'], name: 'stellarhost' });
    await d.call('gate', { open: false });
    await d.call('start');
    await d.call('enqueue', { task: 'block', params: JSON.stringify({ id: 'b1', s: 'a/b' }) });
    for (const id of ['r1', 'r2', 'r3']) await d.call('enqueue', { task: 'record', params: JSON.stringify({ id }) });
    await d.call('enqueue', { task: 'fail', params: JSON.stringify({ id: 'x1' }) });
    await waitFor('runs and stats to settle', async () => {
      const s = await d.call('stats');
      return d.records().some((r) => r.phase === 'start') && s.processed === 3 && s.failed === 1;
    });

    // Delayed jobs, a lock, a queue nobody works on.
    const now = Date.now();
    const t1 = Math.round((now + 60000) / 1000) * 1000;
    const t2 = Math.round((now + 120000) / 1000) * 1000;
    for (const [id, at] of [['d1', t1], ['d2', t1], ['d3', t2]]) {
      await d.call('enqueue', { task: 'record', params: JSON.stringify({ id }), at });
    }
    await d.call('enqueue', { task: 'record', params: JSON.stringify({ id: 'd4' }), in: 90000 });
    assert.deepEqual(await d.call('enqueue', { task: 'qlocked', params: JSON.stringify({ id: 'L' }) }), { rc: 0 });
    for (const id of ['dup', 'dup', 'dup', 'keep']) {
      await d.call('enqueue', { task: 'record', queue: 'other', params: JSON.stringify({ id }) });
    }

    const seen = await sameAnswers(q, d, 'Stellar-written', {
      delayedTs: [t1, t2],
      scheduled: [['q', 'record', [{ id: 'd1' }]], ['q', 'record', [{ id: 'd3' }]],
        ['q', 'record', [{ id: 'd4' }]]],
    });
    assert.equal(seen.busy, 1, 'one worker is busy');
    assert.equal(Object.keys(seen.workers).length, 2);
    for (const [name, w] of Object.entries(seen.workers)) {
      assert.match(name, /^stellarhost:\d+\+\d+$/);
      assert.equal(w.queues, 'slow,q');
    }
    assert.equal(Object.keys(seen.locks).length, 1);
    // The registration keys, raw (reference §2.4, §4.1).
    for (const name of Object.keys(seen.workers)) {
      const started = await env.r.get(`resque:worker:${name}:slow,q:started`);
      assert.match(started, /^\d+$/);
      assert.ok(Math.abs(Number(started) - Date.now() / 1000) < 60, `started ${started}`);
      const ping = JSON.parse(await env.r.get(`resque:worker:ping:${name}`));
      assert.deepEqual(Object.keys(ping), ['time', 'name', 'queues']);
      assert.equal(ping.name, name);
      assert.equal(ping.queues, 'slow,q');
      assert.ok(Number.isInteger(ping.time) && Math.abs(ping.time - Date.now() / 1000) < 60);
    }
    // d4's second: 90 s after its own call, which a slow machine makes later
    // than `now`.
    const [t4] = await q.scheduledAt('q', 'record', [{ id: 'd4' }]);
    assert.ok(Math.abs(t4 * 1000 - (now + 90000)) <= 5000, `enqueueIn went to ${t4}`);
    assert.deepEqual(await q.timestamps(), [t1, t2, t4 * 1000].sort());

    // node-resque changes Stellar's state by exact payload match.
    assert.equal(await q.del('other', 'record', [{ id: 'dup' }], 1), 1);
    assert.equal(await q.del('other', 'record', [{ id: 'dup' }]), 2);
    assert.equal(await d.call('length', { queue: 'other' }), 1);
    assert.deepEqual(await q.delDelayed('q', 'record', [{ id: 'd1' }]), [t1 / 1000]);
    assert.deepEqual(await d.call('scheduled_at', { queue: 'q', task: 'record', params: '{"id":"d1"}' }), []);
    assert.deepEqual((await d.call('delayed_at', { ts: t1 })).map((p) => p.args[0].id), ['d2']);
    assert.equal(await q.delLock(Object.keys(seen.locks)[0]), 1);
    assert.deepEqual(await d.call('locks'), {});
    // ...and the C API changes node-resque's.
    await q.enqueue('other', 'record', [{ id: 'n' }]);
    await q.enqueue('other', 'record', [{ id: 'n' }]);
    assert.deepEqual(await d.call('del', { queue: 'other', task: 'record', params: '{"id":"n"}', count: 0 }),
      { removed: 2 });
    const nAt = now + 30000;
    await q.enqueueAt(nAt, 'q', 'record', [{ id: 'nd' }]);
    assert.deepEqual(await d.call('del_delayed', { queue: 'q', task: 'record', params: '{"id":"nd"}' }),
      [Math.round(nAt / 1000) * 1000]);
    assert.deepEqual(await q.scheduledAt('q', 'record', [{ id: 'nd' }]), []);
    await d.call('del_queue', { queue: 'other' });
    assert.ok(!(await q.queues()).includes('other'));

    // Let the blocked job end; the workers unregister on stop.
    await d.call('gate', { open: true });
    await waitFor('block to end', () => d.records().some((r) => r.phase === 'end'));
    await d.call('stop', { timeout_ms: 5000 });
    assert.deepEqual(await q.workers(), {});
    assert.deepEqual(await q.allWorkingOn(), {});
    const left = Object.keys(await dump(env.r, 'resque:worker*'));
    assert.deepEqual(left, []);
    const stats = await q.stats();
    assert.deepEqual(Object.keys(stats).sort(), ['failed', 'processed']);
  }));

test('inspection on node-resque-written state: the C API answers as node-resque does', T,
  withEnv(async (env) => {
    const q = await env.queue();
    const d = await env.driver();
    env.gate.close();
    await q.enqueue('slow', 'block', [{ id: 'b1', url: 'http://x/y', n: 1.5 }]);
    await q.enqueue('q', 'record', [{ id: 'r1' }]);
    await q.enqueue('q', 'fail', [{ id: 'x1' }]);
    const w1 = await env.worker(['slow'], 'nodehost:1');
    const w2 = await env.worker(['q'], 'nodehost:2');
    await waitFor('node runs and stats', async () => {
      const s = await q.stats();
      return env.nodeRecords.some((r) => r.phase === 'start') &&
        s.processed === '1' && s.failed === '1';
    });
    const now = Date.now();
    const t1 = Math.round((now + 60000) / 1000) * 1000;
    await q.enqueueAt(t1, 'q', 'record', [{ id: 'd1' }]);
    await q.enqueueAt(t1, 'q', 'record', [{ id: 'd2', s: 'é' }]);
    await q.enqueueIn(120000, 'q', 'record', [{ id: 'd3' }]);
    assert.equal(await q.enqueue('locks', 'qlocked', [{ id: 'L' }]), true);

    const seen = await sameAnswers(q, d, 'node-written', {
      delayedTs: [t1],
      scheduled: [['q', 'record', [{ id: 'd1' }]], ['q', 'record', [{ id: 'd2', s: 'é' }]],
        ['q', 'record', [{ id: 'd3' }]]],
    });
    assert.equal(seen.busy, 1);
    assert.deepEqual(Object.keys(seen.workers).sort(), ['nodehost:1', 'nodehost:2']);
    assert.deepEqual(Object.keys(seen.locks), ['lock:qlocked:locks:[{"id":"L"}]']);
    const cw = seen.workers['nodehost:1'];
    assert.equal(typeof cw.started, 'number');
    assert.ok(Math.abs(cw.ping - Date.now()) < 10000, `ping ${cw.ping}`);

    // The C API's changes by name: del_lock, del_delayed_at, del_all_delayed.
    assert.deepEqual(await d.call('del_lock', { name: 'lock:qlocked:locks:[{"id":"L"}]' }), { removed: 1 });
    assert.deepEqual(await q.locks(), {});
    assert.deepEqual(await d.call('del_delayed_at', { ts: t1 }), { removed: 2 });
    assert.deepEqual(await q.scheduledAt('q', 'record', [{ id: 'd1' }]), []);
    assert.deepEqual(await d.call('del_all_delayed'), { removed: 1 });
    assert.deepEqual(await q.timestamps(), []);
    assert.deepEqual(await q.allDelayed(), {});

    env.gate.open();
    await waitFor('block to end', () => env.nodeRecords.some((r) => r.phase === 'end'));
    await w1.stop();
    await w2.stop();
    assert.deepEqual(await d.call('workers'), {});
    assert.deepEqual(await d.call('all_working_on'), {});
  }));

test('mixed deployment: a node-resque scheduler and a Stellar scheduler move every delayed job exactly once', T,
  withEnv(async (env, t) => {
    const N = 60;
    const q = await env.queue();
    const d = await env.driver({ processors: 2, queues: ['mixed'], scheduler: true, poll_ms: 20 });
    const c = await env.driver(); // a client: enqueues only
    await env.scheduler('node-sched', 50);
    await env.worker(['mixed'], 'nodemixed:1', 50);
    await d.call('start');

    const base = Date.now() + 1000;
    for (let i = 0; i < N; i++) {
      const at = base + (i % 6) * 400;
      const params = { id: i };
      if (i % 2) await q.enqueueAt(at, 'mixed', 'mixed', [params]);
      else await c.call('enqueue', { task: 'mixed', params: JSON.stringify(params), at });
    }
    // Leadership changes hands while jobs are due: the lock is taken away
    // every 150 ms, so both schedulers lead by turns, and for a while each
    // may still think it leads (Stellar renews once a second).
    const leaders = new Set();
    let stop = false;
    const chaos = (async () => {
      while (!stop) {
        const l = await env.r.get('resque:resque_scheduler_leader_lock');
        if (l) leaders.add(l.startsWith('node-sched') ? 'node' : 'stellar');
        await env.r.del('resque:resque_scheduler_leader_lock');
        await new Promise((r) => setTimeout(r, 150));
      }
    })();
    const runs = () => [
      ...d.records().filter((r) => r.task === 'mixed').map((r) => [JSON.parse(r.params).id, 'stellar']),
      ...env.nodeRecords.filter((r) => r.task === 'mixed').map((r) => [JSON.parse(r.args)[0].id, 'node']),
    ];
    try {
      // Done when nothing is left to run anywhere: no delayed job, an empty
      // queue, nobody working. Then no more runs can come.
      await waitFor('every delayed job to run and the system to be idle', async () => {
        const all = runs();
        if (all.length < N) return false;
        const idle = Object.values(await q.allWorkingOn()).every((v) => v === 'started');
        return (await q.timestamps()).length === 0 && (await q.length('mixed')) === 0 && idle &&
          runs().length === all.length;
      }, 30000);
    } finally {
      stop = true;
      await chaos;
    }
    const all = runs();
    const count = new Map();
    for (const [id] of all) count.set(id, (count.get(id) || 0) + 1);
    const wrong = [...Array(N).keys()].filter((i) => count.get(i) !== 1);
    assert.deepEqual(wrong.map((i) => [i, count.get(i) || 0]), [], 'jobs run other than once');
    assert.equal(all.length, N);
    const bySide = all.reduce((m, [, side]) => ({ ...m, [side]: (m[side] || 0) + 1 }), {});
    t.diagnostic(`runs by side ${JSON.stringify(bySide)}; leaders seen ${[...leaders]}`);
    assert.ok(leaders.has('node') && leaders.has('stellar'), `both schedulers led: ${[...leaders]}`);
    // No leftovers of the delayed layout.
    assert.deepEqual(Object.keys(await dump(env.r, 'resque:delayed*')), []);
    assert.deepEqual(Object.keys(await dump(env.r, 'resque:timestamps*')), []);
  }));

test('plugins: queueLock and jobLock keys are shared both ways', T,
  withEnv(async (env) => {
    const q = await env.queue();
    const d = await env.driver(); // a client
    const plain = await env.queue(false);
    const nodeKey = (Plugin, func, queue, args) =>
      new Plugin(q, func, queue, {}, args, {}).key();

    // queueLock written by Stellar: node-resque lists it and is refused.
    const before = Math.round(Date.now() / 1000);
    assert.deepEqual(await d.call('enqueue', { task: 'qlocked', params: '{"id":1,"s":"a b"}' }), { rc: 0 });
    const k1 = nodeKey(NR.Plugins.QueueLock, 'qlocked', 'locks', [{ id: 1, s: 'a b' }]);
    assert.equal(k1, 'resque:lock:qlocked:locks:[{"id":1,"s":"a b"}]');
    const locks1 = await q.locks();
    assert.deepEqual(Object.keys(locks1), [k1.slice('resque:'.length)]);
    const v1 = Number(locks1[k1.slice(7)]);
    assert.ok(v1 >= before + 3600 && v1 <= Math.round(Date.now() / 1000) + 3601,
      `lock value ${v1}, now ${before}`);
    const ttl1 = await env.r.ttl(k1);
    assert.ok(ttl1 > 3590 && ttl1 <= 3600, `ttl ${ttl1}`);
    const cl = await d.call('locks');
    assert.equal(cl[k1.slice(7)].value, String(v1));
    assert.ok(Math.abs(cl[k1.slice(7)].expires - (Date.now() + ttl1 * 1000)) < 3000);
    assert.equal(await q.enqueue('locks', 'qlocked', [{ id: 1, s: 'a b' }]), false);
    assert.equal(await q.length('locks'), 1);

    // queueLock written by node-resque: Stellar's enqueue is vetoed.
    assert.equal(await q.enqueue('locks', 'qlocked', [{ id: 2 }]), true);
    const k2 = nodeKey(NR.Plugins.QueueLock, 'qlocked', 'locks', [{ id: 2 }]);
    assert.ok(await env.r.exists(k2));
    assert.deepEqual(await d.call('enqueue', { task: 'qlocked', params: '{"id":2}' }), { rc: 1 });
    assert.equal(await q.length('locks'), 2);
    assert.deepEqual(Object.keys(await d.call('locks')).sort(),
      [k1.slice(7), k2.slice(7)].sort());
    // The two sides write the same shape: seconds + lockTimeout + 1, TTL 3600.
    assert.ok(Math.abs(Number(await env.r.get(k2)) - v1) <= 2);
    assert.ok(Math.abs((await env.r.ttl(k2)) - (await env.r.ttl(k1))) <= 2);

    // A Stellar processor runs both jobs and drops both locks as it starts
    // them (node's lock too); then the next enqueue is accepted again.
    const p = await env.driver({ processors: 1, queues: ['locks'] });
    await p.call('gate', { open: false });
    await p.call('start');
    await waitFor('both qlocked jobs to run', () =>
      p.records().filter((r) => r.task === 'qlocked').length === 2);
    assert.deepEqual(await q.locks(), {});
    assert.equal(await plain.length('locks'), 0);
    assert.equal(await q.enqueue('locks', 'qlocked', [{ id: 1, s: 'a b' }]), true);
    await waitFor('it runs', () => p.records().filter((r) => r.task === 'qlocked').length === 3);

    // jobLock held by a running Stellar job: node-resque lists it, and a
    // node-resque worker does not run the same job meanwhile (re-enqueues it
    // for later instead).
    await d.call('enqueue', { task: 'jlocked', params: '{"id":3}' });
    await waitFor('jlocked 3 to start in Stellar', () =>
      p.records().some((r) => r.task === 'jlocked' && r.phase === 'start'));
    const k3 = nodeKey(NR.Plugins.JobLock, 'jlocked', 'locks', [{ id: 3 }]);
    assert.equal(k3, 'resque:workerslock:jlocked:locks:[{"id":3}]');
    const locks3 = await q.locks();
    assert.deepEqual(Object.keys(locks3), [k3.slice(7)]);
    assert.match(locks3[k3.slice(7)], /^\d+$/);
    assert.equal((await d.call('locks'))[k3.slice(7)].value, locks3[k3.slice(7)]);
    env.gate.close();
    await env.worker(['locks'], 'nodelocks:1');
    await q.enqueue('locks', 'jlocked', [{ id: 3 }]);
    await waitFor('node-resque to put the locked job back as a delayed job', async () =>
      (await q.scheduledAt('locks', 'jlocked', [{ id: 3 }])).length === 1 &&
      (await q.length('locks')) === 0);
    assert.ok(!env.nodeRecords.some((r) => r.task === 'jlocked'), 'node ran a locked job');
    await q.delDelayed('locks', 'jlocked', [{ id: 3 }]);
    await p.call('gate', { open: true });
    await waitFor('the Stellar jlocked to end and release', async () =>
      p.records().some((r) => r.task === 'jlocked' && r.phase === 'end') &&
      Object.keys(await q.locks()).length === 0);
    await p.call('stop'); // from here on, node-resque's worker takes the job

    // jobLock held by a running node-resque job: Stellar does not run it.
    await q.enqueue('locks', 'jlocked', [{ id: 4 }]);
    await waitFor('jlocked 4 to start in node-resque', () =>
      env.nodeRecords.some((r) => r.task === 'jlocked' && r.phase === 'start'));
    const k4 = nodeKey(NR.Plugins.JobLock, 'jlocked', 'locks', [{ id: 4 }]);
    assert.deepEqual(Object.keys(await d.call('locks')), [k4.slice(7)]);
    const p2 = await env.driver({ processors: 1, queues: ['locks'] });
    await p2.call('gate', { open: false });
    await p2.call('start');
    await d.call('enqueue', { task: 'jlocked', params: '{"id":4}' });
    await waitFor('Stellar to put the locked job back as a delayed job', async () =>
      (await d.call('scheduled_at', { queue: 'locks', task: 'jlocked', params: '{"id":4}' })).length === 1 &&
      (await q.length('locks')) === 0);
    assert.ok(!p2.records().some((r) => r.task === 'jlocked'), 'Stellar ran a locked job');
    env.gate.open();
    await waitFor('node jlocked to end and release', async () =>
      env.nodeRecords.some((r) => r.task === 'jlocked' && r.phase === 'end') &&
      Object.keys(await q.locks()).length === 0);
  }));

test('plugins: the retry plugin\'s keys and values are named as node-resque names them', T,
  withEnv(async (env) => {
    const q = await env.queue();
    const retryKeys = async () => {
      const all = await dump(env.r, 'resque:*resque-retry*');
      return all;
    };
    const nodeKeys = (args) => {
      const pl = new NR.Plugins.Retry(q, 'retried', 'retry', {}, args, {});
      return [pl.retryKey(), pl.failureKey()];
    };

    // 1. node-resque's own worker, first failure of a job under Retry.
    const args = [{ id: 7, s: 'a b' }];
    await q.enqueue('retry', 'retried', args);
    const w = await env.worker(['retry'], 'noderetry:1');
    await waitFor('node: the first attempt and its keys', async () =>
      Object.keys(await retryKeys()).length === 2 &&
      (await q.scheduledAt('retry', 'retried', args)).length === 1);
    await w.stop();
    const nodeState = await retryKeys();
    assert.deepEqual(Object.keys(nodeState).sort(), nodeKeys(args).sort());
    await env.r.del(...Object.keys(nodeState));
    await q.delDelayed('retry', 'retried', args);
    const nodeStats = await q.stats();
    assert.deepEqual(nodeStats, { processed: '0', failed: '1' });

    // 2. The same job's first failure in Stellar: the same keys and values.
    const d = await env.driver({ processors: 1, queues: ['retry'] });
    await d.call('start');
    await d.call('enqueue', { task: 'retried', params: JSON.stringify(args[0]) });
    await waitFor('Stellar: the first attempt and its keys', async () =>
      Object.keys(await retryKeys()).length === 2 &&
      (await q.scheduledAt('retry', 'retried', args)).length === 1);
    const stState = await retryKeys();
    assert.deepEqual(Object.keys(stState).sort(), Object.keys(nodeState).sort());
    const [counter, failure] = nodeKeys(args);
    assert.equal(counter, 'resque:resque-retry:retried:{"id":7,"s":"ab"}');
    assert.equal(stState[counter].value, '0');
    assert.equal(nodeState[counter].value, '0');
    for (const k of [counter, failure]) {
      assert.ok(Math.abs(stState[k].ttl - nodeState[k].ttl) <= 3,
        `${k} ttl: Stellar ${stState[k].ttl}, node ${nodeState[k].ttl}`);
    }
    const nf = JSON.parse(nodeState[failure].value);
    const sf = JSON.parse(stState[failure].value);
    assert.deepEqual(Object.keys(sf), Object.keys(nf));
    assert.deepEqual(sf.payload, nf.payload);
    assert.equal(sf.worker, nf.worker);
    assert.equal(sf.queue, nf.queue);
    assert.match(sf.exception, /^Error: stellar says no/);
    assert.match(sf.failed_at, /^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d$/);
    assert.ok(Array.isArray(sf.backtrace));
    // Counted as node-resque counts a retried attempt: failed +1, processed +0.
    await waitFor('stats', async () => {
      const s = await q.stats();
      return s.failed === '2' && s.processed === '0';
    });
    assert.equal(await q.failedCount(), 0);

    // 3. Jobs node-resque wrote with other args: Stellar's keys are the ones
    // node-resque's Retry computes for them.
    await q.delDelayed('retry', 'retried', args);
    await env.r.del(counter, failure);
    const more = [[1, 'x y', { k: 'v w' }, null, 0.5, true], [], ['é/ü'], [[1, 2], {}]];
    for (const a of more) {
      await q.enqueue('retry', 'retried', a);
      const want = nodeKeys(a);
      await waitFor(`Stellar keys for ${JSON.stringify(a)}`, async () =>
        Object.keys(await retryKeys()).length === 2);
      assert.deepEqual(Object.keys(await retryKeys()).sort(), [...want].sort(), JSON.stringify(a));
      assert.equal(await env.r.get(want[0]), '0');
      await env.r.del(...want);
      await waitFor('the re-enqueued copy', async () =>
        (await q.scheduledAt('retry', 'retried', a)).length === 1);
      await q.delDelayed('retry', 'retried', a);
    }
  }));

test('Stellar\'s cleanOldWorkers on a node-resque worker that stopped pinging: node-resque\'s retryStuckJobs takes the job back', T,
  withEnv(async (env) => {
    const q = await env.queue();
    const d = await env.driver();
    env.gate.close();
    const args = [{ id: 'stuck', s: 'é' }];
    await q.enqueue('slow', 'block', args);
    const w = await env.worker(['slow'], 'stuckhost:42');
    await waitFor('the job to start in node-resque', () =>
      env.nodeRecords.some((r) => r.phase === 'start'));
    // The worker "dies": no more pings, the last one 100 s old.
    clearInterval(w.pingTimer);
    const old = Math.round(Date.now() / 1000) - 100;
    await env.r.set('resque:worker:ping:stuckhost:42',
      JSON.stringify({ time: old, name: 'stuckhost:42', queues: 'slow' }));
    // 150 s is not old enough; 10 s is.
    assert.deepEqual(await d.call('clean_old_workers', { age: 150000 }), {});
    const cleaned = await d.call('clean_old_workers', { age: 10000 });
    assert.deepEqual(cleaned, { 'stuckhost:42': { class: 'block', queue: 'slow', args } });

    assert.deepEqual(await q.workers(), {});
    assert.deepEqual(await q.allWorkingOn(), {});
    const [f] = await q.failed(0, -1);
    assert.equal(f.worker, 'stuckhost:42');
    assert.equal(f.queue, 'slow');
    assert.deepEqual(f.payload, { class: 'block', queue: 'slow', args });
    assert.equal(f.exception, 'Worker Timeout (killed manually)');
    assert.equal(f.error, 'Worker Timeout (killed manually)');
    assert.equal(f.backtrace[1], 'queue#forceCleanWorker');
    // node-resque's own recovery of stuck jobs finds the entry and re-queues
    // the job with the same bytes.
    await q.retryStuckJobs();
    assert.equal(await q.failedCount(), 0);
    assert.deepEqual(await env.r.lrange('resque:queue:slow', 0, -1), [payload('block', 'slow', args)]);
    env.gate.open(); // the first run ends; then the worker unregisters
    await w.stop();
  }));

test('enqueueAt rounds to the second as node-resque does, and duplicates are refused both ways', T,
  withEnv(async (env) => {
    const q = await env.queue();
    const d = await env.driver();
    const base = (Math.floor(Date.now() / 1000) + 3600) * 1000;
    for (const off of [0, 1, 499, 500, 501, 999, 1499, 1500]) {
      const at = base + off;
      await q.enqueueAt(at, 'q', 'record', [{ side: 'node', off }]);
      await d.call('enqueue', { task: 'record', params: JSON.stringify({ side: 'stellar', off }), at });
      const n = await q.scheduledAt('q', 'record', [{ side: 'node', off }]);
      assert.deepEqual(n, [Math.round(at / 1000)], `node, offset ${off}`);
      assert.deepEqual(await q.scheduledAt('q', 'record', [{ side: 'stellar', off }]), n,
        `Stellar, offset ${off}`);
    }
    // The same job in the same second: node-resque refuses Stellar's copy,
    // and Stellar refuses node-resque's.
    await assert.rejects(q.enqueueAt(base + 200, 'q', 'record', [{ side: 'stellar', off: 0 }]),
      /Job already enqueued at this time with same arguments/);
    await assert.rejects(d.call('enqueue', { task: 'record', params: '{"side":"node","off":0}', at: base + 300 }),
      (err) => err.code === 'EEXISTS');
    assert.deepEqual(await d.call('timestamps'), [base, base + 1000, base + 2000]);
  }));

test('a custom namespace and database are shared the same way', T,
  withEnv(async (env) => {
    for (const [namespace, db, prefix] of [['app:jobs', 2, 'app:jobs:'], ['', 3, '']]) {
      const q = await env.queue(true, { namespace, db });
      const r = env.client(db);
      const d = await env.driver({ processors: 1, queues: ['q'],
        query: `?namespace=${encodeURIComponent(namespace)}&db=${db}` });
      await q.enqueue('q', 'record', [{ namespace }]);
      assert.deepEqual(await r.lrange(`${prefix}queue:q`, 0, -1),
        [payload('record', 'q', [{ namespace }])]);
      await d.call('start');
      await waitFor(`Stellar to run the job in namespace "${namespace}"`, () =>
        d.records().some((x) => x.params === JSON.stringify({ namespace })));
      await d.call('enqueue', { task: 'record', queue: 'other', params: JSON.stringify({ from: 'stellar' }) });
      assert.deepEqual(await q.queued('other', 0, -1), [{ class: 'record', queue: 'other', args: [{ from: 'stellar' }] }]);
      assert.deepEqual(await r.lrange(`${prefix}queue:other`, 0, -1),
        [payload('record', 'other', [{ from: 'stellar' }])]);
      const workers = await q.workers();
      assert.equal(Object.keys(workers).length, 1);
      assert.equal(Object.values(workers)[0], 'q');
      assert.equal(await r.sismember(`${prefix}workers`, `${Object.keys(workers)[0]}:q`), 1);
      await d.call('stop');
      assert.deepEqual(await q.workers(), {});
      // Nothing leaked into the default namespace or database.
      assert.deepEqual(Object.keys(await dump(env.r, 'resque:*')).filter((k) => !/connection_test_key/.test(k)), []);
    }
  }));

test('a node-resque job with a lone surrogate in its args is not lost in Stellar (it fails, visibly)', T,
  withEnv(async (env) => {
    // JSON.stringify writes "\ud800"; jansson refuses it, so Stellar fails
    // the job and keeps its raw payload in the failed list. (node-resque's
    // own worker loses such a job: its Lua cjson cannot decode it either.)
    const q = await env.queue();
    const d = await env.driver({ processors: 1, queues: ['q'] });
    const p = { id: 'lone', s: 'x\ud800y' };
    await q.enqueue('q', 'record', [p]);
    await d.call('start');
    await waitFor('the failure', async () => (await q.failedCount()) === 1);
    const [f] = await q.failed(0, -1);
    assert.equal(f.payload, payload('record', 'q', [p]));
    assert.match(f.error, /Unicode/);
    assert.deepEqual(d.records(), []);
  }));

// ----------------------------------------------------------------------------
// Known differences: each is a real incompatibility found by this suite and
// reported, not fixed here. They run as TODO tests (reported, not failing)
// until the library is fixed; then they pass and the todo can go.

test('JSON member order: Stellar orders integer-like keys as JSON.stringify does', T, withEnv(async (env) => {
  const q = await env.queue();
  const d = await env.driver();
  const text = '{"b":1,"2":2,"a":3,"1":4}';
  await d.call('enqueue', { task: 'record', queue: 'order', params: text });
  const stored = await env.r.lindex('resque:queue:order', 0);
  assert.equal(stored, payload('record', 'order', [JSON.parse(text)]));
  assert.equal(await q.del('order', 'record', [JSON.parse(text)]), 1);
  // The same in a failed entry: node-resque's removeFailed re-serialises
  // the entry it was given, so it cannot find Stellar's.
  const p = await env.driver({ processors: 1, queues: ['q'] });
  await p.call('enqueue', { task: 'fail', params: text });
  await p.call('start');
  await waitFor('the failure', async () => (await q.failedCount()) === 1);
  const [f] = await q.failed(0, -1);
  assert.equal(await q.removeFailed(f), 1);
}, { quiet: true }));

test('a Stellar enqueueIn of a queueLock task survives promotion by a node-resque scheduler', T, withEnv(async (env) => {
  const q = await env.queue();
  const d = await env.driver();
  assert.deepEqual(await d.call('enqueue', { task: 'qlocked', params: '{"id":9}', in: 0 }), { rc: 0 });
  await env.scheduler(); // node-resque's, given the job table (as apps do)
  // node-resque's scheduler holds the job in memory between its LPOP from
  // the delayed list and its RPUSH to the queue: wait for both ends.
  await waitFor('node-resque\'s scheduler to promote the job', async () =>
    (await q.timestamps()).length === 0 && (await q.length('locks')) > 0);
  assert.deepEqual(await q.queued('locks', 0, -1),
    [{ class: 'qlocked', queue: 'locks', args: [{ id: 9 }] }], 'the promoted job is gone');
}, { quiet: true }));
