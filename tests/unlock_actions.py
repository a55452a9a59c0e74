"""Steps the unlock tests share: posting as the /unlock page does, and pairing a helper key over HTTP
the way the page and the helper do it together (the test opens the sealed code, as the helper would)."""
from functools import partial

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from kamusm import sealing
from tests import conftest

HELPER_KEY = X25519PrivateKey.generate()
HELPER_PUBLIC = sealing.b64encode(sealing.public_key_bytes(HELPER_KEY))
PORTAL_ORIGIN = "http://localhost"


def public_of(key: X25519PrivateKey) -> str:
    return sealing.b64encode(sealing.public_key_bytes(key))


# post(client, path, **form), as the /unlock page's script posts (tests.conftest.post does the work).
post = partial(conftest.post, json_api=True)


def start_pairing(client, key: X25519PrivateKey = HELPER_KEY, name: str = "ofis-pc"):
    return post(client, "/unlock/pair/start", helper_key=public_of(key), helper_name=name)


def shown_code(response, app, key: X25519PrivateKey = HELPER_KEY) -> str:
    """What the helper would show on its console for the sealed code in a pair/start answer."""
    return sealing.open_pairing_code(key, response.json["sealed_code"], PORTAL_ORIGIN, app.config["CLOCK"]()).secret


def pair_helper(client, app, key: X25519PrivateKey = HELPER_KEY) -> None:
    started = start_pairing(client, key)
    assert started.status_code == 200, started.get_data(as_text=True)
    paired = post(client, "/unlock/pair", pairing_code=shown_code(started, app, key), helper_key=public_of(key))
    assert paired.status_code == 200, paired.get_data(as_text=True)
