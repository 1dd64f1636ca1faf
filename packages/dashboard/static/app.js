// The dashboard page: one EventSource (/api/events) brings `snapshot` messages (Redis, about once a
// second) and `live` messages (task rows fed by the watcher protocol). Rows are kept by key and
// updated in place, so a button under the pointer is never replaced between press and release.
// Every value reaches the page through textContent: a task's error or name is never markup.
'use strict';

const TOKEN_KEY = 'taskmesh-dashboard-token';
const state = { snapshot: null, live: new Map(), auth: { token: false, certificate: false }, skew: 0 };

const $ = (sel) => document.querySelector(sel);

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('data-')) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) e.append(c);
  return e;
}

function ago(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '-';
  const s = Math.max(0, ms) / 1000;
  if (s < 10) return `${s.toFixed(1)} s`;
  if (s < 120) return `${Math.round(s)} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${Math.round(s / 3600)} h`;
}

const fmtTime = (ms) => (ms ? new Date(ms).toLocaleTimeString() : '-');

/** Keeps tbody's rows equal to `items` (by key), creating and updating rows in place. */
function syncRows(table, items, key, create, update) {
  const tbody = table.tBodies[0];
  const existing = new Map([...tbody.rows].map((r) => [r.dataset.key, r]));
  let prev = null;
  for (const item of items) {
    const k = key(item);
    let row = existing.get(k);
    if (!row) {
      row = create(item);
      row.dataset.key = k;
    }
    existing.delete(k);
    update(row, item);
    const next = prev ? prev.nextSibling : tbody.firstChild;
    if (next !== row) tbody.insertBefore(row, next);
    prev = row;
  }
  for (const r of existing.values()) r.remove();
  const empty = document.querySelector(`.empty[data-for="${table.id}"]`);
  if (empty) empty.hidden = items.length > 0;
}

function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

function notice(text, ok = false) {
  const n = $('#notice');
  n.textContent = text;
  n.className = ok ? 'ok' : '';
  n.hidden = false;
  clearTimeout(notice.timer);
  notice.timer = setTimeout(() => (n.hidden = true), 8000);
}

// ---- state-changing actions ----

function token() {
  return sessionStorage.getItem(TOKEN_KEY) || '';
}

async function act(id, action, button) {
  const headers = {};
  if (token()) headers.authorization = `Bearer ${token()}`;
  button.disabled = true;
  try {
    const res = await fetch(`/api/tasks/${encodeURIComponent(id)}/${action}`, { method: 'POST', headers });
    const body = await res.json().catch(() => ({}));
    if (res.ok) notice(`${action} ${id}: ${body.state}`, true);
    else if (res.status === 401 || res.status === 403)
      notice(`${action} refused (${res.status}): ${body.error || ''}${state.auth.token ? ' — enter dashboard.token above' : ''}`);
    else notice(`${action} ${id} failed (${res.status}): ${body.error || ''}`);
  } catch (err) {
    notice(`${action} ${id} failed: ${err.message}`);
  } finally {
    button.disabled = false;
  }
}

function setupAuth() {
  // A token in the address (#token=...) is taken once and removed from it: the fragment never
  // reaches the server or its logs, and the address bar stops showing it.
  const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
    history.replaceState(null, '', location.pathname + location.search);
  }
  const input = $('#token');
  input.value = token();
  input.addEventListener('input', () => {
    sessionStorage.setItem(TOKEN_KEY, input.value.trim());
    showAuth();
  });
  $('#auth').addEventListener('submit', (e) => e.preventDefault());
}

function showAuth() {
  $('#auth').hidden = !state.auth.token;
  setText($('#token-state'), token() ? 'set' : 'needed for cancel and retry');
}

// ---- rendering ----

function runningRows() {
  const snap = state.snapshot;
  const byId = new Map();
  for (const t of state.live.values()) byId.set(t.id, { id: t.id, name: t.name, state: t.state, attempt: t.attempt, worker: '', live: t });
  for (const a of snap ? snap.assigned : []) {
    const row = byId.get(a.id);
    if (row) {
      row.worker = a.worker;
      // The record may be ahead of the stream (a cancel just recorded, a requeue).
      if (!row.live.endedAt && a.state !== 'RUNNING') row.state = a.state;
    } else {
      byId.set(a.id, { id: a.id, name: a.name, state: a.state, attempt: a.attempts, worker: a.worker, live: null });
    }
  }
  return [...byId.values()];
}

