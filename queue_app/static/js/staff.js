/* Counter console: the counter's current ticket, the actions on it, live waiting counts.
 *
 * Every action is a REST call with the login session and the X-CSRFToken header; the answer
 * (or a change another console made, noticed through the branch's `queue` push) is redrawn.
 */
(function () {
  "use strict";
  var Q = window.QueueApp;
  var data = Q.pageData();
  var text = data.text;
  var csrf = data.csrf_token;
  var CSRF_REFRESH_MS = 20 * 60 * 1000;  // well inside the token's lifetime (an hour by default)

  function byId(id) { return document.getElementById(id); }
  var buttons = {};
  document.querySelectorAll("[data-action]").forEach(function (button) {
    buttons[button.getAttribute("data-action")] = button;
  });
  var messageArea = byId("console-message");
  var transferDialog = byId("transfer-dialog");
  var transferSelect = byId("transfer-service");

  var state = { counterState: null, ticket: null, waiting: {}, connected: false, busy: false, loaded: false };

  /* Drawing. */

  function say(textToShow, isError) {
    messageArea.textContent = textToShow || "";
    messageArea.classList.toggle("error", !!isError);
    Q.show(messageArea, !!textToShow);
  }

  function time(iso) { return iso ? iso.slice(11, 16) : ""; }  // ISO in branch local time

  function renderTicket() {
    var ticket = state.ticket;
    Q.show(byId("current"), !!ticket);
    Q.show(byId("current-empty"), !ticket);
    if (!ticket) return;
    byId("current-label").textContent = ticket.label;
    var status = byId("current-status");
    status.textContent = text[ticket.status] || ticket.status;
    status.className = "current-status " + ticket.status;
    byId("current-service").textContent = ticket.service + " · " + Q.localName(ticket.service_name, ticket.service_names);
    var times = [Q.format(text.issued_at, { time: time(ticket.issued_at) })];
    if (ticket.called_at) times.push(Q.format(text.called_at, { time: time(ticket.called_at) }));
    if (ticket.recalls) times.push(Q.format(text.recalls, { n: ticket.recalls, max: data.max_recalls }));
    if (ticket.priority && ticket.priority !== "normal") times.push(Q.format(text.priority, { priority: ticket.priority }));
    // A remote ticket (joined from home) is only called once its holder said "I'm here".
    if (ticket.remote) {
      times.push(ticket.arrived_at ? Q.format(text.remote_arrived, { time: time(ticket.arrived_at) }) : text.remote_not_here);
    }
    byId("current-times").textContent = times.join(" · ");
    // The checklist is plain text, one item per line: shown as a list, never as HTML.
    var items = (ticket.checklist || "").split(/\r?\n/).map(function (line) { return line.trim(); })
      .filter(function (line) { return line; });
    var list = byId("checklist");
    list.textContent = "";
    items.forEach(function (item) {
      var li = document.createElement("li");
      li.textContent = item;
      list.appendChild(li);
    });
    Q.show(list, items.length > 0);
    Q.show(byId("checklist-title"), items.length > 0);
  }

  function renderState() {
    var pill = byId("counter-state");
    pill.textContent = data.state_labels[state.counterState] || state.counterState;
    pill.className = "state-pill " + state.counterState;
    Q.show(byId("state-note"), state.counterState !== "open");
  }

  function renderWaiting() {
    document.querySelectorAll("[data-waiting-for]").forEach(function (cell) {
      var count = state.waiting[cell.getAttribute("data-waiting-for")];
      cell.textContent = count === undefined ? "–" : String(count);
    });
  }

  function waitingTotal() {
    return data.served.reduce(function (sum, code) { return sum + (state.waiting[code] || 0); }, 0);
  }

  /** Which actions apply now: the same rules the server enforces, so a click rarely fails. */
  function renderButtons() {
    var ticket = state.ticket;
    var status = ticket ? ticket.status : null;
    var idle = state.loaded && !state.busy;
    // While the live connection is down the waiting counts may be stale: let staff try anyway.
    var someoneWaits = !state.connected || waitingTotal() > 0;
    buttons["call-next"].disabled = !(idle && !ticket && state.counterState === "open" && someoneWaits);
    buttons.recall.disabled = !(idle && status === "called" && ticket.recalls < data.max_recalls);
    buttons.start.disabled = !(idle && status === "called");
    buttons.finish.disabled = !(idle && (status === "called" || status === "serving"));
    buttons["no-show"].disabled = !(idle && status === "called");
    buttons.transfer.disabled = !(idle && !!ticket && data.services.length > 1);
  }

  function render() {
    renderState();
    renderTicket();
    renderWaiting();
    renderButtons();
  }

  /* Talking to the API. */

  function refreshCsrf() {
    return Q.request("GET", data.csrf_url).then(function (result) {
      if (result.ok && result.data) csrf = result.data.csrf_token;
      return result.ok;
    }, function () { return false; });
  }

  function isCsrfFailure(result) {
    return result.status === 400 && /csrf/i.test(Q.errorMessage(result, ""));
  }

  /** POST with the session's CSRF token; a token that expired is renewed and the call retried once. */
  function post(url, body, retried) {
    return Q.request("POST", url, { body: body, csrf: csrf }).then(function (result) {
      if (!retried && isCsrfFailure(result)) {
        return refreshCsrf().then(function () { return post(url, body, true); });
      }
      return result;
    });
  }

  function load() {
    return Q.request("GET", data.counter_url).then(function (result) {
      if (result.status === 401) return signInAgain();
      if (!result.ok) return say(Q.errorMessage(result, text.failed), true);
      state.counterState = result.data.state;
      state.ticket = result.data.ticket;
      state.loaded = true;
      render();
    }, function () {
      say(text.offline, true);
    });
  }

  function signInAgain() {
    window.location.href = data.login_url;
  }

  /** Run one action; `done(result)` gets a successful answer and returns the message to show. */
  function run(url, body, done) {
    if (state.busy) return;
    state.busy = true;
    renderButtons();
    post(url, body).then(function (result) {
      if (result.status === 401) return signInAgain();
      if (!result.ok) {
        say(Q.errorMessage(result, text.failed), true);
        return load();  // whatever the error, show the counter as the server has it now
      }
      say(done(result));
    }, function () {
      say(text.offline, true);
    }).finally(function () {
      state.busy = false;
      render();
    });
  }

  function ticketUrl(action) {
    return Q.format(data.ticket_action_url, { id: state.ticket.id, action: action });
  }

  /** The ticket after an action: still at this counter, or gone (done, no-show, transferred). */
  function keep(ticket) {
    return ticket && (ticket.status === "called" || ticket.status === "serving") ? ticket : null;
  }

  var actions = {
    "call-next": function () {
      run(data.call_next_url, undefined, function (result) {
        if (result.status === 204 || !result.data) return text.msg_nobody;
        state.ticket = result.data;
        return Q.format(text.msg_called, { label: result.data.label });
      });
    },
    transfer: function () {
      var current = state.ticket.service;
      Array.prototype.forEach.call(transferSelect.options, function (option) {
        option.disabled = option.value === current;
      });
      var first = Array.prototype.find.call(transferSelect.options, function (o) { return !o.disabled; });
      if (first) transferSelect.value = first.value;
      transferDialog.returnValue = "";
      transferDialog.showModal();
    },
  };
  ["recall", "start", "finish", "no-show"].forEach(function (action) {
    actions[action] = function () {
      var label = state.ticket.label;
      run(ticketUrl(action), undefined, function (result) {
        state.ticket = keep(result.data);
        return Q.format(text["msg_" + action.replace("-", "_")], { label: label });
      });
    };
  });

  transferDialog.addEventListener("close", function () {
    if (transferDialog.returnValue !== "transfer" || !state.ticket) return;
    var service = transferSelect.value;
    var label = state.ticket.label;
    run(ticketUrl("transfer"), { service: service }, function (result) {
      state.ticket = keep(result.data);
      return Q.format(text.msg_transfer, { label: label, service: service });
    });
  });

  Object.keys(buttons).forEach(function (name) {
    buttons[name].addEventListener("click", function () {
      if (!buttons[name].disabled) actions[name]();
    });
  });

  /* Keyboard shortcuts, shown on the buttons: N R S F X T. */
  var SHORTCUTS = { n: "call-next", r: "recall", s: "start", f: "finish", x: "no-show", t: "transfer" };
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || event.repeat || event.defaultPrevented) return;
    var target = event.target;
    if (target.closest && target.closest("input, select, textarea, [contenteditable], dialog[open]")) return;
    if (transferDialog.open || (bookDialog && bookDialog.open)) return;
    var name = SHORTCUTS[(event.key || "").toLowerCase()];
    if (!name || buttons[name].disabled) return;
    event.preventDefault();
    buttons[name].click();
  });

  /* Tickets joined from home waiting for this counter's services, and whether each is here. */
  function renderRemote(remote) {
    var list = byId("remote-list");
    var mine = remote.filter(function (r) { return data.served.indexOf(r.service) !== -1; });
    list.textContent = "";
    mine.forEach(function (r) {
      var li = document.createElement("li");
      li.textContent = Q.format(r.arrived ? text.remote_here : text.remote_away, { label: r.label });
      li.className = r.arrived ? "remote-here" : "remote-away";
      list.appendChild(li);
    });
    Q.show(list, mine.length > 0);
    Q.show(byId("remote-title"), mine.length > 0);
  }

  /* Live: waiting counts, and changes to this counter made elsewhere (another console, a manager). */
  function onQueue(summary) {
    state.waiting = {};
    summary.waiting.forEach(function (w) { state.waiting[w.service] = w.count; });
    renderRemote(summary.remote || []);
    var mine = summary.counters.filter(function (c) { return c.id === data.counter_id; })[0];
    if (mine) {
      state.counterState = mine.state;
      var known = state.ticket;
      var changed = mine.ticket
        ? !known || known.id !== mine.ticket.id || known.status !== mine.ticket.status
        : !!known;
      if (changed && !state.busy) load();
    }
    render();
  }

  /* Today's bookings: from the API, again after each queue change (a check-in) and every minute. */

  var bookingText = data.booking;
  var bookingsMessage = byId("bookings-message");
  var bookingsLoading = false;
  var bookingsAgain = false;
  var bookingsTimer = null;
  var BOOKINGS_REFRESH_MS = 60 * 1000;
  var BOOKINGS_SETTLE_MS = 1000;  // a burst of queue pushes costs one request

  function sayBookings(textToShow, isError) {
    bookingsMessage.textContent = textToShow || "";
    bookingsMessage.classList.toggle("error", !!isError);
    Q.show(bookingsMessage, !!textToShow);
  }

  function cell(row, content, className) {
    var td = document.createElement("td");
    if (className) td.className = className;
    if (typeof content === "string") td.textContent = content;
    else td.appendChild(content);
    row.appendChild(td);
  }

  function renderBookings(rows) {
    var body = byId("bookings-body");
    body.textContent = "";
    rows.forEach(function (booking) {
      var tr = document.createElement("tr");
      if (booking.status === "cancelled" || booking.status === "no_show") tr.className = "inactive";
      cell(tr, booking.start.slice(11, 16), "time");
      cell(tr, booking.service + " · " + Q.localName(booking.service_name, booking.service_names));
      cell(tr, booking.name);
      var pill = document.createElement("span");
      pill.className = "status-pill status-" + booking.status;
      pill.textContent = bookingText.status[booking.status] || booking.status;
      cell(tr, pill);
      cell(tr, booking.ticket_label || "–", "ticket-label");
      body.appendChild(tr);
    });
    Q.show(byId("bookings-table"), rows.length > 0);
    Q.show(byId("bookings-empty"), rows.length === 0);
  }

  function loadBookings() {
    if (bookingsLoading) {
      bookingsAgain = true;
      return;
    }
    bookingsLoading = true;
    Q.request("GET", data.appointments_url).then(function (result) {
      if (result.status === 401) return signInAgain();
      if (!result.ok) return sayBookings(Q.errorMessage(result, text.bookings_failed), true);
      if (bookingsMessage.classList.contains("error")) sayBookings("");
      renderBookings(result.data);
    }, function () {
      sayBookings(text.bookings_failed, true);
    }).finally(function () {
      bookingsLoading = false;
      if (bookingsAgain) {
        bookingsAgain = false;
        loadBookings();
      }
    });
  }

  function bookingsSoon() {
    clearTimeout(bookingsTimer);
    bookingsTimer = setTimeout(loadBookings, BOOKINGS_SETTLE_MS);
  }

  /* "Book for a customer": the same slot picker as the public page, booked as staff. */

  var bookDialog = byId("book-dialog");
  if (bookDialog) {
    var bookForm = byId("book-form");
    var serviceSelect = byId("book-service");
    var bookWhen = byId("book-when");
    var bookError = byId("book-error");
    var bookSubmit = byId("book-submit");
    var bookSubmitLabel = bookSubmit.textContent;
    var bookFields = ["name", "phone", "email"];
    var SLOT_CODES = ["slot_full", "not_a_slot", "too_soon", "outside_window", "naive_time", "invalid_time"];
    var bookState = { key: null, slot: null, label: "", sending: false };

    var bookPicker = new Q.SlotPicker(byId("book-picker"), {
      url: data.availability_url,
      days: 14,
      timezone: data.timezone,
      calendar: bookingText.calendar,
      text: bookingText.picker,
      onPick: function (slot, label) {
        bookState.slot = slot;
        bookState.label = label;
        bookWhen.textContent = label;
        Q.show(bookWhen, true);
        showBookError("");
      },
    });

    var showBookError = function (message) {
      bookError.textContent = message || "";
      Q.show(bookError, !!message);
    };
    var setBookField = function (name, message) {
      var input = byId("book-" + name);
      var box = byId("book-" + name + "-error");
      box.textContent = message || "";
      Q.show(box, !!message);
      if (message) input.setAttribute("aria-invalid", "true");
      else input.removeAttribute("aria-invalid");
    };
    var resetSlot = function () {
      bookState.slot = null;
      Q.show(bookWhen, false);
    };

    byId("book-for-button").addEventListener("click", function () {
      bookForm.reset();
      bookFields.forEach(function (name) { setBookField(name, ""); });
      showBookError("");
      resetSlot();
      bookState.key = Q.newKey();  // one booking per opening of the dialog, however often "Book" is pressed
      bookDialog.showModal();
      bookPicker.load(serviceSelect.value);
    });
    serviceSelect.addEventListener("change", function () {
      resetSlot();
      bookPicker.load(serviceSelect.value);
    });
    byId("book-cancel").addEventListener("click", function () { bookDialog.close(); });

    var sendBooking = function (body, retried) {
      return Q.request("POST", data.book_url, {
        body: body, csrf: csrf, headers: { "Idempotency-Key": bookState.key },
      }).then(function (result) {
        if (!retried && isCsrfFailure(result)) {
          return refreshCsrf().then(function () { return sendBooking(body, true); });
        }
        return result;
      });
    };

    bookForm.addEventListener("submit", function (event) {
      event.preventDefault();
      if (bookState.sending) return;
      var values = {};
      bookFields.forEach(function (name) {
        values[name] = byId("book-" + name).value.trim();
        setBookField(name, "");
      });
      showBookError("");
      if (!bookState.slot) return showBookError(bookingText.messages.not_a_slot);
      var wrong = {};
      if (!values.name) wrong.name = bookingText.fields.name;
      if (!values.phone && !values.email) wrong.phone = bookingText.fields.contact;
      if (Object.keys(wrong).length) {
        Object.keys(wrong).forEach(function (name) { setBookField(name, wrong[name]); });
        return byId("book-" + Object.keys(wrong)[0]).focus();
      }
      var body = { service: serviceSelect.value, start: bookState.slot.start, name: values.name };
      if (values.phone) body.phone = values.phone;
      if (values.email) body.email = values.email;
      bookState.sending = true;
      bookSubmit.disabled = true;
      bookSubmit.textContent = text.booking_in_progress;
      sendBooking(body, false).then(function (result) {
        if (result.status === 401) return signInAgain();
        if (result.ok) {
          bookDialog.close();
          sayBookings(Q.format(text.msg_booked, { name: values.name, when: bookState.label, code: result.data.check_in_code }));
          loadBookings();
          return;
        }
        var code = Q.errorCode(result);
        showBookError(bookingText.messages[code] || Q.errorMessage(result, bookingText.messages.failed));
        if (SLOT_CODES.indexOf(code) >= 0) {
          resetSlot();
          bookPicker.reload();
        }
        var fields = (result.data && result.data.error && result.data.error.fields) || {};
        if (fields.json) fields = fields.json;  // the API's request validation nests them
        bookFields.forEach(function (name) {
          if (fields[name]) setBookField(name, bookingText.fields[name] || String(fields[name]));
        });
      }, function () {
        showBookError(text.offline);
      }).finally(function () {
        bookState.sending = false;
        bookSubmit.disabled = false;
        bookSubmit.textContent = bookSubmitLabel;
      });
    });
  }

  var badge = byId("live-badge");
  Q.connectLive({
    join: { branch: data.branch },
    onState: function (connected) {
      state.connected = connected;
      badge.textContent = connected ? text.live : text.reconnecting;
      badge.classList.toggle("offline", !connected);
      renderButtons();
    },
    events: { queue: function (summary) { onQueue(summary); bookingsSoon(); } },
  });
  setInterval(refreshCsrf, CSRF_REFRESH_MS);
  setInterval(loadBookings, BOOKINGS_REFRESH_MS);
  load();
  loadBookings();
})();
