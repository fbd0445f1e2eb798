// lib.js: the pieces interop.test.js is built from: a private redis-server
// per test, the C driver (Stellar's side, over stdin/stdout), node-resque's
// Queue / Worker / Scheduler on that Redis, and waiting with deadlines.
'use strict';
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');
const IORedis = require('ioredis');
const NR = require('node-resque');

const DRIVER = process.env.STELLAR_INTEROP_DRIVER;

// ------------------------------------------------------------- Waiting ---

// Polls fn() (sync or async) every `every` ms until it returns a truthy
// value, which is returned; throws after timeoutMs naming `what`.
async function waitFor(what, fn, timeoutMs = 10000, every = 20) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
      last = v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      const detail = last instanceof Error ? last.stack : JSON.stringify(last);
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${detail})`);
    }
    await new Promise((r) => setTimeout(r, every));
  }
}

// -------------------------------------------------------- redis-server ---

async function startRedis(dir) {
  const sock = path.join(dir, 'redis.sock');
  const logPath = path.join(dir, 'redis.log');
  // --port 0: no TCP at all; a unix socket of our own, nothing saved.
  const proc = spawn('redis-server', ['--port', '0', '--unixsocket', sock,
    '--unixsocketperm', '700', '--save', '', '--appendonly', 'no',
    '--dir', dir, '--logfile', logPath], { stdio: 'ignore' });
  let exited = null;
  const reap = () => proc.kill('SIGKILL');
  process.on('exit', reap); // never outlive the test process
  proc.on('exit', (code, sig) => {
    exited = `exit ${code} ${sig || ''}`;
    process.off('exit', reap);
  });
  const probe = new IORedis({ path: sock, lazyConnect: true,
    maxRetriesPerRequest: 0, retryStrategy: () => null });
  probe.on('error', () => {});
  await waitFor('redis-server to answer PING', async () => {
    if (exited) throw new Error(`redis-server ended: ${exited}`);
    if (!fs.existsSync(sock)) return false;
    try {
      if (probe.status !== 'ready') await probe.connect();
      return (await probe.ping()) === 'PONG';
    } catch {
      probe.disconnect();
      return false;
    }
  }, 15000, 25);
  probe.disconnect();
  return {
    sock,
    url: `redis+unix://${sock}`,
    async stop() {
      if (exited) return;
      const done = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGKILL');
      await done;
    },
  };
}

// -------------------------------------------------------------- Driver ---

class Driver {
  constructor(dir, n) {
    this.dir = dir;
    this.recordPath = path.join(dir, `stellar-record-${n}.jsonl`);
    this.logPath = path.join(dir, `stellar-${n}.log`);
    this.proc = spawn(DRIVER, [], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.pending = [];
    this.stderr = '';
    this.exited = null;
    this.proc.stderr.on('data', (d) => { this.stderr += d; });
    const reap = () => this.proc.kill('SIGKILL');
    process.on('exit', reap);
    this.proc.on('exit', (code, sig) => {
      process.off('exit', reap);
      this.code = code;
      this.exited = `exit ${code} ${sig || ''}`;
      for (const p of this.pending.splice(0)) {
        p.reject(new Error(`interop_driver ended (${this.exited}): ${this.stderr}`));
      }
    });
    readline.createInterface({ input: this.proc.stdout }).on('line', (line) => {
      const p = this.pending.shift();
      if (p) p.resolve(line);
    });
  }

  // Sends one request; resolves with the raw answer line.
  raw(req) {
    if (this.exited) return Promise.reject(new Error(`interop_driver ended (${this.exited})`));
    return new Promise((resolve, reject) => {
      this.pending.push({ resolve, reject });
      this.proc.stdin.write(JSON.stringify(req) + '\n');
    });
  }

  // Sends a request; resolves with result, rejects with the driver's error
  // (err.code = the STELLAR_E* name).
  async call(cmd, args = {}) {
    const line = await this.raw({ cmd, ...args });
    const ans = JSON.parse(line);
    if (!ans.ok) {
      const err = new Error(`${cmd}: ${ans.code}: ${ans.error}`);
      err.code = ans.code;
      throw err;
    }
    return ans.result;
  }

  async open(url, opts = {}) {
    return this.call('open', { url, record: this.recordPath, log: this.logPath, ...opts });
  }

  // The record file's lines, parsed.
  records() {
    if (!fs.existsSync(this.recordPath)) return [];
    return fs.readFileSync(this.recordPath, 'utf8').split('\n')
      .filter((l) => l !== '').map((l) => JSON.parse(l));
  }

  async quit() {
    if (this.exited) return;
    const ended = new Promise((r) => this.proc.once('exit', r));
    try {
      await this.raw({ cmd: 'quit' });
    } catch { /* already gone */ }
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 15000);
    await ended;
    clearTimeout(timer);
  }

