/* The waits widget for another site's page: put
 *   <div data-queue-waits="BRANCH-SLUG"></div>
 *   <script src="https://QUEUE-HOST/static/js/waits_widget.js" async></script>
 * where the branch's waits should show. Each such element gets an <iframe> of
 * /embed/waits/BRANCH-SLUG from the host this script came from, sized to its content.
 * Optional attributes: data-lang (en, zh_Hant, zh_Hans) and data-title (the frame's name for
 * screen readers). The host page shares nothing with the frame but its size.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  if (!script) return;
  var origin = new URL(script.src, window.location.href).origin;
  var frames = [];

  function mount(node) {
    if (node.getAttribute("data-queue-waits-ready")) return;
    node.setAttribute("data-queue-waits-ready", "1");
    var slug = node.getAttribute("data-queue-waits");
    var lang = node.getAttribute("data-lang");
    var frame = document.createElement("iframe");
    frame.src = origin + "/embed/waits/" + encodeURIComponent(slug) + (lang ? "?lang=" + encodeURIComponent(lang) : "");
    frame.title = node.getAttribute("data-title") || slug;
    frame.setAttribute("loading", "lazy");
    frame.style.cssText = "display:block;width:100%;height:16rem;border:0;";
    node.appendChild(frame);
    frames.push(frame);
  }

  window.addEventListener("message", function (event) {
    var message = event.data;
    if (event.origin !== origin || !message || message.type !== "queue-waits:height") return;
    frames.forEach(function (frame) {
      if (frame.contentWindow === event.source && message.height > 0) {
        frame.style.height = Math.min(Math.ceil(message.height), 4000) + "px";
      }
    });
  });

  function mountAll() {
    Array.prototype.forEach.call(document.querySelectorAll("[data-queue-waits]"), mount);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mountAll);
  else mountAll();
})();
