/* The branch list (/): sort by the shortest wait or by distance from the phone, and keep the
 * figures fresh.
 *
 * The phone's position stays in this page: distances are worked out here (haversine) from the
 * branches' coordinates in the page, and nothing about the position is sent anywhere.
 */
(function () {
  "use strict";

  var data = JSON.parse(document.getElementById("page-data").textContent);
  var list = document.getElementById("branch-list");
  var group = document.getElementById("waits-sort");
  var byWait = document.getElementById("sort-wait");
  var byDistance = document.getElementById("sort-distance");
  var status = document.getElementById("waits-status");
  var privacy = document.getElementById("waits-privacy");
  var position = null; // {lat, lon} in degrees, only ever in this page's memory
  var mode = "wait";
  var EARTH_KM = 6371.0088; // mean radius

  function format(template, values) {
    return String(template).replace(/\{(\w+)\}/g, function (whole, key) {
      return Object.prototype.hasOwnProperty.call(values, key) ? String(values[key]) : whole;
    });
  }

  function radians(degrees) { return degrees * Math.PI / 180; }

  /** Great-circle distance in km (haversine). */
  function distanceKm(lat1, lon1, lat2, lon2) {
    var dLat = radians(lat2 - lat1), dLon = radians(lon2 - lon1);
    var a = Math.pow(Math.sin(dLat / 2), 2) +
      Math.cos(radians(lat1)) * Math.cos(radians(lat2)) * Math.pow(Math.sin(dLon / 2), 2);
    return 2 * EARTH_KM * Math.asin(Math.min(1, Math.sqrt(a)));
  }

  function distanceText(km) {
    if (km < 1) return format(data.m, { m: Math.max(10, Math.round(km * 100) * 10) });
    return format(data.km, { km: km < 10 ? km.toFixed(1) : String(Math.round(km)) });
  }

  function cards() {
    return Array.prototype.filter.call(list.children, function (li) { return li.hasAttribute("data-slug"); });
  }

  function showDistances() {
    cards().forEach(function (card) {
      var label = card.querySelector(".branch-distance");
      if (!position || !card.hasAttribute("data-lat")) return;
      var km = distanceKm(position.lat, position.lon, Number(card.getAttribute("data-lat")),
                          Number(card.getAttribute("data-lon")));
      card.setAttribute("data-km", String(km));
      if (label) {
        label.textContent = distanceText(km);
        label.hidden = false;
      }
    });
  }

  function order(card) { return Number(card.getAttribute("data-order")); }

  function km(card) {
    return card.hasAttribute("data-km") ? Number(card.getAttribute("data-km")) : Infinity;
  }

  function sortCards() {
    var sorted = cards().sort(function (a, b) {
      if (mode === "distance") {
        var apart = km(a) - km(b);
        if (apart) return apart; // branches without coordinates (Infinity) go last
      }
      return order(a) - order(b); // the server's order: shortest wait first
    });
    sorted.forEach(function (card) { list.appendChild(card); });
  }

  function setMode(next) {
    mode = next;
    byWait.setAttribute("aria-pressed", String(mode === "wait"));
    byDistance.setAttribute("aria-pressed", String(mode === "distance"));
    sortCards();
    status.textContent = mode === "distance" ? data.by_distance : data.by_wait;
  }

  byWait.addEventListener("click", function () { setMode("wait"); });
  byDistance.addEventListener("click", function () {
    if (position) {
      setMode("distance");
      return;
    }
    status.textContent = data.locating;
    navigator.geolocation.getCurrentPosition(function (found) {
      position = { lat: found.coords.latitude, lon: found.coords.longitude };
      showDistances();
      setMode("distance");
    }, function () {
      setMode("wait");
      status.textContent = data.no_location;
    }, { maximumAge: 300000, timeout: 20000 });
  });

  // Distances only where the browser can locate and at least one branch has coordinates.
  if (navigator.geolocation && list.querySelector("[data-lat]")) {
    group.hidden = false;
    privacy.hidden = false;
  }

  /** Fresh figures: the page itself again (server-rendered in this language), its list swapped in. */
  function refresh() {
    if (document.hidden || list.contains(document.activeElement)) return; // never pull a focused button away
    fetch(window.location.href, { headers: { "Accept": "text/html" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (!html) return;
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("branch-list");
        if (!fresh || list.contains(document.activeElement)) return;
        while (list.firstChild) list.removeChild(list.firstChild);
        while (fresh.firstChild) list.appendChild(document.adoptNode(fresh.firstChild));
        showDistances();
        sortCards();
      })
      .catch(function () { /* offline for a moment: keep the figures shown */ });
  }

  setInterval(refresh, (data.refresh_s || 30) * 1000);
})();
