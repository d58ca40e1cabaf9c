// menusync console: refresh a fragment in place (no full reload). Nothing else runs here.
(function () {
  "use strict";
  function refresh(body) {
    var url = body.getAttribute("data-refresh");
    fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then(function (r) {
        if (r.status === 401) { window.location.assign("/console/login"); return null; }
        return r.ok ? r.text() : null;
      })
      .then(function (html) {
        if (html === null) return;
        body.innerHTML = html;
        body.setAttribute("data-refreshed-at", String(Date.now()));
        var stamp = document.querySelector("[data-testid=refreshed]");
        if (stamp) stamp.textContent = new Date().toISOString().replace("T", " ").slice(0, 19) + " UTC";
      })
      .catch(function () { /* the next tick tries again */ });
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-refresh]").forEach(function (body) {
      var every = parseInt(body.getAttribute("data-interval") || "3000", 10);
      window.setInterval(function () { if (!document.hidden) refresh(body); }, every);
    });
  });
})();
