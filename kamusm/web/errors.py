"""The error pages: every failure a holder can meet becomes a page that says what happened, never a trace."""
from __future__ import annotations

from flask import (
    Flask,
    Response,
    current_app,
    make_response,
    session,
)
from flask.globals import request_ctx
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from kamusm.errors import KamusmError
from kamusm.storage.connection import StorageUnavailable
from kamusm.web.db import note_storage_fault
from kamusm.web.rendering import render_screen


def raise_storage_error() -> None:
    """A database fault met while opening the session becomes the storage error page (503)."""
    error = getattr(session, "storage_error", None)
    if error is not None:
        raise error


def _headline(status: int) -> str:
    """The page's heading: what happened, in a few words (the message under it says what to do)."""
    return {
        400: _("İstek anlaşılamadı"),
        403: _("İstek reddedildi"),
        404: _("Sayfa bulunamadı"),
        405: _("Bu işlem burada yapılamaz"),
        410: _("Bağlantı artık geçerli değil"),
        413: _("Gönderilen bilgi çok uzun"),
        429: _("Çok fazla istek"),
        503: _("Hizmet şu anda kullanılamıyor"),
    }.get(status, _("İşlem tamamlanamadı"))


def _error_page(status: int, message: str):
    if request_ctx.url_adapter is None:
        # The request could not even be routed (e.g. a malformed Host): no page with links can be built.
        return Response(f"{message}\n", status=status, mimetype="text/plain")
    return render_screen("error", "message", status=status, status_code=status, message=message,
                         headline=_headline(status))


def register_error_pages(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError):
        return _error_page(400, _("Form süresi doldu ya da geçersiz. Lütfen sayfayı yenileyip tekrar deneyiniz."))

    @app.errorhandler(KamusmError)
    def kamusm_error(error: KamusmError):
        return _error_page(error.status, str(error))

    def storage_unavailable(error: Exception):
        # Locked past the busy timeout, read-only, or full: the write was rolled back, nothing is half-done.
        current_app.logger.error("storage unavailable: %s", error)
        note_storage_fault()
        response = make_response(_error_page(503, _(
            "Sistem şu anda isteğinizi kaydedemiyor. Hiçbir bilginiz değişmedi; lütfen biraz sonra tekrar deneyiniz.")))
        response.headers["Retry-After"] = "30"
        return response

    for unavailable in StorageUnavailable:
        app.register_error_handler(unavailable, storage_unavailable)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        messages = {
            400: _("İstek anlaşılamadı. Lütfen sayfayı yenileyip tekrar deneyiniz."),
            403: _("Bu istek başka bir siteden geldiği için reddedildi."),
            404: _("Bu adreste bir sayfa yok. Adresi kontrol ediniz ya da ana sayfadan devam ediniz."),
            405: _("Bu işlem bu sayfada yapılamaz."),
            413: _("Gönderilen bilgi çok uzun."),
            429: _("Çok fazla istek gönderdiniz. Lütfen bir süre bekleyip tekrar deneyiniz."),
        }
        status = error.code or 500
        return _error_page(status, messages.get(status, _("Beklenmeyen bir hata oluştu.")))

    @app.errorhandler(500)
    def server_error(error: Exception):
        # A storage fault while saving the session happens after the view, where only 500 handlers run.
        original = getattr(error, "original_exception", None)
        if isinstance(original, StorageUnavailable):
            return storage_unavailable(original)
        return _error_page(500, _("Beklenmeyen bir hata oluştu. Lütfen daha sonra tekrar deneyiniz."))
