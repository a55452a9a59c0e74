"""The web layer: rendering, guards, errors, forms and the thin views over the rules in kamusm/<domain>.py."""
