// Time-series line charts for the reports and supervisor pages, drawn by uPlot.
//
// uPlot comes from npm (package.json at the repository root, installed by the bootstrap
// into node_modules, never committed) and is served by the app under /vendor/uplot/.
// It is loaded on first use, so a page whose tables work without it still works if the
// library is missing; the chart box then says so.

let lib = null;

function uplot() {
  lib ??= import("/vendor/uplot/uPlot.esm.js").then((m) => m.default);
  return lib;
}

const COLORS = ["#1f6feb", "#1a7f37", "#c2372b", "#8250df", "#9a6700", "#0a7d8c"];

// Draw `series` ([{ label, values, color?, dash? }]) against `xs` (epoch seconds, UTC) in
// `box`, replacing what was there. After drawing, the box carries data-series and
// data-points (what is on the canvas) and data-drawn="yes".
export async function lineChart(box, xs, series, { yLabel = "", yRange = null, height = 220 } = {}) {
  let UPlot;
  try {
    UPlot = await uplot();
  } catch {
    box.textContent = "Charts are unavailable: the chart library is not installed on the server.";
    box.dataset.drawn = "no";
    return;
  }
  if (box.chart) box.chart.destroy();
  box.textContent = "";
  const opts = {
    width: Math.max(320, box.clientWidth || 640),
    height,
    tzDate: (ts) => UPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
    scales: { x: { time: true }, y: yRange ? { range: yRange } : { auto: true } },
    axes: [{}, { label: yLabel }],
    series: [
      { label: "time (UTC)" },
      ...series.map((s, i) => ({
        label: s.label,
        stroke: s.color || COLORS[i % COLORS.length],
        width: 2,
        dash: s.dash,
        spanGaps: true,
      })),
    ],
  };
  box.chart = new UPlot(opts, [xs, ...series.map((s) => s.values)], box);
  box.dataset.series = String(series.length);
  box.dataset.points = String(xs.length);
  box.dataset.drawn = "yes";
}
