// Kilit Çözme: talks to the holder's local card helper (127.0.0.1) and to the portal.
// The PUK never passes through here in clear for online cards: the portal answers it sealed for
// the helper's key and this script only carries the sealed text. PINs typed here go to the helper
// (and, for the rules check, to the portal) and are cleared from the form after every attempt.

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

function show(element, visible) {
  if (element) element.hidden = !visible;
}

class UnlockPage {
  constructor(root) {
    this.root = root;
    this.helperUrl = root.dataset.helperUrl.replace(/\/$/, "");
    this.messages = JSON.parse(root.dataset.messages);
    this.card = null;
    this.helperKey = null;
    root.querySelectorAll("form[data-operation]").forEach((form) => {
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        this.run(form);
      });
    });
    const retry = root.querySelector("[data-helper-retry]");
    if (retry) retry.addEventListener("click", () => this.refresh());
    this.refresh();
  }

  message(name, fallback) {
    return this.messages[name] || fallback || this.messages.portal_error;
  }

  async helper(path, body) {
    const options = body === undefined ? {} : {
      method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body),
    };
    try {
      const response = await fetch(this.helperUrl + path, {...options, cache: "no-store"});
      const data = await response.json();
      return {ok: response.ok, status: response.status, data};
    } catch (error) {
      return {ok: false, status: 0, data: {error: "unreachable"}};
    }
  }

  async portal(url, fields) {
    const response = await fetch(url, {
      method: "POST", credentials: "same-origin", body: new URLSearchParams(fields),
      headers: {"X-CSRFToken": csrfToken(), "Accept": "application/json"},
    });
    try {
      return {ok: response.ok, data: await response.json()};
    } catch (error) {
      return {ok: false, data: {message: this.message("portal_error")}};
    }
  }

  async refresh() {
    const checking = this.root.querySelector("[data-helper-checking]");
    const missing = this.root.querySelector("[data-helper-missing]");
    const ready = this.root.querySelector("[data-helper-ready]");
    const problem = this.root.querySelector("[data-card-problem]");
    show(checking, true);
    const status = await this.helper("/v1/status");
    show(checking, false);
    if (!status.ok) {
      show(missing, true);
      show(ready, false);
      return false;
    }
    show(missing, false);
    this.helperKey = status.data.public_key;
    const card = await this.helper("/v1/card");
    if (!card.ok) {
      this.card = null;
      show(ready, false);
      problem.textContent = this.message(card.data.error, card.data.message);
      show(problem, true);
      return false;
    }
    this.card = card.data;
    show(problem, false);
    ready.querySelectorAll("[data-card]").forEach((cell) => {
      cell.textContent = String(this.card[cell.dataset.card]);
    });
    show(ready, true);
    return true;
  }

  report(text, isError) {
    const result = this.root.querySelector("[data-unlock-result]");
    result.textContent = text;
    result.classList.toggle("alert-error", Boolean(isError));
    result.classList.toggle("alert-info", !isError);
    result.setAttribute("role", isError ? "alert" : "status");
    show(result, true);
  }

  async run(form) {
    const errorLine = form.querySelector("[data-form-error]");
    show(errorLine, false);
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      await this.perform(form, errorLine);
    } finally {
      form.querySelectorAll("input").forEach((input) => { input.value = ""; });
      button.disabled = false;
      await this.refresh();
    }
  }

  async perform(form, errorLine) {
    if (!(await this.refresh())) {
      this.report(this.message(this.card ? "portal_error" : "unreachable"), true);
      return;
    }
    const operation = form.dataset.operation;
    const values = Object.fromEntries(new FormData(form).entries());
    const confirmLastTry = this.root.querySelector("#confirm_last_try").checked;
    const serial = this.card.serial;
    let helperPath;
    let helperBody;
    let reported = operation;
    if (operation === "unblock") {
      // A seal is spent when the helper opens it, so the last PUK try is confirmed before asking for one.
      if (this.card.puk_tries_left <= 1 && !confirmLastTry) {
        errorLine.textContent = this.message("last_try");
        show(errorLine, true);
        return;
      }
      const sealed = await this.portal(this.root.dataset.sealUrl, {
        new_pin: values.new_pin, new_pin_confirm: values.new_pin_confirm, card_serial: serial,
        helper_key: this.helperKey,
      });
      if (!sealed.ok) {
        errorLine.textContent = sealed.data.message;
        show(errorLine, true);
        return;
      }
      helperPath = "/v1/pin/unblock";
      helperBody = {sealed_puk: sealed.data.sealed_puk, new_pin: values.new_pin, confirm_last_try: confirmLastTry};
    } else {
      reported = operation === "unblock-own-puk" ? "unblock" : operation;
      const permit = await this.portal(this.root.dataset.opUrl, {
        op: reported, new_pin: values.new_pin || "", new_pin_confirm: values.new_pin_confirm || "",
      });
      if (!permit.ok) {
        errorLine.textContent = permit.data.message;
        show(errorLine, true);
        return;
      }
      if (reported === "unblock") {
        helperPath = "/v1/pin/unblock";
        helperBody = {puk: values.puk, new_pin: values.new_pin, confirm_last_try: confirmLastTry};
      } else if (reported === "change") {
        helperPath = "/v1/pin/change";
        helperBody = {old_pin: values.old_pin, new_pin: values.new_pin, confirm_last_try: confirmLastTry};
      } else {
        helperPath = "/v1/pin/verify";
        helperBody = {pin: values.pin, confirm_last_try: confirmLastTry};
      }
    }
    this.report(this.message("working"), false);
    const answer = await this.helper(helperPath, helperBody);
    const outcome = answer.ok ? "ok" : (answer.data.error || "unreachable");
    const recorded = await this.portal(this.root.dataset.resultUrl, {op: reported, outcome, card_serial: serial});
    let text = recorded.data.message || this.message(outcome);
    if (answer.status === 428) text = this.message("last_try");
    if (!answer.ok && answer.data.tries_left !== undefined) text += ` (${this.message("tries_left")}: ${answer.data.tries_left})`;
    this.report(text, !answer.ok);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const root = document.querySelector("[data-unlock]");
  if (root) new UnlockPage(root);
});
