/* Join the queue from a phone (/j/<slug>): a code to the contact, then the code and the trip time
 * give a remote ticket; its tracking page (/t/<token>) says when to leave. A client of the API
 * (tickets/remote_api.py); refusals are shown in the page's words, by error code.
 */
(function () {
  "use strict";
  var Q = window.QueueApp;
  var data = Q.pageData();
  var text = data.text;
  var messages = data.messages;
  var form = document.getElementById("join-form");
  if (!form) return;

  function byId(id) { return document.getElementById(id); }
  var codeButton = byId("code-button");
  var joinButton = byId("join-button");
  var formError = byId("form-error");

  function message(result) {
    if (result && result.status === 429 && !(result.data && result.data.error && result.data.error.code === "too_many_tries")) {
      return messages.rate_limited;
    }
    var code = Q.errorCode(result);
    return (code && messages[code]) || Q.errorMessage(result, messages.failed);
  }

  function fieldError(name, textToShow) {
    var element = byId(name + "-error");
    var input = byId(name);
    if (element) {
      element.textContent = textToShow || "";
      Q.show(element, !!textToShow);
    }
    if (input) input.setAttribute("aria-invalid", textToShow ? "true" : "false");
  }

  function clearErrors() {
    ["service", "phone", "email", "code", "travel"].forEach(function (name) { fieldError(name, ""); });
    formError.textContent = "";
    Q.show(formError, false);
  }

  function showError(result) {
    var fields = (result && result.data && result.data.error && result.data.error.fields) || {};
    var names = { travel_minutes: "travel" };
    var any = false;
    Object.keys(fields).forEach(function (name) {
      var shown = names[name] || name;
      if (byId(shown + "-error")) {
        fieldError(shown, message(result));
        any = true;
      }
    });
    formError.textContent = message(result);
    Q.show(formError, !any);
  }

  function contact() {
    var phone = byId("phone").value.trim();
    var email = byId("email").value.trim();
    var body = { language: data.language };
    if (phone) body.phone = phone;
    else if (email) body.email = email;
    return body;
  }

  function service() {
    var checked = form.querySelector('input[name="service"]:checked');
    return checked ? checked.value : "";
  }

  codeButton.addEventListener("click", function () {
    clearErrors();
    var body = contact();
    if (!body.phone && !body.email) {
      fieldError("phone", messages.contact_missing);
      return;
    }
    codeButton.disabled = true;
    var label = codeButton.textContent;
    codeButton.textContent = text.sending;
    Q.request("POST", data.code_url, { body: body }).then(function (result) {
      if (!result.ok) { showError(result); return; }
      var sent = byId("code-sent");
      sent.textContent = result.data.channel === "email" ? text.code_sent_email : text.code_sent_sms;
      Q.show(sent, true);
      Q.show(byId("step-code"), true);
      byId("code").focus();
    }, function () {
      formError.textContent = messages.offline;
      Q.show(formError, true);
    }).finally(function () {
      codeButton.disabled = false;
      codeButton.textContent = label;
    });
  });

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    clearErrors();
    if (!service()) {
      fieldError("service", messages.invalid_field);
      return;
    }
    var body = contact();
    body.service = service();
    body.code = byId("code").value.trim();
    var travel = byId("travel");
    var minutes = Number(travel.value);
    if (!travel.value || !Number.isInteger(minutes) || minutes < Number(travel.min) || minutes > Number(travel.max)) {
      fieldError("travel", byId("travel-hint").textContent);
      return;
    }
    body.travel_minutes = minutes;
    joinButton.disabled = true;
    Q.request("POST", data.join_url, { body: body }).then(function (result) {
      if (!result.ok) { showError(result); joinButton.disabled = false; return; }
      window.location.assign(result.data.track_url.replace(/^https?:\/\/[^/]+/, "") + "?lang=" + data.language);
    }, function () {
      formError.textContent = messages.offline;
      Q.show(formError, true);
      joinButton.disabled = false;
    });
  });
})();
