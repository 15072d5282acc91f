"""The coordinator web console: aiohttp + Jinja2, server-rendered, htmx for the live parts.

See console/README.md for how pages are added.
"""
