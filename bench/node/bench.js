// bench.js: the node-resque side of `make bench` (bench/run.sh drives it).
// Each mode runs one workload once against the Redis at 127.0.0.1:PORT and
// prints one JSON object, as ../bench.c does for Stellar:
//
//   enqueue PORT N INFLIGHT   N queue.enqueue calls, INFLIGHT at a time
//   process PORT N WORKERS    N jobs queued first, then WORKERS workers (one
//                             connection each, in this process) run them
//   latency PORT N WORKERS    enqueue-to-start, one job at a time
//   delayed PORT N WORKERS    how far from their time delayed jobs start,
//                             |start - due| (with a scheduler)
//   serve PORT WORKERS        WORKERS workers + a scheduler until SIGTERM
//                             (run.sh reads its RSS)
//
// Jobs: class "noop" on queue "bench", args [{"i": n}], as bench.c writes.
// Workers and the scheduler poll every 100 ms when idle (option `timeout`,
// 5000 by default), the interval Stellar's processors use by default.
"use strict";

const os = require("os");
const { performance } = require("perf_hooks");
const { Queue, Worker, Scheduler } = require("node-resque");

const TIMEOUT_MS = 100;
const [mode, portArg, nArg, kArg] = process.argv.slice(2);
const port = Number(portArg);
const connection = {
  pkg: "ioredis",
  host: "127.0.0.1",
  port,
  database: 0,
  namespace: "resque",
};

let done = 0;
let want = Infinity;
let onDone = null;
let record = null; // (params) => void, per mode

const jobs = {
  noop: {
    perform: async (params) => {
      if (record) record(params);
      done++;
      if (done >= want && onDone) onDone();
    },
  },
};

const nowUs = () => Number(process.hrtime.bigint() / 1000n);
const wallMs = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const until = (n) =>
  new Promise((resolve) => {
    want = n;
    onDone = resolve;
    if (done >= n) resolve();
  });

function pct(v, p) {
  const s = Float64Array.from(v).sort();
  const k = Math.ceil((p / 100) * s.length);
  return s[k ? k - 1 : 0];
}

async function queue() {
  const q = new Queue({ connection }, jobs);
  q.on("error", (e) => console.error("queue error", e));
  await q.connect();
  return q;
}

async function startWorkers(n) {
  const ws = [];
  for (let k = 1; k <= n; k++) {
    const w = new Worker(
      {
        connection,
        queues: ["bench"],
        timeout: TIMEOUT_MS,
        name: `${os.hostname()}:${process.pid}+${k}`,
      },
      jobs,
    );
    w.on("error", (e) => console.error("worker error", e));
    await w.connect();
    ws.push(w);
  }
  return ws;
}

async function enqueue(n, inflight) {
  const q = await queue();
  let next = 0;
  const t0 = nowUs();
  async function lane() {
    while (next < n) {
      const i = next++;
      await q.enqueue("bench", "noop", [{ i }]);
    }
  }
  await Promise.all(Array.from({ length: inflight }, lane));
  const t1 = nowUs();
  await q.end();
  return { rate: (n * 1e6) / (t1 - t0) };
}

async function processJobs(n, workers) {
  const q = await queue();
  const redis = q.connection.redis;
  for (let i = 0; i < n; i += 1000) {
    const m = redis.multi().sadd("resque:queues", "bench");
    for (let j = i; j < Math.min(n, i + 1000); j++)
      m.rpush(
        "resque:queue:bench",
        JSON.stringify({ class: "noop", queue: "bench", args: [{ i: j }] }),
      );
    await m.exec();
  }
  const ws = await startWorkers(workers);
  const finished = until(n);
  const t0 = nowUs();
  for (const w of ws) w.start();
  await finished;
  const t1 = nowUs();
  await Promise.all(ws.map((w) => w.end()));
  await q.end();
  return { rate: (n * 1e6) / (t1 - t0) };
}

async function latency(n, workers) {
  const q = await queue();
  const lat = new Float64Array(n);
  record = (p) => {
    lat[p.i] = nowUs() - p.t;
  };
  const ws = await startWorkers(workers);
  for (const w of ws) w.start();
  await sleep(300);
  for (let i = 0; i < n; i++) {
    const ran = until(i + 1);
    await q.enqueue("bench", "noop", [{ i, t: nowUs() }]);
    await ran;
    await sleep(2 + Math.random() * 8);
  }
  await Promise.all(ws.map((w) => w.end()));
  await q.end();
  return { p50_ms: pct(lat, 50) / 1000, p99_ms: pct(lat, 99) / 1000 };
}

async function delayed(n, workers) {
  const q = await queue();
  const late = new Float64Array(n);
  record = (p) => {
    late[p.i] = Math.abs(wallMs() - p.due); // node-resque may run it early
  };
  const sched = new Scheduler({ connection, timeout: TIMEOUT_MS });
  sched.on("error", (e) => console.error("scheduler error", e));
  await sched.connect();
  sched.start();
  const ws = await startWorkers(workers);
  for (const w of ws) w.start();
  await sleep(300);
  const now = Date.now();
  for (let i = 0; i < n; i++) {
    const at = now + 1000 + Math.floor(Math.random() * 3000);
    // Redis keeps the second, Math.round(at / 1000): that is the time.
    const due = Math.round(at / 1000) * 1000;
    await q.enqueueAt(at, "bench", "noop", [{ i, due }]);
  }
  await until(n);
  await Promise.all(ws.map((w) => w.end()));
  await sched.end();
  await q.end();
  return { p50_ms: pct(late, 50), p99_ms: pct(late, 99) };
}

async function serve(workers) {
  const sched = new Scheduler({ connection, timeout: TIMEOUT_MS });
  await sched.connect();
  sched.start();
  const ws = await startWorkers(workers);
  for (const w of ws) w.start();
  console.log(JSON.stringify({ ready: true }));
  await new Promise((r) => process.once("SIGTERM", r));
  await Promise.all(ws.map((w) => w.end()));
  await sched.end();
  return null;
}

async function main() {
  const n = Number(nArg);
  const k = Number(kArg);
  let res;
  if (mode === "enqueue") res = await enqueue(n, k);
  else if (mode === "process") res = await processJobs(n, k);
  else if (mode === "latency") res = await latency(n, k);
  else if (mode === "delayed") res = await delayed(n, k);
  else if (mode === "serve") res = await serve(n);
  else {
    console.error("usage: node bench.js enqueue|process|latency|delayed PORT N K | serve PORT WORKERS");
    process.exit(2);
  }
  if (res) console.log(JSON.stringify(res));
  process.exit(0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