function createRunningRow() {
  const bar = el('div', { class: 'bar', role: 'progressbar' }, el('div', { class: 'fill' }), el('span', { class: 'label' }));
  const cancel = el('button', { class: 'cancel', type: 'button', textContent: 'Cancel' });
  const row = el(
    'tr',
    {},
    el('td', { class: 'mono id' }),
    el('td', { class: 'name' }),
    el('td', { class: 'state' }),
    el('td', { class: 'mono worker' }),
    el('td', { class: 'attempt' }),
    el('td', {}, bar),
    el('td', {}, cancel),
  );
  cancel.addEventListener('click', () => act(row.dataset.task, 'cancel', cancel));
  return row;
}

function updateRunningRow(row, r) {
  row.dataset.task = r.id;
  row.dataset.state = r.state;
  // An attempt that ended stays a while (dimmed) so its final state is seen.
  row.classList.toggle('ended', Boolean(r.live && r.live.endedAt));
  const c = row.cells;
  setText(c[0], r.id);
  setText(c[1], r.name);
  setText(c[2], r.state);
  c[2].className = `state ${r.state}`;
  setText(c[3], r.worker || '-');
  setText(c[4], String(r.attempt));
  const bar = c[5].firstChild;
  const live = r.live;
  const done = live && live.done !== null ? live.done : null;
  const total = live && live.total !== null ? live.total : null;
  const pct = done !== null && total ? Math.max(0, Math.min(100, (100 * done) / total)) : null;
  bar.classList.toggle('indeterminate', pct === null && r.state === 'RUNNING');
  bar.firstChild.style.width = pct === null ? (r.state === 'END' ? '100%' : '') : `${pct}%`;
  // Without a number the bar is indeterminate, which ARIA expresses by leaving the values out.
  if (done === null) bar.removeAttribute('aria-valuenow');
  else bar.setAttribute('aria-valuenow', String(done));
  if (total === null) bar.removeAttribute('aria-valuemax');
  else bar.setAttribute('aria-valuemax', String(total));
  bar.dataset.done = done === null ? '' : String(done);
  let label = done === null ? '' : total ? `${done}/${total} (${Math.round(pct)}%)` : String(done);
  const msg = live && (live.message || live.log);
  if (msg) label += `${label ? ' · ' : ''}${msg}`;
  if (live && live.error) label += `${label ? ' · ' : ''}${live.error}`;
  setText(bar.lastChild, label);
  const cancel = c[6].firstChild;
  cancel.hidden = !(r.state === 'RUNNING' || r.state === 'QUEUED' || r.state === 'STOPPED');
}

function renderRunning() {
  const rows = runningRows();
  syncRows($('#running'), rows, (r) => r.id, createRunningRow, updateRunningRow);
  setText($('#running-count'), `(${rows.filter((r) => r.state === 'RUNNING').length})`);
}

