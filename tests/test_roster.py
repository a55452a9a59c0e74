"""`kamusm import`: all rows or none, every bad line named, re-import updates."""

import pytest

from kamusm import policy, storage, vault
from kamusm.errors import ValidationError
from kamusm.web.factory import create_app
from tests.conftest import csrf_token

HEADER = "identity,name,phone,email,card_serial,cert_issued,pin,puk,security_word\n"
GOOD = [
    "10000000450,Deniz Aydın,+905430000010,deniz.aydin@demo.edu.tr,15000010,2015-01-20,123456,12345678,\n",
    "10000000528,Ali Veli,+905430000011,ali.veli@demo.edu.tr,15000011,2008-05-02,9876,87654321,kirmizi-elma-22\n",
]


def said(app, rule, *args) -> str:
    """What the command line prints for the rule's refusal of args (its language, the rule's own words)."""
    with app.app_context(), pytest.raises(ValidationError) as caught:
        rule(*args)
    with app.app_context():
        return str(caught.value)


def write(tmp_path, *lines, header=HEADER):
    path = tmp_path / "roster.csv"
    path.write_text(header + "".join(lines), encoding="utf-8")
    return str(path)


def test_good_import(runner, db, tmp_path, app):
    result = runner.invoke(args=["kamusm", "import", write(tmp_path, *GOOD)])
    assert result.exit_code == 0, result.output
    assert "2 row(s) imported" in result.output and "1 holder(s) without a security word" in result.output
    deniz = storage.holders.find_holder(db, "10000000450")
    assert deniz["word_hash"] is None and deniz["phone"] == "+905430000010"
    with app.app_context():
        assert vault.read_secrets(db, vault.app_keyring(), deniz["id"], "15000010") == {"pin": "123456",
                                                                                         "puk": "12345678"}
    assert "123456" not in result.output and "12345678" not in result.output


def test_bad_rows_import_nothing_and_are_each_named(runner, db, tmp_path, app):
    lines = [
        GOOD[0],
        "10000000451,Bad Checksum,+905430000012,x@demo.edu.tr,15000012,2015-01-01,1234,12345678,\n",
        "10000000696,No Phone,05430000013,y@demo.edu.tr,15000013,2015-13-01,12,1234,\n",
        "10000000764,Bad Mail,+905430000014,not-a-mail,15000014,2015-01-01,1234,12345678,\n",
    ]
    result = runner.invoke(args=["kamusm", "import", write(tmp_path, *lines)])
    assert result.exit_code == 1
    output = result.output
    assert "nothing imported; 3 bad line(s)" in output
    assert "line 3: identity" in output
    assert "line 4: phone" in output and "cert_issued is not a real date" in output
    assert f"pin: {said(app, policy.check_pin, '12')}" in output
    assert f"puk: {said(app, policy.check_puk, '1234')}" in output
    assert "line 5: email is not an e-mail address" in output
    assert "line 2" not in output
    assert storage.holders.find_holder(db, "10000000450") is None


def test_a_word_reset_would_refuse_is_refused_here_too(runner, db, tmp_path, app):
    """The roster once took any 8 to 128 characters: "password", or the holder's own name."""
    named = GOOD[1].replace("kirmizi-elma-22", "ali-veli-word-22")
    short = GOOD[0].replace(",\n", ",password\n")
    result = runner.invoke(args=["kamusm", "import", write(tmp_path, short, named)])
    assert result.exit_code == 1
    own = said(app, policy.check_security_word, "ali-veli-word-22", None, "10000000528", "Ali Veli")
    assert f"line 2: security_word: {said(app, policy.check_security_word, 'password')}" in result.output
    assert f"line 3: security_word: {own}" in result.output
    assert "password" not in result.output.replace("security_word", "")
    assert storage.holders.find_holder(db, "10000000528") is None


def test_email_domain_is_checked(app_config, tmp_path):
    app = create_app({**app_config, "KAMUSM_EMAIL_DOMAINS": ["uni.edu.tr"]})
    result = app.test_cli_runner().invoke(args=["kamusm", "import", write(tmp_path, GOOD[0])])
    assert result.exit_code == 1 and "email domain is not one of uni.edu.tr" in result.output


def test_missing_column_is_refused(runner, tmp_path):
    result = runner.invoke(args=["kamusm", "import", write(tmp_path, "1,2\n", header="identity,name\n")])
    assert result.exit_code == 1 and "missing columns: phone" in result.output


def test_repeated_serial_in_one_file(runner, tmp_path):
    twice = GOOD[1].replace("10000000528", "10000000696")
    result = runner.invoke(args=["kamusm", "import", write(tmp_path, GOOD[1], twice)])
    assert result.exit_code == 1 and "card_serial repeats line 2" in result.output


def test_reimport_updates_and_never_duplicates(runner, db, tmp_path, app):
    runner.invoke(args=["kamusm", "import", write(tmp_path, *GOOD)])
    changed = GOOD[0].replace("+905430000010", "+905439999999").replace("123456,", "654321,")
    result = runner.invoke(args=["kamusm", "import", write(tmp_path, changed, GOOD[1])])
    assert result.exit_code == 0
    holders = db.execute("SELECT count(*) FROM holders WHERE identity IN ('10000000450', '10000000528')")
    assert holders.fetchone()[0] == 2
    assert db.execute("SELECT count(*) FROM cards WHERE serial IN ('15000010', '15000011')").fetchone()[0] == 2
    deniz = storage.holders.find_holder(db, "10000000450")
    assert deniz["phone"] == "+905439999999"
    with app.app_context():
        assert vault.read_secrets(db, vault.app_keyring(), deniz["id"], "15000010")["pin"] == "654321"


def test_imported_holder_without_word_activates_by_link(runner, app, tmp_path, db):
    runner.invoke(args=["kamusm", "import", write(tmp_path, GOOD[0])])
    link = runner.invoke(args=["kamusm", "holder", "reset-link", "10000000450"]).output.strip()
    assert link.startswith("http://127.0.0.1:5000/reset/")
    path = link.removeprefix("http://127.0.0.1:5000")
    client = app.test_client()
    page = client.get(path)
    assert page.status_code == 200 and "İlk Giriş" in page.get_data(as_text=True)
    token = csrf_token(client, path)
    done = client.post(path, data={"csrf_token": token, "security_word": "mavi-gokyuzu-kumsal",
                                   "security_word_confirm": "mavi-gokyuzu-kumsal"})
    assert done.status_code == 200 and "kaydedildi" in done.get_data(as_text=True)
    assert storage.holders.find_holder(db, "10000000450")["word_hash"].startswith("$argon2id$")
    assert client.get(path).status_code == 404
