"""The portal's blueprints, one module per screen or concern."""
