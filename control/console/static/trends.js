// The jobs list's trends panel (templates/console/jobs/_trends.html): one dataset's perplexity
// gain (left axis) and cost (right axis) per completed job over time, with the documents'
// target as a dashed line. The figures are also in the panel's table, so without this file
// (or Chart.js) nothing is lost but the picture.
"use strict";

(function () {
  const panel = document.getElementById("trends");
  const data = document.getElementById("trends-data");
  const canvas = document.getElementById("trends-chart");
  if (!panel || !data || !canvas || !window.Chart) return;
  const points = JSON.parse(data.textContent);
  const target = parseFloat(panel.dataset.target);
  const at = (p) => Date.parse(p.completed_at);
  const day = (ms) => new Date(ms).toISOString().slice(0, 10);
  const gains = points.filter((p) => p.perplexity_gain_pct !== null)
    .map((p) => ({ x: at(p), y: p.perplexity_gain_pct, name: p.name }));
  const costs = points.map((p) => ({ x: at(p), y: p.cost_usd, name: p.name }));
  const datasets = [
    { label: "perplexity gain (%)", data: gains, yAxisID: "y", borderColor: "#2563eb", backgroundColor: "#2563eb",
      pointRadius: 3, borderWidth: 2, tension: 0.1 },
    { label: "cost ($)", data: costs, yAxisID: "y1", borderColor: "#d97706", backgroundColor: "#d97706",
      pointRadius: 3, borderWidth: 2, tension: 0.1 },
  ];
  if (!Number.isNaN(target) && points.length) {
    const first = at(points[0]);
    const last = at(points[points.length - 1]);
    datasets.push({ label: "target gain (" + target + "%)", yAxisID: "y", data: [{ x: first, y: target }, { x: last, y: target }],
                    borderColor: "#16a34a", borderDash: [6, 4], pointRadius: 0, borderWidth: 1 });
  }
  new window.Chart(canvas, {
    type: "line",
    data: { datasets },
    options: {
      animation: false, responsive: true, maintainAspectRatio: false, parsing: false,
      interaction: { mode: "nearest", intersect: false },
      scales: {
        x: { type: "linear", title: { display: true, text: "completed" }, ticks: { callback: day, maxTicksLimit: 8 } },
        y: { position: "left", title: { display: true, text: "perplexity gain (%)" } },
        y1: { position: "right", beginAtZero: true, grid: { drawOnChartArea: false },
              title: { display: true, text: "cost ($)" }, ticks: { callback: (v) => "$" + Number(v).toFixed(2) } },
      },
      plugins: {
        tooltip: { callbacks: {
          title: (items) => (items.length ? day(items[0].parsed.x) + (items[0].raw.name ? " · " + items[0].raw.name : "") : ""),
          label: (item) => item.dataset.yAxisID === "y1" ? "cost $" + item.parsed.y.toFixed(2)
            : item.dataset.label.split(" (")[0] + " " + item.parsed.y.toFixed(1) + "%",
        } },
      },
    },
  });
})();
