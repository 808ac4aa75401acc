/* The counter's customer panel: who the current ticket belongs to, their standing and recent
 * visits, and "attach a customer" by phone or name search (staff see phone numbers masked).
 * It follows the counter's current ticket by asking the counter endpoint every few seconds.
 */
(function () {
  "use strict";
  var Q = window.QueueApp;
  var data = Q.pageData();
  var cfg = JSON.parse(document.getElementById("customer-data").textContent);
  var panel = document.getElementById("customer-panel");
  var body = document.getElementById("customer-body");
  var form = document.getElementById("customer-search");
  var results = document.getElementById("customer-results");
  var ticketId = null;

  function el(tag, text, cls) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  }

  function csrf() {
    return Q.request("GET", data.csrf_url).then(function (r) { return r.data && r.data.csrf_token; });
  }

  function show(found) {
    body.textContent = "";
    if (!found.customer) {
      body.appendChild(el("p", cfg.text.none));
      form.hidden = false;
      return;
    }
    form.hidden = true;
    var c = found.customer;
    body.appendChild(el("p", (c.name || "#" + c.id) + (c.phone ? " · " + c.phone : ""), "customer-name"));
    if (found.standing) {
      var s = found.standing;
      body.appendChild(el("p", Q.format(cfg.text.standing, {
        segment: cfg.segments[s.segment] || s.segment, tier: (cfg.tiers || {})[s.tier] || s.tier, visits: s.visits })));
    }
    var list = el("ul", null, "customer-recent");
    found.recent.forEach(function (e) {
      var bits = [e.at.slice(0, 16).replace("T", " "), cfg.kinds[e.kind] || e.kind, e.service_name || e.service];
      if (e.wait_minutes !== undefined && e.wait_minutes !== null) bits.push(Q.format(cfg.text.waited, { m: e.wait_minutes }));
      if (e.rating) bits.push("★".repeat(e.rating));
      list.appendChild(el("li", bits.join(" · ")));
    });
    body.appendChild(el("p", cfg.text.recent));
    body.appendChild(list);
    var link = el("a", cfg.text.open);
    link.href = cfg.record_url.replace("0", String(c.id));
    body.appendChild(link);
  }

  function load() {
    if (!ticketId) { panel.hidden = true; return; }
    Q.request("GET", cfg.ticket_customer_url.replace("0", String(ticketId))).then(function (r) {
      if (r.ok) { panel.hidden = false; show(r.data); }
    }, function () {});
  }

  function poll() {
    Q.request("GET", data.counter_url).then(function (r) {
      var id = r.ok && r.data && r.data.ticket ? r.data.ticket.id : null;
      if (id !== ticketId) { ticketId = id; results.textContent = ""; load(); }
    }, function () {});
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var q = form.elements.q.value.trim();
    results.textContent = "";
    if (q.length < 2) return;
    Q.request("GET", cfg.search_url + "?q=" + encodeURIComponent(q)).then(function (r) {
      var rows = r.ok ? r.data : [];
      if (!rows.length) {
        results.appendChild(el("li", cfg.text.no_match));
        if (/\d{6,}/.test(q)) rows = [{ id: null, name: cfg.text.new_customer, phone: q }];
      }
      rows.forEach(function (row) {
        var item = el("li", (row.name || "#" + row.id) + (row.phone ? " · " + row.phone : "") + " ");
        var button = el("button", cfg.text.attach, "btn btn-secondary");
        button.type = "button";
        button.addEventListener("click", function () {
          var payload = row.id ? { customer_id: row.id } : { phone: q };
          csrf().then(function (token) {
            return Q.request("POST", cfg.ticket_customer_url.replace("0", String(ticketId)), { body: payload, csrf: token });
          }).then(function (res) {
            if (res.ok) { results.textContent = ""; load(); }
            else results.appendChild(el("li", Q.errorMessage(res, cfg.text.failed), "field-error"));
          });
        });
        item.appendChild(button);
        results.appendChild(item);
      });
    });
  });

  poll();
  setInterval(poll, 4000);
})();
