// "Yeni Resim": loads a new captcha image (the server makes a new challenge on each GET).
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-captcha-refresh]");
  if (!button) return;
  const image = document.getElementById(button.dataset.captchaRefresh);
  if (!image) return;
  const url = new URL(image.src, location.href);
  url.searchParams.set("n", String(Date.now()));
  image.src = url.toString();
});