function renderSnapshot() {
  const snap = state.snapshot;
  if (!snap) return;
  setText($('#prefix'), `prefix ${snap.prefix}`);
  const q = snap.queues;
  const queues = [
    { k: 'intake', label: 'intake (new-task)', depth: q.intake },
    ...q.ready.map((r) => ({ k: `ready:${r.name}`, label: `ready: ${r.name}`, depth: r.depth })),
    { k: 'delayed', label: 'delayed (retry backoff)', depth: q.delayed },
    { k: 'stopped', label: 'stopped (to requeue)', depth: q.stopped },
  ];
  syncRows(
    $('#queues'),
    queues,
    (r) => r.k,
    () => el('tr', {}, el('td'), el('td', { class: 'depth' })),
    (row, r) => {
      row.dataset.queue = r.k;
      setText(row.cells[0], r.label);
      setText(row.cells[1], String(r.depth));
    },
  );

  syncRows(
    $('#workers'),
    snap.workers,
    (w) => w.id,
    () => el('tr', {}, el('td', { class: 'mono' }), el('td', {}, el('span', { class: 'load' }, el('span')), el('span')), el('td'), el('td')),
    (row, w) => {
      row.dataset.worker = w.id;
      setText(row.cells[0], w.id);
      const frac = w.concurrency > 0 ? Math.min(1, w.running / w.concurrency) : 0;
      row.cells[1].firstChild.firstChild.style.width = `${Math.round(frac * 100)}%`;
      setText(row.cells[1].lastChild, `${w.running}/${w.concurrency}`);
      const age = w.updatedAt ? snap.at - w.updatedAt : null;
      setText(row.cells[2], ago(age));
      row.cells[2].className = age !== null && age > 5000 ? 'stale' : '';
      setText(row.cells[3], w.tasks.join(', '));
    },
  );
  setText($('#workers-count'), `(${snap.workers.length})`);

  syncRows(
    $('#distributors'),
    snap.distributors,
    (d) => d.id,
    () => el('tr', {}, el('td', { class: 'mono' }), el('td', { class: 'mono' }), el('td')),
    (row, d) => {
      setText(row.cells[0], d.id);
      setText(row.cells[1], `${d.host}:${d.port}`);
      const age = d.updatedAt ? snap.at - d.updatedAt : null;
      setText(row.cells[2], ago(age));
      row.cells[2].className = age !== null && age > 5000 ? 'stale' : '';
    },
  );
  setText($('#distributors-count'), `(${snap.distributors.length})`);

  syncRows(
    $('#failures'),
    snap.failures,
    (f) => f.id,
    () => {
      const retry = el('button', { class: 'retry', type: 'button', textContent: 'Retry' });
      const row = el(
        'tr',
        {},
        el('td', { class: 'mono' }),
        el('td'),
        el('td', { class: 'state' }),
        el('td'),
        el('td'),
        el('td', { class: 'error' }),
        el('td', {}, retry),
      );
      retry.addEventListener('click', () => act(row.dataset.task, 'retry', retry));
      return row;
    },
    (row, f) => {
      row.dataset.task = f.id;
      row.dataset.state = f.state;
      setText(row.cells[0], f.id);
      setText(row.cells[1], f.name);
      setText(row.cells[2], f.state);
      row.cells[2].className = `state ${f.state}`;
      setText(row.cells[3], String(f.attempts));
      setText(row.cells[4], fmtTime(f.endedAt));
      setText(row.cells[5], f.error || '');
    },
  );

  syncRows(
    $('#dead'),
    snap.dead.recent.map((d, i) => ({ ...d, i })),
    (d) => `${d.at}:${d.i}`,
    () => el('tr', {}, el('td'), el('td', { class: 'mono' }), el('td'), el('td', { class: 'raw mono' })),
    (row, d) => {
      setText(row.cells[0], fmtTime(d.at));
      setText(row.cells[1], d.distributor);
      setText(row.cells[2], d.reason);
      setText(row.cells[3], d.raw);
    },
  );
  setText($('#dead-count'), `(${snap.dead.total})`);
}

// ---- the stream ----

function connect() {
  const es = new EventSource('/api/events');
  const conn = $('#conn');
  es.addEventListener('open', () => {
    conn.textContent = 'live';
    conn.className = 'pill on';
  });
  es.addEventListener('error', () => {
    // EventSource reconnects by itself (retry: 1000); the next `live` message carries every row.
    conn.textContent = 'reconnecting…';
    conn.className = 'pill off';
  });
  es.addEventListener('hello', (e) => {
    state.auth = JSON.parse(e.data).auth;
    state.live.clear();
    showAuth();
  });
  es.addEventListener('snapshot', (e) => {
    const { snapshot, error } = JSON.parse(e.data);
    if (snapshot) state.snapshot = snapshot;
    if (error) {
      conn.textContent = `Redis: ${error}`;
      conn.className = 'pill off';
    } else if (es.readyState === EventSource.OPEN) {
      conn.textContent = 'live';
      conn.className = 'pill on';
    }
    renderSnapshot();
    renderRunning();
  });
  es.addEventListener('live', (e) => {
    const { tasks, removed } = JSON.parse(e.data);
    for (const t of tasks) state.live.set(t.id, t);
    for (const id of removed) state.live.delete(id);
    renderRunning();
  });
}

setupAuth();
connect();
