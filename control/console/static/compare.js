// Comparing runs: the compare page's charts (every run's curve on shared axes, one colour,
// dash and marker per run: the same colours as compare.css and the PDF's charts), and the
// jobs list's "Compare selected" (2 to 4 ticked, said as they are ticked).
(function () {
  "use strict";
  const COLOURS = ["#1f4e79", "#c2410c", "#15803d", "#7e22ce"];
  const DASHES = [[], [6, 4], [2, 3], [10, 3, 2, 3]];
  const MARKERS = ["circle", "rect", "triangle", "rectRot"];
  const TITLES = { training_loss: "training loss", validation_loss: "validation loss", learning_rate: "learning rate" };

  function overlay(canvas, runs, key) {
    if (!window.Chart) return null;
    const datasets = runs.map((run, i) => ({
      label: run.name,
      data: run.curves[key].map((p) => ({ x: p[0], y: p[1] })),
      borderColor: COLOURS[i % COLOURS.length], backgroundColor: COLOURS[i % COLOURS.length],
      borderDash: DASHES[i % DASHES.length], pointStyle: MARKERS[i % MARKERS.length],
      pointRadius: key === "validation_loss" ? 3 : 0, pointHoverRadius: 4, borderWidth: 2, tension: 0.15,
    }));
    const rate = key === "learning_rate";
    return new window.Chart(canvas, {
      type: "line",
      data: { datasets },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false, parsing: false,
        interaction: { mode: "nearest", axis: "x", intersect: false },
        scales: {
          x: { type: "linear", title: { display: true, text: "step" } },
          y: { title: { display: true, text: TITLES[key] },
               ticks: rate ? { callback: (v) => Number(v).toExponential(1) } : {} },
        },
        plugins: { legend: { display: true, position: "bottom", labels: { usePointStyle: true, boxHeight: 6 } } },
      },
    });
  }

  function comparePage(data) {
    const runs = JSON.parse(data.textContent).runs;
    document.querySelectorAll("canvas[data-curve]").forEach((canvas) => overlay(canvas, runs, canvas.dataset.curve));
  }

  function listPage(form) {
    const low = Number(form.dataset.min), high = Number(form.dataset.max);
    const button = form.querySelector("button[type=submit]");
    const hint = document.getElementById("compare-hint");
    const boxes = () => Array.from(document.querySelectorAll('input[type=checkbox][form="' + form.id + '"]'));
    function update() {
      const n = boxes().filter((b) => b.checked).length;
      const ok = n >= low && n <= high;
      button.disabled = !ok;
      button.setAttribute("aria-describedby", hint.id);
      hint.classList.toggle("field-error", n > high);
      hint.textContent = n === 0 ? "Tick " + low + " to " + high + " jobs to compare them side by side."
        : n < low ? n + " ticked: tick " + (low - n) + " more (" + low + " to " + high + ")."
        : n > high ? n + " ticked: at most " + high + "; untick " + (n - high) + "."
        : n + " ticked: ready to compare.";
    }
    document.addEventListener("change", (e) => { if (e.target.matches('input[form="' + form.id + '"]')) update(); });
    update();
  }

  document.addEventListener("DOMContentLoaded", () => {
    const data = document.getElementById("compare-data");
    if (data) comparePage(data);
    const form = document.getElementById("compare-form");
    if (form) listPage(form);
  });
})();
