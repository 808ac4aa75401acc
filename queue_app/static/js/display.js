/* Lobby display: renders the branch snapshot (`queue`) and announces each `called`.
 *
 * The page only ever draws from the latest snapshot, so a reconnect (which brings a fresh one)
 * resynchronises everything; `called` only adds the announcement: chime, speech, highlight.
 */
(function () {
  "use strict";
  var Q = window.QueueApp;
  var data = Q.pageData();
  var text = data.text;

  var HIGHLIGHT_MS = 8000;
  var STALE_ANNOUNCEMENT_MS = 45000;  // after a long burst, skip calls nobody is waiting to hear
  var RECENT_SHOWN = 6;  // all the server sends; those that do not fit whole are dropped

  function byId(id) { return document.getElementById(id); }
  function el(tag, className, content) {
    var element = document.createElement(tag);
    if (className) element.className = className;
    if (content !== undefined) element.textContent = content;
    return element;
  }

  var snapshot = data.snapshot;
  var highlight = { label: null, until: 0 };

  /* Rendering from the snapshot. */

  function visibleCounters(counters) {
    // Closed counters are clutter on a TV, unless one still has a ticket to finish.
    return counters.filter(function (c) { return c.state !== "closed" || c.ticket; });
  }

  function renderCounters() {
    var list = byId("counters");
    var counters = visibleCounters(snapshot.counters);
    var now = Date.now();
    list.style.setProperty("--rows", String(Math.max(counters.length, 3)));
    list.textContent = "";
    counters.forEach(function (counter) {
      var row = el("li", "board-row");
      row.setAttribute("data-counter", counter.name);
      var label = el("span", "board-ticket");
      if (counter.ticket) {
        label.textContent = counter.ticket.label;
        if (counter.ticket.label === highlight.label && now < highlight.until) row.classList.add("flash");
      } else {
        label.textContent = counter.state === "open" ? text.none : text[counter.state] || text.none;
        label.classList.add("idle");
      }
      row.appendChild(label);
      row.appendChild(el("span", "board-counter", Q.localName(counter.name, counter.names)));
      list.appendChild(row);
    });
    Q.show(byId("no-counters"), counters.length === 0);
  }

  function renderRecent() {
    var list = byId("recent");
    list.textContent = "";
    snapshot.recent.slice(0, RECENT_SHOWN).forEach(function (call) {
      var item = el("li", "recent-item");
      item.appendChild(el("span", "recent-label", call.label));
      item.appendChild(el("span", "recent-counter", Q.localName(call.counter, call.counter_names)));
      item.appendChild(el("time", "recent-time", call.at.slice(11, 16)));  // already branch local time
      list.appendChild(item);
    });
    Q.show(byId("recent-empty"), snapshot.recent.length === 0);
    trimToFit(list);
  }

  /** Drop the oldest calls that do not fit whole: a half-cut row reads as a glitch on a TV. */
  function trimToFit(list) {
    var block = list.closest(".side-block");
    var bottom = block.getBoundingClientRect().bottom - parseFloat(getComputedStyle(block).paddingBottom);
    while (list.children.length > 1 && list.lastElementChild.getBoundingClientRect().bottom > bottom + 1) {
      list.removeChild(list.lastElementChild);
    }
  }

  function renderWaiting() {
    var list = byId("waiting");
    list.textContent = "";
    snapshot.waiting.forEach(function (service) {
      var item = el("li", "waiting-item");
      item.appendChild(el("span", "waiting-code", service.service));
      item.appendChild(el("span", "waiting-name", Q.localName(service.name, service.names)));
      item.appendChild(el("span", "waiting-count", String(service.count)));
      // "Standard: about 14 min" for someone taking a ticket now.
      item.appendChild(el("span", "waiting-estimate", Q.estimateText(service.estimate, text.estimates, true)));
      list.appendChild(item);
    });
  }

  function render() {
    renderCounters();
    renderRecent();
    renderWaiting();
  }

  /* Announcements: chime, then speech, one at a time. */

  var audio = null;
  var queue = [];
  var announcing = false;

  function audioContext() {
    var Context = window.AudioContext || window.webkitAudioContext;
    if (!audio && Context) audio = new Context();
    return audio;
  }

  function updateSoundButton() {
    var context = audioContext();
    Q.show(byId("sound-button"), !!context && context.state === "suspended");
  }

  /** A soft two-note "ding-dong" from an oscillator: no audio file to ship or cache. */
  function chime() {
    var context = audioContext();
    if (!context) return;
    if (context.state === "suspended") context.resume().catch(function () {});
    [[659.25, 0], [523.25, 0.45]].forEach(function (note) {
      var oscillator = context.createOscillator();
      var gain = context.createGain();
      var start = context.currentTime + note[1];
      oscillator.type = "sine";
      oscillator.frequency.value = note[0];
      gain.gain.setValueAtTime(0.0001, start);
      gain.gain.exponentialRampToValueAtTime(0.35, start + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + 1.1);
      oscillator.connect(gain).connect(context.destination);
      oscillator.start(start);
      oscillator.stop(start + 1.2);
    });
  }

  /** "A012" -> "A 0 1 2": read as characters, not as "A twelve". */
  function spell(label) {
    return String(label).split("").join(" ");
  }

  function pickVoice(lang) {
    var voices = window.speechSynthesis.getVoices();
    var exact = voices.filter(function (v) { return v.lang.replace("_", "-") === lang; });
    var sameLanguage = voices.filter(function (v) { return v.lang.slice(0, 2) === lang.slice(0, 2); });
    return exact[0] || sameLanguage[0] || null;
  }

  /** Speaks and calls done() when finished, or after a timeout (some systems have no voices). */
  function speak(sentence, lang, done) {
    var finished = false;
    function finish() { if (!finished) { finished = true; done(); } }
    setTimeout(finish, 9000);
    if (!("speechSynthesis" in window)) return finish();
    try {
      var utterance = new SpeechSynthesisUtterance(sentence);
      utterance.lang = lang;
      var voice = pickVoice(lang);
      if (voice) utterance.voice = voice;
      utterance.rate = 0.9;
      utterance.onend = finish;
      utterance.onerror = finish;
      window.speechSynthesis.speak(utterance);
    } catch (error) {
      finish();
    }
  }

  /** The call in each announced language in turn (the server sends the sentences, translated). */
  function announce(call) {
    var bar = byId("announce");
    var line = byId("announce-text");
    bar.classList.remove("active");
    void bar.offsetWidth;  // restart the CSS animation for back-to-back calls
    bar.classList.add("active");
    highlight = { label: call.label, until: Date.now() + HIGHLIGHT_MS };
    renderCounters();
    setTimeout(function () {
      if (Date.now() >= highlight.until) renderCounters();
      bar.classList.remove("active");
    }, HIGHLIGHT_MS + 50);
    chime();
    var sentences = data.announcements;
    function say(index, delay) {
      if (index >= sentences.length) return next();
      var sentence = sentences[index];
      var template = call.recall ? sentence.recall : sentence.call;
      var counter = (call.counter_names || {})[sentence.language] || call.counter;
      line.textContent = Q.format(template, { label: call.label, counter: counter });
      line.setAttribute("lang", sentence.speech_lang);
      setTimeout(function () {
        speak(Q.format(template, { label: spell(call.label), counter: counter }), sentence.speech_lang,
              function () { say(index + 1, 300); });
      }, delay);
    }
    say(0, 1300);  // after the chime
  }

  function next() {
    announcing = false;
    while (queue.length && Date.now() - queue[0].received > STALE_ANNOUNCEMENT_MS) queue.shift();
    if (!queue.length) return;
    announcing = true;
    announce(queue.shift());
  }

  function onCalled(call) {
    call.received = Date.now();
    queue.push(call);
    if (!announcing) next();
  }

  /* Clock in the branch's time zone, corrected for a TV whose own clock is wrong. */

  var clockOffset = data.server_time_ms - Date.now();
  var timeFormat = new Intl.DateTimeFormat(data.clock_lang, {
    timeZone: data.timezone, hour: "2-digit", minute: "2-digit", hourCycle: "h23",
  });
  var dateFormat = new Intl.DateTimeFormat(data.clock_lang, {
    timeZone: data.timezone, weekday: "long", month: "long", day: "numeric",
  });

  function tick() {
    var now = new Date(Date.now() + clockOffset);
    byId("clock-time").textContent = timeFormat.format(now);
    byId("clock-date").textContent = dateFormat.format(now);
    setTimeout(tick, 1000 - (now.getTime() % 1000) + 20);
  }

  /* Wiring. */

  byId("sound-button").addEventListener("click", function () {
    var context = audioContext();
    if (context) context.resume().then(updateSoundButton, updateSoundButton);
    // Speech needs a user gesture once in some browsers: an empty utterance unlocks it.
    if ("speechSynthesis" in window) window.speechSynthesis.speak(new SpeechSynthesisUtterance(""));
  });

  render();
  window.addEventListener("resize", render);
  tick();
  updateSoundButton();
  Q.connectLive({
    join: { branch: data.branch },
    onState: function (connected) { Q.show(byId("offline-badge"), !connected); },
    events: {
      queue: function (summary) { snapshot = summary; render(); },
      called: onCalled,
    },
    // Safety net: a fresh snapshot every few minutes (a missed push, a new local day at midnight).
    refreshSeconds: 300,
  });
})();
