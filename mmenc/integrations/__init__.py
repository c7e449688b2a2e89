"""Bridges from mmenc to other frameworks. Each submodule imports its framework only when it is
itself imported, so that ``import mmenc`` stays light: ``mmenc.integrations.ray`` needs the
``mmenc[ray]`` extra."""
