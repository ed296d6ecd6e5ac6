// polar-loadd charts: draws the series of GET /api/history (the status page,
// the last 15 minutes) and of a run report (the whole run) with Chart.js.
// Shared by both; the data shape is in docs/status-page.md, "GET /api/history".
// Every label comes from the data through Chart.js's canvas text or
// textContent, never as HTML.
'use strict';

const PolarCharts = (() => {
  const COLOR = {
    target: '#8c959f', achieved: '#0a58ca', done: '#1a7f37', inFlight: '#0a58ca',
    p50: '#1a7f37', p90: '#9a6700', p99: '#cf222e',
  };
  const DROP_COLOR = { in_flight_cap: '#bc4c00', global_in_flight_cap: '#8250df', retry_after: '#cf222e' };
  const OUTCOME_COLOR = {
    http_4xx: '#d4a72c', http_5xx: '#cf222e', rate_limited: '#8250df', timeout: '#bc4c00',
    connect_error: '#57606a', tls_error: '#1b7c83', invalid_response: '#bf3989', check_failed: '#0550ae',
  };
  const QUANTILES = ['p50', 'p90', 'p99'];

  function el(tag, attrs = {}, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // Axis labels: clock time, with the day when the range spans more than a day.
  function fmtTime(ms, rangeMs) {
    const d = new Date(ms);
    const hm = d.toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit' });
    if (rangeMs > 36 * 3600e3) return d.toLocaleDateString('en-GB', { weekday: 'short', day: 'numeric' }) + ' ' + hm;
    if (rangeMs < 600e3) return d.toLocaleTimeString('en-GB');
    return hm;
  }
  // A step between time ticks that gives at most 6 of them, on round clock
  // times (multiples of the step since the epoch; zones are whole quarters
  // of an hour off UTC, so a 15-minute or shorter step stays round).
  const STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400]
    .map((s) => s * 1000);
  function timeStep(rangeMs) {
    return STEPS.find((s) => rangeMs / s <= 6) || Math.ceil(rangeMs / 6 / 86400e3) * 86400e3;
  }
  function fmtNumber(v) {
    if (v === null || v === undefined || Number.isNaN(v)) return '–';
    const a = Math.abs(v);
    if (a === 0) return '0';
    if (a < 10) return v.toPrecision(3).replace(/\.?0+$/, '');
    if (a < 1000) return v.toFixed(a < 100 ? 1 : 0);
    return Math.round(v).toLocaleString('en');
  }
  function fmtMs(v) {
    if (v === null || v === undefined) return '–';
    if (v < 1) return fmtNumber(v * 1000) + ' µs';
    if (v < 1000) return fmtNumber(v) + ' ms';
    return fmtNumber(v / 1000) + ' s';
  }

  // A series' values as {x, y} points; a step's arrays may be shorter than
  // the scenario's times: they end at the same instant.
  function xy(t, ys) {
    const off = t.length - ys.length;
    return ys.map((y, i) => ({ x: t[i + off], y }));
  }

  // A value with gaps on both sides (a rare step's only request in a while)
  // has no line to sit on: it gets a dot.
  function isolated(ctx) {
    const d = ctx.dataset.data;
    const i = ctx.dataIndex;
    const gap = (j) => j < 0 || j >= d.length || d[j].y === null;
    return d[i] && d[i].y !== null && gap(i - 1) && gap(i + 1) ? 2 : 0;
  }

  function line(label, data, color, extra = {}) {
    return Object.assign({
      label, data, borderColor: color, backgroundColor: color, borderWidth: 1.5,
      pointRadius: isolated, pointHitRadius: 4, tension: 0, spanGaps: false,
    }, extra);
  }

  function options(title, yTitle, extraScales = {}) {
    return {
      animation: false, responsive: true, maintainAspectRatio: false, parsing: false, normalized: true,
      interaction: { mode: 'nearest', axis: 'x', intersect: false },
      plugins: {
        title: { display: true, text: title, align: 'start', font: { size: 12, weight: '600' }, color: '#1d232a' },
        legend: { position: 'bottom', labels: { boxWidth: 10, boxHeight: 2, font: { size: 11 } } },
        tooltip: { callbacks: {} },
      },
      scales: Object.assign({
        x: { type: 'linear', ticks: { maxTicksLimit: 7, maxRotation: 0, font: { size: 10 } }, grid: { color: '#eef1f4' } },
        y: { beginAtZero: true, title: { display: true, text: yTitle, font: { size: 10 } },
          ticks: { font: { size: 10 } }, grid: { color: '#eef1f4' } },
      }, extraScales),
    };
  }

  // What each kind of chart shows, from one scenario's series (and a step's).
  const KINDS = {
    rate(sc) {
      const ds = [
        line('target', xy(sc.t, sc.target), COLOR.target, { borderDash: [5, 4] }),
        line('achieved (started)', xy(sc.t, sc.achieved), COLOR.achieved),
      ];
      for (const [reason, values] of Object.entries(sc.dropped || {})) {
        ds.push(line('dropped: ' + reason, xy(sc.t, values), DROP_COLOR[reason] || '#cf222e'));
      }
      return { title: 'arrivals/s: achieved vs target', y: 'per second', datasets: ds, fmt: fmtNumber };
    },
    load(sc) {
      const ds = [line('in flight (highest)', xy(sc.t, sc.in_flight), COLOR.inFlight, { yAxisID: 'y' })];
      for (const q of ['p50', 'p99']) {
        ds.push(line('schedule lag ' + q, xy(sc.t, sc.lag[q]), COLOR[q], { yAxisID: 'y2', borderDash: q === 'p50' ? [3, 3] : [] }));
      }
      return {
        title: 'in flight and schedule lag', y: 'requests', datasets: ds, fmt: fmtNumber, integer: true,
        scales: { y2: { position: 'right', beginAtZero: true, title: { display: true, text: 'lag, ms', font: { size: 10 } },
          ticks: { font: { size: 10 } }, grid: { drawOnChartArea: false } } },
      };
    },
    latency(sc, st) {
      const ds = [];
      for (const q of QUANTILES) ds.push(line(q, xy(sc.t, st.latency[q]), COLOR[q]));
      for (const q of QUANTILES) {
        ds.push(line('service ' + q, xy(sc.t, st.service[q]), COLOR[q], { borderDash: [4, 3], borderWidth: 1 }));
      }
      return { title: `${st.step}: latency (dashed: service time)`, y: 'ms', datasets: ds,
        fmt: fmtMs };
    },
    outcomes(sc, st) {
      const ds = [];
      let failed = 0, all = 0;
      for (const [outcome, values] of Object.entries(st.outcomes || {})) {
        const sum = values.reduce((a, v) => a + (v || 0), 0);
        all += sum;
        if (outcome === 'ok') continue;
        failed += sum;
        ds.push({ type: 'bar', label: outcome, data: xy(sc.t, values), backgroundColor: OUTCOME_COLOR[outcome] || '#cf222e',
          borderWidth: 0, stack: 'errors', barPercentage: 1, categoryPercentage: 1 });
      }
      // No failure in the window: a flat zero, so the chart still says so.
      if (!ds.length) ds.push(line('errors', xy(sc.t, st.rate.map((r) => (r === null ? null : 0))), '#cf222e'));
      const share = all > 0 ? ` (${(100 * failed / all).toFixed(failed && failed / all < 0.001 ? 3 : 1)} % of requests)` : '';
      return {
        title: `${st.step}: errors/s by outcome${share}`, y: 'per second', datasets: ds, fmt: fmtNumber,
        stacked: true,
      };
    },
  };

  class Board {
    // mode 'live': one step at a time per scenario, chosen with tabs; the x
    // axis is the last window_seconds. mode 'whole': every step, the whole run.
    constructor(root, mode) {
      this.root = root;
      this.mode = mode;
      this.groups = new Map();  // scenario -> {section, charts: Map(id -> Chart), step}
    }

    update(data) {
      const seen = new Set();
      // Live: the last window, or since the start when the daemon is younger.
      const range = this.mode === 'live'
        ? [Math.max(data.now_ms - data.window_seconds * 1000, data.start_ms), data.now_ms]
        : [data.start_ms, data.now_ms];
      for (const sc of data.scenarios) {
        seen.add(sc.name);
        this.updateScenario(sc, range);
      }
      for (const [name, g] of this.groups) {
        if (seen.has(name)) continue;
        for (const c of g.charts.values()) c.destroy();
        g.section.remove();
        this.groups.delete(name);
      }
    }

    group(sc) {
      let g = this.groups.get(sc.name);
      if (g) return g;
      const section = el('section', { class: 'chart-group', 'data-scenario': sc.name });
      const head = el('div', { class: 'chart-head' });
      head.append(el('h3', {}, sc.name));
      const tabs = el('div', { class: 'step-tabs', role: 'tablist' });
      head.append(tabs);
      section.append(head, el('div', { class: 'chart-grid' }));
      this.root.append(section);
      g = { section, tabs, grid: section.lastChild, charts: new Map(), step: null, tabSteps: '' };
      this.groups.set(sc.name, g);
      return g;
    }

    chart(g, id, attrs, spec, range) {
      let c = g.charts.get(id);
      if (!c) {
        const box = el('div', { class: 'chart' });
        const canvas = el('canvas', Object.assign({ id, role: 'img', 'aria-label': spec.title }, attrs));
        box.append(canvas);
        g.grid.append(box);
        const opts = options(spec.title, spec.y, spec.scales);
        c = new Chart(canvas, { type: 'line', data: { datasets: spec.datasets }, options: opts });
        g.charts.set(id, c);
      } else {
        const same = c.data.datasets.length === spec.datasets.length &&
          c.data.datasets.every((d, i) => d.label === spec.datasets[i].label && d.type === spec.datasets[i].type);
        if (same) spec.datasets.forEach((d, i) => { c.data.datasets[i].data = d.data; });
        else c.data.datasets = spec.datasets;
        c.options.plugins.title.text = spec.title;
        c.canvas.setAttribute('aria-label', spec.title);
        for (const [k, v] of Object.entries(attrs)) c.canvas.setAttribute(k, v);
      }
      const x = c.options.scales.x;
      x.min = range[0];
      x.max = range[1];
      x.stacked = !!spec.stacked;
      c.options.scales.y.stacked = !!spec.stacked;
      x.ticks.callback = (v) => fmtTime(v, range[1] - range[0]);
      x.ticks.stepSize = timeStep(range[1] - range[0]);
      x.ticks.includeBounds = false;
      c.options.scales.y.ticks.precision = spec.integer ? 0 : undefined;
      c.options.plugins.tooltip.callbacks.title = (items) =>
        items.length ? new Date(items[0].parsed.x).toLocaleString('en-GB') : '';
      c.options.plugins.tooltip.callbacks.label = (item) => `${item.dataset.label}: ${spec.fmt(item.parsed.y)}`;
      c.update('none');
      return c;
    }

    updateScenario(sc, range) {
      const g = this.group(sc);
      g.last = { sc, range };
      const base = `chart-${sc.name}`;
      this.chart(g, `${base}-rate`, { 'data-chart': 'rate', 'data-scenario': sc.name }, KINDS.rate(sc), range);
      this.chart(g, `${base}-load`, { 'data-chart': 'load', 'data-scenario': sc.name }, KINDS.load(sc), range);
      const steps = sc.steps || [];
      if (this.mode === 'live') {
        this.tabs(g, sc, steps);
        const st = steps.find((s) => s.step === g.step);
        if (!st) return;
        for (const kind of ['latency', 'outcomes']) {
          this.chart(g, `${base}-${kind}`, { 'data-chart': kind, 'data-scenario': sc.name, 'data-step': st.step },
            KINDS[kind](sc, st), range);
        }
        return;
      }
      for (const st of steps) {
        for (const kind of ['latency', 'outcomes']) {
          this.chart(g, `${base}-${st.step}-${kind}`, { 'data-chart': kind, 'data-scenario': sc.name, 'data-step': st.step },
            KINDS[kind](sc, st), range);
        }
      }
    }

    // Step tabs of the live page: the latency and outcome charts show one
    // step; a click switches at once (from the last data, no new request).
    tabs(g, sc, steps) {
      if (!steps.some((s) => s.step === g.step)) g.step = steps.length ? steps[0].step : null;
      const names = steps.map((s) => s.step).join(' ');
      if (names !== g.tabSteps) {
        g.tabSteps = names;
        g.tabs.replaceChildren(...steps.map((s) => {
          const b = el('button', { type: 'button', role: 'tab', 'data-step': s.step }, s.step);
          b.addEventListener('click', () => {
            g.step = s.step;
            this.markTabs(g);
            if (g.last) this.updateScenario(g.last.sc, g.last.range);
          });
          return b;
        }));
        g.tabs.hidden = steps.length < 2;
      }
      this.markTabs(g);
    }

    markTabs(g) {
      for (const b of g.tabs.children) b.setAttribute('aria-selected', String(b.dataset.step === g.step));
    }
  }

  return { Board, fmtMs, fmtNumber };
})();
