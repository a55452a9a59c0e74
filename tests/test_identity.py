import pytest

from kamusm.errors import ValidationError
from kamusm.identity import normalize_identity, tckn_checksum_ok


@pytest.mark.parametrize("number", ["10000000146", "10000000214", "10000000382"])
def test_demo_numbers_pass_the_checksum(number):
    assert tckn_checksum_ok(number)


@pytest.mark.parametrize("number", ["10000000147", "10000000140", "00000000146", "1000000014", "1000000014a"])
def test_bad_numbers_fail_the_checksum(number):
    assert not tckn_checksum_ok(number)


@pytest.mark.parametrize(("raw", "expected"), [
    ("10000000146", "10000000146"),
    (" 100 000 001 46 ", "10000000146"),
    ("u12345678", "U12345678"),
])
def test_normalize_accepts(raw, expected, app):
    with app.test_request_context():
        assert normalize_identity(raw) == expected


@pytest.mark.parametrize(("raw", "fragment"), [
    ("", "giriniz"),
    ("10000000147", "geçerli bir T.C."),
    ("١٠٠٠٠٠٠٠١٤٦", "yalnızca 0-9"),
    ("10000000146" * 3, "en fazla"),
    ("AB-12", "Pasaport"),
    ("12345", "geçerli bir T.C."),
])
def test_normalize_refuses_with_a_reason(raw, fragment, app):
    with app.test_request_context(), pytest.raises(ValidationError) as caught:
        normalize_identity(raw)
    assert fragment in str(caught.value) and caught.value.field == "identity"


@pytest.mark.parametrize("typed", [" 100 000 001 46 ", "10000000146"])
def test_the_command_line_reads_an_identity_as_login_does(runner, typed):
    shown = runner.invoke(args=["kamusm", "holder", "show", typed])
    assert shown.exit_code == 0 and '"identity": "10000000146"' in shown.output


def test_the_command_line_names_what_is_wrong_with_an_identity(runner, app):
    with app.app_context(), pytest.raises(ValidationError) as caught:
        normalize_identity("10000000147")
    with app.app_context():
        reason = str(caught.value)
    for command in ("show", "lock", "unlock", "reset-link"):
        result = runner.invoke(args=["kamusm", "holder", command, "10000000147"])
        assert result.exit_code == 1 and f"identity: {reason}" in result.output, command
