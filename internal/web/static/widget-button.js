// Inside the widget's iframe: opens the Latchkey window and hands its
// result to the embedding site, which must be the app's registered origin.
(function () {
  var box = document.getElementById("lk-widget");
  var button = document.getElementById("lk-login");
  if (!box || !button) return;
  var d = box.dataset;
  var popup = null;
  var q = new URLSearchParams({ app_id: d.app, origin: d.origin, mode: d.mode });
  if (d.authUrl) q.set("auth_url", d.authUrl);
  var url = new URL("/widget/auth?" + q.toString(), location.href).href;
  button.addEventListener("click", function () {
    if (d.mode === "redirect") {
      window.top.location.href = url;
      return;
    }
    popup = window.open(url, "latchkey_auth", "width=655,height=520");
  });
  window.addEventListener("message", function (e) {
    if (e.origin !== location.origin || !popup || e.source !== popup) return;
    if (!e.data || e.data.type !== "latchkey-auth") return;
    window.parent.postMessage(e.data, d.origin);
  });
})();
