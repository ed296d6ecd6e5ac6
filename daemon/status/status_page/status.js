// polar-loadd status page: polls GET /api/status for the tables and
// GET /api/history for the charts (drawn by charts.js with Chart.js, both
// served by the daemon), and drives the control API. The server sends the
// page with its tables filled (for browsers without JavaScript); the first
// poll replaces those rows. Everything from the server is written with
// textContent, never as HTML: error snippets come from the target and must
// not be able to run script here.
'use strict';

const POLL_MS = 1500;
const HISTORY_MS = 4000;  // the charts' points are 4 s
const TOKEN_KEY = 'polar-loadd-control-token';
const $ = (sel, root = document) => root.querySelector(sel);

function el(tag, attrs = {}, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function fmtRate(v) {
  if (v === null || v === undefined) return '–';
  if (v === 0) return '0';
  if (v < 10) return v.toFixed(2);
  if (v < 100) return v.toFixed(1);
  return Math.round(v).toLocaleString('en');
}
function fmtPct(v) {
  if (v === null || v === undefined) return '–';
  if (v === 0) return '0%';
  return (v < 0.001 ? '<0.1' : (100 * v).toFixed(v < 0.1 ? 1 : 0)) + '%';
}
function fmtSeconds(s) {
  if (s === null || s === undefined) return '–';
  if (s < 0.001) return (s * 1e6).toPrecision(3) + ' µs';
  if (s < 1) return (s * 1e3).toPrecision(3) + ' ms';
  return s.toPrecision(3) + ' s';
}
function fmtAge(s) {
  s = Math.max(0, Math.round(s));
  const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60;
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${s % 60}s`;
  return `${s}s`;
}

// ---- Control API ----------------------------------------------------------

let pendingAction = null;  // run after the token dialog closes with a token

function showMessage(text, isError) {
  const m = $('#message');
  m.textContent = text;
  m.className = isError ? 'message error' : 'message';
  m.hidden = false;
}

function withToken(run) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) { run(token); return; }
  pendingAction = run;
  $('#token-input').value = '';
  $('#token-dialog').showModal();
}

async function control(method, scenario, verb, body) {
  withToken(async (token) => {
    const url = `/api/scenarios/${encodeURIComponent(scenario)}/${verb}`;
    const init = { method, headers: { 'Authorization': 'Bearer ' + token } };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let answer = {};
    let status = 0;
    try {
      const r = await fetch(url, init);
      status = r.status;
      answer = await r.json().catch(() => ({}));
    } catch (e) {
      showMessage(`${verb} ${scenario}: ${e}`, true);
      return;
    }
    if (status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      showMessage(`${verb} ${scenario}: ${answer.error || 'unauthorized'}; enter the token again`, true);
      return;
    }
    if (status !== 200) {
      showMessage(`${verb} ${scenario}: ${answer.error || 'HTTP ' + status}`, true);
      return;
    }
    showMessage(`${verb} ${scenario}: ok${answer.changed === false ? ' (nothing to change)' : ''}`, false);
    refresh();
  });
}

function setupDialogs() {
  $('#token-dialog').addEventListener('close', () => {
    const run = pendingAction;
    pendingAction = null;
    const token = $('#token-input').value.trim();
    if ($('#token-dialog').returnValue !== 'ok' || !token || !run) return;
    sessionStorage.setItem(TOKEN_KEY, token);
    run(token);
  });
  $('#rate-dialog').addEventListener('close', () => {
    const d = $('#rate-dialog');
    if (d.returnValue !== 'ok') return;
    const body = { rate: $('#rate-input').value.trim() };
    const lasting = $('#rate-for').value.trim();
    if (lasting) body.for = lasting;
    control('PUT', d.dataset.scenario, 'rate', body);
  });
  $('#burst-dialog').addEventListener('close', () => {
    const d = $('#burst-dialog');
    if (d.returnValue !== 'ok') return;
    control('POST', d.dataset.scenario, 'burst', { count: parseInt($('#burst-count').value, 10) });
  });
}

function openRate(scenario) {
  const d = $('#rate-dialog');
  d.dataset.scenario = scenario;
  $('[data-field="rate-scenario"]', d).textContent = scenario;
  d.showModal();
}
function openBurst(scenario) {
  const d = $('#burst-dialog');
  d.dataset.scenario = scenario;
  $('[data-field="burst-scenario"]', d).textContent = scenario;
  d.showModal();
}

// ---- Rendering --------------------------------------------------------------

const scenarioRows = new Map();  // name -> {row, steps: Map(step -> row)}

function cells(row, names) {
  for (const n of names) {
    const td = el('td', { 'data-field': n });
    if (!['name', 'state', 'dropped', 'actions'].includes(n)) td.className = 'num';
    row.appendChild(td);
  }
}
const COLUMNS = ['name', 'state', 'target', 'achieved', 'done', 'errors', 'p50', 'p99', 'in_flight', 'dropped',
  'actions'];

function scenarioRow(name) {
  let entry = scenarioRows.get(name);
  if (entry) return entry;
  const row = el('tr', { class: 'scenario', 'data-scenario': name });
  cells(row, COLUMNS);
  $('[data-field="name"]', row).textContent = name;
  const actions = $('[data-field="actions"]', row);
  const button = (label, action, handler) => {
    const b = el('button', { type: 'button', 'data-action': action }, label);
    b.addEventListener('click', handler);
    actions.appendChild(b);
    return b;
  };
  button('Pause', 'pause', () => control('POST', name, 'pause'));
  button('Resume', 'resume', () => control('POST', name, 'resume'));
  button('Rate…', 'rate', () => openRate(name));
  button('Clear rate', 'clear-rate', () => control('DELETE', name, 'rate'));
  button('Burst…', 'burst', () => openBurst(name));
  $('#scenarios tbody').appendChild(row);
  entry = { row, steps: new Map(), last: row };
  scenarioRows.set(name, entry);
  return entry;
}

function stepRow(entry, scenario, step) {
  let row = entry.steps.get(step);
  if (row) return row;
  row = el('tr', { class: 'step', 'data-scenario': scenario, 'data-step': step });
  cells(row, COLUMNS);
  $('[data-field="name"]', row).textContent = step;
  entry.last.after(row);
  entry.last = row;
  entry.steps.set(step, row);
  return row;
}

function set(row, field, text, cls) {
  const c = $(`[data-field="${field}"]`, row);
  c.textContent = text;
  if (cls !== undefined) c.classList.toggle('bad', cls);
}

function stateBadges(s) {
  const out = [];
  const c = s.control || {};
  if (c.paused) out.push(['paused', 'paused']);
  if (c.override) {
    const left = c.override.remaining_seconds;
    out.push(['override', `override ${fmtRate(c.override.rate)}/s · ` +
      (left === null ? 'until reload' : fmtAge(left) + ' left')]);
  }
  if (c.retry_after_remaining_seconds > 0) {
    out.push(['backoff', `Retry-After ${fmtAge(c.retry_after_remaining_seconds)}`]);
  }
  if (c.burst_pending > 0) out.push(['override', `burst ${c.burst_pending} left`]);
  if (!out.length) out.push(['running', 'running']);
  return out;
}

function renderScenario(s) {
  const entry = scenarioRow(s.name);
  const row = entry.row;
  const state = $('[data-field="state"]', row);
  state.replaceChildren(...stateBadges(s).map(([cls, text]) => el('span', { class: 'badge ' + cls }, text)));
  row.dataset.paused = s.control && s.control.paused ? 'true' : 'false';
  set(row, 'target', fmtRate(s.target_rate));
  set(row, 'achieved', fmtRate(s.achieved_rate));
  set(row, 'done', fmtRate(s.completed_rate));
  set(row, 'errors', fmtPct(s.error_ratio), s.error_ratio > 0);
  set(row, 'p50', '');
  set(row, 'p99', '');
  set(row, 'in_flight', `${s.in_flight ?? '–'} / ${s.max_in_flight}`);
  const drops = Object.entries(s.dropped_last_minute || {}).filter(([, n]) => n > 0)
    .map(([reason, n]) => `${reason} ${n}`);
  set(row, 'dropped', drops.length ? drops.join(', ') : '0', drops.length > 0);
  const paused = s.control && s.control.paused;
  $('[data-action="pause"]', row).hidden = !!paused;
  $('[data-action="resume"]', row).hidden = !paused;
  $('[data-action="clear-rate"]', row).hidden = !(s.control && s.control.override);
  for (const st of s.steps || []) {
    const r = stepRow(entry, s.name, st.step);
    set(r, 'state', '');
    set(r, 'target', '');
    set(r, 'achieved', '');
    set(r, 'done', fmtRate(st.rate));
    set(r, 'errors', fmtPct(st.error_ratio), st.error_ratio > 0);
    set(r, 'p50', fmtSeconds(st.p50_seconds));
    set(r, 'p99', fmtSeconds(st.p99_seconds));
    set(r, 'in_flight', '');
    set(r, 'dropped', '');
    set(r, 'actions', '');
  }
}

function fillTable(tbody, rows, columns, empty) {
  if (!rows.length) {
    tbody.replaceChildren(el('tr', {}, ''));
    tbody.firstChild.appendChild(el('td', { class: 'empty', colspan: columns }, empty));
    return;
  }
  tbody.replaceChildren(...rows);
}

// The webhook deliveries as a matrix, event type x verdict; types with
// nothing yet are left out by the server.
function renderWebhooks(w) {
  const box = $('#webhooks');
  const verdicts = (w && w.verdicts) || [];
  const rows = (w && w.rows) || [];
  if (!rows.length) {
    box.replaceChildren(el('p', { class: 'note empty', id: 'webhooks-empty' }, verdicts.length
      ? 'No webhook deliveries yet.' : 'No webhook receiver ([webhooks] is not configured).'));
    return;
  }
  const table = el('table', { id: 'webhook-matrix' });
  const head = el('tr');
  head.append(el('th', {}, 'event type'), ...verdicts.map((v) => el('th', { class: 'num' }, v)),
    el('th', { class: 'num' }, 'per min'), el('th', { class: 'num' }, 'p50'), el('th', { class: 'num' }, 'p99'),
    el('th', { class: 'num' }, 'evicted'));
  table.append(el('thead'), el('tbody'));
  table.tHead.append(head);
  for (const r of rows) {
    const tr = el('tr', { 'data-type': r.type });
    tr.append(el('td', {}, r.type));
    for (const v of verdicts) {
      const n = r.counts[v] || 0;
      const cls = n === 0 ? 'num zero' : (v === 'ok' || v === 'duplicate' ? 'num' : 'num bad');
      tr.append(el('td', { class: cls }, String(n)));
    }
    tr.append(el('td', { class: 'num' }, fmtRate(r.per_minute)), el('td', { class: 'num' }, fmtSeconds(r.p50_seconds)),
      el('td', { class: 'num' }, fmtSeconds(r.p99_seconds)), el('td', { class: 'num' }, String(r.evicted)));
    table.tBodies[0].append(tr);
  }
  const parts = [table];
  if (w.hidden_types > 0) {
    parts.push(el('p', { class: 'note' },
      `${w.hidden_types} event type${w.hidden_types === 1 ? '' : 's'} with no deliveries hidden.`));
  }
  box.replaceChildren(...parts);
}

let serverRows = true;  // the rows the server rendered into the page

function render(st) {
  if (serverRows) {
    $('#scenarios tbody').replaceChildren();
    serverRows = false;
  }
  const d = (f) => $(`#daemon [data-field="${f}"]`);
  d('version').textContent = `${st.version} (${st.revision})`;
  d('uptime').textContent = fmtAge(st.uptime_seconds);
  d('config').textContent = st.config_path;
  const r = st.last_reload;
  d('reload').textContent = r.result === 'none' ? 'none since start'
    : `${r.result} ${fmtAge(r.seconds_ago)} ago` + (r.result === 'failure' ? ` (${r.problems} problems)` : '');
  d('reload').classList.toggle('bad', r.result === 'failure');
  d('in_flight').textContent = String(st.in_flight);
  d('control').textContent = st.control_enabled ? 'enabled (token required)' : 'disabled (no token configured)';
  $('[data-field="rate_window"]').textContent = String(st.windows.rate_seconds);

  const seen = new Set();
  for (const s of st.scenarios) { renderScenario(s); seen.add(s.name); }
  for (const [name, entry] of scenarioRows) {
    if (seen.has(name)) continue;
    entry.row.remove();
    for (const row of entry.steps.values()) row.remove();
    scenarioRows.delete(name);
  }

  renderWebhooks(st.webhooks);
  const completions = st.background.filter((b) => !b.metric.startsWith('polar_loadd_webhook_') && b.total > 0);
  fillTable($('#background tbody'), completions.map((b) => {
    const tr = el('tr');
    tr.append(el('td', {}, b.metric),
      el('td', {}, Object.entries(b.labels).map(([k, v]) => `${k}=${v}`).join(' ')),
      el('td', { class: 'num' }, fmtRate(b.per_minute)),
      el('td', { class: 'num' }, b.type === 'histogram' ? fmtSeconds(b.p50_seconds) : ''),
      el('td', { class: 'num' }, b.type === 'histogram' ? fmtSeconds(b.p99_seconds) : ''),
      el('td', { class: 'num' }, String(b.total)));
    return tr;
  }), 6, 'no completions measured yet');

  fillTable($('#errors tbody'), st.errors.map((e) => {
    const tr = el('tr');
    tr.append(el('td', {}, fmtAge(e.last_seen_seconds_ago) + ' ago'),
      el('td', {}, `${e.scenario} / ${e.step}`),
      el('td', { class: 'bad' }, e.outcome),
      el('td', { class: 'num' }, e.status ? String(e.status) : '–'),
      el('td', { class: 'num' }, String(e.count)),
      el('td', { class: 'snippet' }, e.snippet));
    return tr;
  }), 6, 'no failed requests since the start');
}

let timer = null;
async function refresh() {
  clearTimeout(timer);
  const live = $('#live');
  try {
    const r = await fetch('/api/status', { cache: 'no-store' });
    if (!r.ok) throw new Error('HTTP ' + r.status);
    render(await r.json());
    live.dataset.state = 'ok';
    live.textContent = 'live · updated ' + new Date().toLocaleTimeString('en-GB');
  } catch (e) {
    live.dataset.state = 'error';
    live.textContent = 'status unavailable: ' + e.message;
  }
  timer = setTimeout(refresh, POLL_MS);
}

// ---- Charts -------------------------------------------------------------

let board = null;
let historyTimer = null;
async function refreshCharts() {
  clearTimeout(historyTimer);
  try {
    const r = await fetch('/api/history', { cache: 'no-store' });
    if (!r.ok) throw new Error('HTTP ' + r.status);
    board.update(await r.json());
  } catch (e) {
    // The tables' live line says when the daemon is away; keep the last
    // picture until it answers again.
  }
  historyTimer = setTimeout(refreshCharts, HISTORY_MS);
}

function setupCharts() {
  if (typeof Chart === 'undefined' || typeof PolarCharts === 'undefined') return;
  $('#charts-section').hidden = false;
  board = new PolarCharts.Board($('#charts'), 'live');
  refreshCharts();
}

setupDialogs();
setupCharts();
refresh();
