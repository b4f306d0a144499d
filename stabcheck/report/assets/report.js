/* stabcheck HTML report: draws the charts of the embedded result with uPlot.
 * The page's text (header, grid, advice, probe cards) is rendered by Python; this script
 * only fills the chart containers: one loss / gradient-norm chart per probe (small
 * multiples, the failure marked at its step) and the peak-memory-per-batch-size charts. */
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("stabcheck-data").textContent);
  var COLORS = data.colors;
  var LOSS = "#2563eb", GRAD = "#0d9488";
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

  /* Place label elements so that no two overlap: each goes to its anchor (centred on x,
   * its edge at y, growing up or down) or, where a label already placed is in the way,
   * one row further up (or down), as many rows as it takes. Returns the boxes, in the
   * container's coordinates before any padding is added. */
  function layoutLabels(items, width) {
    var placed = [], GAP = 2;
    function clash(box) {
      return placed.some(function (p) {
        return box.left < p.right + GAP && p.left < box.right + GAP &&
               box.top < p.bottom + GAP && p.top < box.bottom + GAP;
      });
    }
    items.forEach(function (item) {
      var w = item.el.offsetWidth, h = item.el.offsetHeight;
      var left = Math.min(Math.max(0, item.x - w / 2), Math.max(0, width - w));
      for (var row = 0; row < 200; row++) {
        var shift = row * (h + GAP);
        var top = item.up ? item.y - h - shift : item.y + shift;
        var box = { left: left, right: left + w, top: top, bottom: top + h, el: item.el };
        if (!clash(box)) { placed.push(box); break; }
      }
    });
    return placed;
  }

  /* Bars of peak memory per batch size (blue where it fit, purple where memory ran out),
   * the budget as a dashed line; the values above the bars and the batch sizes under them
   * are HTML labels laid out by layoutLabels, and the legend beside the chart uses the
   * same colours (data.memory_colors). */
  function memoryChart(el, chart) {
    var peaks = chart.peak, C = data.memory_colors;
    if (!hasData(peaks)) {
      el.classList.add("empty");
      el.textContent = "no peak memory was recorded";
      return;
    }
    var xs = chart.batch_sizes.map(function (_, i) { return i; });
    var fills = chart.oom.map(function (oom) { return oom ? C.oom : C.fits; });
    var top = Math.max.apply(null, peaks.concat([chart.budget || 0]).map(function (v) {
      return v || 0;
    })) * 1.08;
    var budgetLine = { hooks: { draw: function (u) {
      if (!chart.budget) return;
      var ctx = u.ctx, box = u.bbox;
      var y = Math.round(u.valToPos(chart.budget, "y", true));
      ctx.save();
      ctx.strokeStyle = C.budget;
      ctx.lineWidth = 2 * ratio;
      ctx.setLineDash([8 * ratio, 4 * ratio]);
      ctx.beginPath();
      ctx.moveTo(box.left, y);
      ctx.lineTo(box.left + box.width, y);
      ctx.stroke();
      ctx.restore();
    } } };
    /* uPlot lays its scales out after the constructor returns: label once it is ready. */
    var labels = { hooks: { ready: function (u) { labelBars(el, u, chart, fills); } } };
    new uPlot({
      width: Math.max(300, el.clientWidth), height: 240, plugins: [budgetLine, labels],
      legend: { show: false }, cursor: { show: false },
      scales: { x: { time: false, range: [-0.5, xs.length - 0.5] }, y: { range: [0, top] } },
      axes: [{
        size: 6, grid: { show: false }, ticks: { show: false },
        splits: function () { return xs; },
        values: function (u, splits) { return splits.map(function () { return ""; }); },
      }, {
        font: FONT, stroke: "#6b7280", size: 70, grid: { stroke: "#e5e7eb", width: 1 },
        incrs: BYTE_STEPS,
        values: function (u, splits) { return splits.map(humanBytes); },
      }],
      series: [{}, {
        label: chart.title, width: 0, fill: C.fits, points: { show: false },
        paths: uPlot.paths.bars({
          size: [0.55, 90], disp: { fill: { unit: 3, values: function () { return fills; } } },
        }),
      }],
    }, [xs, peaks], el);
  }

  /* The value above each bar and the batch size under it, as HTML labels that
   * layoutLabels keeps apart; the chart's box grows to hold them. */
  function labelBars(el, u, chart, fills) {
    var peaks = chart.peak, C = data.memory_colors;
    var host = el.getBoundingClientRect(), over = u.over.getBoundingClientRect();
    var ox = over.left - host.left, oy = over.top - host.top;
    var items = [], bars = [];
    peaks.forEach(function (v, i) {
      var x = ox + u.valToPos(i, "x");
      var value = document.createElement("span");
      value.className = "chart-label value" + (chart.oom[i] ? " oom" : "");
      value.textContent = v == null ? "not measured" : humanBytes(v);
      value.setAttribute("data-bar", String(i));
      value.style.color = chart.oom[i] ? C.oom : "#374151";
      var size = document.createElement("span");
      size.className = "chart-label batch";
      size.textContent = String(chart.batch_sizes[i]);
      el.appendChild(value);
      el.appendChild(size);
      items.push({ el: value, x: x, y: oy + u.valToPos(v || 0, "y") - 3, up: true });
      items.push({ el: size, x: x, y: oy + over.height + 4, up: false });
      bars.push({ x: u.valToPos(i, "x") + u.bbox.left / ratio,
                  y: u.valToPos((v || 0) / 2, "y") + u.bbox.top / ratio, fill: fills[i] });
    });
    var boxes = layoutLabels(items, host.width);
    var lowest = Math.min.apply(null, boxes.map(function (b) { return b.top; }));
    var highest = Math.max.apply(null, boxes.map(function (b) { return b.bottom; }));
    var padTop = Math.max(0, Math.ceil(-lowest) + 2);
    el.style.paddingTop = padTop + "px";
    el.style.paddingBottom = Math.max(0, Math.ceil(highest - host.height) + 4) + "px";
    boxes.forEach(function (b) {
      b.el.style.left = b.left + "px";
      b.el.style.top = (b.top + padTop) + "px";
    });
    el.setAttribute("data-bars", JSON.stringify(bars));
    el.setAttribute("data-labelled", "yes");
  }

  document.querySelectorAll("[data-probe]").forEach(function (el) {
    curveChart(el, data.probes[Number(el.getAttribute("data-probe"))]);
  });
  document.querySelectorAll("[data-memory]").forEach(function (el) {
    memoryChart(el, data.memory[el.getAttribute("data-memory")]);
  });
  document.body.setAttribute("data-charts", "drawn");
})();
