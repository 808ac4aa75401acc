/* Helpers shared by the live pages (kiosk, lobby display, tracking page, staff console).
 *
 * Loaded as a file (never inline) so a Content-Security-Policy without inline scripts works.
 * Pages pass their strings and URLs in <script type="application/json" id="page-data">.
 */
(function (global) {
  "use strict";

  /** The page's JSON data block (strings, URLs, initial state). */
  function pageData(id) {
    var element = document.getElementById(id || "page-data");
    return element ? JSON.parse(element.textContent) : {};
  }

  /** "About {minutes} min" + {minutes: 5} -> "About 5 min". Templates come translated from the server. */
  function format(template, values) {
    return String(template).replace(/\{(\w+)\}/g, function (whole, key) {
      return Object.prototype.hasOwnProperty.call(values, key) ? String(values[key]) : whole;
    });
  }

  /**
   * How a wait estimate reads ({state, minutes, low, high, opens_at}); `texts` are the page's
   * translated estimate templates (tickets/estimate_text.py). `short` gives "about 14 min".
   */
  function estimateText(estimate, texts, short) {
    if (!estimate) return "";
    if (estimate.state === "waiting") {
      if (!estimate.minutes) return texts.very_soon;
      return format(short ? texts.display_estimate : texts.estimate, estimate);
    }
    if (estimate.state === "no_counter") {
      if (!estimate.opens_at) return texts.no_counter;
      var values = { time: estimate.opens_at.slice(11, 16), minutes: estimate.minutes };
      return format(estimate.minutes === null ? texts.no_counter_until : texts.opens_about, values);
    }
    if (estimate.state === "closed") return texts.closed;
    return "";
  }

  /**
   * A service's or counter's name in the page's language: `names` is {"zh_Hant": ..., ...} as the
   * server sends it, `name` the default (catalogue.pick_name on the server side). `language`
   * ("zh_Hant") overrides the page's, e.g. for an announcement spoken in another language.
   */
  function localName(name, names, language) {
    language = language || (document.documentElement.lang || "").replace("-", "_");
    return (names && names[language]) || name || "";
  }

  function show(element, visible) {
    if (element) element.hidden = !visible;
  }

  /** The network or the server did not answer: distinct from an error the server sent. */
  function Unreachable(message) {
    this.name = "Unreachable";
    this.message = message;
  }

  /**
   * fetch() with a timeout and JSON both ways (options: body, csrf, headers, timeout).
   * Resolves {ok, status, data} for every HTTP answer
   * (data is the parsed body or null); rejects with Unreachable when no answer came.
   */
  function request(method, url, options) {
    options = options || {};
    var controller = typeof AbortController === "function" ? new AbortController() : null;
    var timer = controller ? setTimeout(function () { controller.abort(); }, options.timeout || 10000) : null;
    var headers = { "Accept": "application/json" };
    if (options.csrf) headers["X-CSRFToken"] = options.csrf;
    Object.keys(options.headers || {}).forEach(function (name) { headers[name] = options.headers[name]; });
    var init = { method: method, headers: headers, credentials: "same-origin", cache: "no-store" };
    if (controller) init.signal = controller.signal;
    if (options.body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(options.body);
    }
    return fetch(url, init).then(function (response) {
      return response.text().then(function (text) {
        var data = null;
        try { data = text ? JSON.parse(text) : null; } catch (ignored) { data = null; }
        return { ok: response.ok, status: response.status, data: data };
      });
    }, function (error) {
      throw new Unreachable(error && error.message ? error.message : "network error");
    }).finally(function () {
      if (timer) clearTimeout(timer);
    });
  }

  /** The message of an API error body {"error": {"code", "message"}}, or a fallback. */
  function errorMessage(result, fallback) {
    var error = result && result.data && result.data.error;
    return (error && error.message) || fallback;
  }

  function errorCode(result) {
    var error = result && result.data && result.data.error;
    return error ? error.code : null;
  }

  /**
   * Connect to the /live namespace and stay joined.
   *
   * Socket.IO reconnects by itself, but a new connection is a new server-side session with no
   * rooms: so `join` is emitted again on every (re)connect. A phone that slept may hold a dead
   * connection that has not noticed yet, so coming back to the page joins again too (the server
   * answers every join with a fresh snapshot, which is what makes a woken page current).
   *
   * options: join (the payload), onState(connected: bool), onJoining() just before each join,
   * onJoin(ack), events {name: handler},
   * refreshSeconds (re-join periodically as a safety net, e.g. for a display over midnight).
   */
  function connectLive(options) {
    var socket = global.io("/live");
    // <html data-live="offline|connected|joined">: for styles, and for tests to wait on.
    var root = document.documentElement;
    root.setAttribute("data-live", "offline");
    function join() {
      if (options.onJoining) options.onJoining();
      socket.emit("join", options.join, function (ack) {
        ack = ack || { ok: false, error: { code: "no_ack", message: "" } };
        if (ack.ok && socket.connected) root.setAttribute("data-live", "joined");
        if (options.onJoin) options.onJoin(ack);
      });
    }
    function offline() {
      root.setAttribute("data-live", "offline");
      if (options.onState) options.onState(false);
    }
    socket.on("connect", function () {
      root.setAttribute("data-live", "connected");
      if (options.onState) options.onState(true);
      join();
    });
    socket.on("disconnect", offline);
    socket.on("connect_error", offline);
    Object.keys(options.events || {}).forEach(function (name) {
      socket.on(name, options.events[name]);
    });
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState !== "visible") return;
      if (socket.connected) join();
      else socket.connect();
    });
    if (options.refreshSeconds) {
      setInterval(function () { if (socket.connected) join(); }, options.refreshSeconds * 1000);
    }
    return socket;
  }

  global.QueueApp = {
    pageData: pageData,
    localName: localName,
    format: format,
    estimateText: estimateText,
    show: show,
    request: request,
    Unreachable: Unreachable,
    errorMessage: errorMessage,
    errorCode: errorCode,
    connectLive: connectLive,
  };
})(window);