  kill() {
    if (!this.exited) this.proc.kill('SIGKILL');
  }
}

// --------------------------------------------------------- node-resque ---

// One test's world: a temp dir, a redis-server, drivers, node-resque
// objects; everything is torn down by close().
class Env {
  constructor(name) {
    this.name = name;
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stellar-interop-'));
    this.clients = [];
    this.closers = [];
    this.drivers = [];
    this.errors = [];
    this.nodeRecords = [];
    this.gate = makeGate();
  }

  async init() {
    this.redis = await startRedis(this.dir);
    this.r = this.client(); // raw access for key-level checks
    return this;
  }

  client(db = 0) {
    const c = new IORedis({ path: this.redis.sock, db, maxRetriesPerRequest: 1 });
    c.on('error', (err) => this.errors.push(`ioredis: ${err.message}`));
    this.clients.push(c);
    return c;
  }

  // node-resque connection options; conn = {namespace, db} (defaults
  // resque, 0).
  connection(conn = {}) {
    return { redis: this.client(conn.db || 0), namespace: conn.namespace ?? 'resque' };
  }

  // A Stellar handle in an interop_driver; opts as the driver's open, plus
  // query: the URL's query string (e.g. "?namespace=x&db=2").
  async driver(opts = {}) {
    const d = new Driver(this.dir, this.drivers.length + 1);
    this.drivers.push(d);
    const { query = '', ...rest } = opts;
    await d.open(this.redis.url + query, rest);
    return d;
  }

  async queue(withJobs = true, conn = {}) {
    const q = new NR.Queue({ connection: this.connection(conn) }, withJobs ? nodeJobs(this) : {});
    q.on('error', (err) => this.errors.push(`queue: ${err.stack || err}`));
    await q.connect();
    this.closers.push(() => q.end());
    return q;
  }

  async worker(queues, name, timeout = 100, conn = {}) {
    const w = new NR.Worker({ connection: this.connection(conn), queues, timeout, name },
      nodeJobs(this));
    w.on('error', (err) => this.errors.push(`worker: ${err.stack || err}`));
    await w.connect();
    await w.start();
    let ended = false;
    this.closers.unshift(async () => { if (!ended) await w.end(); });
    w.stop = async () => { ended = true; await w.end(); };
    return w;
  }

  async scheduler(name = 'node-sched', timeout = 100) {
    const s = new NR.Scheduler({ connection: this.connection(), timeout, name,
      leaderLockTimeout: 180, stuckWorkerTimeout: 3600000 }, nodeJobs(this));
    s.on('error', (err) => this.errors.push(`scheduler: ${err.stack || err}`));
    await s.connect();
    await s.start();
    let ended = false;
    this.closers.unshift(async () => { if (!ended) await s.end(); });
    s.stop = async () => { ended = true; await s.end(); };
    return s;
  }

