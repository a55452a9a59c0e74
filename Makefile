# make run: set up on a fresh Debian machine and serve the demo at http://127.0.0.1:5000
# make test: set up (including the system parts the tests need) and run every test
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
FLASK := $(VENV)/bin/flask --app app
APT_INSTALL := DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends
BROWSER_PACKAGES := chromium fonts-dejavu-core
# pyscard has no wheel here: it builds from source against pcsc-lite.
BUILD_PACKAGES := swig libpcsclite-dev gcc python3-dev
# The card tests run the real stack: pcscd with the vpcd reader driver and our virtual card.
CARD_PACKAGES := pcscd vsmartcard-vpcd
# The multi-worker tests run gunicorn against a real redis for the shared rate limits.
REDIS_PACKAGES := redis-server
# The storage and concurrency tests also run on a throwaway PostgreSQL (tests/postgres_server.py).
POSTGRES_PACKAGES := postgresql
VPCD_DRIVER := /usr/lib/pcsc/drivers/serial/libifdvpcd.so

.PHONY: run demo-helper test lint setup translations messages system-test-deps clean helper-dist wheelhouse

run: setup helper-dist
	KAMUSM_DEMO=1 $(FLASK) kamusm init
	KAMUSM_DEMO=1 $(FLASK) kamusm demo
	@echo "kamusm demo: http://127.0.0.1:5000  (the demo phone: http://127.0.0.1:5000/demo/phone)"
	@echo "passkeys need a host name: open http://localhost:5000 to enrol and use them"
	KAMUSM_DEMO=1 $(FLASK) run --host 127.0.0.1 --port 5000

# The local card helper with its simulated demo card, for showing Kilit Çözme without a reader.
demo-helper: setup
	KAMUSM_DEMO=1 $(FLASK) kamusm helper --backend sim --origin http://127.0.0.1:5000 --origin http://localhost:5000 --home instance/demo-helper

# Production-style: gunicorn with kamusm/gunicorn_conf.py on 127.0.0.1:5000 (KAMUSM_BIND, KAMUSM_WORKERS,
# KAMUSM_THREADS), never demo mode, so name the SMS and mail backends (http/console, smtp). Several workers
# need RATELIMIT_STORAGE_URI=redis://HOST:PORT. With KAMUSM_PROXIES it listens on loopback only: another
# KAMUSM_BIND is refused unless KAMUSM_PROXY_NETWORK_TRUSTED=1 says only the proxy can reach it.
.PHONY: serve
serve: setup helper-dist
	env -u KAMUSM_DEMO $(FLASK) kamusm init
	env -u KAMUSM_DEMO $(VENV)/bin/gunicorn -c kamusm/gunicorn_conf.py app:app

# The HTTP tests that reach most of the storage run a second time with every test app on PostgreSQL; all of
# tests/ passes that way (docs/postgresql.md), this share keeps `make test` near its 15 minutes.
POSTGRES_HTTP_TESTS := $(addprefix tests/test_,login.py audit.py vault.py pin_puk.py admin.py admin_jobs.py \
	get_never_writes.py lockout_rule.py factor_counters.py lostcard.py profile.py rotation_crash.py \
	reset_links.py certificate.py receipts.py)

test: setup system-test-deps lint helper-dist wheelhouse
	$(PY) -m pytest tests
	$(PY) -m pytest --database postgresql $(POSTGRES_HTTP_TESTS)

# ruff (style and bugs), bandit (security, medium and up) and pip-audit over the pinned requirements.
# pip-audit passes when its advisory service cannot be reached, and fails on any finding.
lint: setup
	$(VENV)/bin/ruff check --config .ci/ruff.toml app.py kamusm tests bench
	$(VENV)/bin/bandit -q -r kamusm -ll
	$(VENV)/bin/pip-audit -r requirements.txt --no-deps --disable-pip --progress-spinner off

setup: $(VENV)/.installed translations

# The helper wheel that /helper/ serves and /unlock names with its SHA-256: into KAMUSM_HELPER_DIST_DIR
# (default instance/helper), reproducibly, with no network (kamusm/helper/dist).
helper-dist: $(VENV)/.installed
	$(PY) -m kamusm.helper.dist

# The helper's runtime dependencies at the versions requirements.txt pins, as wheels: the tests install
# the helper wheel into a fresh venv from here with --no-index. pip's cache makes a rebuild cheap.
WHEELHOUSE := $(VENV)/wheelhouse
wheelhouse: $(WHEELHOUSE)/.built

$(WHEELHOUSE)/.built: $(VENV)/.installed
	rm -rf $(WHEELHOUSE)
	$(PY) -m pip wheel -q --disable-pip-version-check -c requirements.txt -w $(WHEELHOUSE) cryptography pyscard
	touch $@

$(VENV)/.installed: requirements.txt
	@$(PYTHON) -m venv --help >/dev/null 2>&1 && $(PYTHON) -c 'import ensurepip' 2>/dev/null \
	  || { apt-get update -qq && $(APT_INSTALL) python3-venv python3-pip; }
	@command -v swig >/dev/null 2>&1 && test -e /usr/include/PCSC/winscard.h && command -v gcc >/dev/null 2>&1 \
	  || { apt-get update -qq && $(APT_INSTALL) $(BUILD_PACKAGES); }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	touch $@

translations: $(VENV)/.installed
	$(VENV)/bin/pybabel compile -d kamusm/translations

# Debian's chromium for the browser tests (never downloaded by Playwright itself), pcscd and vpcd for the card tests.
system-test-deps:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && $(APT_INSTALL) $(BROWSER_PACKAGES); }
	@command -v chromium >/dev/null 2>&1 || { echo "chromium is missing and could not be installed" >&2; exit 1; }
	@command -v pcscd >/dev/null 2>&1 && test -e $(VPCD_DRIVER) || { apt-get update -qq && $(APT_INSTALL) $(CARD_PACKAGES); }
	@command -v pcscd >/dev/null 2>&1 && test -e $(VPCD_DRIVER) || { echo "pcscd or vpcd is missing and could not be installed" >&2; exit 1; }
	@command -v redis-server >/dev/null 2>&1 || { apt-get update -qq && $(APT_INSTALL) $(REDIS_PACKAGES); }
	@command -v redis-server >/dev/null 2>&1 || { echo "redis-server is missing and could not be installed" >&2; exit 1; }
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { apt-get update -qq && $(APT_INSTALL) $(POSTGRES_PACKAGES); }
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { echo "PostgreSQL is missing and could not be installed" >&2; exit 1; }

clean:
	rm -rf $(VENV) .pytest_cache
	find kamusm/translations -name '*.mo' -delete

# After changing user-facing strings: extract, update both catalogs, fill Turkish; then translate the English one.
messages: $(VENV)/.installed
	$(VENV)/bin/pybabel extract -F kamusm/translations/babel.cfg -k _l -k lazy_gettext --no-location --sort-output -o kamusm/translations/messages.pot .
	$(VENV)/bin/pybabel update -i kamusm/translations/messages.pot -d kamusm/translations --no-fuzzy-matching
	$(PY) kamusm/translations/fill_turkish.py
