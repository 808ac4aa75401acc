/* "I'm here" by the branch's daily code (/here/<slug>/<code>, the QR at the door or the kiosk):
 * the phone's remote ticket for this branch (its token was kept by the tracking page, track.js)
 * is marked arrived with today's code.
 */
(function () {
  "use strict";
  var Q = window.QueueApp;
  var data = Q.pageData();
  var note = document.getElementById("here-message");
  var link = document.getElementById("here-track");
  var token = null;
  try { token = window.localStorage.getItem("queue_app.remote." + data.slug); } catch (blocked) { token = null; }
  if (!token) {
    note.textContent = data.text.no_ticket;
    return;
  }
  link.href = data.track_url.replace("TOKEN", encodeURIComponent(token));
  Q.show(link, true);
  Q.request("POST", data.arrived_url.replace("TOKEN", encodeURIComponent(token)), { body: { code: data.code } })
    .then(function (result) {
      if (result.ok) {
        note.textContent = Q.format(data.text.arrived, { label: result.data.label });
        document.documentElement.setAttribute("data-arrived", "yes");
      } else {
        var code = Q.errorCode(result);
        note.textContent = (code && data.messages[code]) || Q.errorMessage(result, data.messages.failed);
      }
    }, function () {
      note.textContent = data.messages.offline;
    });
})();
