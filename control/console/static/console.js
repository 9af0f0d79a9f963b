// The console's live parts: the jobs list's rows, the new-job estimate, a job's page, a
// training file's page while it validates, and the keys of the blind-review pages.
// Everything else is server-rendered HTML; without this file every page still works,
// it just doesn't update by itself.
"use strict";

(function () {
  const POLL_MS = 1000 * (parseFloat(document.body.dataset.pollSeconds) || 2);

  // --- small helpers -------------------------------------------------------------
  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function badge(status, label, tone) {
    return el("span", { class: "badge badge-" + tone, "data-status": status }, label);
  }

  function setBar(container, percent) {
    const bar = container.querySelector(".bar");
    if (!bar) return;
    bar.setAttribute("aria-valuenow", String(percent));
    bar.querySelector("rect").setAttribute("width", String(percent));
  }

  function fmt(value, digits) {
    if (value === null || value === undefined) return "—";
    return Number(value).toPrecision(digits || 4).replace(/\.?0+$/, "");
  }

  let offline = null;
  function connection(ok) {
    if (ok && offline) { offline.remove(); offline = null; }
    if (!ok && !offline) {
      offline = el("p", { class: "flash flash-error", role: "status" },
        "Lost contact with the server; retrying. The page updates again once it answers.");
      document.querySelector("main").prepend(offline);
    }
  }

  // Ask ``url()`` every POLL_MS; ``apply(body)`` returns false to stop.
  function poll(url, apply) {
    async function tick() {
      let again = true;
      try {
        const r = await fetch(url(), { headers: { Accept: "application/json" }, credentials: "same-origin" });
        if (r.redirected || r.status === 401) { window.location.reload(); return; }  // signed out
        if (!r.ok) throw new Error("HTTP " + r.status);
        connection(true);
        again = apply(await r.json()) !== false;
      } catch (e) {
        connection(false);
      }
      if (again) setTimeout(tick, POLL_MS);
    }
    setTimeout(tick, POLL_MS);
  }

  // --- jobs list: active rows update in place ----------------------------------------
  function jobsList(table) {
    const active = () => Array.from(table.querySelectorAll("tr[data-active]"));
    if (!active().length) return;
    poll(() => table.dataset.liveUrl + "?ids=" + active().map((r) => r.dataset.jobId).join(","),
      (body) => {
        for (const job of body.jobs) {
          const row = table.querySelector(`tr[data-job-id="${CSS.escape(job.id)}"]`);
          if (!row) continue;
          row.querySelector('[data-field="status"]').replaceChildren(badge(job.status, job.status_label, job.tone));
          setBar(row.querySelector('[data-field="progress"]'), job.progress);
          row.querySelector('[data-field="steps"]').textContent =
            job.total_steps ? `step ${job.step || 0} of ${job.total_steps}` : "";
          row.querySelector('[data-field="cost"]').firstChild.textContent = job.cost;
          if (job.final) row.removeAttribute("data-active");
        }
        return active().length > 0;
      });
  }

  // --- new job: the estimate follows the form ------------------------------------------
  function jobForm(form) {
    const out = (name) => document.querySelector(`[data-estimate="${name}"]`);
    let timer = null;
    let latest = 0;
    async function refresh() {
      const data = new FormData(form);
      data.delete("csrf_token");
      if (!data.get("training_file_id")) {
        out("status").textContent = "Choose a training file to see the cost.";
        return;
      }
      const ask = ++latest;
      out("status").textContent = "Updating…";
      try {
        const r = await fetch(form.dataset.estimateUrl + "?" + new URLSearchParams(data), { credentials: "same-origin" });
        const body = await r.json();
        if (ask !== latest) return;                // a newer answer is on its way
        form.querySelectorAll(".field-error.live").forEach((n) => n.remove());
        if (!r.ok) {
          out("status").textContent = "Fix the marked settings to see the cost.";
          for (const [field, message] of Object.entries(body.errors || {})) {
            const input = form.querySelector(`[name="${CSS.escape(field)}"]`);
            const p = el("p", { class: "field-error live", role: "alert" }, message);
            (input ? input.closest("label") || input.parentElement : form).append(p);
          }
          return;
        }
        out("cost").textContent = body.cost;
        out("range").textContent = body.low + "–" + body.high;
        out("duration").textContent = body.duration;
        out("warning").textContent = body.warning || "";
        out("warning").hidden = !body.warning;
        out("status").textContent = "Updates as you change the settings.";
        for (const [name, p] of Object.entries(body.presets)) {
          const node = document.querySelector(`[data-preset-estimate="${name}"]`);
          if (node) node.textContent = `≈ ${p.cost} · ${p.duration}`;
        }
      } catch (e) {
        out("status").textContent = "Could not reach the server for an estimate; it will retry on your next change.";
      }
    }
    const later = () => { clearTimeout(timer); timer = setTimeout(refresh, 300); };
    form.addEventListener("input", later);
    form.addEventListener("change", later);
  }

  // --- one job: figures, stages, curves, metrics and events while it runs -------------------
  function chart(canvas, label, color, points, key) {
    if (!window.Chart) return null;
    return new window.Chart(canvas, {
      type: "line",
      data: { datasets: [{ label, data: points.filter((p) => p[key] !== null).map((p) => ({ x: p.step, y: p[key] })),
                           borderColor: color, backgroundColor: color, pointRadius: 0, borderWidth: 2, tension: 0.2 }] },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false, parsing: false,
        scales: { x: { type: "linear", title: { display: true, text: "step" } },
                  y: { title: { display: true, text: label } } },
        plugins: { legend: { display: false } },
      },
    });
  }

  function metricRow(p) {
    const tr = el("tr");
    const cells = [p.step, fmt(p.epoch, 3), fmt(p.training_loss), p.learning_rate === null ? "—" : Number(p.learning_rate).toExponential(2),
                   fmt(p.gradient_norm, 3), fmt(p.tokens_per_second), fmt(p.gpu_memory_gb, 3)];
    for (const c of cells) tr.append(el("td", { class: "num" }, c));
    return tr;
  }

  function eventRow(e) {
    const tr = el("tr", { "data-type": e.type });
    tr.append(el("td", { class: "nowrap" }, e.ts.slice(11, 19)), el("td", { class: "num" }, e.attempt));
    const t = el("td");
    t.append(el("span", { class: "etype etype-" + e.type }, e.type));
    tr.append(t, el("td", {}, e.text));
    return tr;
  }

  function jobPage(root) {
    const points = JSON.parse(document.getElementById("metrics-data").textContent);
    const lossCanvas = document.getElementById("loss-chart");
    const lrCanvas = document.getElementById("lr-chart");
    const loss = chart(lossCanvas, "loss", "#2563eb", points, "training_loss");
    const lr = chart(lrCanvas, "learning rate", "#d97706", points, "learning_rate");
    let lastStep = points.length ? points[points.length - 1].step : null;
    let afterId = parseInt(root.dataset.afterId || "0", 10);
    const seen = new Set();
    if (root.dataset.final === "true") return;

    function addPoints(list) {
      for (const p of list) {
        if (lastStep !== null && p.step <= lastStep) continue;   // a resumed attempt re-reports steps
        lastStep = p.step;
        if (loss && p.training_loss !== null) loss.data.datasets[0].data.push({ x: p.step, y: p.training_loss });
        if (lr && p.learning_rate !== null) lr.data.datasets[0].data.push({ x: p.step, y: p.learning_rate });
        const rows = document.getElementById("metrics-rows");
        rows.prepend(metricRow(p));
        while (rows.children.length > 50) rows.lastElementChild.remove();
      }
      if (list.length) {
        if (loss) loss.update("none");
        if (lr) lr.update("none");
        const n = loss ? loss.data.datasets[0].data.length : Number(lossCanvas.dataset.points) + list.length;
        lossCanvas.dataset.points = lrCanvas.dataset.points = String(n);
        document.querySelectorAll(".chart-empty").forEach((node) => { node.hidden = n > 0; });
      }
    }

    function addEvents(list) {
      const body = document.getElementById("event-rows");
      for (const e of list) {
        if (seen.has(e.id)) continue;
        seen.add(e.id);
        body.prepend(eventRow(e));
      }
      if (list.length) { const none = document.getElementById("no-events"); if (none) none.remove(); }
    }

    function show(job) {
      const live = (k) => root.querySelector(`[data-live="${k}"]`);
      live("badge").replaceChildren(badge(job.status, job.status_label, job.tone));
      live("progress").textContent = job.progress;
      setBar(document.getElementById("progress"), job.progress);
      live("steps").textContent = job.total_steps ? `step ${job.step || 0} of ${job.total_steps}` : "waiting for the first step";
      for (const k of ["epoch", "elapsed", "eta", "loss", "lr", "cost", "estimate", "estimate_range", "projected"]) live(k).textContent = job[k];
      live("cost_alerts").replaceChildren(...job.cost_alerts.map((t) => el("span", { class: "badge badge-warn" }, t)));
      for (const s of job.timeline) {
        const li = document.querySelector(`#stages [data-stage="${s.stage}"]`);
        li.className = "stage stage-" + s.state;
        li.dataset.state = s.state;
        li.querySelector(".stage-time").textContent = s.seconds === null ? "" : formatSeconds(s.seconds);
      }
      if (job.error) {
        live("error").hidden = false;
        live("error-type").textContent = job.error.type;
        live("error-message").textContent = job.error.message || "";
        live("error-cause").textContent = job.error.cause || "see the event log below.";
        live("error-fix").textContent = job.error.fix || "see the event log below.";
      }
      live("stalled").hidden = !job.stalled;
      live("stalled_since").textContent = job.stalled_since || "";
      root.dataset.status = job.status;
    }

    poll(() => {
      const q = new URLSearchParams({ after_id: String(afterId) });
      if (lastStep !== null) q.set("since_step", String(lastStep));
      if (root.dataset.eventType) q.set("event_type", root.dataset.eventType);
      if (root.dataset.eventQ) q.set("event_q", root.dataset.eventQ);
      return root.dataset.liveUrl + "?" + q;
    }, (body) => {
      show(body.job);
      addPoints(body.points);
      addEvents(body.events);
      afterId = body.after_id;
      if (body.job.final) {
        // The evaluation, downloads and actions of a finished job are drawn by the server.
        window.location.reload();
        return false;
      }
      return true;
    });
  }

  function formatSeconds(s) {
    s = Math.round(s);
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
    return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
  }

  // --- a training file while it validates: reload once the task has stored its result -----
  function fileValidating(section) {
    const started = Date.now();
    const note = el("p", { class: "small muted", "data-live": "elapsed" });
    section.append(note);
    poll(() => section.dataset.liveUrl, (body) => {
      if (body.final) { window.location.reload(); return false; }
      note.textContent = "Still validating after " + formatSeconds((Date.now() - started) / 1000) + ".";
      return true;
    });
  }

  // --- blind review: the keys ---------------------------------------------------------------
  // 1-5 score the highlighted criterion and move to the next; a/b/t pick the better answer or
  // a tie; Enter saves (the server goes on to the next item); n or → next, p or ← previous.
  // The form works the same without this: it only sets the radios and follows the page's links.
  const TYPING = "textarea, select, input[type=text], input[type=number], input[type=search], input[type=password]";

  function reviewKeys(form) {
    const groups = Array.from(form.querySelectorAll("[data-score-group]"));
    const preference = form.querySelector("[data-preference]");
    const save = form.querySelector("button[type=submit]");
    let current = groups.findIndex((g) => !g.querySelector("input:checked"));
    if (current < 0) current = 0;

    // ``i`` may be groups.length: past the scores, on the preference (or the save button).
    function mark(i, focus) {
      current = Math.min(Math.max(i, 0), groups.length);
      groups.forEach((g, j) => g.classList.toggle("current", j === current));
      if (!focus) return;
      let target = save;
      if (current < groups.length) {
        target = groups[current].querySelector("input:checked") || groups[current].querySelector("input");
      } else if (preference) {
        target = preference.querySelector("input:checked") || preference.querySelector("input");
      }
      if (!target) return;
      target.focus({ preventScroll: true });
      (current < groups.length ? groups[current] : target).scrollIntoView({ block: "nearest" });
    }

    function choose(container, value) {
      const input = container.querySelector(`input[value="${CSS.escape(value)}"]`);
      if (!input) return;
      input.checked = true;
      container.classList.remove("invalid");
      input.dispatchEvent(new Event("change", { bubbles: true }));
    }

    function follow(rel) {
      const link = document.querySelector(`a[rel="${rel}"]`);
      if (link) window.location.assign(link.href);
    }

    groups.forEach((g, i) => g.addEventListener("focusin", () => mark(i, false)));
    if (preference) preference.addEventListener("focusin", () => mark(groups.length, false));

    document.addEventListener("keydown", (e) => {
      if (e.ctrlKey || e.metaKey || e.altKey || e.defaultPrevented) return;
      if (e.target.matches && e.target.matches(TYPING)) return;
      const key = e.key.length === 1 ? e.key.toLowerCase() : e.key;
      const pick = { a: "A", b: "B", t: "tie" }[key];
      if (/^[1-5]$/.test(key)) {
        if (current >= groups.length) return;
        choose(groups[current], key);
        mark(current + 1, true);
      } else if (pick && preference) {
        choose(preference, pick);
        mark(groups.length, true);
        if (save) save.focus({ preventScroll: true });
      } else if (key === "n" || key === "ArrowRight") {
        follow("next");
      } else if (key === "p" || key === "ArrowLeft") {
        follow("prev");
      } else if (key === "Enter") {
        if (e.target.matches && e.target.matches("button, a, summary")) return;   // their own Enter
        if (!save) return;                       // a final review: nothing to save
        form.requestSubmit(save);
      } else {
        return;
      }
      e.preventDefault();
    });
    mark(current, true);
  }

  // --- forms that take a while say so --------------------------------------------------
  for (const form of document.querySelectorAll("form[data-busy-text]")) {
    form.addEventListener("submit", () => {
      const button = form.querySelector("button[type=submit]");
      button.disabled = true;
      button.textContent = form.dataset.busyText;
    });
  }

  const jobs = document.getElementById("jobs");
  if (jobs && jobs.dataset.liveUrl) jobsList(jobs);
  const form = document.getElementById("job-form");
  if (form) jobForm(form);
  const job = document.getElementById("job");
  if (job) jobPage(job);
  const validating = document.getElementById("file-validating");
  if (validating && validating.dataset.liveUrl) fileValidating(validating);
  const review = document.querySelector("form[data-review-keys]");
  if (review) reviewKeys(review);
})();
