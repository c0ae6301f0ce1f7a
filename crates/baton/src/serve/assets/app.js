// baton serve: keeps a page live. The server tells which plans changed over /events; the page
// then asks for its own <main> again (?part=main) and swaps it in, keeping open <details> open.
(function () {
  "use strict";
  var body = document.body;
  var scope = body.getAttribute("data-live") || "";
  var badge = document.getElementById("live");
  var busy = false, again = false, last = 0;

  function say(state, text) {
    if (!badge) return;
    badge.className = state;
    badge.textContent = text;
  }

  function openKeys(main) {
    var keys = {};
    main.querySelectorAll("details[data-key]").forEach(function (d) {
      keys[d.getAttribute("data-key")] = d.open;
    });
    return keys;
  }

  function refresh() {
    if (busy) { again = true; return; }
    busy = true; again = false; last = Date.now();
    var url = location.pathname + (location.search ? location.search + "&" : "?") + "part=main";
    fetch(url, { credentials: "same-origin", headers: { "X-Baton-Part": "main" } })
      .then(function (r) {
        return r.ok ? r.text().then(function (t) { return [t, r.headers.get("X-Baton-Version")]; }) : Promise.reject(r.status);
      })
      .then(function (got) {
        var html = got[0], version = got[1];
        var main = document.querySelector("main");
        // Nothing changed on this page: leave it be (a selection, a click in progress).
        if (version && main.getAttribute("data-v") === version) return;
        if (version) main.setAttribute("data-v", version);
        var keys = openKeys(main);
        // What open transcripts showed stays until their fresh copy arrives.
        var shown = {};
        main.querySelectorAll("details[data-src][data-loaded]").forEach(function (d) {
          shown[d.getAttribute("data-key")] = d.querySelector(".lazy").innerHTML;
        });
        main.innerHTML = html;
        main.querySelectorAll("details[data-key]").forEach(function (d) {
          var k = d.getAttribute("data-key");
          if (k in keys) d.open = keys[k];
          if (k in shown) {
            d.querySelector(".lazy").innerHTML = shown[k];
            // Only a running attempt's transcript grows: the others are kept as they are.
            var attempt = d.closest("[data-outcome]");
            if (!attempt || attempt.getAttribute("data-outcome") !== "running") d.setAttribute("data-loaded", "1");
          }
        });
        lazy(main);
        tick();
        body.setAttribute("data-refreshed", String(Number(body.getAttribute("data-refreshed") || "0") + 1));
      })
      .catch(function () {})
      .then(function () {
        busy = false;
        if (again) setTimeout(refresh, Math.max(0, 250 - (Date.now() - last)));
      });
  }

  function concerns(change) {
    if (change.all) return true;
    if (scope === "all") return true;
    return (change.plans || []).indexOf(scope) >= 0;
  }

  function connect() {
    if (!window.EventSource || !scope) return;
    var es = new EventSource("/events");
    es.addEventListener("hello", function () { say("on", "live"); refresh(); });
    es.addEventListener("change", function (e) {
      var change = {};
      try { change = JSON.parse(e.data); } catch (x) { change = { all: true }; }
      if (concerns(change)) refresh();
    });
    es.onerror = function () {
      say("off", "reconnecting…");
      // A server started again with another token refuses this page's cookie: say so.
      fetch("/api/plans", { credentials: "same-origin" })
        .then(function (r) {
          if (r.status === 401) {
            es.close();
            say("off", "the server wants its token again: open this page with ?token=…");
          }
        })
        .catch(function () {});
    };
  }

  // Elapsed times and "ago" from data-since / data-at (RFC 3339), every second.
  function span(s) {
    s = Math.max(0, Math.floor(s));
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    if (h > 0) return h + "h " + (m < 10 ? "0" : "") + m + "m";
    if (m > 0) return m + "m " + (sec < 10 ? "0" : "") + sec + "s";
    return sec + "s";
  }
  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-since]").forEach(function (el) {
      var t = Date.parse(el.getAttribute("data-since"));
      if (!isNaN(t)) el.textContent = span((now - t) / 1000);
    });
    document.querySelectorAll("[data-until]").forEach(function (el) {
      var t = Date.parse(el.getAttribute("data-until"));
      if (!isNaN(t)) el.textContent = t > now ? "in " + span((t - now) / 1000) : "now";
    });
    document.querySelectorAll("[data-at]").forEach(function (el) {
      var t = Date.parse(el.getAttribute("data-at"));
      if (!isNaN(t)) el.textContent = span((now - t) / 1000) + " ago";
    });
  }

  // The Stop button: a POST with a header a page of another site cannot send.
  document.addEventListener("click", function (e) {
    var b = e.target.closest ? e.target.closest("button[data-stop]") : null;
    if (!b) return;
    if (!confirm("Stop this run? Running tasks finish and are saved; no new task starts.")) return;
    b.disabled = true;
    var out = document.getElementById("stop-said");
    fetch(b.getAttribute("data-stop"), { method: "POST", credentials: "same-origin", headers: { "X-Baton-CSRF": "stop" } })
      .then(function (r) { return r.json().then(function (j) { return [r.ok, j]; }); })
      .then(function (a) {
        if (out) out.textContent = a[0] ? a[1].said : (a[1].error || "the stop failed");
        if (!a[0]) b.disabled = false;
      })
      .catch(function () { b.disabled = false; if (out) out.textContent = "the server did not answer"; });
  });

  // A transcript is asked for when its <details> opens (and again when the page is refreshed).
  function load(d) {
    var box = d.querySelector(".lazy");
    fetch(d.getAttribute("data-src"), { credentials: "same-origin" })
      .then(function (r) { return r.text().then(function (t) { return [r.ok, t]; }); })
      .then(function (a) {
        if (a[0]) {
          // A transcript only grows: what was unfolded in it stays unfolded, by position.
          var open = [];
          box.querySelectorAll("details").forEach(function (x, i) { if (x.open) open.push(i); });
          box.innerHTML = a[1];
          var all = box.querySelectorAll("details");
          open.forEach(function (i) { if (all[i]) all[i].open = true; });
        } else {
          box.textContent = "cannot be read: " + a[1];
        }
        d.setAttribute("data-loaded", "1");
      })
      .catch(function () { box.textContent = "the server did not answer"; });
  }
  function lazy(root) {
    root.querySelectorAll("details[data-src]").forEach(function (d) {
      if (d.open && !d.hasAttribute("data-loaded")) load(d);
    });
  }
  document.addEventListener("toggle", function (e) {
    var d = e.target;
    if (d.matches && d.matches("details[data-src]") && d.open && !d.hasAttribute("data-loaded")) load(d);
  }, true);

  tick();
  setInterval(tick, 1000);
  lazy(document);
  connect();
})();
