/*
 * Stellar dashboard: vanilla JS, no build step, no external resources.
 *
 * Reads the JSON API under api/ every 2 s (the page on view, and stats for
 * the chart), and changes things with POST/DELETE carrying the
 * X-Stellar-CSRF header the server requires.
 *
 * Safety rule: every value that comes from the server (task and queue
 * names, params, errors, backtraces, lock names, worker names) reaches the
 * page through textContent or a text node, never through innerHTML; the
 * helper el() below only ever makes text nodes of strings. The server's
 * Content-Security-Policy forbids inline script besides.
 */
'use strict';

(function () {
  const POLL_MS = 2000;
  const CHART_SPAN_MS = 10 * 60 * 1000;
  const QUEUE_PAGE = 50;
  const FAILED_PAGE = 25;
  const DELAYED_PAGE = 100; /* jobs a page of Delayed asks for (api/delayed) */

  /* ------------------------------------------------------- Helpers --- */

  const $ = (id) => document.getElementById(id);

  /* el('td', {class: 'n'}, 'text', childNode, ...): strings become text
   * nodes; attributes are set with setAttribute, except on* (listeners). */
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
        if (v === undefined || v === null || v === false) continue;
        if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
        else if (k === 'class') e.className = v;
        else e.setAttribute(k, String(v));
      }
    }
    for (const kid of kids.flat()) {
      if (kid === undefined || kid === null || kid === false) continue;
      e.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    }
    return e;
  }

  function json(v) {
    try { return JSON.stringify(v); } catch (_) { return String(v); }
  }

  function pretty(v) {
    try { return JSON.stringify(v, null, 2); } catch (_) { return String(v); }
  }

  /* A time from the API as ms: numbers (ms, or s if small), numeric
   * strings, or date strings (node-resque writes Date.toString()). */
  function ms(v) {
    if (v === null || v === undefined || v === '') return null;
    if (typeof v === 'string' && /^\d+(\.\d+)?$/.test(v)) v = Number(v);
    if (typeof v === 'number') return v < 1e11 ? v * 1000 : v;
    const t = Date.parse(v);
    return Number.isNaN(t) ? null : t;
  }

  function dur(d) {
    d = Math.max(0, Math.round(d / 1000));
    if (d < 60) return d + 's';
    if (d < 3600) return Math.floor(d / 60) + 'm ' + (d % 60) + 's';
    if (d < 86400) return Math.floor(d / 3600) + 'h ' + Math.floor((d % 3600) / 60) + 'm';
    return Math.floor(d / 86400) + 'd ' + Math.floor((d % 86400) / 3600) + 'h';
  }

  function rel(t) {
    if (t === null) return '–';
    const d = t - Date.now();
    if (Math.abs(d) < 1000) return 'now';
    return d > 0 ? 'in ' + dur(d) : dur(-d) + ' ago';
  }

  function stamp(t) {
    if (t === null) return '';
    const d = new Date(t);
    return Number.isNaN(d.getTime()) ? '' : d.toLocaleString();
  }

  /* A span whose text is kept current by refreshTimes(). */
  function timeEl(t, mode) {
    const s = el('span', {'data-t': t === null ? '' : t, 'data-mode': mode || 'rel', title: stamp(t)});
    s.textContent = mode === 'for' ? (t === null ? '–' : dur(Date.now() - t)) : rel(t);
    return s;
  }

  function refreshTimes() {
    for (const s of document.querySelectorAll('[data-t]')) {
      const t = s.dataset.t === '' ? null : Number(s.dataset.t);
      s.textContent = s.dataset.mode === 'for' ? (t === null ? '–' : dur(Date.now() - t)) : rel(t);
    }
  }

  function fmt(n) {
    return typeof n === 'number' ? n.toLocaleString() : '–';
  }

  function toast(msg, isError) {
    const t = el('div', {class: 'toast' + (isError ? ' error' : ''), role: 'status'}, msg);
    $('toasts').append(t);
    setTimeout(() => t.remove(), isError ? 7000 : 3500);
  }

  /* Rows of a table: cells get data-label from the header, for the phone
   * layout (CSS shows it before each value). */
  function fillTable(table, rows, emptyEl) {
    const labels = [...table.tHead.rows[0].cells].map((c) => c.textContent);
    for (const tr of rows)
      [...tr.cells].forEach((td, i) => { if (labels[i]) td.setAttribute('data-label', labels[i]); });
    table.tBodies[0].replaceChildren(...rows);
    table.hidden = rows.length === 0;
    if (emptyEl) emptyEl.hidden = rows.length !== 0;
  }

  /* The args of a payload as shown: the params object when there is one
   * (Stellar's one-element args), else the whole args array. */
  function paramsOf(payload) {
    const args = payload && payload.args;
    if (Array.isArray(args) && args.length === 1) return args[0];
    return args === undefined ? null : args;
  }

  function payloadOf(p) {
    if (typeof p === 'string') {
      try { return JSON.parse(p); } catch (_) { return {class: '?', args: [p]}; }
    }
    return p || {};
  }

  /* ----------------------------------------------------------- API --- */

  async function api(method, path, body) {
    const opt = {method, headers: {Accept: 'application/json'}, credentials: 'same-origin', cache: 'no-store'};
    if (method !== 'GET') opt.headers['X-Stellar-CSRF'] = '1';
    if (body !== undefined) {
      opt.headers['Content-Type'] = 'application/json';
      opt.body = JSON.stringify(body);
    }
    const r = await fetch('api/' + path, opt);
    const text = await r.text();
    let doc = null;
    try { doc = text ? JSON.parse(text) : null; } catch (_) { /* not JSON */ }
    if (!r.ok) {
      const err = new Error(doc && doc.error ? doc.error : 'HTTP ' + r.status);
      err.status = r.status;
      throw err;
    }
    return doc;
  }

  const enc = encodeURIComponent;

  /* Runs a change, tells the outcome, and refreshes the page on view. */
  async function act(label, method, path, body) {
    try {
      await api(method, path, body);
      toast(label);
    } catch (e) {
      toast(label + ' failed: ' + e.message, true);
    }
    lastRendered = {};
    poll();
  }

  /* --------------------------------------------------------- Chart --- */

  const samples = []; /* {t, processed, failed} from api/stats */

  function addSample(stats) {
    const now = Date.now();
    /* Polls right after an action come early: a rate over a few ms would
     * spike, so keep samples at least a second apart. */
    if (samples.length && now - samples[samples.length - 1].t < 1000) return;
    samples.push({t: now, processed: Number(stats.processed) || 0, failed: Number(stats.failed) || 0});
    while (samples.length && samples[0].t < now - CHART_SPAN_MS - POLL_MS * 2) samples.shift();
  }

  function rates() {
    const out = [];
    for (let i = 1; i < samples.length; i++) {
      const a = samples[i - 1], b = samples[i], dt = (b.t - a.t) / 1000;
      if (dt <= 0) continue;
      out.push({t: b.t, ok: Math.max(0, b.processed - a.processed) / dt, fail: Math.max(0, b.failed - a.failed) / dt});
    }
    return out;
  }

  function niceMax(v) {
    if (v <= 1) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
    return 10 * p;
  }

  function drawChart() {
    const c = $('chart');
    if (!c || c.offsetParent === null) return;
    const dpr = window.devicePixelRatio || 1;
    const w = c.clientWidth, h = c.clientHeight;
    if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
      c.width = Math.round(w * dpr);
      c.height = Math.round(h * dpr);
    }
    const g = c.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    const css = getComputedStyle(document.documentElement);
    const colOk = css.getPropertyValue('--ok').trim() || '#2f9e6a';
    const colFail = css.getPropertyValue('--fail').trim() || '#d6453d';
    const L = 44, R = 8, T = 8, B = 22, pw = w - L - R, ph = h - T - B;
    const r = rates();
    /* The window grows with the samples, from one minute to ten. */
    const now = Date.now();
    const span = Math.min(CHART_SPAN_MS, Math.max(60000, samples.length ? now - samples[0].t : 0));
    const t0 = now - span;
    const top = niceMax(Math.max(0, ...r.map((p) => Math.max(p.ok, p.fail))));
    g.font = '11px system-ui, sans-serif';
    g.fillStyle = '#6b7385';
    g.strokeStyle = '#e1e4ea';
    g.lineWidth = 1;
    g.textAlign = 'right';
    g.textBaseline = 'middle';
    for (let i = 0; i <= 4; i++) {
      const y = T + ph - (ph * i) / 4;
      g.beginPath(); g.moveTo(L, Math.round(y) + 0.5); g.lineTo(L + pw, Math.round(y) + 0.5); g.stroke();
      const v = (top * i) / 4;
      g.fillText(v >= 10 ? String(Math.round(v)) : String(Math.round(v * 100) / 100), L - 6, y);
    }
    g.textAlign = 'center';
    g.textBaseline = 'top';
    for (let i = 0; i <= 4; i++) {
      const ago = (span * (4 - i)) / 4;
      const x = L + (pw * i) / 4;
      g.textAlign = i === 0 ? 'left' : i === 4 ? 'right' : 'center';
      g.fillText(i === 4 ? 'now' : '-' + (span <= 120000 ? Math.round(ago / 1000) + 's' : dur(ago)), x, T + ph + 6);
    }
    const X = (t) => L + (pw * (t - t0)) / span;
    const Y = (v) => T + ph - (ph * v) / top;
    for (const [key, col] of [['ok', colOk], ['fail', colFail]]) {
      const pts = r.filter((p) => p.t >= t0);
      if (!pts.length) continue;
      g.beginPath();
      pts.forEach((p, i) => (i ? g.lineTo(X(p.t), Y(p[key])) : g.moveTo(X(p.t), Y(p[key]))));
      g.strokeStyle = col;
      g.lineWidth = 2;
      g.lineJoin = 'round';
      g.stroke();
      /* A light fill under the line, so short bursts stay visible. */
      g.lineTo(X(pts[pts.length - 1].t), Y(0));
      g.lineTo(X(pts[0].t), Y(0));
      g.closePath();
      g.globalAlpha = 0.12;
      g.fillStyle = col;
      g.fill();
      g.globalAlpha = 1;
    }
    if (r.length < 1) {
      g.fillStyle = '#6b7385';
      g.textAlign = 'center';
      g.textBaseline = 'middle';
      g.fillText('collecting samples…', L + pw / 2, T + ph / 2);
    }
    const last = r[r.length - 1];
    $('ov-rate-ok').textContent = last ? (Math.round(last.ok * 100) / 100).toString() : '0';
    $('ov-rate-fail').textContent = last ? (Math.round(last.fail * 100) / 100).toString() : '0';
  }

  /* --------------------------------------------------------- Pages --- */

  /* What each page last rendered (as JSON): a page is rebuilt only when
   * its data changed, so open details and scroll positions stay. */
  let lastRendered = {};
  function changed(key, data) {
    const s = json(data);
    if (lastRendered[key] === s) return false;
    lastRendered[key] = s;
    return true;
  }

  let lastStats = null, lastFailedCount = null;

  async function pollStats() {
    const [stats, fc] = await Promise.all([api('GET', 'stats'), api('GET', 'failed/count')]);
    lastStats = stats;
    lastFailedCount = fc.count;
    addSample(stats);
    const b = $('nav-failed');
    b.hidden = !fc.count;
    b.textContent = String(fc.count);
  }

  async function loadOverview() {
    /* One delayed job (the next) and the total: not the whole set. */
    const [queues, delayedPage, workers] = await Promise.all([api('GET', 'queues'), api('GET', 'delayed?limit=1'), api('GET', 'workers')]);
    const delayed = delayedPage.delayed;
    const s = lastStats || {};
    $('ov-processed').textContent = fmt(Number(s.processed) || 0);
    $('ov-failed').textContent = fmt(Number(s.failed) || 0);
    $('ov-failed-now').textContent = fmt(lastFailedCount);
    const qn = Object.keys(queues);
    $('ov-queued').textContent = fmt(qn.reduce((a, q) => a + (queues[q].length || 0), 0));
    $('ov-queues-sub').textContent = qn.length + (qn.length === 1 ? ' queue' : ' queues');
    const stamps = Object.keys(delayed);
    $('ov-delayed').textContent = fmt(delayedPage.total);
    const next = stamps.map(Number).sort((a, b) => a - b)[0];
    $('ov-delayed-sub').textContent = next === undefined ? 'none waiting' : 'next ' + rel(next);
    const wn = Object.keys(workers);
    const busy = wn.filter((n) => workers[n] && workers[n].working_on).length;
    $('ov-workers').textContent = fmt(wn.length);
    $('ov-workers-sub').textContent = busy + ' busy';
    drawChart();
  }

  /* Queues and one queue's jobs. */
  let queueName = null, queuePage = 0;

  async function loadQueues() {
    $('queues-list').hidden = queueName !== null;
    $('queue-detail').hidden = queueName === null;
    if (queueName !== null) return loadQueue();
    const [queues, limits] = await Promise.all([api('GET', 'queues'), api('GET', 'limits')]);
    if (!changed('queues', [queues, limits])) return;
    const rows = Object.keys(queues).map((q) =>
      el('tr', null,
        el('td', null, el('a', {href: '#queues/' + enc(q), class: 'mono'}, q)),
        el('td', {class: 'n'}, fmt(queues[q].length)),
        queues[q].latency_ms === null
          ? el('td', {class: 'muted', title: queues[q].length ? 'unknown on Redis: Resque job payloads carry no enqueue time' : 'empty'}, '–')
          : el('td', {class: 'latency', title: 'age of the oldest job'}, dur(queues[q].latency_ms)),
        /* Issue 15: paused (until a time, or until resumed). */
        queues[q].paused
          ? el('td', {class: 'paused'}, queues[q].paused_until === null ? 'paused' : el('span', null, 'paused, resumes ', timeEl(queues[q].paused_until)))
          : el('td', {class: 'muted'}, 'no'),
        el('td', {class: 'actions'},
          queues[q].paused
            ? el('button', {type: 'button', onclick: () => act('Resumed ' + q, 'POST', 'queues/' + enc(q) + '/resume')}, 'Resume')
            : el('button', {type: 'button', onclick: () => act('Paused ' + q, 'POST', 'queues/' + enc(q) + '/pause')}, 'Pause'),
          el('button', {type: 'button', class: 'danger', onclick: () => {
            if (confirm('Delete the queue "' + q + '" and its ' + queues[q].length + ' jobs?'))
              act('Deleted queue ' + q, 'DELETE', 'queues/' + enc(q));
          }}, 'Delete'))));
    fillTable($('queues-table'), rows, $('queues-empty'));
    /* Limits with their use: running (permits held) and starts in the
     * current rate window. */
    const lrows = Object.keys(limits).map((t) => {
      const l = limits[t];
      return el('tr', null,
        el('td', {class: 'mono'}, t),
        el('td', {class: 'n'}, l.concurrency === null ? '–' : fmt(l.running) + ' / ' + fmt(l.concurrency)),
        el('td', {class: 'n'}, l.rate === null ? '–' : fmt(l.started) + ' of ' + l.rate),
        el('td', {class: 'actions'},
          el('button', {type: 'button', class: 'danger', onclick: () => {
            if (confirm('Remove the limit on "' + t + '"?'))
              act('Removed the limit on ' + t, 'DELETE', 'limits/' + enc(t));
          }}, 'Remove')));
    });
    fillTable($('limits-table'), lrows, $('limits-empty'));
  }

  async function loadQueue() {
    const q = queueName;
    let len = 0;
    try {
      len = (await api('GET', 'queues/' + enc(q))).length;
    } catch (e) {
      if (e.status !== 404) throw e;
    }
    const pages = Math.max(1, Math.ceil(len / QUEUE_PAGE));
    if (queuePage >= pages) queuePage = pages - 1;
    const start = queuePage * QUEUE_PAGE;
    const jobs = len ? await api('GET', 'queues/' + enc(q) + '/jobs?start=' + start + '&stop=' + (start + QUEUE_PAGE - 1)) : [];
    $('qd-name').textContent = q;
    $('qd-length').textContent = len + (len === 1 ? ' job waiting' : ' jobs waiting');
    pager($('qd-pager'), queuePage, pages, len, (p) => { queuePage = p; lastRendered = {}; poll(); });
    if (!changed('queue', [q, start, jobs])) return;
    const rows = jobs.map((j, i) => {
      const p = paramsOf(j);
      const single = Array.isArray(j.args) && j.args.length === 1 && p && typeof p === 'object' && !Array.isArray(p);
      return el('tr', null,
        el('td', {class: 'n'}, start + i),
        el('td', {class: 'mono'}, String(j.class)),
        el('td', null, el('pre', {class: 'params'}, json(p))),
        el('td', {class: 'actions'},
          single ? el('button', {type: 'button', class: 'danger', onclick: () =>
            act('Removed a ' + j.class + ' job', 'DELETE', 'queues/' + enc(q) + '/jobs', {task: j.class, params: p, count: 1})}, 'Remove') : null));
    });
    fillTable($('qd-table'), rows, $('qd-empty'));
  }

  function pager(box, page, pages, total, go) {
    if (pages <= 1) { box.replaceChildren(); return; }
    box.replaceChildren(
      el('button', {type: 'button', disabled: page === 0 ? 'disabled' : null, onclick: () => go(page - 1)}, '‹ Previous'),
      el('span', null, 'Page ' + (page + 1) + ' of ' + pages + ' (' + total + ')'),
      el('button', {type: 'button', disabled: page >= pages - 1 ? 'disabled' : null, onclick: () => go(page + 1)}, 'Next ›'));
  }

  async function loadWorkers() {
    const workers = await api('GET', 'workers');
    if (!changed('workers', workers)) return;
    const rows = Object.keys(workers).sort().map((name) => {
      const w = workers[name] || {};
      const on = w.working_on;
      let doing = el('span', {class: 'idle'}, 'idle'), since = null;
      if (on) {
        const p = payloadOf(on.payload);
        since = ms(on.run_at);
        doing = el('div', null,
          el('span', {class: 'busy'}, String(p.class)), ' on ', el('span', {class: 'mono'}, String(on.queue)),
          el('pre', {class: 'params'}, json(paramsOf(p))));
      }
      return el('tr', null,
        el('td', {class: 'mono'}, name),
        el('td', {class: 'mono'}, String(w.queues || '')),
        el('td', null, timeEl(ms(w.started))),
        el('td', null, timeEl(ms(w.ping))),
        el('td', null, doing),
        el('td', {class: 'n'}, on ? timeEl(since, 'for') : '–'));
    });
    fillTable($('workers-table'), rows, $('workers-empty'));
  }

  /* Failed jobs, a page at a time, newest last as Resque keeps them. */
  let failedPage = 0;

  async function loadFailed() {
    const total = lastFailedCount === null ? (await api('GET', 'failed/count')).count : lastFailedCount;
    const pages = Math.max(1, Math.ceil(total / FAILED_PAGE));
    if (failedPage >= pages) failedPage = pages - 1;
    const start = failedPage * FAILED_PAGE;
    const list = total ? await api('GET', 'failed?start=' + start + '&stop=' + (start + FAILED_PAGE - 1)) : [];
    $('failed-count').textContent = '(' + total + ')';
    $('failed-retry-all').disabled = !total;
    $('failed-remove-all').disabled = !total;
    pager($('failed-pager'), failedPage, pages, total, (p) => { failedPage = p; lastRendered = {}; poll(); });
    if (!changed('failed', [start, list])) return;
    const cards = list.map((f, i) => {
      const idx = start + i;
      const p = payloadOf(f.payload);
      const bt = Array.isArray(f.backtrace) ? f.backtrace.join('\n') : (f.backtrace ? String(f.backtrace) : '');
      return el('article', {class: 'failure', 'data-index': idx},
        el('div', {class: 'head'},
          el('div', {class: 'what'}, el('span', {class: 'mono'}, String(p.class)), ' on ', el('span', {class: 'mono'}, String(f.queue))),
          el('div', {class: 'actions'},
            el('button', {type: 'button', class: 'retry', onclick: () =>
              act('Retried ' + p.class, 'POST', 'failed/' + idx + '/retry', {entry: f})}, 'Retry'),
            el('button', {type: 'button', class: 'danger remove', onclick: () =>
              act('Removed ' + p.class, 'DELETE', 'failed/' + idx, {entry: f})}, 'Remove'))),
        el('div', {class: 'meta'}, 'failed ', timeEl(ms(f.failed_at)), ' by ', el('span', {class: 'mono'}, String(f.worker))),
        el('div', {class: 'error'}, el('span', {class: 'exception'}, String(f.exception || 'Error')), ': ', String(f.error || '')),
        el('pre', {class: 'params'}, pretty(paramsOf(p))),
        bt ? el('details', null, el('summary', null, 'Backtrace (' + bt.split('\n').length + ' lines)'), el('pre', null, bt)) : null);
    });
    $('failed-list').replaceChildren(...cards);
    $('failed-empty').hidden = list.length !== 0;
  }

  /* Delayed jobs, a page (DELAYED_PAGE jobs, in time order) at a time:
   * the list and the timeline show that page; the count is the total. */
  let delayedPage = 0;
  async function loadDelayed() {
    let doc = await api('GET', 'delayed?offset=' + delayedPage * DELAYED_PAGE + '&limit=' + DELAYED_PAGE);
    const pages = Math.max(1, Math.ceil(doc.total / DELAYED_PAGE));
    if (delayedPage >= pages) {
      delayedPage = pages - 1;
      doc = await api('GET', 'delayed?offset=' + delayedPage * DELAYED_PAGE + '&limit=' + DELAYED_PAGE);
    }
    const delayed = doc.delayed;
    const stamps = Object.keys(delayed).map(Number).sort((a, b) => a - b);
    const now = Date.now();
    drawTimeline(stamps, delayed, now);
    if (!changed('delayed', doc)) return;
    $('delayed-count').textContent = '(' + doc.total + ')';
    pager($('delayed-pager'), delayedPage, pages, doc.total, (p) => { delayedPage = p; lastRendered = {}; poll(); });
    const slots = stamps.map((t) =>
      el('div', {class: 'slot'},
        el('div', {class: 'head'},
          el('div', null, el('span', {class: 'when'}, timeEl(t)), ' ', el('span', {class: 'muted'}, stamp(t))),
          el('button', {type: 'button', class: 'danger', onclick: () =>
            act('Deleted the jobs delayed to ' + stamp(t), 'DELETE', 'delayed/' + t)}, 'Delete')),
        el('ul', null, delayed[t].map((j) => {
          const p = payloadOf(j);
          return el('li', null, el('span', {class: 'mono'}, String(p.class)), ' on ', el('span', {class: 'mono'}, String(p.queue)), ' ',
            el('code', null, json(paramsOf(p))));
        }))));
    $('delayed-list').replaceChildren(...slots);
    $('delayed-empty').hidden = stamps.length !== 0;
    $('timeline').hidden = stamps.length === 0;
  }

  /* Markers from now to the last timestamp (at least one minute ahead). */
  function drawTimeline(stamps, delayed, now) {
    drawMarks('timeline', stamps.map((t) => ({t, label: delayed[t].length, title: stamp(t) + ' — ' + delayed[t].length + ' job(s)'})), now,
      stamps.length ? stamps[stamps.length - 1] : 0);
  }

  /* Marks {t, label, title} on the timeline of id (its -marks and -ticks),
   * from now to end (at least one minute ahead); later marks are left out. */
  function drawMarks(id, marks, now, end) {
    end = Math.max(now + 60000, end);
    const span = end - now;
    const pos = (t) => Math.min(100, Math.max(0, ((t - now) / span) * 100));
    $(id + '-marks').replaceChildren(...marks.filter((m) => m.t <= end).map((mk) => {
      const m = el('div', {class: 'mark' + (mk.t <= now ? ' due' : ''), title: mk.title}, mk.label);
      m.style.left = pos(mk.t) + '%';
      return m;
    }));
    const ticks = [];
    for (let i = 0; i <= 4; i++) {
      const t = now + (span * i) / 4;
      const k = el('div', {class: 'tick'}, i === 0 ? 'now' : '+' + dur(t - now));
      k.style.left = (i * 25) + '%';
      ticks.push(k);
    }
    $(id + '-ticks').replaceChildren(...ticks);
  }

  /* Cron schedules (GET /api/schedules): each one's next runs on a
   * timeline that reaches the furthest first run, and its last run. */
  async function loadSchedules() {
    const all = await api('GET', 'schedules');
    const names = Object.keys(all).sort();
    const now = Date.now();
    const firsts = names.map((n) => ms(all[n].next)).filter((x) => x !== null);
    const marks = [];
    names.forEach((n) => (all[n].upcoming || []).forEach((t) => {
      const at = ms(t);
      if (at !== null) marks.push({t: at, label: n.slice(0, 1), title: n + ' — ' + stamp(at) + (all[n].paused ? ' (paused)' : '')});
    }));
    $('sched-timeline').hidden = names.length === 0;
    drawMarks('sched-timeline', marks, now, firsts.length ? Math.max(...firsts) : 0);
    if (!changed('schedules', all)) return;
    const rows = names.map((n) => {
      const s = all[n];
      const last = ms(s.last);
      const next = (s.upcoming || []).map(ms).filter((x) => x !== null).slice(0, 3);
      return el('tr', {class: s.paused ? 'muted' : null},
        el('td', {class: 'mono'}, n),
        el('td', {class: 'mono'}, String(s.cron)),
        el('td', null, String(s.timezone)),
        el('td', {class: 'mono'}, String(s.task)),
        el('td', null, s.paused ? el('span', {class: 'muted'}, 'paused') : next.length ? next.map((t, i) => [i ? ', ' : '', timeEl(t)]).flat() : '–'),
        el('td', null, last === null ? 'never' : timeEl(last)),
        el('td', {class: 'actions'}, s.paused
          ? el('button', {type: 'button', onclick: () => act('Resumed ' + n, 'POST', 'schedules/' + enc(n) + '/resume')}, 'Resume')
          : el('button', {type: 'button', class: 'danger', onclick: () => act('Paused ' + n, 'POST', 'schedules/' + enc(n) + '/pause')}, 'Pause')));
    });
    fillTable($('schedules-table'), rows, $('schedules-empty'));
  }

  let taskNames = '';

  async function loadTasks() {
    const tasks = await api('GET', 'tasks');
    const names = json(tasks.map((t) => t.name));
    if (names !== taskNames) {
      taskNames = names;
      const sel = $('eq-task');
      const keep = sel.value;
      sel.replaceChildren(...tasks.map((t) => el('option', {value: t.name}, t.name)));
      if (keep) sel.value = keep;
    }
    if (!changed('tasks', tasks)) return;
    const rows = tasks.map((t) => {
      const periodic = t.frequency > 0 || typeof t.cron === 'string';
      const at = Array.isArray(t.scheduled_at) ? t.scheduled_at.map(ms).filter((x) => x !== null).sort((a, b) => a - b) : [];
      return el('tr', null,
        el('td', {class: 'mono'}, t.name),
        el('td', {class: 'mono'}, t.queue),
        el('td', null, t.cron ? el('span', {class: 'mono'}, t.cron) : periodic ? dur(t.frequency) : '–'),
        el('td', null, !periodic ? '–' : t.cron ? el('span', {class: 'muted'}, 'see Schedules') : at.length ? timeEl(at[0]) : el('span', {class: 'muted', title: 'Not in the delayed set: queued, running, or stopped'}, 'not scheduled')),
        el('td', null, t.description),
        el('td', {class: 'actions'}, periodic ? [
          el('button', {type: 'button', onclick: () => act('Started ' + t.name, 'POST', 'recurrent/' + enc(t.name))}, 'Start'),
          ' ',
          el('button', {type: 'button', class: 'danger', onclick: () => act('Stopped ' + t.name, 'DELETE', 'recurrent/' + enc(t.name))}, 'Stop'),
        ] : null));
    });
    fillTable($('tasks-table'), rows, $('tasks-empty'));
    $('enqueue-form').hidden = tasks.length === 0;
  }

  async function loadPeriodic() {
    await loadTasks();
    await loadSchedules();
  }

  async function loadLocks() {
    const locks = await api('GET', 'locks');
    if (!changed('locks', locks)) return;
    const rows = Object.keys(locks).sort().map((name) => {
      const l = locks[name] || {};
      const exp = ms(l.expires);
      return el('tr', null,
        el('td', {class: 'mono'}, name),
        el('td', {class: 'mono'}, String(l.value === undefined ? '' : l.value)),
        el('td', null, exp === null ? 'never' : timeEl(exp)),
        el('td', {class: 'actions'},
          el('button', {type: 'button', class: 'danger', onclick: () => act('Deleted lock ' + name, 'DELETE', 'locks/' + enc(name))}, 'Delete')));
    });
    fillTable($('locks-table'), rows, $('locks-empty'));
  }

  const pages = {
    overview: loadOverview,
    queues: loadQueues,
    workers: loadWorkers,
    failed: loadFailed,
    delayed: loadDelayed,
    tasks: loadPeriodic,
    locks: loadLocks,
  };

  /* ------------------------------------------------- Routing, polling --- */

  let current = 'overview';

  function route() {
    const raw = location.hash.slice(1);
    const slash = raw.indexOf('/');
    let page = (slash < 0 ? raw : raw.slice(0, slash)) || 'overview';
    if (!pages[page]) page = 'overview';
    queueName = null;
    if (page === 'queues' && slash >= 0) {
      try { queueName = decodeURIComponent(raw.slice(slash + 1)); } catch (_) { queueName = raw.slice(slash + 1); }
    }
    if (page !== current || page === 'queues') { lastRendered = {}; queuePage = 0; }
    current = page;
    for (const s of document.querySelectorAll('.page')) s.hidden = s.id !== 'page-' + page;
    for (const a of document.querySelectorAll('#nav a'))
      a.classList.toggle('active', a.dataset.page === page);
    document.title = 'Stellar · ' + page.charAt(0).toUpperCase() + page.slice(1);
    poll();
  }

  let timer = null, running = false, again = false;

  async function poll() {
    if (running) { again = true; return; }
    running = true;
    clearTimeout(timer);
    const st = $('status');
    try {
      await pollStats();
      await pages[current]();
      refreshTimes();
      st.className = 'status live';
      st.textContent = 'live · ' + new Date().toLocaleTimeString();
    } catch (e) {
      st.className = 'status error';
      st.textContent = e.status === 401 ? 'token needed: open with ?token=…' : 'error: ' + e.message;
    } finally {
      running = false;
      if (again) { again = false; poll(); } else timer = setTimeout(poll, POLL_MS);
    }
  }

  function init() {
    /* The token, if the page was opened with ?token=, is now in an
     * HttpOnly cookie: take it out of the address bar and history. */
    if (/[?&]token=/.test(location.search))
      history.replaceState(null, '', location.pathname + location.hash);

    $('failed-retry-all').addEventListener('click', () => {
      if (confirm('Retry every failed job?')) act('Retried all failed jobs', 'POST', 'failed/retry-all');
    });
    $('failed-remove-all').addEventListener('click', () => {
      if (confirm('Remove every failed job? This cannot be undone.')) act('Removed all failed jobs', 'DELETE', 'failed');
    });
    $('enqueue-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      let params;
      try {
        params = JSON.parse($('eq-params').value || '{}');
      } catch (e) {
        toast('Params are not JSON: ' + e.message, true);
        return;
      }
      const body = {task: $('eq-task').value, params};
      if ($('eq-queue').value.trim()) body.queue = $('eq-queue').value.trim();
      const delay = $('eq-in').value.trim();
      if (delay) {
        if (!/^\d+$/.test(delay)) { toast('Delay must be a whole number of ms', true); return; }
        body.in = Number(delay);
      }
      act('Enqueued ' + body.task, 'POST', 'enqueue', body);
    });
    window.addEventListener('hashchange', route);
    window.addEventListener('resize', drawChart);
    route();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
