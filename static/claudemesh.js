// claudemesh dashboard: copy buttons, confirmations and the "online now" refresh. Pages work without it.
(function () {
  "use strict";

  function copyFrom(button) {
    var source = document.querySelector(button.getAttribute("data-copy"));
    if (!source) return;
    var text = source.value !== undefined ? source.value : source.textContent;
    var done = function () {
      var label = button.textContent;
      button.textContent = "Copied";
      button.classList.add("copied");
      setTimeout(function () { button.textContent = label; button.classList.remove("copied"); }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done);
    } else {  // plain-http installs: fall back to selecting the field
      source.select();
      document.execCommand("copy");
      done();
    }
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
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
