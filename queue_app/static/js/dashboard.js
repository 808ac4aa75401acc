/* Manager dashboard: charts (Chart.js, vendored), today's panel kept live, and the what-if.
 *
 * Data comes in <script type="application/json" id="page-data"> (templates/planning/dashboard.html);
 * today's figures refresh from the live endpoint on every queue push of the branch room
 * (Socket.IO, at most every few seconds) and every 30 s in any case.
 */
(function () {
  "use strict";

  var app = window.QueueApp;
  var data = app.pageData();
  var texts = data.texts;
  var Chart = window.Chart;
  var charts = {};
  var COLORS = { arrivals: "#1f6fb2", forecast: "#e07b00", band: "rgba(224, 123, 0, 0.18)",
                 wait: "#1f6fb2", p90: "#7b3fb2", level: "#2e8540", target: "#9aa3ad", plan: "#9aa3ad" };

  function hhmm(local) { return String(local).slice(-5); }

  function bandDatasets(rows) {
    return [
      { type: "line", label: texts.band, data: rows.map(function (r) { return r.forecast_p90; }),
        borderWidth: 0, pointRadius: 0, backgroundColor: COLORS.band, fill: "+1", order: 3 },
      { type: "line", label: "p10", data: rows.map(function (r) { return r.forecast_p10; }),
        borderWidth: 0, pointRadius: 0, backgroundColor: COLORS.band, fill: false, order: 3 },
      { type: "line", label: texts.forecast, data: rows.map(function (r) { return r.forecast; }),
        borderColor: COLORS.forecast, backgroundColor: COLORS.forecast, pointRadius: 0, borderWidth: 2, order: 2 },
      { type: "bar", label: texts.arrivals, data: rows.map(function (r) { return r.arrivals; }),
        backgroundColor: COLORS.arrivals, order: 1 },
    ];
  }

  var baseOptions = {
    responsive: true, maintainAspectRatio: false, animation: false,
    interaction: { mode: "index", intersect: false },
    plugins: { legend: { labels: { filter: function (item) { return item.text !== "p10"; } } } },
  };

  function make(id, config) {
    var canvas = document.getElementById(id);
    if (!canvas || !Chart) return null;
    config.options = Object.assign({}, baseOptions, config.options || {});
    charts[id] = new Chart(canvas, config);
    canvas.setAttribute("data-rendered", "true");
    return charts[id];
  }

  function percent(value) { return value === null || value === undefined ? null : Math.round(value * 1000) / 10; }

  // Intervals with no call have null waits: the lines break there (spanGaps false) rather than
  // drawing across hours without data.
  function waitsConfig(labels, rows, meanKey, p90Key, levelKey) {
    return {
      data: {
        labels: labels,
        datasets: [
          { type: "line", label: texts.avg_wait, data: rows.map(function (r) { return r[meanKey]; }),
            borderColor: COLORS.wait, backgroundColor: COLORS.wait, yAxisID: "y", spanGaps: false },
          { type: "line", label: texts.p90_wait, data: rows.map(function (r) { return r[p90Key]; }),
            borderColor: COLORS.p90, backgroundColor: COLORS.p90, yAxisID: "y", spanGaps: false },
          { type: "line", label: texts.service_level, data: rows.map(function (r) { return percent(r[levelKey]); }),
            borderColor: COLORS.level, backgroundColor: COLORS.level, borderDash: [6, 4], yAxisID: "y1", spanGaps: false },
          { type: "line", label: texts.target, data: rows.map(function () { return data.stats.target * 100; }),
            borderColor: COLORS.target, borderWidth: 1, pointRadius: 0, yAxisID: "y1" },
        ],
      },
      options: {
        scales: {
          y: { beginAtZero: true, title: { display: true, text: texts.minutes } },
          y1: { position: "right", min: 0, max: 100, grid: { drawOnChartArea: false },
                title: { display: true, text: "%" } },
        },
      },
    };
  }

  function groupConfig(rows, nameOf, extraLabel, extraKey) {
    return {
      type: "bar",
      data: {
        labels: rows.map(nameOf),
        datasets: [
          { label: texts.avg_wait, data: rows.map(function (r) { return r.avg_wait; }), backgroundColor: COLORS.wait, yAxisID: "y" },
          { label: extraLabel, data: rows.map(function (r) { return r[extraKey]; }), backgroundColor: COLORS.p90, yAxisID: "y" },
          { type: "line", label: texts.service_level, data: rows.map(function (r) { return percent(r.service_level); }),
            borderColor: COLORS.level, backgroundColor: COLORS.level, yAxisID: "y1" },
        ],
      },
      options: {
        scales: {
          y: { beginAtZero: true, title: { display: true, text: texts.minutes } },
          y1: { position: "right", min: 0, max: 100, grid: { drawOnChartArea: false } },
        },
      },
    };
  }

  function drawStats() {
    var rows = data.stats.intervals;
    var sameDay = data.stats.from === data.stats.to;
    var labels = rows.map(function (r) { return sameDay ? hhmm(r.local) : r.local.slice(5); });
    make("chart-arrivals", { data: { labels: labels, datasets: bandDatasets(rows) },
                             options: { scales: { y: { beginAtZero: true } } } });
    make("chart-waits", waitsConfig(labels, rows, "avg_wait", "p90_wait", "service_level"));
    make("chart-days", {
      data: {
        labels: data.stats.days.map(function (r) { return r.date.slice(5); }),
        datasets: [
          { type: "bar", label: texts.arrivals, data: data.stats.days.map(function (r) { return r.arrivals; }),
            backgroundColor: COLORS.arrivals, yAxisID: "y", order: 2 },
          { type: "line", label: texts.avg_wait, data: data.stats.days.map(function (r) { return r.avg_wait; }),
            borderColor: COLORS.p90, backgroundColor: COLORS.p90, yAxisID: "y2", order: 1 },
          { type: "line", label: texts.service_level, data: data.stats.days.map(function (r) { return percent(r.service_level); }),
            borderColor: COLORS.level, backgroundColor: COLORS.level, borderDash: [6, 4], yAxisID: "y1", order: 1 },
        ],
      },
      options: {
        scales: {
          y: { beginAtZero: true },
          y2: { beginAtZero: true, position: "right", grid: { drawOnChartArea: false },
                title: { display: true, text: texts.minutes } },
          y1: { position: "right", min: 0, max: 100, grid: { drawOnChartArea: false }, title: { display: true, text: "%" } },
        },
      },
    });
    make("chart-services", groupConfig(data.stats.services, function (r) { return r.code; }, texts.p90_wait, "p90_wait"));
    make("chart-counters", groupConfig(data.stats.counters, function (r) { return r.name; }, texts.p90_wait, "p90_wait"));
    drawAccuracy(data.accuracy.chart);
  }

  // Estimated against actual waits: per estimated minute the mean actual wait and its 10-90 % band,
  // beside the diagonal where estimate and wait would agree.
  function drawAccuracy(chart) {
    var points = chart.points;
    if (!points.length) return;
    function xy(key) { return points.map(function (p) { return { x: p.estimate, y: p[key] }; }); }
    var top = Math.max(chart.cap_minutes, 1);
    var longest = points.reduce(function (most, p) { return Math.max(most, p.estimate, p.p90_actual); }, 0);
    var edge = Math.min(top, Math.max(longest, 5));
    make("chart-accuracy", {
      type: "line",
      data: {
        datasets: [
          { label: texts.accuracy_band, data: xy("p90_actual"), borderWidth: 0, pointRadius: 0,
            backgroundColor: COLORS.band, fill: "+1" },
          { label: "p10", data: xy("p10_actual"), borderWidth: 0, pointRadius: 0, backgroundColor: COLORS.band, fill: false },
          { label: texts.accuracy_mean, data: xy("mean_actual"), borderColor: COLORS.wait, backgroundColor: COLORS.wait,
            showLine: false, pointRadius: 3 },
          { label: texts.accuracy_perfect, data: [{ x: 0, y: 0 }, { x: edge, y: edge }], borderColor: COLORS.target,
            borderDash: [6, 4], borderWidth: 1, pointRadius: 0 },
        ],
      },
      options: {
        interaction: { mode: "nearest", intersect: false },
        scales: {
          x: { type: "linear", min: 0, title: { display: true, text: texts.accuracy_estimated } },
          y: { beginAtZero: true, title: { display: true, text: texts.accuracy_actual } },
        },
      },
    });
  }

  function drawToday(live) {
    var rows = live.intervals;
    var labels = rows.map(function (r) { return hhmm(r.local); });
    var chart = charts["chart-today"];
    if (!chart) {
      make("chart-today", { data: { labels: labels, datasets: bandDatasets(rows) },
                            options: { scales: { y: { beginAtZero: true } } } });
      return;
    }
    chart.data.labels = labels;
    bandDatasets(rows).forEach(function (dataset, i) { chart.data.datasets[i].data = dataset.data; });
    chart.update();
  }

  function text(id, value) {
    var element = document.getElementById(id);
    if (element) element.textContent = value === null || value === undefined ? texts.none : String(value);
  }

  function minutes(value) { return value === null || value === undefined ? null : (Math.round(value * 10) / 10).toFixed(1); }

  function showLive(live) {
    text("live-waiting", live.waiting);
    text("live-serving", live.serving);
    text("live-open", live.open_counters);
    text("live-arrivals", live.arrivals);
    text("live-served", live.served);
    text("live-abandoned", live.abandoned);
    text("live-forecast-so-far", live.forecast_so_far);
    text("live-forecast-day", live.forecast_day);
    text("live-avg-wait", minutes(live.avg_wait));
    text("live-p90-wait", minutes(live.p90_wait));
    var level = percent(live.service_level);
    text("live-service-level", level === null ? null : level + " %");
    text("live-updated", app.format(texts.updated.replace("%(time)s", "{time}"), { time: live.at.slice(11, 16) }));
    drawToday(live);
  }

  var pending = null;
  var lastRefresh = 0;
  function refreshLive() {
    lastRefresh = Date.now();
    app.request("GET", data.live_url).then(function (result) {
      if (result.ok && result.data) showLive(result.data);
    }, function () { /* unreachable: the next push or poll tries again */ });
  }
  function scheduleRefresh() {
    if (pending) return;
    var delay = Math.max(0, 3000 - (Date.now() - lastRefresh));
    pending = setTimeout(function () { pending = null; refreshLive(); }, delay);
  }

  // --- what-if ----------------------------------------------------------------------------------

  function whatIfRows(result) {
    var body = document.querySelector("#what-if-results tbody");
    body.textContent = "";
    result.intervals.forEach(function (r) {
      var tr = document.createElement("tr");
      var level = percent(r.service_level);
      var gaveUp = percent(r.abandonment);
      [r.local, r.counters + (r.counters !== r.planned ? " (" + r.planned + ")" : ""), minutes(r.mean_wait),
       minutes(r.p90_wait), level === null ? null : level + " %", gaveUp === null ? null : gaveUp + " %",
       minutes(r.plan_mean_wait)].forEach(function (value, i) {
        var cell = document.createElement(i === 0 ? "th" : "td");
        cell.textContent = value === null || value === undefined ? texts.none : value;
        tr.appendChild(cell);
      });
      body.appendChild(tr);
    });
    document.getElementById("what-if-results").hidden = false;
  }

  function drawWhatIf(result) {
    var rows = result.intervals;
    var labels = rows.map(function (r) { return r.local; });
    var datasets = [
      { type: "line", label: texts.plan_wait, data: rows.map(function (r) { return r.plan_mean_wait; }),
        borderColor: COLORS.plan, backgroundColor: COLORS.plan, borderDash: [6, 4], yAxisID: "y" },
      { type: "line", label: texts.what_if_wait, data: rows.map(function (r) { return r.mean_wait; }),
        borderColor: COLORS.wait, backgroundColor: COLORS.wait, yAxisID: "y" },
      { type: "line", label: texts.what_if_p90, data: rows.map(function (r) { return r.p90_wait; }),
        borderColor: COLORS.p90, backgroundColor: COLORS.p90, yAxisID: "y" },
      { type: "line", label: texts.service_level, data: rows.map(function (r) { return percent(r.service_level); }),
        borderColor: COLORS.level, backgroundColor: COLORS.level, borderDash: [2, 3], yAxisID: "y1" },
    ];
    if (charts["chart-what-if"]) charts["chart-what-if"].destroy();
    document.getElementById("what-if-chart-box").hidden = false;
    make("chart-what-if", {
      data: { labels: labels, datasets: datasets },
      options: { scales: { y: { beginAtZero: true, title: { display: true, text: texts.minutes } },
                           y1: { position: "right", min: 0, max: 100, grid: { drawOnChartArea: false } } } },
    });
  }

  function setupWhatIf() {
    var form = document.getElementById("what-if-form");
    if (!form) return;
    var status = document.getElementById("what-if-status");
    var button = document.getElementById("what-if-run");
    var csrf = document.querySelector('input[name="csrf_token"]');
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var counters = {};
      form.querySelectorAll("input[data-interval]").forEach(function (input) {
        if (input.value !== "") counters[input.getAttribute("data-interval")] = Number(input.value);
      });
      var offset = document.getElementById("what-if-offset").value;
      button.disabled = true;
      status.textContent = texts.running;
      form.setAttribute("data-state", "running");
      app.request("POST", data.what_if_url, {
        csrf: csrf ? csrf.value : "", timeout: 30000,
        body: { date: data.day, offset: offset === "" ? 0 : Number(offset), counters: counters },
      }).then(function (result) {
        if (!result.ok) {
          status.textContent = app.errorMessage(result, texts.failed);
          form.setAttribute("data-state", "error");
          return;
        }
        status.textContent = "";
        drawWhatIf(result.data);
        whatIfRows(result.data);
        document.getElementById("what-if-summary").textContent = texts.summary
          .replace("%(hours)s", result.data.counter_hours).replace("%(plan)s", result.data.plan_counter_hours);
        form.setAttribute("data-state", "done");
      }, function () {
        status.textContent = texts.unreachable;
        form.setAttribute("data-state", "error");
      }).finally(function () { button.disabled = false; });
    });
  }

  function start() {
    if (Chart) {
      Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
      drawStats();
      drawToday(data.live);
    }
    setupWhatIf();
    setInterval(refreshLive, 30000);
    if (window.io) {
      app.connectLive({ join: { branch: data.slug }, events: { queue: scheduleRefresh } });
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
