"""Son İşlemlerim: the holder's own security-relevant events, read from the audit log.

Only the events a holder should recognise (or should not, which is the point) are shown, each with
its time and the address it came from; the audit log's other entries (counters, notices, operator
views) stay out. Nothing here writes: the log is the only source.
"""
from __future__ import annotations

from flask_babel import lazy_gettext as _l

from kamusm import storage

SHOWN = {
    ("login", "ok"): _l("Giriş yapıldı"),
    ("login.word", "wrong_word"): _l("Hatalı güvenlik sözcüğüyle giriş denendi"),
    ("login.lockout", "locked"): _l("Art arda hatalı girişler nedeniyle giriş bir süre kilitlendi"),
    ("pinpuk.reveal", "ok"): _l("PIN/PUK görüntülendi"),
    ("pinpuk.save", "ok"): _l("PIN/PUK dosyaya kaydedildi"),
    ("pinpuk.delete", "ok"): _l("PIN/PUK kalıcı olarak silindi"),
    ("unlock.pair", "ok"): _l("Kart yardımcısı eşleştirildi"),
    ("unlock.seal", "ok"): _l("Kilit çözme için PUK kart yardımcısına mühürlü gönderildi"),
    ("certificate.suspend", "ok"): _l("Sertifika askıya alındı"),
    ("certificate.resume", "ok"): _l("Sertifika yeniden kullanıma açıldı"),
    ("certificate.revoke", "ok"): _l("Sertifika iptal edildi"),
    ("profile.phone", "confirmed"): _l("Cep telefonu numarası değiştirildi"),
    ("profile.email", "confirmed"): _l("E-posta adresi değiştirildi"),
    ("word.reset", "ok"): _l("Güvenlik sözcüğü yenilendi"),
    ("word.activation", "ok"): _l("Hesap etkinleştirildi"),
    ("factor.recovery", "ok"): _l("Kurtarma koduyla onay verildi"),
    ("security.passkey_added", "ok"): _l("Geçiş anahtarı eklendi"),
    ("security.passkey_removed", "ok"): _l("Geçiş anahtarı kaldırıldı"),
    ("security.totp_added", "ok"): _l("Doğrulama uygulaması eklendi"),
    ("security.totp_removed", "ok"): _l("Doğrulama uygulaması kaldırıldı"),
    ("security.recovery_codes", "ok"): _l("Yeni kurtarma kodları oluşturuldu"),
    ("security.sms_off", "ok"): _l("SMS ile onay kapatıldı"),
    ("security.sms_on", "ok"): _l("SMS ile onay açıldı"),
    ("admin.holder_lock", "ok"): _l("Kurumunuz girişinizi kilitledi"),
    ("admin.holder_unlock", "ok"): _l("Kurumunuz giriş kilidinizi kaldırdı"),
    ("certificate.renewal_request", "ok"): _l("Sertifika yenileme talebi iletildi"),
    ("certificate.renewal_done", "ok"): _l("Kurumunuz sertifika yenileme talebinizi tamamladı"),
}
SCANNED = 2000  # the newest entries read for one page: the holder's shown events are a fraction of them


def holder_activity(db, holder_id: int, limit: int = 50) -> list[dict]:
    """The newest shown events of the holder: {"at", "ip", "label"}, newest first."""
    rows = []
    for entry in storage.audit_log.search_audit(db, holder_id=holder_id, limit=SCANNED):
        label = SHOWN.get((entry["event"], entry["outcome"]))
        if label is not None:
            rows.append({"at": entry["at"], "ip": entry["ip"], "label": label})
            if len(rows) == limit:
                break
    return rows
