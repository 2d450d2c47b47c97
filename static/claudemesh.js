// claudemesh dashboard: copy buttons, confirmations and the "online now" refresh. Pages work without it.
(function () {
  "use strict";

  function copyText(text, done) {
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done);
      return;
    }
    // Plain-http installs have no clipboard API: copy through a temporary selected field.
    var field = document.createElement("textarea");
    field.value = text;
    field.setAttribute("readonly", "");
    field.style.position = "fixed";
    field.style.opacity = "0";
    document.body.appendChild(field);
    field.select();
    document.execCommand("copy");
    document.body.removeChild(field);
    done();
  }

  function copyFrom(button) {
    var text = button.getAttribute("data-copy-text");
    if (text === null) {
      var source = document.querySelector(button.getAttribute("data-copy"));
      if (!source) return;
      text = source.value !== undefined ? source.value : source.textContent;
    }
    copyText(text, function () {
      var label = button.textContent;
      button.textContent = "Copied";
      button.classList.add("copied");
      setTimeout(function () { button.textContent = label; button.classList.remove("copied"); }, 1500);
    });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy], [data-copy-text]");
    if (button) { event.preventDefault(); copyFrom(button); }
  });

  document.addEventListener("submit", function (event) {
    var question = event.target.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  });

  // Re-render the live region from the server every few seconds while the tab is visible.
  function pollLive() {
    var region = document.getElementById("live-region");
    if (!region || !region.dataset.liveUrl) return;
    var seconds = parseInt(region.dataset.liveSeconds || "5", 10);
    setTimeout(function tick() {
      var current = document.getElementById("live-region");
      if (document.hidden) { setTimeout(tick, seconds * 1000); return; }
      fetch(current.dataset.liveUrl, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
        // A redirect means the session ended (sign-in page): stop rather than paste that page in.
        .then(function (response) { return response.ok && !response.redirected ? response.text() : null; })
        .then(function (html) { if (html) current.outerHTML = html; })
        .catch(function () {})
        .finally(function () { setTimeout(tick, seconds * 1000); });
    }, seconds * 1000);
  }
  document.addEventListener("DOMContentLoaded", pollLive);
})();

// Audit times are stored and printed in UTC; show each in the reader's own time zone too (the UTC text stays as
// the tooltip).
(function () {
  "use strict";
  if (!window.Intl || !Intl.DateTimeFormat) return;
  var format = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit",
    timeZoneName: "short",
  });
  document.querySelectorAll("time[data-local]").forEach(function (node) {
    var moment = new Date(node.getAttribute("datetime"));
    if (isNaN(moment.getTime())) return;
    node.title = node.textContent;
    node.textContent = format.format(moment);
  });
})();
