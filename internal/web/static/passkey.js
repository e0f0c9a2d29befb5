// Passkeys (WebAuthn) on the login, second-factor and security pages. A
// button with data-passkey="get" or "create" sits in a form whose action
// finishes the ceremony; data-options is where the ceremony begins. The
// button fetches the options (posting the form, so its CSRF token goes
// too), asks the browser for the passkey, puts the answer in the form's
// "answer" field and the ceremony's state in "state", and submits it.
(function () {
  'use strict';
  function toBytes(s) {
    s = s.replace(/-/g, '+').replace(/_/g, '/');
    while (s.length % 4) s += '=';
    var bin = atob(s), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }
  function toText(buf) {
    var bytes = new Uint8Array(buf), bin = '';
    for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }
  function creationOptions(o) {
    o.challenge = toBytes(o.challenge);
    o.user.id = toBytes(o.user.id);
    (o.excludeCredentials || []).forEach(function (c) { c.id = toBytes(c.id); });
    return o;
  }
  function requestOptions(o) {
    o.challenge = toBytes(o.challenge);
    (o.allowCredentials || []).forEach(function (c) { c.id = toBytes(c.id); });
    return o;
  }
  function answerOf(cred) {
    var r = cred.response, out = {id: cred.id, rawId: toText(cred.rawId), type: cred.type,
      clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {}, response: {clientDataJSON: toText(r.clientDataJSON)}};
    if (r.attestationObject) {
      out.response.attestationObject = toText(r.attestationObject);
      if (r.getTransports) out.response.transports = r.getTransports();
    } else {
      out.response.authenticatorData = toText(r.authenticatorData);
      out.response.signature = toText(r.signature);
      if (r.userHandle) out.response.userHandle = toText(r.userHandle);
    }
    return out;
  }
  function start(button) {
    var form = button.form, error = form.querySelector('[data-passkey-error]');
    if (error) error.hidden = true;
    fetch(button.dataset.options, {method: 'POST', credentials: 'same-origin', body: new URLSearchParams(new FormData(form))})
      .then(function (res) { if (!res.ok) throw new Error('options'); return res.json(); })
      .then(function (c) {
        form.elements.state.value = c.state;
        return button.dataset.passkey === 'create'
          ? navigator.credentials.create({publicKey: creationOptions(c.options)})
          : navigator.credentials.get({publicKey: requestOptions(c.options)});
      })
      .then(function (cred) {
        form.elements.answer.value = JSON.stringify(answerOf(cred));
        form.submit();
      })
      .catch(function () { if (error) error.hidden = false; });
  }
  document.querySelectorAll('[data-passkey]').forEach(function (button) {
    if (!window.PublicKeyCredential) return;
    button.hidden = false;
    button.addEventListener('click', function () { start(button); });
  });
})();
