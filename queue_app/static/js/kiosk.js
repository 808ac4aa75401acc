/* Lobby kiosk: one tap per service issues a ticket; the ticket screen closes by itself.
 * "I have a booking" opens a screen with an on-screen keyboard for the check-in code (a
 * physical keyboard or a USB code scanner types into it too; where the browser has a
 * BarcodeDetector, the camera can read the QR code); the booking then becomes a ticket.
 *
 * The kiosk never shows a browser error page: while the server does not answer (a ticket request
 * or the heartbeat fails) it shows its out-of-order screen, and keeps asking until it answers.
 *
 * Printing: where the device runs `queue-kiosk run`, its print bridge listens on loopback (the
 * server learns the port from the device's heartbeat, `data.printer.url`); each ticket's `print`
 * object is posted there and comes out of the ESC/POS printer. With no bridge answering, the
 * Print button falls back to the browser's own printing (window.print, print stylesheet).
 */
(function () {
  "use strict";
  var Q = window.QueueApp;
  var data = Q.pageData();
  var text = data.text;
  var csrf = document.querySelector('meta[name="csrf-token"]').getAttribute("content");

  var TICKET_SECONDS = 20;  // long enough to read the number and scan the QR code
  var PRINT_GRACE_SECONDS = 10;
  var PING_SECONDS = 10;
  var RETRY_SECONDS = 5;  // while out of order, notice the server's return sooner
  var IDLE_SECONDS = 90;  // then a language someone chose goes back to the branch's own
  var CHECKIN_IDLE_SECONDS = 60;  // a half-typed code does not wait for the next visitor
  var SCAN_INTERVAL_MS = 300;

  function byId(id) { return document.getElementById(id); }
  var startScreen = byId("start-screen");
  var ticketScreen = byId("ticket-screen");
  var busy = byId("busy");
  var outOfOrder = byId("out-of-order");
  var message = byId("kiosk-message");
  var tiles = Array.prototype.slice.call(document.querySelectorAll(".service-tile, .booking-tile"));
  var checkinScreen = byId("checkin-screen");

  var printer = data.printer || { url: null, auto_print: false };
  var currentTicket = null;
  var broken = false;
  var issuing = false;
  var pingTimer = null;
  var countdownTimer = null;
  var idleTimer = null;
  var secondsLeft = 0;

  /* Heartbeat and out-of-order screen. */

  function setBroken(value) {
    broken = value;
    Q.show(outOfOrder, value);
    schedulePing(value ? RETRY_SECONDS : PING_SECONDS);
  }

  function schedulePing(seconds) {
    clearTimeout(pingTimer);
    pingTimer = setTimeout(ping, seconds * 1000);
  }

  /** Resolves true when the server answered and this device is still registered. */
  function ping() {
    return Q.request("GET", data.ping_url, { timeout: 5000 }).then(function (result) {
      if (result.status === 401) {
        window.location.reload();  // unregistered or deactivated: the server's page says what to do
        return false;
      }
      if (!result.ok || !result.data || !result.data.ok) {
        setBroken(true);
        return false;
      }
      csrf = result.data.csrf_token || csrf;
      if (result.data.printer) printer = result.data.printer;
      updateWaiting(result.data.waiting || {});
      setBroken(false);
      return true;
    }, function () {
      setBroken(true);
      return false;
    });
  }

  function updateWaiting(counts) {
    document.querySelectorAll("[data-waiting-for]").forEach(function (element) {
      var code = element.getAttribute("data-waiting-for");
      element.textContent = Q.format(text.waiting, { n: counts[code] || 0 });
    });
  }

  /** Leave the page only when the server answers, so the kiosk never lands on an error page. */
  function navigate(url) {
    ping().then(function (ok) { if (ok) window.location.href = url; });
  }

  /* Issuing a ticket. */

  function showMessage(textToShow) {
    message.textContent = textToShow;
    Q.show(message, true);
  }

  function setIssuing(value, busyText) {
    issuing = value;
    byId("busy-text").textContent = busyText || text.issuing;
    Q.show(busy, value);
    tiles.forEach(function (tile) { tile.disabled = value; });
  }

  /**
   * POST to the kiosk's own endpoints; `done(result)` handles every answer but the ones all
   * requests share: unregistered (reload), expired CSRF token (renew, retry once), server down.
   */
  function post(url, body, done, mayRetry) {
    return Q.request("POST", url, { body: body, csrf: csrf }).then(function (result) {
      if (result.status === 401) {
        window.location.reload();
      } else if (Q.errorCode(result) === "csrf_failed" && mayRetry) {
        // The page outlived its CSRF token: the heartbeat hands out a fresh one; try once more.
        return ping().then(function (ok) { if (ok) return post(url, body, done, false); });
      } else if (result.status >= 500) {
        setBroken(true);
      } else {
        done(result);
      }
    }, function () {
      setBroken(true);
    });
  }

  function issue(code) {
    if (issuing || broken) return;
    Q.show(message, false);
    setIssuing(true);
    post(data.issue_url, { service: code }, function (result) {
      if (result.ok) showTicket(result.data);
      else if (checkinScreen && !checkinScreen.hidden) showCheckinMessage(Q.errorMessage(result, text.failed));
      else showMessage(Q.errorMessage(result, text.failed));
    }, true).finally(function () { setIssuing(false); });
  }

  /* Printing: the device's print bridge, else the browser's print dialog. */

  function showPrintStatus(textToShow) {
    var line = byId("t-print-status");
    line.textContent = textToShow || "";
    Q.show(line, !!textToShow);
  }

  /** `fallback`: the Print button was pressed, so without a bridge the browser prints the screen. */
  function printTicket(ticket, fallback) {
    if (!printer.url || !ticket || !ticket.print) {
      if (fallback) window.print();
      return;
    }
    showPrintStatus(text.printing);
    Q.request("POST", printer.url, { body: ticket.print, timeout: 15000 }).then(function (result) {
      if (ticket !== currentTicket) return;
      if (result.ok) showPrintStatus(text.printed);
      else showPrintStatus(text.print_failed);  // paper out, offline: the bridge says which
    }, function () {
      // No bridge answered (the device client is not running): the browser's printing.
      if (ticket !== currentTicket) return;
      showPrintStatus("");
      if (fallback) window.print();
    });
  }

  /* The ticket screen. */

  /** A walk-in ticket, or a checked-in booking's ticket (`note` says which; a repeat has no QR code). */
  function showTicket(ticket, note) {
    var noteLine = byId("t-note");
    noteLine.textContent = note || "";
    Q.show(noteLine, !!note);
    byId("t-label").textContent = ticket.label;
    byId("t-service").textContent = ticket.service_name;
    byId("t-ahead").textContent = String(ticket.ahead);
    byId("t-estimate").textContent = Q.estimateText(ticket.estimate, text.estimates);
    byId("t-qr").innerHTML = ticket.qr_svg || "";  // generated by our server from the tracking link
    Q.show(byId("t-qr"), !!ticket.qr_svg);
    Q.show(byId("t-qr-hint"), !!ticket.qr_svg);
    var time = byId("t-time");
    time.setAttribute("datetime", ticket.issued_at);
    // Branch local time, in the kiosk's language (written by the server, as on the printed ticket).
    time.textContent = ticket.issued_text || ticket.issued_at.slice(0, 10) + " " + ticket.issued_at.slice(11, 16);
    if (ticket.track_url) ticketScreen.setAttribute("data-track-url", ticket.track_url);
    else ticketScreen.removeAttribute("data-track-url");
    Q.show(startScreen, false);
    closeCheckin();
    Q.show(ticketScreen, true);
    // The start screen may have been scrolled (larger text): the number goes to the top, not off it.
    window.scrollTo(0, 0);
    byId("done-button").focus({ preventScroll: true });
    startCountdown(TICKET_SECONDS);
    currentTicket = ticket;
    showPrintStatus("");
    if (printer.auto_print) printTicket(ticket, false);
  }

  function startCountdown(seconds) {
    secondsLeft = seconds;
    clearInterval(countdownTimer);
    renderCountdown();
    countdownTimer = setInterval(function () {
      secondsLeft -= 1;
      if (secondsLeft <= 0) backToStart();
      else renderCountdown();
    }, 1000);
  }

  function renderCountdown() {
    byId("t-countdown").textContent = Q.format(text.closes_in, { s: secondsLeft });
  }

  function backToStart() {
    clearInterval(countdownTimer);
    closeCheckin();
    Q.show(ticketScreen, false);
    byId("t-qr").innerHTML = "";
    ticketScreen.removeAttribute("data-track-url");
    currentTicket = null;
    showPrintStatus("");
    Q.show(startScreen, true);
    // The next visitor starts in the branch's own language, with the standard display.
    applyModes([]);
    if (data.language_changed) navigate(data.home_url);
    else resetIdle();
  }

  function resetIdle() {
    clearTimeout(idleTimer);
    if (data.language_changed || activeModes().length) {
      idleTimer = setTimeout(function () {
        applyModes([]);
        if (data.language_changed) navigate(data.home_url);
      }, IDLE_SECONDS * 1000);
    }
  }

  /* Larger text and high contrast, for the visitor in front of the screen (toggle buttons in the
   * top bar, announced as pressed). They survive a language change (a reload) through
   * sessionStorage and end with the visitor: after the ticket screen, or when the kiosk is idle. */
  var MODES_KEY = "kiosk-modes";
  var modeButtons = Array.prototype.slice.call(document.querySelectorAll(".mode-toggle"));

  function activeModes() {
    try { return JSON.parse(window.sessionStorage.getItem(MODES_KEY) || "[]"); } catch (error) { return []; }
  }

  function applyModes(modes) {
    modeButtons.forEach(function (button) {
      var mode = button.getAttribute("data-mode");
      var on = modes.indexOf(mode) !== -1;
      document.documentElement.classList.toggle("mode-" + mode, on);
      button.setAttribute("aria-pressed", on ? "true" : "false");
    });
    try {
      if (modes.length) window.sessionStorage.setItem(MODES_KEY, JSON.stringify(modes));
      else window.sessionStorage.removeItem(MODES_KEY);
    } catch (error) { /* storage refused: the mode lasts until the next page load */ }
  }

  modeButtons.forEach(function (button) {
    button.addEventListener("click", function () {
      var mode = button.getAttribute("data-mode");
      var modes = activeModes().filter(function (other) { return other !== mode; });
      if (button.getAttribute("aria-pressed") !== "true") modes.push(mode);
      applyModes(modes);
      resetIdle();
    });
  });
  applyModes(activeModes());

  /* "I have a booking": the check-in code, typed on the on-screen keyboard (or a real one). */

  var codeInput = byId("checkin-code");
  var codeBoxes = checkinScreen ? Array.prototype.slice.call(checkinScreen.querySelectorAll(".code-box")) : [];
  var checkinMessage = byId("checkin-message");
  var walkInOffer = byId("walk-in-offer");
  var checkinSubmit = byId("checkin-submit");
  var walkInService = null;
  var checkinIdleTimer = null;
  var scanStream = null;
  var scanTimer = null;

  function cleanCode(value) {
    return value.toUpperCase().split("").filter(function (c) { return data.code_keys.indexOf(c) >= 0; })
      .join("").slice(0, data.code_length);
  }

  function renderCode() {
    var code = codeInput.value;
    codeBoxes.forEach(function (box, index) {
      box.textContent = code.charAt(index);
      box.classList.toggle("filled", index < code.length);
      box.classList.toggle("active", index === Math.min(code.length, data.code_length - 1) && code.length < data.code_length);
    });
    checkinSubmit.disabled = code.length !== data.code_length;
    // The boxes are pictures; screen readers hear the code so far, letter by letter.
    byId("code-status").textContent = code ? Q.format(text.code_progress, {
      n: code.length, total: data.code_length, code: code.split("").join(" "),
    }) : "";
  }

  function setCode(value) {
    codeInput.value = cleanCode(value);
    renderCode();
  }

  function showCheckinMessage(textToShow, offer) {
    checkinMessage.textContent = textToShow || "";
    Q.show(checkinMessage, !!textToShow);
    walkInService = offer || null;
    if (offer) byId("walk-in-service").textContent = offer.service_name;
    Q.show(walkInOffer, !!offer);
  }

  function typed(key) {
    if (key === "Backspace") setCode(codeInput.value.slice(0, -1));
    else setCode(codeInput.value + key);
    if (!checkinMessage.hidden) showCheckinMessage("");  // typing again: the last refusal is old news
  }

  function resetCheckinIdle() {
    clearTimeout(checkinIdleTimer);
    if (checkinScreen && !checkinScreen.hidden) {
      checkinIdleTimer = setTimeout(backToStart, CHECKIN_IDLE_SECONDS * 1000);
    }
  }

  function openCheckin() {
    if (broken) return;
    Q.show(message, false);
    Q.show(startScreen, false);
    setCode("");
    showCheckinMessage("");
    Q.show(checkinScreen, true);
    codeInput.focus();
    resetCheckinIdle();
  }

  function closeCheckin() {
    if (!checkinScreen) return;
    stopScan();
    clearTimeout(checkinIdleTimer);
    setCode("");
    showCheckinMessage("");
    Q.show(checkinScreen, false);
  }

  function checkIn() {
    var code = codeInput.value;
    if (issuing || broken || code.length !== data.code_length) return;
    showCheckinMessage("");
    setIssuing(true, text.checking_in);
    post(data.check_in_url, { code: code }, function (result) {
      if (result.ok) {
        var ticket = result.data;
        showTicket(ticket, ticket.repeat ? ticket.message : Q.format(text.checked_in, { time: ticket.booked_time }));
      } else if (result.status === 429) {
        showCheckinMessage(text.too_many);
      } else {
        showCheckinMessage(Q.errorMessage(result, text.check_in_failed), result.data && result.data.walk_in);
      }
    }, true).finally(function () { setIssuing(false); });
  }

  /* The camera, where the browser can read QR codes by itself (no library to download). */

  function stopScan() {
    clearTimeout(scanTimer);
    if (scanStream) scanStream.getTracks().forEach(function (track) { track.stop(); });
    scanStream = null;
    var view = byId("scan-view");
    if (view && !view.hidden) {
      Q.show(view, false);
      Q.show(byId("checkin-form"), true);
    }
  }

  function startScan() {
    var video = byId("scan-video");
    var detector = new window.BarcodeDetector({ formats: ["qr_code"] });
    navigator.mediaDevices.getUserMedia({ video: { facingMode: "user" }, audio: false }).then(function (stream) {
      scanStream = stream;
      video.srcObject = stream;
      Q.show(byId("checkin-form"), false);
      Q.show(byId("scan-view"), true);
      return video.play().then(function () {
        (function look() {
          detector.detect(video).then(function (codes) {
            var found = codes.map(function (c) { return cleanCode(c.rawValue || ""); })
              .filter(function (c) { return c.length === data.code_length; })[0];
            if (found) {
              stopScan();
              setCode(found);
              checkIn();
            } else if (scanStream) {
              scanTimer = setTimeout(look, SCAN_INTERVAL_MS);
            }
          }, function () { if (scanStream) scanTimer = setTimeout(look, SCAN_INTERVAL_MS); });
        })();
      });
    }).catch(function () {
      stopScan();
      showCheckinMessage(text.scan_failed);
    });
  }

  function offerScan() {
    if (!window.BarcodeDetector || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) return;
    Promise.resolve(window.BarcodeDetector.getSupportedFormats ? window.BarcodeDetector.getSupportedFormats() : [])
      .then(function (formats) { Q.show(byId("scan-button"), formats.indexOf("qr_code") >= 0); }, function () {});
  }

  if (checkinScreen) {
    byId("booking-button").addEventListener("click", openCheckin);
    checkinScreen.querySelectorAll(".key").forEach(function (key) {
      key.addEventListener("click", function () { typed(key.getAttribute("data-key")); });
    });
    codeInput.addEventListener("input", function () { setCode(codeInput.value); });
    byId("checkin-form").addEventListener("submit", function (event) {
      event.preventDefault();
      checkIn();
    });
    // Back is the same visitor changing their mind: their language and display mode stay.
    byId("checkin-back").addEventListener("click", function () {
      closeCheckin();
      Q.show(startScreen, true);
      resetIdle();
      byId("booking-button").focus();
    });
    byId("walk-in-button").addEventListener("click", function () {
      if (walkInService) issue(walkInService.service);
    });
    byId("scan-button").addEventListener("click", startScan);
    byId("scan-stop").addEventListener("click", function () { stopScan(); codeInput.focus(); });
    // A real keyboard or a code scanner works wherever the focus is on this screen.
    document.addEventListener("keydown", function (event) {
      if (checkinScreen.hidden || event.ctrlKey || event.metaKey || event.altKey) return;
      resetCheckinIdle();
      if (event.target === codeInput) return;  // the input handles its own typing
      var key = event.key || "";
      var onControl = event.target.closest && event.target.closest("button, a, input");
      if (key === "Backspace" || (key.length === 1 && data.code_keys.indexOf(key.toUpperCase()) >= 0)) {
        event.preventDefault();
        typed(key === "Backspace" ? key : key.toUpperCase());
      } else if (key === "Enter" && !onControl) {
        event.preventDefault();
        checkIn();
      } else if (key === "Escape") {
        backToStart();
      }
    });
    checkinScreen.addEventListener("pointerdown", resetCheckinIdle, { passive: true });
    offerScan();
    renderCode();
  }

  /* Wiring. */

  tiles.forEach(function (tile) {
    if (!tile.hasAttribute("data-service")) return;  // "I have a booking"
    tile.addEventListener("click", function () { issue(tile.getAttribute("data-service")); });
  });
  byId("print-button").addEventListener("click", function (event) {
    event.stopPropagation();  // printing is not "done"
    printTicket(currentTicket, true);
    startCountdown(PRINT_GRACE_SECONDS);
  });
  // A tap anywhere on the ticket screen (the Done button included) returns to the start.
  ticketScreen.addEventListener("click", backToStart);
  document.querySelectorAll(".lang-switch a").forEach(function (link) {
    link.addEventListener("click", function (event) {
      event.preventDefault();
      navigate(link.href);
    });
  });
  // A kiosk is not a browser: no long-press menus, no accidental text selection.
  document.addEventListener("contextmenu", function (event) { event.preventDefault(); });
  ["pointerdown", "keydown"].forEach(function (name) {
    document.addEventListener(name, resetIdle, { passive: true });
  });
  window.addEventListener("offline", function () { setBroken(true); });
  window.addEventListener("online", ping);

  resetIdle();
  schedulePing(PING_SECONDS);
  // <html data-kiosk="ready">: the taps are wired (tests wait on it before tapping, as on live.js's
  // data-live; a tap that lands before this script has run does nothing).
  document.documentElement.setAttribute("data-kiosk", "ready");
  // Remote tickets' "I'm here" QR changes every day: a kiosk left on over midnight reloads for
  // the new code, only while nobody is using it (the start screen is showing).
  var loadedOn = new Date().toDateString();
  if (byId("here-qr")) {
    setInterval(function () {
      if (!startScreen.hidden && new Date().toDateString() !== loadedOn) window.location.reload();
    }, 5 * 60 * 1000);
  }
})();
