// In the Latchkey window after login and consent: give the result to the
// widget's iframe (same origin as this page) and close.
(function () {
  var el = document.getElementById("lk-result");
  if (!el || !window.opener) return;
  window.opener.postMessage({ type: "latchkey-auth", user: JSON.parse(el.dataset.json) }, location.origin);
  setTimeout(function () { window.close(); }, 100);
})();
