// "Yazdır" on a lost-card code sheet (the CSP allows no inline handler). The sheet's partial loads this
// file each time htmx swaps it in, so the listener is added once.
if (!document.documentElement.hasAttribute("data-print-ready")) {
  document.documentElement.setAttribute("data-print-ready", "");
  document.addEventListener("click", (event) => {
    if (event.target.closest("[data-print]")) window.print();
  });
}
