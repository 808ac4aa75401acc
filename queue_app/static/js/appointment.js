/* A booking's own page (/a/<token>): reschedule (PATCH) and cancel (DELETE) through the REST API.
 *
 * The manage token in the address is the key, as for the API: no login, no cookie. After a
 * change the page reloads from the server, which shows the booking as it now is.
 */
(function () {
  "use strict";
  var Q = window.QueueApp;
  var data = Q.pageData();
  var messages = data.messages;

  function byId(id) { return document.getElementById(id); }
  var rescheduleButton = byId("reschedule-button");  // absent past the change cut-off
  var cancelButton = byId("cancel-button");  // absent once the visit has started
  if (!rescheduleButton && !cancelButton) return;  // nothing to change here
  var manageError = byId("manage-error");
  var rescheduleError = byId("reschedule-error");
  var cancelDialog = byId("cancel-dialog");
  var chosen = null;
  var busy = false;

  function showError(box, message) {
    box.textContent = message || "";
    Q.show(box, !!message);
  }

  function messageFor(result) {
    var code = result.status === 429 ? "too_many_requests" : Q.errorCode(result);
    return messages[code] || Q.errorMessage(result, messages.failed);
  }

  /** The server's answer: reload to show it (with a note of what changed). */
  function reloadWith(flag) {
    var url = data.page_url + (data.page_url.indexOf("?") >= 0 ? "&" : "?") + flag + "=1";
    window.location.replace(url);
  }

  /** A refusal that means the page is out of date (cut-off passed, visit started, cancelled elsewhere). */
  function isFinal(code) {
    return code === "cutoff_passed" || code === "visit_started" || code === "not_booked" ||
      code === "appointment_not_found";
  }

  if (rescheduleButton) setUpReschedule();
  if (cancelButton) setUpCancel();

  function setUpReschedule() {
    var panel = byId("reschedule");
    var confirmBox = byId("reschedule-confirm");
    var submit = byId("reschedule-submit");
    var submitLabel = submit.textContent;

    var picker = new Q.SlotPicker(byId("picker"), {
      url: data.availability_url,
      days: data.days,
      timezone: data.timezone,
      calendar: data.calendar,
      text: data.picker,
      current: data.start,
      onPick: function (slot, label) {
        chosen = slot;
        showError(rescheduleError, "");
        byId("new-when").textContent = label;
        Q.show(confirmBox, true);
        confirmBox.scrollIntoView({ block: "nearest" });
      },
    });

    function openPanel(open) {
      Q.show(panel, open);
      rescheduleButton.setAttribute("aria-expanded", String(open));
      if (open) {
        chosen = null;
        Q.show(confirmBox, false);
        showError(rescheduleError, "");
        picker.load(data.service);
        byId("reschedule-title").focus();
        panel.scrollIntoView({ block: "start" });
      } else {
        rescheduleButton.focus();
      }
    }

    rescheduleButton.addEventListener("click", function () { openPanel(panel.hidden); });
    byId("reschedule-close").addEventListener("click", function () { openPanel(false); });

    submit.addEventListener("click", function () {
      if (!chosen || busy) return;
      busy = true;
      submit.disabled = true;
      submit.textContent = data.text.moving;
      Q.request("PATCH", data.appointment_url, { body: { start: chosen.start } }).then(function (result) {
        if (result.ok) {
          reloadWith("changed");
          return true;
        }
        var code = Q.errorCode(result);
        if (isFinal(code)) {
          showError(manageError, messageFor(result));
          setTimeout(function () { window.location.replace(data.page_url); }, 4000);
          return false;
        }
        // Typically slot_full: the old booking stands; show fresh times.
        showError(rescheduleError, messageFor(result));
        chosen = null;
        Q.show(confirmBox, false);
        picker.reload();
        byId("reschedule-title").focus();
        return false;
      }, function () {
        showError(rescheduleError, messages.offline);
        return false;
      }).then(function (reloading) {
        busy = false;
        if (reloading) return;
        submit.disabled = false;
        submit.textContent = submitLabel;
      });
    });
  }

  /* Cancel, after a confirmation. */

  function setUpCancel() {
    var cancelLabel = cancelButton.textContent;

    function cancelBooking() {
      if (busy) return;
      busy = true;
      cancelButton.disabled = true;
      cancelButton.textContent = data.text.cancelling;
      Q.request("DELETE", data.appointment_url).then(function (result) {
        if (result.ok) {
          reloadWith("cancelled");
          return true;
        }
        showError(manageError, messageFor(result));
        if (isFinal(Q.errorCode(result))) setTimeout(function () { window.location.replace(data.page_url); }, 4000);
        return false;
      }, function () {
        showError(manageError, messages.offline);
        return false;
      }).then(function (reloading) {
        busy = false;
        if (reloading) return;
        cancelButton.disabled = false;
        cancelButton.textContent = cancelLabel;
      });
    }

    cancelButton.addEventListener("click", function () {
      showError(manageError, "");
      if (typeof cancelDialog.showModal === "function") {
        cancelDialog.returnValue = "";
        cancelDialog.showModal();
      } else if (window.confirm(cancelDialog.querySelector("p").textContent)) {
        cancelBooking();
      }
    });
    cancelDialog.addEventListener("close", function () {
      if (cancelDialog.returnValue === "cancel") cancelBooking();
      else cancelButton.focus();
    });
  }
})();
