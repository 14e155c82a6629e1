"""The ``tta-sr`` subcommands, one module each: ``evaluate``, ``adapt``, ``upscale`` (``tta_sr/cli.py`` dispatches).

Each module has ``add_parser(subparsers)`` (which sets ``run`` as the handler) and ``run(args) -> exit status``.
"""
