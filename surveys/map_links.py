"""Coordinates read from a map link typed or pasted as the answer to a geopoint question.

Where a person cannot share a location with the bot (Zalo does not pass one on; a web page has no
location button), they often copy a link from their map app instead. A link is read from its text
alone, never opened (the engine is sans-I/O, and a survey must not call out to map services):

- Google Maps: ``?q=`` / ``?query=`` / ``?ll=`` / ``?destination=`` holding "lat,lon", the place's
  own pin ``!3d<lat>!4d<lon>`` (in ``/maps/place/…/data=…``), the map's centre ``/@lat,lon,15z``,
  ``/maps/search/lat,+lon``;
- ``geo:lat,lon`` (RFC 5870; Android's ``geo:0,0?q=lat,lon(label)`` too);
- OpenStreetMap: the marker ``?mlat=…&mlon=…``, else the map's centre ``#map=zoom/lat/lon``;
- Apple Maps: ``?ll=``, ``?coordinate=``, ``?q=`` when it holds coordinates.

A short link (``maps.app.goo.gl/…``, ``goo.gl/maps/…``, ``osm.org/go/…``) or a map link naming
only a place holds no coordinates: it is found, with no point, so the person can be told to type
the coordinates rather than that their answer is not a location.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote_plus, urlsplit

_NUMBER = r"[+-]?\d{1,3}(?:\.\d+)?"
#: "10.77,106.70", "10.77, 106.70", "loc:10.77+106.70" (a "+" is a space once unquoted), with a
#: label after it as Android writes one: "10.77,106.70(Chợ Bến Thành)" (cut at a space, the label may
#: come without its closing parenthesis).
#: (Possessive quantifiers: a long run of spaces costs one pass, not one per space.)
_PAIR = re.compile(rf"\s*+(?:loc:\s*+)?({_NUMBER})(?:\s*+,\s*+|\s++)({_NUMBER})\s*+(?:\(.*)?", re.S)
_GOOGLE_PIN = re.compile(rf"!3d({_NUMBER})!4d({_NUMBER})")
_GOOGLE_CENTRE = re.compile(rf"/@({_NUMBER}),({_NUMBER})(?:[,/]|$)")
_OSM_CENTRE = re.compile(rf"(?:^|&)map=\d+(?:\.\d+)?/({_NUMBER})/({_NUMBER})(?:&|$)")
#: A link typed without its scheme: "google.com/maps/@10.77,106.70,15z", "maps.app.goo.gl/xyz".
_BARE_HOST = re.compile(r"(?:[a-z0-9-]+\.)+[a-z]{2,}(?:/|$)", re.I)
#: Punctuation a link is often typed or pasted inside of: "(https://…)", "“https://…”", "…/xyz."
_AROUND = "\"'“”‘’<>()[]{}.,;!?"

#: Query parameters that hold the point itself, in the order trusted, by map service.
_GOOGLE_POINT_KEYS = ("q", "query", "ll", "destination", "daddr", "center", "sll")
_APPLE_POINT_KEYS = ("ll", "coordinate", "q", "daddr", "sll", "center")
#: Services whose links may hold a point; any link of theirs is a map link.
_SHORTENERS = ("maps.app.goo.gl", "goo.gl", "g.co", "g.page", "osm.org/go", "openstreetmap.org/go", "maps.apple/p")


@dataclass(frozen=True)
class MapLink:
    """A map link found in what was typed: its point (latitude, longitude, in degrees), or None
    when the link holds none that can be read without opening it."""

    url: str
    point: tuple[float, float] | None


def map_link(text: str) -> MapLink | None:
    """The first map link in ``text`` (among any words around it), or None when it has none.

    Coordinates are returned as written: whether they are on Earth is for the caller to check."""
    found: MapLink | None = None
    for word in text.split():
        candidate = _as_url(_trimmed(word))
        if candidate is None:
            continue
        link = _read(candidate)
        if link is not None and link.point is not None:
            return link
        found = found or link  # a short link next to a readable one: the readable one wins
    return found


def _trimmed(word: str) -> str:
    """The word without the punctuation around it, keeping a closing parenthesis that closes one
    opened inside it (an Android label, a Wikipedia-style link)."""
    word = word.lstrip(_AROUND)
    while word and word[-1] in _AROUND:
        if word[-1] == ")" and word.count("(") >= word.count(")"):
            break
        word = word[:-1]
    return word


def _as_url(word: str) -> str | None:
    lowered = word.lower()
    if lowered.startswith("geo:") or "://" in lowered:
        return word
    if _BARE_HOST.match(word):
        return "https://" + word
    return None


def _read(url: str) -> MapLink | None:
    if url[:4].lower() == "geo:":
        return MapLink(url, _geo_point(url[4:]))
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower().removeprefix("www.")
    except ValueError:  # a malformed IPv6 host, say: not a map link
        return None
    if parts.scheme.lower() not in ("http", "https"):
        return None
    path = unquote_plus(parts.path)
    query = parse_qs(parts.query)
    where = f"{host}{parts.path.rstrip('/')}"
    if any(where == short or where.startswith(short + "/") for short in _SHORTENERS):
        return MapLink(url, None)  # resolving it needs a request to the service
    if _is_google(host, parts.path):
        return MapLink(url, _google_point(path, query))
    if host == "openstreetmap.org" or host.endswith(".openstreetmap.org") or host == "osm.org":
        return MapLink(url, _osm_point(query, parts.fragment))
    if host in ("maps.apple.com", "maps.apple"):
        return MapLink(url, _first_pair(query, _APPLE_POINT_KEYS))
    return None


def _is_google(host: str, path: str) -> bool:
    """google.<tld>/maps…, maps.google.<tld>/… (com, com.vn, co.uk…)."""
    labels = host.split(".")
    if labels[0] == "maps" and len(labels) >= 3 and labels[1] == "google":
        return True
    return labels[0] == "google" and len(labels) >= 2 and (path == "/maps" or path.startswith("/maps/"))


def _google_point(path: str, query: dict[str, list[str]]) -> tuple[float, float] | None:
    pin = _GOOGLE_PIN.search(path) or _GOOGLE_PIN.search(" ".join(v for vs in query.values() for v in vs))
    if pin:  # the place's own pin; "@" is only the centre of the map around it
        return _floats(pin.groups())
    point = _first_pair(query, _GOOGLE_POINT_KEYS)
    if point is not None:
        return point
    centre = _GOOGLE_CENTRE.search(path)
    if centre:
        return _floats(centre.groups())
    for marker in ("/search/", "/place/"):  # "/maps/search/10.77,+106.70"
        if marker in path:
            typed = _PAIR.fullmatch(path.split(marker, 1)[1].split("/", 1)[0])
            if typed:
                return _floats(typed.groups())
    return None


def _osm_point(query: dict[str, list[str]], fragment: str) -> tuple[float, float] | None:
    for latitude, longitude in (("mlat", "mlon"), ("lat", "lon")):  # the marker, then an old permalink
        if latitude in query and longitude in query:
            try:
                return float(query[latitude][0]), float(query[longitude][0])
            except ValueError:
                return None
    centre = _OSM_CENTRE.search(fragment)
    return _floats(centre.groups()) if centre else None


def _geo_point(rest: str) -> tuple[float, float] | None:
    """RFC 5870's "lat,lon[,alt][;u=…]", and Android's "0,0?q=lat,lon(label)" where 0,0 stands for none."""
    place, _, query = rest.partition("?")
    numbers = place.split(";", 1)[0].split(",")
    point = None
    if len(numbers) in (2, 3):
        try:
            point = float(numbers[0]), float(numbers[1])
        except ValueError:
            point = None
    if point is None or (point == (0.0, 0.0) and query):
        return _first_pair(parse_qs(query), ("q",))
    return point


def _first_pair(query: dict[str, list[str]], keys: tuple[str, ...]) -> tuple[float, float] | None:
    for key in keys:
        for value in query.get(key, ()):
            typed = _PAIR.fullmatch(value)
            if typed:
                return _floats(typed.groups())
    return None


def _floats(pair: tuple[str, ...]) -> tuple[float, float]:
    return float(pair[0]), float(pair[1])
