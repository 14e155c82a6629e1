"""Declared options: the schema mechanism (``schema``) and stage 2's blocks with their one set of defaults (``stage2``)."""
