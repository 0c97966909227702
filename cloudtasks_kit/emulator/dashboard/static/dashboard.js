// The dashboard's only script: live updates over server-sent events, relative times, and a confirm
// before purge and delete. No framework, no build step; the pages work without it (reload to update).
(function () {
  "use strict";

  function relative(seconds) {
    var abs = Math.abs(seconds);
    var text = abs < 1 ? "now" : abs < 90 ? Math.round(abs) + " s" : abs < 5400 ? Math.round(abs / 60) + " min" : Math.round(abs / 3600) + " h";
    if (text === "now") return text;
    return seconds > 0 ? "in " + text : text + " ago";
  }

  function refreshTimes(root) {
    var now = Date.now() / 1000;
    root.querySelectorAll("time[data-t]").forEach(function (el) {
      var rel = el.nextElementSibling;
      if (!rel || !rel.classList.contains("rel")) {
        rel = document.createElement("span");
        rel.className = "rel";
        el.after(rel);
      }
      rel.textContent = " (" + relative(parseFloat(el.dataset.t) - now) + ")";
    });
  }

  // One listener for every form, present and future (the live part is replaced on each update).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
    }
  });

  function start() {
    refreshTimes(document);
    setInterval(function () { refreshTimes(document); }, 1000);
    var live = document.getElementById("live");
    var status = document.getElementById("live-status");
    if (!live || !live.dataset.events || !window.EventSource) return;
    function show(state) {
      status.dataset.state = state;
      status.textContent = state;
    }
    var source = new EventSource(live.dataset.events);
    source.onopen = function () { show("live"); };
    source.onerror = function () { show("reconnecting"); };
    source.addEventListener("update", function (event) {
      // Panels the reader opened stay open across the update (matched by position).
      var open = [];
      live.querySelectorAll("details").forEach(function (el, i) { if (el.open) open.push(i); });
      // The fragment is rendered by the server with every value escaped, like the page itself.
      live.innerHTML = event.data;
      var details = live.querySelectorAll("details");
      open.forEach(function (i) { if (details[i]) details[i].open = true; });
      refreshTimes(live);
      show("live");
    });
    source.addEventListener("gone", function () {
      source.close();
      show("gone");
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