  async close(failed) {
    const keep = failed && process.env.STELLAR_INTEROP_KEEP === '1';
    this.gate.open();
    for (const d of this.drivers) {
      try {
        await d.call('gate', { open: true });
      } catch { /* gone */ }
    }
    for (const c of this.closers) {
      try {
        await withDeadline(c(), 15000, 'closing a node-resque object');
      } catch (err) {
        this.errors.push(`close: ${err.message}`);
      }
    }
    await Promise.all(this.drivers.map((d) => d.quit()));
    // A driver that did not end with status 0 after quit (a sanitizer
    // report, a crash at close) fails the test.
    this.badExits = this.drivers.filter((d) => d.code !== 0)
      .map((d) => `interop_driver ${d.exited}: ${d.stderr.slice(-4000)}`);
    if (this.badExits.length) failed = true;
    for (const c of this.clients) c.disconnect();
    if (this.redis) await this.redis.stop();
    if (failed) {
      console.log(`# ${this.name}: ${keep ? `kept ${this.dir}` : 'failed (STELLAR_INTEROP_KEEP=1 keeps its temp dir)'}`);
      for (const d of this.drivers) {
        if (d.stderr) console.log(`# driver stderr: ${d.stderr}`);
        if (fs.existsSync(d.logPath)) {
          const log = fs.readFileSync(d.logPath, 'utf8').split('\n');
          console.log(`# ${d.logPath} (last 40 lines):\n${log.slice(-40).join('\n')}`);
        }
      }
      if (this.errors.length) console.log(`# errors:\n${this.errors.join('\n')}`);
    }
    if (!keep) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

function withDeadline(promise, ms, what) {
  let timer;
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: still not done after ${ms} ms`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

// A test body with its Env: node:test's test(name, opts, withEnv(fn)).
// The body gets `ms` (less than the test's own timeout), so that a stuck
// test still fails with a message and tears its world down.
// opts.quiet: no logs on failure (for TODO tests, which are expected to
// fail). STELLAR_INTEROP_KEEP=1 keeps a failed test's temp dir.
function withEnv(fn, { ms = 75000, quiet = false } = {}) {
  return async (t) => {
    const env = await new Env(t.name).init();
    let failed = true;
    try {
      await withDeadline(fn(env, t), ms, 'the test body');
      failed = false;
    } finally {
      await env.close(failed && !quiet);
    }
    if (env.badExits.length) throw new Error(env.badExits.join('\n'));
    // node-resque reports what it cannot handle (say, a record it cannot
    // parse) as 'error' events: none is expected.
    if (env.errors.length && !quiet) {
      throw new Error(`node-resque / ioredis errors:\n${env.errors.join('\n')}`);
    }
  };
}

function makeGate() {
  let open = true;
  let waiters = [];
  return {
    close() { open = false; },
    open() { open = true; waiters.splice(0).forEach((r) => r()); },
    wait() { return open ? Promise.resolve() : new Promise((r) => waiters.push(r)); },
  };
}

// The node-resque job table: the same names (and plugins) as the driver's
// tasks. Every run is recorded in env.nodeRecords as {task, args (the JSON
// of the positional arguments), worker, at, phase}.
function nodeJobs(env) {
  const seen = new Set();
  const rec = (task, worker, args, phase = 'run') => env.nodeRecords.push({
    task, args: JSON.stringify(args), at: Date.now(), phase,
    worker: worker && worker.name,
  });
  return {
    record: { perform: async function (...args) { rec('record', this, args); return true; } },
    mixed: { perform: async function (...args) { rec('mixed', this, args); return true; } },
    fail: {
      perform: async function (...args) {
        rec('fail', this, args);
        throw new Error('node says no');
      },
    },
    failonce: {
      perform: async function (...args) {
        const k = JSON.stringify(args);
        const first = !seen.has(k);
        seen.add(k);
        rec('failonce', this, args, first ? 'fail' : 'run');
        if (first) throw new Error('failonce: the first try fails');
        return true;
      },
    },
    block: {
      perform: async function (...args) {
        rec('block', this, args, 'start');
        await env.gate.wait();
        rec('block', this, args, 'end');
        return true;
      },
    },
    qlocked: {
      plugins: ['QueueLock'],
      pluginOptions: { QueueLock: {} },
      perform: async function (...args) { rec('qlocked', this, args); return true; },
    },
    jlocked: {
      plugins: ['JobLock'],
      pluginOptions: { JobLock: { reEnqueue: true } },
      perform: async function (...args) {
        rec('jlocked', this, args, 'start');
        await env.gate.wait();
        rec('jlocked', this, args, 'end');
        return true;
      },
    },
    retried: {
      plugins: ['Retry'],
      pluginOptions: { Retry: { retryLimit: 3, retryDelay: 1000 } },
      perform: async function (...args) {
        rec('retried', this, args);
        throw new Error('node says no');
      },
    },
  };
}

// Every key of the namespace with its type, TTL and value, for comparing
// whole states and for failure messages.
async function dump(r, pattern = 'resque:*') {
  const keys = (await r.keys(pattern)).sort();
  const out = {};
  for (const k of keys) {
    const type = await r.type(k);
    let value;
    if (type === 'string') value = await r.get(k);
    else if (type === 'list') value = await r.lrange(k, 0, -1);
    else if (type === 'set') value = (await r.smembers(k)).sort();
    else if (type === 'zset') value = await r.zrange(k, 0, -1, 'WITHSCORES');
    out[k] = { type, ttl: await r.ttl(k), value };
  }
  return out;
}

module.exports = { assert, waitFor, withEnv, dump, Driver, Env, NR, DRIVER };
