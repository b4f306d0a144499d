/* stabcheck HTML report: draws the charts of the embedded result with uPlot.
 * The page's text (header, grid, advice, probe cards) is rendered by Python; this script
 * only fills the chart containers: one loss / gradient-norm chart per probe (small
 * multiples, the failure marked at its step) and the peak-memory-per-batch-size charts. */
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("stabcheck-data").textContent);
  var COLORS = data.colors;
  var LOSS = "#2563eb", GRAD = "#0d9488", BAR = "#60a5fa";
  var FONT = "11px system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";
  var ratio = uPlot.pxRatio;
  /* Byte-axis steps that read well in binary units: 1, 2, 4 ... 512 B, KiB, MiB, GiB, TiB. */
  var BYTE_STEPS = [];
  [1, 1024, 1048576, 1073741824, 1099511627776].forEach(function (unit) {
    [1, 2, 4, 8, 16, 32, 64, 128, 256, 512].forEach(function (m) { BYTE_STEPS.push(unit * m); });
  });

  function humanBytes(n) {
    if (n == null) return "—";
    var units = ["B", "KiB", "MiB", "GiB", "TiB"], i = 0;
    while (Math.abs(n) >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i === 0 ? n.toFixed(0) : n.toFixed(n < 10 ? 1 : 0)) + " " + units[i];
  }

  function shortNumber(v) {
    if (v == null) return "";
    var a = Math.abs(v);
    if (a !== 0 && (a >= 1e4 || a < 1e-2)) return v.toExponential(0).replace("e+", "e");
    return String(parseFloat(v.toPrecision(2)));
  }

  function positive(values) {
    return values.map(function (v) { return v != null && v > 0 ? v : null; });
  }

  function hasData(values) {
    return values.some(function (v) { return v != null; });
  }

  /* A dashed vertical line at the failure's step, with the grid word beside it. */
  function failureMarker(step, label, color) {
    return { hooks: { draw: function (u) {
      var ctx = u.ctx, box = u.bbox;
      var x = Math.round(u.valToPos(step, "x", true));
      var right = x > box.left + box.width * 0.6;
      ctx.save();
      ctx.strokeStyle = color;
      ctx.lineWidth = 1.5 * ratio;
      ctx.setLineDash([4 * ratio, 3 * ratio]);
      ctx.beginPath();
      ctx.moveTo(x, box.top);
      ctx.lineTo(x, box.top + box.height);
      ctx.stroke();
      ctx.setLineDash([]);
      ctx.font = "bold " + (11 * ratio) + "px system-ui, sans-serif";
      var width = ctx.measureText(label).width, pad = 3 * ratio;
      var tx = x + (right ? -4 : 4) * ratio, ty = box.top + 12 * ratio;
      ctx.fillStyle = "rgba(255, 255, 255, 0.9)";  /* keep the label readable over the lines */
      ctx.fillRect(right ? tx - width - pad : tx - pad, ty - 11 * ratio, width + 2 * pad,
                   15 * ratio);
      ctx.fillStyle = color;
      ctx.textAlign = right ? "right" : "left";
      ctx.fillText(label, tx, ty);
      ctx.restore();
    } } };
  }

  function logAxis(scale, color, side) {
    return {
      scale: scale, side: side, stroke: color, font: FONT, size: 44, gap: 3,
      grid: { show: side === 3, stroke: "#e5e7eb", width: 1 },
      ticks: { size: 3, stroke: "#d1d5db" },
      values: function (u, splits) { return splits.map(shortNumber); },
      splits: function (u, axisIdx, min, max) {
        /* Powers of ten only, at most five of them: a log axis is unreadable otherwise. */
        var lo = Math.floor(Math.log10(min) + 1e-9), hi = Math.ceil(Math.log10(max) - 1e-9);
        var step = Math.max(1, Math.ceil((hi - lo) / 4)), out = [];
        for (var e = lo; e <= hi; e += step) out.push(Math.pow(10, e));
        return out;
      },
      filter: function (u, splits) { return splits; },  /* label every split made above */
    };
  }

  function curveChart(el, probe) {
    var n = probe.loss.length;
    var loss = positive(probe.loss), grad = positive(probe.grad);
    if (!n || (!hasData(loss) && !hasData(grad))) {
      el.classList.add("empty");
      el.textContent = n ? "no finite loss or gradient norm was recorded"
                         : "no training step was recorded";
      return;
    }
    var xs = [];
    for (var i = 1; i <= n; i++) xs.push(i);
    var series = [{ label: "step" }], columns = [xs], axes = [{
      font: FONT, size: 26, gap: 2, stroke: "#6b7280",
      grid: { show: false }, ticks: { size: 3, stroke: "#d1d5db" },
    }];
    var scales = { x: { time: false, range: [1, Math.max(n, probe.fail_step || 0, 2)] } };
    [["loss", loss, LOSS, 3], ["grad norm", grad, GRAD, 1]].forEach(function (s) {
      if (!hasData(s[1])) return;
      var key = s[0] === "loss" ? "loss" : "grad";
      scales[key] = { distr: 3 };
      series.push({
        label: s[0], scale: key, stroke: s[2], width: key === "loss" ? 1.75 : 1.25,
        dash: key === "grad" ? [5, 3] : undefined, points: { show: false },
        value: function (u, v) { return v == null ? "—" : shortNumber(v); },
      });
      columns.push(s[1]);
      axes.push(logAxis(key, s[2], s[3]));
    });
    if (series.length === 2) axes.push({ side: 1, size: 10, show: false });
    var plugins = [];
    if (probe.fail_step) {
      plugins.push(failureMarker(probe.fail_step, probe.label, COLORS[probe.category]));
    }
    new uPlot({
      width: Math.max(200, el.clientWidth), height: 150, plugins: plugins,
      legend: { show: false }, cursor: { points: { size: 5 }, drag: { x: false } },
      scales: scales, axes: axes, series: series,
    }, columns, el);
  }

  /* Bars of peak memory per batch size, red where memory ran out, and the budget line. */
  function memoryChart(el, chart) {
    var peaks = chart.peak;
    if (!hasData(peaks)) {
      el.classList.add("empty");
      el.textContent = "no peak memory was recorded";
      return;
    }
    var xs = chart.batch_sizes.map(function (_, i) { return i; });
    var fills = chart.oom.map(function (oom) { return oom ? COLORS.memory : BAR; });
    var top = Math.max.apply(null, peaks.concat([chart.budget || 0]).map(function (v) {
      return v || 0;
    })) * 1.18;
    var overlay = { hooks: { draw: function (u) {
      var ctx = u.ctx, box = u.bbox;
      ctx.save();
      ctx.font = "bold " + (11 * ratio) + "px system-ui, sans-serif";
      ctx.textAlign = "center";
      peaks.forEach(function (v, i) {
        var x = u.valToPos(i, "x", true);
        var label = v == null ? "not measured" : humanBytes(v);
        if (chart.oom[i]) label += " · out of memory";
        var y = u.valToPos(v || 0, "y", true) - 6 * ratio;
        ctx.fillStyle = chart.oom[i] ? COLORS.memory : "#374151";
        ctx.fillText(label, x, y);
      });
      if (chart.budget) {
        var y = Math.round(u.valToPos(chart.budget, "y", true));
        ctx.strokeStyle = "#dc2626";
        ctx.lineWidth = 2 * ratio;
        ctx.setLineDash([8 * ratio, 4 * ratio]);
        ctx.beginPath();
        ctx.moveTo(box.left, y);
        ctx.lineTo(box.left + box.width, y);
        ctx.stroke();
        ctx.fillStyle = "#dc2626";
        ctx.textAlign = "right";
        ctx.textBaseline = "top";
        ctx.fillText("budget " + humanBytes(chart.budget), box.left + box.width - 4 * ratio,
                     y + 5 * ratio);
      }
      ctx.restore();
    } } };
    new uPlot({
      width: Math.max(300, el.clientWidth), height: 260, plugins: [overlay],
      legend: { show: false }, cursor: { show: false },
      scales: { x: { time: false, range: [-0.5, xs.length - 0.5] }, y: { range: [0, top] } },
      axes: [{
        font: FONT, stroke: "#374151", grid: { show: false }, ticks: { show: false },
        splits: function () { return xs; },
        values: function (u, splits) {
          return splits.map(function (i) { return "batch " + chart.batch_sizes[i]; });
        },
      }, {
        font: FONT, stroke: "#6b7280", size: 70, grid: { stroke: "#e5e7eb", width: 1 },
        incrs: BYTE_STEPS,
        values: function (u, splits) { return splits.map(humanBytes); },
      }],
      series: [{}, {
        label: chart.title, width: 0, fill: BAR, points: { show: false },
        paths: uPlot.paths.bars({
          size: [0.55, 90], disp: { fill: { unit: 3, values: function () { return fills; } } },
        }),
      }],
    }, [xs, peaks], el);
  }

  document.querySelectorAll("[data-probe]").forEach(function (el) {
    curveChart(el, data.probes[Number(el.getAttribute("data-probe"))]);
  });
  document.querySelectorAll("[data-memory]").forEach(function (el) {
    memoryChart(el, data.memory[el.getAttribute("data-memory")]);
  });
  document.body.setAttribute("data-charts", "drawn");
})();
