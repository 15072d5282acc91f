"""Whether a send that failed on the network may have reached the platform, for every transport.

Telegram's Bot API and Zalo's have no idempotency key: a request the platform received is a
message in the person's chat whatever became of its answer, and sending it again shows them a
duplicate. So a network failure is one of two outcomes:

* **not sent** (``Transient``, retried with backoff): the request cannot have been received
  whole. aiohttp says so reliably only when the connection was never made (refused, a DNS
  failure, a TLS failure, a connect timeout: ``ClientConnectorError``, ``ConnectionTimeoutError``)
  and when writing the request itself failed (``ClientOSError`` "Can not write request body":
  a request cut short is no request the platform acts on). A complete answer with a status
  (429, 5xx, a proxy's page) is the transports' own business and stays as it is.
* **maybe sent** (``MaybeSent``: the row becomes *unknown* and is never resent): everything else,
  i.e. the connection was made, the request left us, and no whole answer came back — the answer
  cut half-way (``ClientPayloadError``), the server hanging up before or while answering
  (``ServerDisconnectedError``, a reset: ``ClientOSError``), a read timeout
  (``SocketTimeoutError``), the request's total timeout (``asyncio.TimeoutError``, which aiohttp
  raises without saying in which phase it fired).

Telling "reset after the request was written but before the platform read it" from "reset after
the platform acted on it" is impossible from the client side: both are a request in the socket's
buffer and a connection that ends without an answer. Where the two cannot be told apart the
outbox takes the side it takes for a process that dies mid-send (``Outbox.recover_outbox``):
at most once. A message lost that way is not lost for good: the person is shown their question
again on their next message (``ChatCore._show_again_if_lost``), which a duplicate question in
their chat cannot undo. aiohttp itself never resends a POST on a dropped keep-alive connection
(it retries only idempotent methods), so nothing below us sends twice either.
"""

from __future__ import annotations

import asyncio
import re

import aiohttp

from bot.outbox import MaybeSent, Transient

#: The start of the message aiohttp gives a ``ClientOSError`` when writing the request failed.
_WRITE_FAILED = "Can not write request body"
#: The connection was never made. aiohttp before 3.10 raised a connect timeout as a plain
#: ``ServerTimeoutError``, indistinguishable from a read timeout: there it counts as maybe sent.
_CONNECT_FAILURES: tuple[type[BaseException], ...] = (aiohttp.ClientConnectorError,) + (
    (aiohttp.ConnectionTimeoutError,) if hasattr(aiohttp, "ConnectionTimeoutError") else ())
#: aiohttp puts the request's URL in some messages, and the URL holds the bot's token.
_TOKEN_IN_URL = re.compile(r"/bot[^/\s]+/")


def without_token(text: str) -> str:
    """``text`` (an error's words) with any bot token in a request URL replaced by "…"."""
    return _TOKEN_IN_URL.sub("/bot…/", text)


def network_outcome(error: BaseException) -> Transient | MaybeSent:
    """The outbox outcome of an aiohttp failure (or a timeout) of one send; see the module's text."""
    text = without_token(str(error))
    reason = f"{type(error).__name__}: {text}" if text else type(error).__name__
    if isinstance(error, _CONNECT_FAILURES):
        return Transient(f"not sent: {reason}")
    if isinstance(error, aiohttp.ClientOSError) and str(error.strerror or "").startswith(_WRITE_FAILED):
        return Transient(f"not sent: {reason}")
    if isinstance(error, (aiohttp.ClientError, asyncio.TimeoutError, OSError)):
        return MaybeSent(f"maybe delivered, not resent: {reason}")
    return Transient(reason)
