/* The waits widget inside another site's <iframe>: fresh figures every half minute (the page
 * itself again, server-rendered in its language), and its height told to the host page so
 * static/js/waits_widget.js can size the frame. The height is all it tells the host. */
(function () {
  "use strict";

  var data = JSON.parse(document.getElementById("page-data").textContent);
  var root = document.getElementById("embed-waits");

  function tellHeight() {
    if (window.parent === window) return;
    window.parent.postMessage({ type: "queue-waits:height", height: document.documentElement.scrollHeight }, "*");
  }

  function refresh() {
    if (document.hidden) return;
    fetch(window.location.href, { headers: { "Accept": "text/html" }, credentials: "omit" })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (!html) return;
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("embed-waits");
        if (!fresh) return;
        while (root.firstChild) root.removeChild(root.firstChild);
        while (fresh.firstChild) root.appendChild(document.adoptNode(fresh.firstChild));
        tellHeight();
      })
      .catch(function () { /* keep the figures shown */ });
  }

  window.addEventListener("resize", tellHeight);
  tellHeight();
  setInterval(refresh, (data.refresh_s || 30) * 1000);
})();
