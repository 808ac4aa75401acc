/* A ticket's live page on the holder's phone: status, place in line, estimate, counter.
 *
 * The server renders the current state; `ticket` pushes keep it current. A phone that slept
 * re-joins when the page becomes visible and gets a fresh snapshot (see live.js).
 */
(function () {
  "use strict";
  var Q = window.QueueApp;
  var data = Q.pageData();
  var text = data.text;
  var current = data.status;
  var joinPending = false;  // the next `ticket` is the snapshot that answers a join
  var baseTitle = document.title;

  function byId(id) { return document.getElementById(id); }
  var message = byId("track-message");
  var postponeButton = byId("postpone-button");
  var leaveButton = byId("leave-button");
  var leaveDialog = byId("leave-dialog");
  var arrivedButton = byId("arrived-button");

  function say(textToShow, isError) {
    message.textContent = textToShow || "";
    message.classList.toggle("error", !!isError);
  }

  function render(status) {
    document.querySelectorAll("[data-when]").forEach(function (block) {
      block.hidden = block.getAttribute("data-when") !== status.status;
    });
    byId("tr-label").textContent = status.label;
    byId("tr-service").textContent = Q.localName(status.service_name, status.service_names);
    var counter = Q.localName(status.counter, status.counter_names);
    // "2026-05-04T10:30+08:00": the booked start in branch local time, as the page renders it.
    var booked = byId("tr-booked");
    booked.textContent = status.booked_start ? Q.format(text.booked, { time: status.booked_start.slice(11, 16) }) : "";
    Q.show(booked, !!status.booked_start);
    byId("tr-ahead").textContent = String(status.ahead);
    byId("tr-position").textContent = String(status.position);
    var estimate = Q.estimateText(status.estimate, text.estimates);
    byId("tr-estimate").textContent = estimate;
    Q.show(byId("tr-estimate"), status.status === "waiting" && !!estimate);
    Q.show(byId("tr-almost"), status.status === "waiting" && !!status.almost_turn);
    Q.show(byId("tr-next"), status.ahead === 0);
    Q.show(byId("tr-postponed"), status.postponed);
    byId("tr-counter").textContent = counter;
    byId("tr-serving").textContent = Q.format(text.serving, { counter: counter });
    Q.show(postponeButton, status.status === "waiting" && !status.postponed);
    Q.show(leaveButton, status.status === "waiting" || status.status === "called");
    renderRemote(status);
    document.title = status.status === "called"
      ? Q.format(text.title_called, { counter: counter, label: status.label })
      : status.almost_turn ? Q.format(text.almost_turn_title, { label: status.label }) : baseTitle;
  }

  /** A ticket joined from home: "Leave by", held, arrived, and the "I'm here" button. */
  function renderRemote(status) {
    var remote = status.remote;
    Q.show(byId("tr-remote"), !!remote);
    Q.show(arrivedButton, !!remote && !remote.arrived && status.status === "waiting");
    if (!remote) return;
    var leave = byId("tr-leave");
    leave.textContent = !remote.leave_by ? "" : remote.leave_now ? text.leave_now : Q.format(text.leave_by, { time: remote.leave_by });
    Q.show(leave, !!remote.leave_by && !remote.arrived && status.status === "waiting");
    Q.show(byId("tr-travel"), !remote.arrived && status.status === "waiting");
    Q.show(byId("tr-held"), !!remote.held && status.status === "waiting");
    Q.show(byId("tr-arrived"), !!remote.arrived);
  }

  /** It is the holder's turn: make sure they notice, even with the phone in a pocket. */
  function alertHolder() {
    if (navigator.vibrate) navigator.vibrate([400, 150, 400, 150, 800]);
    var called = document.querySelector('[data-when="called"]');
    called.classList.remove("pulse");
    void called.offsetWidth;  // restart the animation on a recall
    called.classList.add("pulse");
  }

  /** A short two-tone beep (where the browser lets a page play sound) and a vibration. */
  function nudgeHolder() {
    if (navigator.vibrate) navigator.vibrate([200, 100, 200]);
    var Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return;
    try {
      var context = new Context();
      [660, 880].forEach(function (pitch, index) {
        var tone = context.createOscillator();
        var gain = context.createGain();
        tone.frequency.value = pitch;
        gain.gain.value = 0.15;
        tone.connect(gain).connect(context.destination);
        tone.start(context.currentTime + index * 0.25);
        tone.stop(context.currentTime + index * 0.25 + 0.2);
      });
    } catch (blocked) { /* no sound before the first tap on some browsers: the vibration and text remain */ }
  }

  function onTicket(status) {
    var previous = current.status;
    var wasAlmost = !!current.almost_turn;
    var snapshot = joinPending;
    joinPending = false;
    current = status;
    render(status);
    // A live push with "called" is the call or a recall; a snapshot only counts if it is news
    // (called while the phone slept), not the state the page already showed.
    if (status.status === "called" && (!snapshot || previous !== "called")) alertHolder();
    else if (status.status === "waiting" && status.almost_turn && !wasAlmost) nudgeHolder();
  }

  function act(method, url, done, body) {
    postponeButton.disabled = leaveButton.disabled = arrivedButton.disabled = true;
    say("");
    Q.request(method, url, body === undefined ? undefined : { body: body }).then(function (result) {
      if (result.ok) {
        onTicket(result.data);
        say(done);
      } else {
        say(Q.errorMessage(result, text.failed), true);
      }
    }, function () {
      say(text.offline, true);
    }).finally(function () {
      postponeButton.disabled = leaveButton.disabled = arrivedButton.disabled = false;
    });
  }

  arrivedButton.addEventListener("click", function () {
    act("POST", data.arrived_url, text.arrived_done, {});
  });
  // The door's and the kiosk's daily QR (/here/<slug>/<code>) find this ticket on this phone.
  if (current.remote) {
    try { window.localStorage.setItem("queue_app.remote." + data.branch, data.token); } catch (blocked) { /* private mode */ }
  }

  postponeButton.addEventListener("click", function () {
    act("POST", data.postpone_url, text.postponed);
  });
  leaveButton.addEventListener("click", function () {
    if (typeof leaveDialog.showModal === "function") {
      leaveDialog.returnValue = "";
      leaveDialog.showModal();
    } else if (window.confirm(leaveDialog.querySelector("p").textContent)) {
      act("DELETE", data.ticket_url, text.left);
    }
  });
  leaveDialog.addEventListener("close", function () {
    if (leaveDialog.returnValue === "leave") act("DELETE", data.ticket_url, text.left);
  });

  var badge = byId("live-badge");
  Q.connectLive({
    join: { ticket: data.token },
    onJoining: function () { joinPending = true; },
    onJoin: function (ack) { if (!ack.ok) joinPending = false; },
    onState: function (connected) {
      badge.textContent = connected ? text.live : text.reconnecting;
      badge.classList.toggle("offline", !connected);
    },
    events: { ticket: onTicket },
  });
})();
