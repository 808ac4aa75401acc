/* Booking on a phone (/b/<slug>): service, then day and time, then name and contact.
 *
 * The form posts JSON to /b/<slug>/book with the CSRF token and one Idempotency-Key per form,
 * so a double tap or a retry after a lost answer books once. On success the booking's own page
 * (/a/<token>?new=1) takes over. Refusals are shown next to the step they concern, every field's
 * problem at once; a time that was just taken reloads the times.
 */
(function () {
  "use strict";
  var Q = window.QueueApp;
  var data = Q.pageData();
  var messages = data.messages;
  var fieldText = data.fields;
  var csrf = data.csrf_token;
  var idempotencyKey = Q.newKey();
  var SLOT_CODES = ["slot_full", "not_a_slot", "too_soon", "outside_window", "naive_time", "invalid_time"];

  function byId(id) { return document.getElementById(id); }
  var form = byId("booking-form");
  if (!form) return;  // the branch takes no bookings
  var stepTime = byId("step-time");
  var stepDetails = byId("step-details");
  var timeError = byId("time-error");
  var formError = byId("form-error");
  var bookButton = byId("book-button");
  var bookLabel = bookButton.textContent;
  var fields = ["name", "phone", "email"];

  var chosen = { service: null, serviceName: "", slot: null, label: "" };
  var sending = false;

  function showError(box, message) {
    box.textContent = message || "";
    Q.show(box, !!message);
  }

  function focusStep(step) {
    var heading = step.querySelector(".step-title");
    heading.focus({ preventScroll: true });
    step.scrollIntoView({ behavior: window.matchMedia("(prefers-reduced-motion: reduce)").matches ? "auto" : "smooth",
                          block: "start" });
  }

  var picker = new Q.SlotPicker(byId("picker"), {
    url: data.availability_url,
    days: data.days,
    timezone: data.timezone,
    calendar: data.calendar,
    text: data.picker,
    onPick: function (slot, label) {
      chosen.slot = slot;
      chosen.label = label;
      showError(timeError, "");
      byId("summary").textContent = Q.format(data.text.summary, { service: chosen.serviceName, when: label });
      Q.show(byId("summary-cutoff"), !!slot.inside_cutoff);
      var first = stepDetails.hidden;
      Q.show(stepDetails, true);
      if (first) focusStep(stepDetails);
      else stepDetails.querySelector(".summary").scrollIntoView({ block: "nearest" });
    },
  });

  function chooseService(input) {
    chosen.service = input.value;
    chosen.serviceName = input.getAttribute("data-name");
    chosen.slot = null;
    Q.show(stepDetails, false);
    showError(timeError, "");
    Q.show(stepTime, true);
    picker.load(chosen.service);
  }

  form.querySelectorAll('input[name="service"]').forEach(function (input) {
    input.addEventListener("change", function () {
      if (input.checked) {
        chooseService(input);
        focusStep(stepTime);
      }
    });
    if (input.checked) chooseService(input);  // a branch with one bookable service
  });

  byId("change-time").addEventListener("click", function () { focusStep(stepTime); });

  /* The details. */

  function setFieldError(name, message) {
    var input = byId(name);
    var box = byId(name + "-error");
    box.textContent = message || "";
    Q.show(box, !!message);
    if (message) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
  }

  function clearErrors() {
    fields.forEach(function (name) { setFieldError(name, ""); });
    showError(formError, "");
  }

  /** Some of the server's checks, for when it cannot be reached (the server checks every field
   *  at once, the phone number too, and answers with all problems together). */
  function checkFields(values) {
    var wrong = {};
    if (!values.name) wrong.name = fieldText.name;
    if (!values.phone && !values.email) wrong.phone = fieldText.contact;
    if (values.email && !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(values.email)) wrong.email = fieldText.email;
    return wrong;
  }

  function showFieldErrors(wrong) {
    var first = null;
    fields.forEach(function (name) {
      setFieldError(name, wrong[name] || "");
      if (wrong[name] && !first) first = byId(name);
    });
    if (first) first.focus();
  }

  function setSending(value) {
    sending = value;
    bookButton.disabled = value;
    bookButton.textContent = value ? data.text.booking : bookLabel;
    form.setAttribute("aria-busy", String(value));
  }

  function refreshCsrf() {
    return Q.request("GET", data.csrf_url).then(function (result) {
      if (result.ok && result.data) csrf = result.data.csrf_token;
      return result.ok;
    }, function () { return false; });
  }

  function send(body, mayRetry, values) {
    return Q.request("POST", data.book_url, {
      body: body, csrf: csrf, headers: { "Idempotency-Key": idempotencyKey }, timeout: 20000,
    }).then(function (result) {
      if (result.ok && result.data && result.data.redirect) {
        window.location.assign(result.data.redirect);
        return true;  // stay "sending" until the next page shows
      }
      var code = Q.errorCode(result);
      if (code === "csrf_failed" && mayRetry) {
        return refreshCsrf().then(function () { return send(body, false, values); });
      }
      refused(result, code);
      return false;
    }, function () {
      // No answer: the booking may or may not exist. The same key makes a retry safe.
      showFieldErrors(checkFields(values));
      showError(formError, messages.offline);
      return false;
    });
  }

  function refused(result, code) {
    if (result.status === 429) code = "too_many_requests";
    var message = messages[code] || Q.errorMessage(result, messages.failed);
    if (SLOT_CODES.indexOf(code) >= 0) {
      chosen.slot = null;
      Q.show(stepDetails, false);
      showError(timeError, message);
      picker.reload();
      focusStep(stepTime);
      return;
    }
    var wrong = (result.data && result.data.error && result.data.error.fields) || {};
    if (Object.keys(wrong).length) showFieldErrors(wrong);
    showError(formError, message);
    if (!Object.keys(wrong).length) formError.scrollIntoView({ block: "nearest" });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (sending) return;  // a double tap: the first request is on its way
    clearErrors();
    if (!chosen.slot) {
      showError(timeError, messages.not_a_slot);
      focusStep(stepTime);
      return;
    }
    var values = {};
    fields.forEach(function (name) { values[name] = byId(name).value.trim(); });
    // Sent even with an empty name: the server names every field's problem in one answer.
    var body = { service: chosen.service, start: chosen.slot.start, name: values.name,
                 phone: values.phone || null, email: values.email || null };
    body[data.honeypot] = byId("hp-" + data.honeypot).value;
    setSending(true);
    send(body, true, values).then(function (done) { if (!done) setSending(false); });
  });
})();
