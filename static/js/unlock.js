// Kilit Çözme: talks to the holder's local card helper (127.0.0.1) and to the portal.
// The page asks the helper what it sees, reports that to the portal, and shows the screen state
// the portal renders for it; the portal decides every rule. The PUK never passes through here in
// clear: the portal answers it sealed for a helper key paired to the holder, and this script only
// carries the sealed text. A pairing code travels the same way and is shown only on the helper's
// own console. PINs typed here go to the helper (and, for the rules check, to the portal) and are
// gone with the form the portal renders after every attempt.

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

function show(element, visible) {
  if (element) element.hidden = !visible;
}

const FACT_NAMES = ["error", "helper_key", "helper_name", "reader", "serial", "pin_tries_left", "puk_tries_left"];

class UnlockPage {
  constructor(root) {
    this.root = root;
    this.slot = root.querySelector("[data-unlock-slot]");
    this.helperUrl = root.dataset.helperUrl.replace(/\/$/, "");
    // Every text comes from the page (kamusm/unlock.py MESSAGES): none is written here.
    this.messages = JSON.parse(root.dataset.messages);
    this.facts = {};
    this.afterStepup = null;
    root.addEventListener("submit", (event) => this.onSubmit(event));
    root.addEventListener("click", (event) => this.onClick(event));
    this.refresh();
  }

  message(name, fallback) {
    return this.messages[name] || fallback || this.messages.portal_error;
  }

  onSubmit(event) {
    const form = event.target;
    if (!this.slot.contains(form) || form.closest("#unlock_helpers")) return;
    event.preventDefault();
    if (form.dataset.operation) this.run(form);
    else if (form.dataset.unlockForm === "stepup") this.confirmStepup(form);
    else if (form.dataset.unlockForm === "pair") this.pair(form);
  }

  onClick(event) {
    const button = event.target.closest("[data-unlock-action]");
    if (!button || !this.slot.contains(button)) return;
    const action = button.dataset.unlockAction;
    if (action === "retry") this.refresh();
    else if (action === "pair-start") this.busy(button, () => this.pairStart());
    else if (action === "stepup-send") this.busy(button, () => this.sendStepup(Boolean(button.dataset.sendSms)));
  }

