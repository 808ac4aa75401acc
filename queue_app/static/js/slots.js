/* Day and time picker over GET /api/v1/branches/<slug>/availability (booking page, manage page,
 * staff "Book for a customer" dialog).
 *
 * Markup: templates/booking/_slot_picker.html. Days are toggle buttons (only days with slots);
 * times are <button>s whose accessible name is the whole moment, e.g.
 * "Wednesday, 2 December 2026, 10:30 (Asia/Taipei)"; full times stay visible but disabled.
 * Times are the branch's wall clock as the API gives them (ISO with offset): the phone's own
 * time zone never shifts them.
 *
 * options: url (availability), days, timezone, calendar {intl, when}, text {...},
 *          onPick(slot, label), current (ISO start shown as the booking's current time).
 */
(function (global) {
  "use strict";
  var Q = global.QueueApp;

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  /** A local date "2026-12-02" as an instant that is that date in UTC (formatted with timeZone UTC). */
  function noonOf(isoDate) {
    var parts = isoDate.split("-");
    return new Date(Date.UTC(+parts[0], +parts[1] - 1, +parts[2], 12));
  }

  function SlotPicker(root, options) {
    var self = this;
    this.root = root;
    this.options = options;
    this.text = options.text;
    this.daysBox = root.querySelector(".picker-days");
    this.slotsBox = root.querySelector(".picker-slots");
    this.slotsLabel = root.querySelector(".picker-slots-label");
    this.statusLine = root.querySelector(".picker-status");
    this.retryButton = root.querySelector(".picker-retry");
    this.service = null;
    this.days = [];
    this.day = null;
    this.selected = null;
    this.sequence = 0;
    var tag = options.calendar.intl;
    this.fullDate = new Intl.DateTimeFormat(tag, { dateStyle: "full", timeZone: "UTC" });
    this.weekday = new Intl.DateTimeFormat(tag, { weekday: "short", timeZone: "UTC" });
    this.month = new Intl.DateTimeFormat(tag, { month: "short", timeZone: "UTC" });
    this.retryButton.addEventListener("click", function () { self.reload(); });
  }

  SlotPicker.prototype.describe = function (start) {
    return Q.format(this.options.calendar.when, {
      date: this.fullDate.format(noonOf(start.slice(0, 10))), time: start.slice(11, 16), zone: this.options.timezone,
    });
  };

  SlotPicker.prototype.say = function (message, canRetry) {
    this.statusLine.textContent = message || "";  // a live region: it stays in place, only its text changes
    Q.show(this.retryButton, !!canRetry);
  };

  /** Show the slots of another service (or the same again from scratch). */
  SlotPicker.prototype.load = function (service) {
    this.service = service;
    this.day = null;
    return this.reload();
  };

  /** Ask again (after "slot_full" or a retry): keeps the chosen day when it still has slots. */
  SlotPicker.prototype.reload = function () {
    var self = this;
    var sequence = ++this.sequence;
    this.selected = null;
    this.root.setAttribute("aria-busy", "true");
    this.say(this.text.loading, false);
    var url = this.options.url + "?service=" + encodeURIComponent(this.service) + "&days=" + this.options.days;
    return Q.request("GET", url).then(function (result) {
      if (sequence !== self.sequence) return;  // a newer request (another service) won
      if (!result.ok) {
        self.say(result.status === 429 ? self.text.busy : Q.errorMessage(result, self.text.failed), true);
        return;
      }
      self.days = result.data.days.filter(function (day) { return day.slots.length > 0; });
      self.renderDays();
    }, function () {
      if (sequence === self.sequence) self.say(self.text.offline, true);
    }).finally(function () {
      if (sequence === self.sequence) self.root.removeAttribute("aria-busy");
    });
  };

  SlotPicker.prototype.clear = function () {
    this.selected = null;
    this.slotsBox.querySelectorAll(".slot").forEach(function (button) { button.setAttribute("aria-pressed", "false"); });
  };

  function freeCount(day) {
    return day.slots.filter(function (slot) { return slot.remaining > 0; }).length;
  }

  SlotPicker.prototype.renderDays = function () {
    var self = this;
    var text = this.text;
    this.daysBox.textContent = "";
    this.slotsBox.textContent = "";
    if (!this.days.length) {
      Q.show(this.slotsLabel, false);
      this.say(Q.format(text.none, { days: this.options.days }), false);
      return;
    }
    this.say("", false);
    var keep = this.days.filter(function (day) { return day.date === self.day && freeCount(day) > 0; })[0];
    var first = keep || this.days.filter(function (day) { return freeCount(day) > 0; })[0];
    this.days.forEach(function (day) {
      var free = freeCount(day);
      var date = noonOf(day.date);
      var button = element("button", "day-chip");
      button.type = "button";
      button.setAttribute("data-date", day.date);
      button.setAttribute("aria-pressed", "false");
      // The chip shows abbreviations; screen readers get the whole date from a hidden span (its
      // name is its content, not an aria-label that would differ from the visible text).
      var shown = element("span", "day-shown");
      shown.setAttribute("aria-hidden", "true");
      shown.appendChild(element("span", "day-weekday", self.weekday.format(date)));
      shown.appendChild(element("span", "day-number", day.date.slice(8, 10).replace(/^0/, "")));
      shown.appendChild(element("span", "day-month", self.month.format(date)));
      shown.appendChild(element("span", "day-free", free ? Q.format(text.free_short, { n: free }) : text.full));
      button.appendChild(shown);
      button.appendChild(element("span", "visually-hidden", self.fullDate.format(date) + ", " +
        (free ? Q.format(free === 1 ? text.free_one : text.free, { n: free }) : text.day_full)));
      if (!free) button.disabled = true;
      button.addEventListener("click", function () { self.showDay(day.date); });
      self.daysBox.appendChild(button);
    });
    if (first) this.showDay(first.date);
    else this.say(Q.format(text.none, { days: this.options.days }), false);
  };

  SlotPicker.prototype.showDay = function (isoDate) {
    var self = this;
    var text = this.text;
    var day = this.days.filter(function (d) { return d.date === isoDate; })[0];
    if (!day) return;
    this.day = isoDate;
    this.selected = null;
    this.daysBox.querySelectorAll(".day-chip").forEach(function (chip) {
      chip.setAttribute("aria-pressed", String(chip.getAttribute("data-date") === isoDate));
    });
    this.slotsLabel.textContent = Q.format(text.times_on, { date: this.fullDate.format(noonOf(isoDate)) });
    Q.show(this.slotsLabel, true);
    this.slotsBox.textContent = "";
    var groups = [
      { title: text.morning, slots: [] }, { title: text.afternoon, slots: [] }, { title: text.evening, slots: [] },
    ];
    day.slots.forEach(function (slot) {
      var hour = +slot.start.slice(11, 13);
      groups[hour < 12 ? 0 : hour < 17 ? 1 : 2].slots.push(slot);
    });
    groups.forEach(function (group) {
      if (!group.slots.length) return;
      var box = element("div", "slot-group");
      box.appendChild(element("p", "slot-group-title", group.title));
      var grid = element("div", "slot-grid");
      group.slots.forEach(function (slot) { grid.appendChild(self.slotButton(slot)); });
      box.appendChild(grid);
      self.slotsBox.appendChild(box);
    });
  };

  SlotPicker.prototype.slotButton = function (slot) {
    var self = this;
    var text = this.text;
    var label = this.describe(slot.start);
    var button = element("button", "slot");
    button.type = "button";
    button.setAttribute("data-start", slot.start);
    button.setAttribute("aria-pressed", "false");
    button.appendChild(element("span", "slot-time", slot.start.slice(11, 16)));
    var isCurrent = this.options.current && this.options.current === slot.start;
    if (isCurrent) {
      button.disabled = true;
      button.classList.add("current");
      button.appendChild(element("span", "slot-note", text.current));
      button.setAttribute("aria-label", label + ", " + text.current);
    } else if (slot.remaining <= 0) {
      button.disabled = true;
      button.classList.add("full");
      button.appendChild(element("span", "slot-note", text.full));
      button.setAttribute("aria-label", label + ", " + text.full_long);
    } else if (slot.inside_cutoff) {
      // Closer than the branch's change cut-off: once booked it can be cancelled, not moved online.
      button.classList.add("inside-cutoff");
      button.appendChild(element("span", "slot-note", text.inside_cutoff));
      button.setAttribute("aria-label", label + ", " + text.inside_cutoff_long);
    } else {
      button.setAttribute("aria-label", label);
    }
    button.addEventListener("click", function () {
      self.selected = slot;
      self.slotsBox.querySelectorAll(".slot").forEach(function (other) {
        other.setAttribute("aria-pressed", String(other === button));
      });
      if (self.options.onPick) self.options.onPick(slot, label);
    });
    return button;
  };

  Q.SlotPicker = SlotPicker;

  /** A random Idempotency-Key: one per form, so a double tap or a retry books once. */
  Q.newKey = function () {
    if (global.crypto && global.crypto.randomUUID) return global.crypto.randomUUID();
    var bytes = new Uint8Array(16);
    global.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return (b + 256).toString(16).slice(1); }).join("");
  };
})(window);
