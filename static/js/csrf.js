// Adds the CSRF token to every htmx request as the X-CSRFToken header.
// A document-level listener reaches every request, unlike hx-headers, which
// htmx 4 does not inherit from <body> unless written hx-headers:inherited.
document.addEventListener("htmx:config:request", (event) => {
  const meta = document.querySelector('meta[name="csrf-token"]');
  if (meta && event.detail && event.detail.ctx) {
    event.detail.ctx.request.headers["X-CSRFToken"] = meta.content;
  }
});
