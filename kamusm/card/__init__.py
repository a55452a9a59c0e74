"""Smart-card access for kamusm: APDUs, card profiles, a simulated card and PC/SC.

Modules, from the bottom up:

- ``profile``: the card profile (PIN/PUK references, PIN block format, where the serial lives).
- ``apdu``: pure ISO 7816-4 command builders, status-word parsing and ``CardError``.
- ``sim``: ``SimCard``, the card logic shared by the in-process simulator and the virtual card.
- ``virtual``: ``python -m kamusm.card.virtual``, the same card served to vpcd over TCP.
- ``reader``: backend-independent operations (read the card, verify/change/unblock the PIN).
- ``pcsc``: the pyscard backend.

Security assumptions: a PIN or PUK only ever travels inside a command APDU; no exception, log line
or repr carries one. pyscard is imported lazily inside ``pcsc`` only, so importing this package
(and the portal) works on machines without PC/SC.
"""
