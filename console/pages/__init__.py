"""Page modules: each exposes ``routes`` (an ``aiohttp.web.RouteTableDef``) and optionally ``NAV``
(a list of ``console.app.NavEntry``) and ``setup(app)``; ``console.app.make_app`` includes them all."""
