// The live view: history first, then one EventSource that continues from where
// the history stopped. Frames are folded into bounded per-series buffers and
// drawn at most once per animation frame, however fast they arrive.
"use strict";

(() => {
  const root = document.getElementById("live");
  const tenant = root.dataset.tenant;
  const stateBadge = document.getElementById("state");
  const chartsEl = document.getElementById("charts");
  const tableBody = document.querySelector("#latest tbody");
  const emptyNote = document.getElementById("empty");
  const windowSelect = document.getElementById("window");

  // However fast a series is fed, it holds at most this many points: more than
  // a chart has pixels. Past it, the older half is thinned to every other point,
  // so the whole window keeps its shape and a tab left open for a day stays flat.
  const MAX_POINTS_PER_SERIES = 2000;
  // Beyond this many label sets a tenant's agents are labelling with ids;
  // further series are counted, not drawn.
  const MAX_SERIES = 300;
  // After a refused or closed stream, wait this long before starting over.
  const RESTART_DELAY_MS = 2000;
  const PALETTE = ["#2563eb", "#16a34a", "#dc2626", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777"];

  const charts = new Map(); // metric name -> {el, plot, series: Map(key -> series), dirty}
  const series = new Map(); // series key -> {name, labels, label, xs, ys, value, at, row}
  let windowSeconds = Number(windowSelect.selectedOptions[0].dataset.seconds);
  let source = null;
  let catchUpTo = 0;
  let frameRequested = false;
  let renderedSeqs = [];
  let droppedSeries = 0;

  function setState(state) {
    stateBadge.dataset.state = state;
    stateBadge.textContent = state;
  }

  function labelText(labels) {
    return Object.keys(labels).sort().map((k) => `${k}=${labels[k]}`).join(", ");
  }

  function add(metric) {
    const label = labelText(metric.labels || {});
    const key = `${metric.name}\u0000${label}`;
    let entry = series.get(key);
    if (!entry) {
      if (series.size >= MAX_SERIES) {
        droppedSeries += 1;
        return;
      }
      entry = { name: metric.name, label, xs: [], ys: [], value: 0, at: 0, row: null };
      series.set(key, entry);
      chartFor(metric.name).series.set(key, entry);
    }
    const at = Date.parse(metric.timestamp) / 1000;
    const last = entry.xs.length - 1;
    if (last >= 0 && at < entry.xs[last]) {
      // Out of order (a late agent): insert in place to keep the series sorted.
      let i = last;
      while (i >= 0 && entry.xs[i] > at) i -= 1;
      entry.xs.splice(i + 1, 0, at);
      entry.ys.splice(i + 1, 0, metric.value);
    } else {
      entry.xs.push(at);
      entry.ys.push(metric.value);
    }
    if (at >= entry.at) {
      entry.at = at;
      entry.value = metric.value;
    }
    charts.get(metric.name).dirty = true;
  }

  function chartFor(name) {
    let chart = charts.get(name);
    if (chart) return chart;
    const el = document.createElement("article");
    el.className = "chart";
    el.dataset.metric = name;
    const title = document.createElement("h3");
    title.textContent = name;
    el.append(title);
    const sorted = [...charts.keys(), name].sort();
    const before = charts.get(sorted[sorted.indexOf(name) + 1]);
    chartsEl.insertBefore(el, before ? before.el : null);
    chart = { el, plot: null, series: new Map(), dirty: true };
    charts.set(name, chart);
    emptyNote.hidden = true;
    return chart;
  }

  function prune(now) {
    // Points older than the window are never shown (a wider window reloads history).
    const oldest = now - windowSeconds;
    for (const entry of series.values()) {
      let drop = 0;
      while (drop < entry.xs.length && entry.xs[drop] < oldest) drop += 1;
      if (drop > 0) {
        entry.xs.splice(0, drop);
        entry.ys.splice(0, drop);
      }
      if (entry.xs.length > MAX_POINTS_PER_SERIES) thin(entry);
    }
  }

  function thin(entry) {
    const half = entry.xs.length >> 1;
    const xs = [];
    const ys = [];
    for (let i = 0; i < half; i += 2) {
      xs.push(entry.xs[i]);
      ys.push(entry.ys[i]);
    }
    entry.xs = xs.concat(entry.xs.slice(half));
    entry.ys = ys.concat(entry.ys.slice(half));
  }

  function axisColor() {
    return getComputedStyle(document.body).color;
  }

  function draw(chart, now) {
    const entries = [...chart.series.values()];
    const data = uPlot.join(entries.map((e) => [e.xs, e.ys]));
    const width = Math.max(200, chart.el.clientWidth - 20);
    if (!chart.plot || chart.plot.series.length !== entries.length + 1) {
      if (chart.plot) chart.plot.destroy();
      const stroke = axisColor();
      chart.plot = new uPlot(
        {
          width,
          height: 220,
          legend: { show: entries.length > 1 },
          scales: { x: { time: true, auto: false, min: now - windowSeconds, max: now } },
          axes: [
            { stroke, space: 90, grid: { stroke: "rgba(127,127,127,.15)" } },
            {
              stroke,
              size: 56,
              grid: { stroke: "rgba(127,127,127,.15)" },
              values: (_, ticks) => ticks.map(compact),
            },
          ],
          series: [
            {},
            ...entries.map((e, i) => ({
              label: e.label || e.name,
              stroke: PALETTE[i % PALETTE.length],
              width: 1.5,
              spanGaps: true,
              points: { show: false },
            })),
          ],
        },
        data,
        chart.el,
      );
    } else {
      chart.plot.batch(() => {
        if (chart.plot.width !== width) chart.plot.setSize({ width, height: 220 });
        chart.plot.setData(data, false);
        chart.plot.setScale("x", { min: now - windowSeconds, max: now });
      });
    }
    chart.dirty = false;
  }

  const compactFormat = new Intl.NumberFormat("en", { notation: "compact", maximumFractionDigits: 3 });
  function compact(value) {
    return Math.abs(value) >= 10000 ? compactFormat.format(value) : String(Number(value.toPrecision(6)));
  }

  function ageText(seconds) {
    if (seconds < 1) return "now";
    if (seconds < 60) return `${Math.floor(seconds)} s`;
    if (seconds < 3600) return `${Math.floor(seconds / 60)} min`;
    return `${Math.floor(seconds / 3600)} h`;
  }

  function updateTable(now) {
    const rows = [...series.values()].sort(
      (a, b) => a.name.localeCompare(b.name) || a.label.localeCompare(b.label),
    );
    for (const entry of rows) {
      if (!entry.row) {
        entry.row = document.createElement("tr");
        entry.row.innerHTML = '<td class="mono"></td><td></td><td class="num"></td><td class="num"></td>';
        entry.row.cells[0].textContent = entry.name;
        entry.row.cells[1].textContent = entry.label;
      }
      entry.row.cells[2].textContent = compact(entry.value);
      entry.row.cells[3].textContent = ageText(now - entry.at);
    }
    tableBody.replaceChildren(...rows.map((e) => e.row));
    if (droppedSeries) {
      emptyNote.hidden = false;
      emptyNote.textContent = `${droppedSeries} points of series beyond the first ${MAX_SERIES} were not drawn.`;
    }
  }

  function render() {
    frameRequested = false;
    const now = Date.now() / 1000;
    prune(now);
    for (const chart of charts.values()) {
      if (chart.dirty) draw(chart, now);
    }
    updateTable(now);
    if (renderedSeqs.length) {
      // The values of these batches are on screen now (used by the benchmark).
      const at = performance.timeOrigin + performance.now();
      document.dispatchEvent(new CustomEvent("metricstream:rendered", { detail: { seqs: renderedSeqs, at } }));
      renderedSeqs = [];
    }
  }

  function requestRender() {
    if (!frameRequested) {
      frameRequested = true;
      requestAnimationFrame(render);
    }
  }

  async function loadHistory() {
    let cursor = null;
    let upto = 0;
    do {
      const params = new URLSearchParams({ window: windowSelect.value });
      if (cursor) params.set("cursor", cursor);
      const response = await fetch(`/api/v1/tenants/${tenant}/metrics?${params}`, {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      });
      if (!response.ok) throw new Error(`history: HTTP ${response.status}`);
      const page = await response.json();
      page.metrics.forEach(add);
      upto = page.upto;
      cursor = page.next;
    } while (cursor);
    requestRender();
    return upto;
  }

  function openStream(after) {
    // The stream resumes after the history's last batch; on reconnect the
    // browser's Last-Event-ID header takes precedence over the query string.
    source = new EventSource(`/api/v1/stream/${tenant}?last_event_id=${after}`);
    source.addEventListener("open", (event) => {
      if (!event.data) return; // the EventSource's own connection event
      const latest = JSON.parse(event.data).latest;
      catchUpTo = latest;
      setState(Number(event.lastEventId) < latest ? "catching up" : "live");
    });
    source.addEventListener("metrics", (event) => {
      const seq = Number(event.lastEventId);
      JSON.parse(event.data).forEach(add);
      renderedSeqs.push(seq);
      if (seq >= catchUpTo && stateBadge.dataset.state !== "live") setState("live");
      requestRender();
    });
    source.addEventListener("reset", () => {
      // The server cannot replay what we missed: start over from history.
      setState("reset");
      restart(0);
    });
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) {
        setState("disconnected");
        restart(RESTART_DELAY_MS);
      } else {
        setState("reconnecting");
      }
    };
  }

  function clear() {
    for (const chart of charts.values()) {
      if (chart.plot) chart.plot.destroy();
      chart.el.remove();
    }
    charts.clear();
    series.clear();
    tableBody.replaceChildren();
    emptyNote.hidden = false;
  }

  function close() {
    if (source) {
      source.close();
      source = null;
    }
  }

  let restartTimer = null;
  function restart(delay) {
    close();
    clearTimeout(restartTimer);
    restartTimer = setTimeout(start, delay);
  }

  async function start() {
    close();
    clear();
    setState("connecting");
    try {
      openStream(await loadHistory());
    } catch (error) {
      setState("disconnected");
      restart(RESTART_DELAY_MS);
    }
  }

  windowSelect.addEventListener("change", () => {
    windowSeconds = Number(windowSelect.selectedOptions[0].dataset.seconds);
    restart(0);
  });
  // Leaving the page closes the stream at once, so the server frees it.
  window.addEventListener("pagehide", close);
  window.addEventListener("resize", () => {
    for (const chart of charts.values()) chart.dirty = true;
    requestRender();
  });
  // Slide the time axis and refresh ages even when nothing arrives.
  setInterval(() => {
    for (const chart of charts.values()) chart.dirty = true;
    requestRender();
  }, 1000);

  start();
})();