  async busy(button, work) {
    button.disabled = true;
    try {
      await work();
    } finally {
      button.disabled = false;
    }
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

  async portal(url, fields, method = "POST") {
    const headers = {"X-CSRFToken": csrfToken(), "HX-Request": "true", "Accept": "application/json, text/html"};
    const options = {method, credentials: "same-origin", cache: "no-store", headers};
    if (method === "POST") options.body = new URLSearchParams(fields);
    else url = `${url}?${new URLSearchParams(fields)}`;
    try {
      const response = await fetch(url, options);
      const redirect = response.headers.get("HX-Redirect");
      if (redirect) {
        window.location.assign(redirect);
        return {ok: false, status: response.status, data: {}, html: null};
      }
      const isJson = (response.headers.get("Content-Type") || "").startsWith("application/json");
      const body = isJson ? await response.json() : await response.text();
      return {ok: response.ok, status: response.status, data: isJson ? body : {}, html: isJson ? null : body};
    } catch (error) {
      return {ok: false, status: 0, data: {message: this.message("portal_error")}, html: null};
    }
  }

  async probe() {
    const status = await this.helper("/v1/status");
    if (!status.ok) return {error: status.data.error === "forbidden_origin" ? "forbidden_origin" : "unreachable"};
    const facts = {helper_key: status.data.public_key, helper_name: status.data.name || ""};
    const card = await this.helper("/v1/card");
    if (!card.ok) return {...facts, error: card.status === 0 ? "unreachable" : (card.data.error || "bad_request")};
    return {...facts, reader: card.data.reader, serial: card.data.serial,
            pin_tries_left: card.data.pin_tries_left, puk_tries_left: card.data.puk_tries_left};
  }

  swap(html) {
    this.slot.innerHTML = html;
    const input = this.slot.querySelector("form[data-unlock-form] input:not([type=hidden])");
    if (input) input.focus();
  }

  async refresh(notice) {
    this.facts = await this.probe();
    const fields = {};
    FACT_NAMES.forEach((name) => {
      if (this.facts[name] !== undefined && this.facts[name] !== null) fields[name] = String(this.facts[name]);
    });
    if (notice) fields.notice = notice;
    const answer = await this.portal(this.root.dataset.stateUrl, fields, "GET");
    if (answer.html !== null) this.swap(answer.html);
    else if (answer.status === 0) this.report(this.message("portal_error"), true);
  }

  // The error goes beside the form that was sent (its inputs marked invalid), else the screen's first.
  formError(text, form = null) {
    const line = (form && form.querySelector("[data-form-error]")) || this.slot.querySelector("[data-form-error]");
    if (!line) {
      this.report(text, true);
      return;
    }
    line.textContent = text;
    show(line, true);
    if (form) form.querySelectorAll("input").forEach((input) => input.setAttribute("aria-invalid", "true"));
  }

  clearFormError(form) {
    const line = form.querySelector("[data-form-error]");
    if (line) show(line, false);
    form.querySelectorAll("input").forEach((input) => input.removeAttribute("aria-invalid"));
  }

  report(text, isError) {
    const result = this.root.querySelector("[data-unlock-result]");
    result.textContent = text;
    result.classList.toggle("alert-error", Boolean(isError));
    result.classList.toggle("alert-info", !isError);
    result.setAttribute("role", isError ? "alert" : "status");
    show(result, true);
  }

  // Without sendSms the portal only offers the holder's methods (it sends an SMS code at once only when
  // SMS is the holder's one method); with it, the code is sent.
  async sendStepup(sendSms = false) {
    const answer = await this.portal(this.root.dataset.stepupSendUrl, sendSms ? {send_sms: "1"} : {});
    if (answer.html !== null) this.swap(answer.html);
    else this.formError(answer.data.message || this.message("portal_error"));
  }

  async confirmStepup(form) {
    const fields = Object.fromEntries(new FormData(form));
    const answer = await this.portal(this.root.dataset.stepupUrl, fields);
    if (!answer.ok) {
      if (answer.html !== null) this.swap(answer.html);
      else this.formError(answer.data.message || this.message("portal_error"), form);
      return;
    }
    const next = this.afterStepup;
    this.afterStepup = null;
    await this.refresh();
    if (next) await next();
  }

  async pairStart() {
    const answer = await this.portal(this.root.dataset.pairStartUrl, {
      helper_key: this.facts.helper_key || "", helper_name: this.facts.helper_name || "",
    });
    if (answer.status === 401 && answer.data.stepup) {
      this.afterStepup = () => this.pairStart();
      await this.sendStepup();
      return;
    }
    if (!answer.ok) {
      this.formError(answer.data.message || this.message("portal_error"));
      return;
    }
    const shown = await this.helper("/v1/pair", {sealed_code: answer.data.sealed_code});
    if (!shown.ok) {
      this.formError(this.message(shown.data.error, shown.data.message));
      return;
    }
    await this.refresh();
  }

  async pair(form) {
    const answer = await this.portal(this.root.dataset.pairUrl, {
      pairing_code: form.elements.pairing_code.value, helper_key: this.facts.helper_key || "",
    });
    if (answer.ok) {
      await this.refresh("paired");
    } else if (answer.html !== null) {
      this.swap(answer.html);
    } else {
      this.formError(answer.data.message || this.message("portal_error"), form);
    }
  }

  async run(form) {
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    this.clearFormError(form);
    let refreshed = false;
    try {
      refreshed = await this.perform(form);
    } finally {
      button.disabled = false;
      form.querySelectorAll("input").forEach((input) => { input.value = ""; });
    }
    if (!refreshed) await this.refresh();
  }

  // Returns true when it has already shown the next screen itself.
  async perform(form) {
    const operation = form.dataset.operation;
    const values = Object.fromEntries(new FormData(form).entries());
    const lastTry = this.slot.querySelector("#confirm_last_try");
    const confirmLastTry = Boolean(lastTry && lastTry.checked);
    const facts = await this.probe();
    if (facts.error || facts.serial !== this.facts.serial || facts.helper_key !== this.facts.helper_key) {
      this.report(this.message(facts.error || "card_removed"), true);
      return false;
    }
    this.facts = facts;
    const serial = facts.serial;
    let helperPath;
    let helperBody;
    let reported = operation;
    if (operation === "unblock") {
      // A seal is spent when the helper opens it, so the last PUK try is confirmed before asking for one.
      if (facts.puk_tries_left <= 1 && !confirmLastTry) {
        this.formError(this.message("last_try"), form);
        return true;
      }
      const sealed = await this.portal(this.root.dataset.sealUrl, {
        new_pin: values.new_pin, new_pin_confirm: values.new_pin_confirm, card_serial: serial,
        helper_key: facts.helper_key,
      });
      if (sealed.status === 401 && sealed.data.stepup) {
        await this.sendStepup();
        return true;
      }
      if (!sealed.ok) {
        if (sealed.data.pair) return false;
        this.formError(sealed.data.message || this.message("portal_error"), form);
        return true;
      }
      helperPath = "/v1/pin/unblock";
      helperBody = {sealed_puk: sealed.data.sealed_puk, new_pin: values.new_pin, confirm_last_try: confirmLastTry};
    } else {
      reported = operation === "unblock-own-puk" ? "unblock" : operation;
      const permit = await this.portal(this.root.dataset.opUrl, {
        op: reported, new_pin: values.new_pin || "", new_pin_confirm: values.new_pin_confirm || "",
      });
      if (!permit.ok) {
        this.formError(permit.data.message || this.message("portal_error"), form);
        return true;
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
    return false;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const root = document.querySelector("[data-unlock]");
  if (root) new UnlockPage(root);
});
