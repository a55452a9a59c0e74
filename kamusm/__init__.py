"""kamusm: a self-hosted portal for qualified e-signature card holders.

The package root imports nothing: the portal is built by kamusm.web.factory.create_app, and the
local card helper's wheel (kamusm.helper, kamusm.card, kamusm.sealing, kamusm.keys) ships this
same file without Flask.
"""
