// Shows the seconds an SMS code has left. The server owns expiry: this only
// displays, and at zero asks the server (an htmx request triggered by the
// "countdown-expired" event) for the screen's next state.
// Screen readers hear the time at whole minutes and in the last 30 and 10 seconds.
const ANNOUNCE_AT = new Set([30, 10]);

function startCountdown(element) {
  if (element.dataset.countdownStarted) return;
  element.dataset.countdownStarted = "1";
  const total = parseInt(element.dataset.secondsLeft, 10);
  if (Number.isNaN(total)) return;
  const startedAt = performance.now();
  const figure = element.querySelector("[data-countdown-value]");
  const announcer = element.querySelector("[data-countdown-announce]");
  const template = announcer ? announcer.dataset.template : "";
  let shown = total;

  const tick = () => {
    if (!element.isConnected) return;
    const left = Math.max(0, total - Math.floor((performance.now() - startedAt) / 1000));
    if (left !== shown) {
      shown = left;
      if (figure) figure.textContent = String(left);
      if (announcer && left > 0 && (left % 60 === 0 || ANNOUNCE_AT.has(left))) {
        announcer.textContent = template.replace("{n}", String(left));
      }
    }
    if (left === 0) {
      element.dispatchEvent(new CustomEvent("countdown-expired"));
      return;
    }
    setTimeout(tick, 250);
  };
  setTimeout(tick, 250);
}

function startAll(root) {
  root.querySelectorAll("[data-countdown]").forEach(startCountdown);
}

document.addEventListener("DOMContentLoaded", () => startAll(document));
document.addEventListener("htmx:after:settle", () => startAll(document));
