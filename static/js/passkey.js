// Passkeys: runs the WebAuthn ceremony whose options the portal put on the form (data-passkey-options,
// made by py_webauthn), puts the authenticator's answer in the form's `credential` field and submits the
// form the usual way (htmx, or the unlock page's script). The portal checks everything; this only carries.
// Every message comes from the page, so none is written here.

function passkeyError(form, text) {
  const line = form.querySelector("[data-passkey-error]");
  if (!line) return;
  line.textContent = text;
  line.hidden = false;
}

async function runPasskey(button) {
  const form = button.closest("form");
  const creating = form.dataset.passkey === "create";
  if (!window.PublicKeyCredential || !PublicKeyCredential.parseRequestOptionsFromJSON) {
    passkeyError(form, form.dataset.passkeyUnsupported);
    return;
  }
  if (form.dataset.passkeyOrigin && window.location.origin !== form.dataset.passkeyOrigin) {
    passkeyError(form, form.dataset.passkeyWrongOrigin);
    return;
  }
  const options = JSON.parse(form.dataset.passkeyOptions);
  button.disabled = true;
  try {
    const credential = creating
      ? await navigator.credentials.create({publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options)})
      : await navigator.credentials.get({publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options)});
    form.elements[creating ? "new_credential" : "credential"].value = JSON.stringify(credential.toJSON());
    form.requestSubmit();
  } catch (error) {
    passkeyError(form, form.dataset.passkeyCancelled);
  } finally {
    button.disabled = false;
  }
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-passkey-run]");
  if (button) runPasskey(button);
});
