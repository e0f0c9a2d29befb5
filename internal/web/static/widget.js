// Latchkey authorization widget for external sites.
//
//   <script src="https://LATCHKEY/js/widget.js"></script>
//   <div id="latchkey_auth"></div>
//   <script>
//     Latchkey.Widgets.Auth("latchkey_auth", {
//       apiId: 123,
//       onAuth: function (user) { /* user.uid, first_name, last_name, photo, hash */ },
//       // or, instead of onAuth: authUrl: "https://your.site/login/latchkey"
//     });
//   </script>
//
// The button is an iframe that Latchkey renders only on the app's
// registered origins. Login and consent happen in a Latchkey window; the
// result comes back to onAuth (verify hash = md5(app_id + uid + secret) on
// your server), or, with authUrl, the browser goes to authUrl with the
// result in its query.
(function () {
  var script = document.currentScript;
  var base = new URL(script.src).origin;
  var L = (window.Latchkey = window.Latchkey || {});
  L.Widgets = L.Widgets || {};
  L.Widgets.Auth = function (elementId, opts) {
    var el = document.getElementById(elementId);
    if (!el) throw new Error("Latchkey widget: no element #" + elementId);
    var q = new URLSearchParams({ app_id: String(opts.apiId), origin: location.origin, mode: opts.onAuth ? "callback" : "redirect" });
    if (opts.authUrl) q.set("auth_url", opts.authUrl);
    var frame = document.createElement("iframe");
    frame.src = base + "/widget/button?" + q.toString();
    frame.title = "Log in with Latchkey";
    frame.width = String(opts.width || 240);
    frame.height = "48";
    frame.style.border = "0";
    el.appendChild(frame);
    if (!opts.onAuth) return;
    window.addEventListener("message", function (e) {
      if (e.origin !== base || e.source !== frame.contentWindow) return;
      if (!e.data || e.data.type !== "latchkey-auth") return;
      opts.onAuth(e.data.user);
    });
  };
})();
