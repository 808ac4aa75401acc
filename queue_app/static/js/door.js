/* The door sign: a tablet left on it reloads after the branch's local midnight, when the "I'm here"
 * code changes (the server says when, in its own clock: the tablet's may be wrong). The page is
 * fetched first, so a server or network down at midnight leaves the sign up and tries again later
 * instead of showing the browser's error page. The Print button prints the page (A4, door.css). */
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("page-data").textContent);
  var offset = data.server_time_ms - Date.now();
  var CHECK_MS = 30000;
  var busy = false;

  function check() {
    if (busy || Date.now() + offset < data.reload_at_ms) return;
    busy = true;
    fetch(window.location.href, { cache: "no-store", credentials: "same-origin" })
      .then(function (response) {
        if (response.ok) window.location.reload();
        else busy = false;
      })
      .catch(function () { busy = false; });
  }

  // An interval, not one long timeout: a tablet that slept through midnight catches up on waking.
  window.setInterval(check, CHECK_MS);
  document.addEventListener("visibilitychange", check);
  document.getElementById("door-print").addEventListener("click", function () { window.print(); });
})();
