"""`khaosat run`: every configured bot in one process, by long polling or by webhook.

Each bot gets its own dispatcher and its own outbox sender; they share one database and one
copy of each questionnaire. One process is enough for every provincial bot: the work per
answer is small and the platforms' rate limits, not the CPU, set the pace. Several processes
may run on one database (``bot/processes.py``): they beat a heartbeat, share each bot's sending,
run the reminder pass one at a time and, with ``[process] health``, answer /healthz and /readyz.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import datetime as dt
import functools
import gc
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Awaitable, Callable
from urllib.parse import urlsplit

import aiohttp
from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramAPIError
from aiohttp import web

from bot import clock as clocks
from bot.chat.coordination import CoordinatorDesk
from bot.chat.core import ChatCore
from bot.chat.privacy import ChatPrivacy
from bot.chat.fieldwork import Fieldwork
from bot.chat.surveys import Chat, ChatSurveys, OpenCode
from bot.config import BotConfig, Config, ConfigError
from bot.form_media import FormMedia
from bot.network_failures import without_token
from bot.outbox import REPLY, OutboxSender, Sent, Unauthorized
from bot.processes import Peers, SharedChatLocks, bot_key, serve_health
from bot.reminders import ReminderBot, ReminderFeed, schedule
from bot.telegram.channel import CHANNEL as TELEGRAM, TelegramSurveyBot
from bot.telegram.render import TelegramRenderer
from bot.telegram.transport import TelegramTransport
from bot.telegram.webhook import CheckedRequestHandler
from bot.zalo.channel import CHANNEL as ZALO, ZaloRenderer, ZaloSurveyBot, poll as zalo_poll, webhook_handler
from bot.zalo.client import ZaloClient, ZaloError
from bot.zalo.transport import ZaloTransport
from fieldwork.conversations import Conversations
from fieldwork.quotas import QuotaGate
from storage import QueuedMessage, Storage
from storage.deliveries import deliveries
from surveys.model import Questionnaire
from surveys.xlsform import load_questionnaire

log = logging.getLogger(__name__)

#: my_chat_member tells us when a person blocks the bot.
UPDATES = ["message", "callback_query", "my_chat_member"]


@dataclass
class RunningBot:
    config: BotConfig
    surveys: ChatSurveys
    sender: OutboxSender
    feed: ReminderFeed
    telegram: TelegramSurveyBot | None = None
    dispatcher: Dispatcher | None = None
    client: Bot | None = None
    zalo: ZaloSurveyBot | None = None
    zalo_client: ZaloClient | None = None
    core: ChatCore | None = None
    renderer: object = None
    tasks: list[asyncio.Task] = field(default_factory=list)


async def load_forms(conversations: Conversations, paths: tuple[Path, ...], at: dt.datetime) -> list[Questionnaire]:
    forms = []
    for path in paths:
        form = load_questionnaire(path)
        await conversations.register(form, path.read_bytes(), path.name, at)
        forms.append(form)
    return forms


def open_codes(config: BotConfig) -> dict[str, OpenCode]:
    codes = {}
    for payload, target in config.open_codes.items():
        codes[payload] = (OpenCode(target["form"], target.get("stratum")) if isinstance(target, dict)
                          else OpenCode(str(target)))
    return codes


def chat_core(config: BotConfig, storage: Storage, conversations: Conversations, forms: list[Questionnaire],
              export_dir: Path, clock: Callable[[], dt.datetime], on_enqueued: Callable[[], None],
              shared_chats: SharedChatLocks | None = None) -> ChatCore:
    """The chat rules for one bot, whatever its channel: coordinators are the listed user ids;
    ``shared_chats``: a chat's updates take turns across processes (``[process] shared_chats``)."""
    surveys = ChatSurveys(storage, conversations, forms, open_codes=open_codes(config),
                          open_stratum_question=config.open_stratum_question,
                          code_attempts_per_hour=config.code_attempts_per_hour,
                          code_failures_per_minute=config.code_failures_per_minute, on_enqueued=on_enqueued)
    return ChatCore(surveys, clock, coordinators=tuple(str(c) for c in config.coordinators),
                    desk=CoordinatorDesk(conversations, export_dir, clock), fieldwork=Fieldwork(storage),
                    deliveries=deliveries(storage), privacy=ChatPrivacy(surveys, clock), locks=shared_chats,
                    media_limit=config.media_limit_mb * 1024 * 1024)


async def announce_fieldwork(core: ChatCore, channel: str, bot: str, renderer, stop: asyncio.Event,
                             every_seconds: float = 3600) -> None:
    """Coordinators hear when fieldwork opens and closes: checked at start-up, then hourly."""
    while not stop.is_set():
        try:
            await core.announce_fieldwork(channel, bot, renderer)
        except Exception:  # a failed check must not stop the bot; the next one tries again
            log.exception("%s/%s: fieldwork announcement failed", channel, bot)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), every_seconds)


async def show_lost_prompts(core: ChatCore, channel: str, bot: str, renderer) -> int:
    """At start-up, before the outbox sends: messages a crash left in "sending" become "unknown"
    (never resent, see ``Storage.recover_outbox``), and whoever's last reply that was gets the
    question on screen again (a repeated question is a smaller harm than a silent bot)."""
    storage = core.surveys.storage
    await storage.recover_abandoned(dt.datetime.now(dt.timezone.utc).isoformat())
    shown = 0
    for lost in await core.deliveries.replies_left_unknown(channel, bot, REPLY):
        respondent = await storage.get_respondent(lost.respondent_id)
        chat = Chat(channel, bot, lost.chat_id, lost.chat_id)
        shown += await core.show_current(chat, respondent, f"again:{channel}:{bot}:{lost.outbox_id}", renderer)
    if shown:
        log.info("%s/%s: %d question(s) shown again after an interrupted send", channel, bot, shown)
    return shown


def sender_and_core(config: BotConfig, storage: Storage, conversations: Conversations, forms: list[Questionnaire],
                    export_dir: Path, clock: Callable[[], dt.datetime], transport, peers: Peers | None,
                    shared_chats: bool) -> tuple[ReminderFeed, OutboxSender, ChatCore]:
    """A bot's reminder feed, outbox sender and chat core; among ``peers``, the sender claims rows
    as this process and sends at its share of the bot's rate."""
    feed = ReminderFeed(storage, reminder_bot(config), clock)
    process = {} if peers is None else {"holder": peers.id,
                                        "share": functools.partial(peers.share, bot_key(config.channel, config.name))}
    sender = OutboxSender(storage, config.channel, config.name, transport, config.pace,
                          on_blocked=_unreachable(storage, config.channel, clock), feed=feed, **process)
    locks = SharedChatLocks(storage, peers.id, config.channel, config.name) if peers and shared_chats else None
    return feed, sender, chat_core(config, storage, conversations, forms, export_dir, clock, sender.wake, locks)


async def start_telegram(config: BotConfig, storage: Storage, conversations: Conversations, forms: list[Questionnaire],
                         export_dir: Path, clock: Callable[[], dt.datetime], stop: asyncio.Event, *,
                         peers: Peers | None = None, shared_chats: bool = False) -> RunningBot:
    client = Bot(config.token, session=AiohttpSession(api=TelegramAPIServer.from_base(config.api_base)))
    transport = TelegramTransport(client, FormMedia(conversations.questionnaire))
    await require_token(config, transport, client.session.close)
    feed, sender, core = sender_and_core(config, storage, conversations, forms, export_dir, clock, transport, peers,
                                         shared_chats)
    telegram = TelegramSurveyBot(config.name, core.surveys, clock, core=core)
    dispatcher = telegram.dispatcher()
    running = RunningBot(config, core.surveys, sender, feed, telegram, dispatcher, client, core=core,
                         renderer=TelegramRenderer())
    await show_lost_prompts(core, TELEGRAM, config.name, TelegramRenderer())
    running.tasks.append(asyncio.create_task(core.privacy.watch(TELEGRAM, config.name, TelegramRenderer(), stop),
                                             name=f"privacy-{config.name}"))
    running.tasks.append(asyncio.create_task(announce_fieldwork(core, TELEGRAM, config.name, TelegramRenderer(), stop),
                                             name=f"fieldwork-{config.name}"))
    running.tasks.append(asyncio.create_task(sender.run(stop), name=f"outbox-{config.name}"))
    if config.mode == "polling":
        await at_start_up(config, "deleteWebhook", client.delete_webhook(drop_pending_updates=False))
        running.tasks.append(asyncio.create_task(
            dispatcher.start_polling(client, handle_signals=False, close_bot_session=False,
                                     allowed_updates=UPDATES),
            name=f"polling-{config.name}"))
    else:
        await at_start_up(config, "setWebhook", client.set_webhook(
            config.webhook_url, secret_token=config.webhook_secret, allowed_updates=UPDATES))
    return running


async def at_start_up(config: BotConfig, method: str, call: Awaitable[object]) -> None:
    """A platform call ``khaosat run`` needs before serving: a refusal or a network failure stops
    the command with one line naming the bot, the method and the platform's reason (no traceback;
    a supervisor such as systemd restarts it, with its own back-off)."""
    try:
        await call
    except (TelegramAPIError, ZaloError) as error:
        reason = getattr(error, "message", None) or getattr(error, "description", None) or str(error)
        raise StartupError(f"{config.where}: {method} at {config.api_base} failed at start-up: "
                           f"{without_token(str(reason))}") from None
    except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as error:
        # aiohttp may name the request's URL, which holds the token: never print it.
        raise StartupError(f"{config.where}: {method} at {config.api_base} failed at start-up: "
                           f"{without_token(str(error)) or type(error).__name__}") from None


class StartupError(ConfigError):
    """``khaosat run`` cannot start serving: one line, printed by the command, and a non-zero exit."""


async def require_token(config: BotConfig, transport: TelegramTransport | ZaloTransport,
                        close: Callable[[], Awaitable[None]]) -> None:
    """Ask the platform who the bot is before anything starts: a token it refuses (or an API it
    cannot be reached at) stops ``khaosat run`` with one line naming the bot and its key."""
    outcome = await transport.identify()
    if isinstance(outcome, Sent):
        return
    await close()
    if isinstance(outcome, Unauthorized):
        raise config.token_refused(outcome.error)
    raise ConfigError(f"{config.where}: getMe at {config.api_base} failed at start-up: "
                      f"{without_token(str(getattr(outcome, 'error', outcome)))}")


def _unreachable(storage: Storage, channel: str, clock: Callable[[], dt.datetime]):
    async def mark(message: QueuedMessage) -> None:
        if message.respondent_id is not None:
            await storage.set_disposition(message.respondent_id, "unreachable", clock().isoformat(),
                                          reason=f"{channel}: bot blocked", key=f"outbox:{message.id}:blocked")
    return mark


async def start_zalo(config: BotConfig, storage: Storage, conversations: Conversations, forms: list[Questionnaire],
                     export_dir: Path, clock: Callable[[], dt.datetime], stop: asyncio.Event, *,
                     peers: Peers | None = None, shared_chats: bool = False,
                     media_base: str | None = None) -> RunningBot:
    """`media_base`: the web pages' public address ([web] public_url), where Zalo fetches the forms'
    label images from; None: prompts go without their images (said once here)."""
    client = ZaloClient(config.token, config.api_base)
    transport = ZaloTransport(client)
    await require_token(config, transport, client.close)
    feed, sender, core = sender_and_core(config, storage, conversations, forms, export_dir, clock, transport, peers,
                                         shared_chats)
    renderer = ZaloRenderer(media_base)
    if media_base is None and any(q.media.get("image") for form in forms for q in form.questions):
        log.warning("%s: its forms show images with their labels; Zalo sends a photo by its address, and there "
                    "is no [web] public_url to serve them at: the prompts go without them", config.where)
    zalo = ZaloSurveyBot(config.name, core.surveys, clock, core=core, renderer=renderer)
    running = RunningBot(config, core.surveys, sender, feed, zalo=zalo, zalo_client=client, core=core,
                         renderer=renderer)
    await show_lost_prompts(core, ZALO, config.name, renderer)
    running.tasks.append(asyncio.create_task(core.privacy.watch(ZALO, config.name, renderer, stop),
                                             name=f"privacy-{config.name}"))
    running.tasks.append(asyncio.create_task(announce_fieldwork(core, ZALO, config.name, renderer, stop),
                                             name=f"fieldwork-{config.name}"))
    running.tasks.append(asyncio.create_task(sender.run(stop), name=f"outbox-{config.name}"))
    if config.mode == "polling":
        await at_start_up(config, "deleteWebhook", client.call("deleteWebhook"))
        running.tasks.append(asyncio.create_task(zalo_poll(client, zalo, stop), name=f"polling-{config.name}"))
    else:
        await at_start_up(config, "setWebhook", client.call(
            "setWebhook", {"url": config.webhook_url, "secret_token": config.webhook_secret}))
    return running


async def serve_webhooks(bots: list[RunningBot]) -> list[web.AppRunner]:
    """One aiohttp server per listen address; each bot at the path of its webhook URL.

    aiogram's handler compares the X-Telegram-Bot-Api-Secret-Token header with the bot's
    secret and refuses the request (401) when it is missing or wrong.
    """
    by_address: dict[str, web.Application] = {}
    for running in bots:
        if running.config.mode != "webhook":
            continue
        app = by_address.setdefault(running.config.webhook_listen, web.Application())
        path = urlsplit(running.config.webhook_url).path or "/"
        if running.dispatcher is not None:
            CheckedRequestHandler(running.dispatcher, running.client, secret_token=running.config.webhook_secret,
                                  handle_in_background=False, name=running.config.name).register(app, path=path)
        elif running.zalo is not None:
            app.router.add_post(path, webhook_handler(running.zalo, running.config.webhook_secret))
    runners = []
    for address, app in by_address.items():
        host, _, port = address.rpartition(":")
        runner = web.AppRunner(app)
        await runner.setup()
        runners.append(runner)  # cleaned up by the caller, also when it cannot listen
        try:
            await web.TCPSite(runner, host or "0.0.0.0", int(port)).start()
        except OSError as error:
            bots_there = ", ".join(b.config.where for b in bots if b.config.webhook_listen == address)
            for started in runners:
                await started.cleanup()
            in_use = " (the address is already in use: is another khaosat running?)" \
                if error.errno == errno.EADDRINUSE else ""
            raise StartupError(f"{bots_there}: cannot listen for webhooks on {address}{in_use}: "
                               f"{error.strerror or error}") from None
    return runners


async def start_web_pages(config: Config, storage: Storage, conversations: Conversations, bots: list[RunningBot],
                          export_dir: Path, clock: Callable[[], dt.datetime]):
    """The web channel, asking what the bot named in ``[web] bot`` asks (the first bot by default)."""
    from bot.web.server import start_web

    running = next((b for b in bots if b.config.name == config.web.bot), bots[0])
    core = chat_core(running.config, storage, conversations, list(running.surveys.forms.values()), export_dir,
                     clock, on_enqueued=lambda: None)
    return await start_web(config.web, core)


def reminder_bot(config: BotConfig) -> ReminderBot:
    return ReminderBot(config.channel, config.name, config.pace.per_second, tuple(str(c) for c in config.coordinators))


def reminder_bots(bots: list[RunningBot]) -> list[ReminderBot]:
    return [reminder_bot(b.config) for b in bots]


def reminders_queued(bots: list[RunningBot]) -> None:
    """A reminder pass queued reminders (or a summary was enqueued): each bot's feed looks at
    its queue at once, and each sender at its outbox."""
    for running in bots:
        running.feed.queued()
        running.sender.wake()


def start_scheduler(config: Config, storage: Storage, bots: list[RunningBot], clock: Callable[[], dt.datetime],
                    holder: str | None = None):
    """The process's one scheduler: the reminder pass and the coordinators' daily summary
    (``bot/reminders.py``); the jobs read everything from the database. Among several processes
    each job runs in the one that takes its lease (``holder``: this process)."""
    return schedule(storage, reminder_bots(bots), clock, zone=config.zone,
                    interval_minutes=config.reminder_interval_minutes, daily_summary_at=config.daily_summary,
                    language=config.language, on_enqueued=lambda: reminders_queued(bots), holder=holder)


async def show_lost_prompts_of(bots: list[RunningBot]) -> None:
    """Messages of a process that is gone were marked unknown: their people see the question again."""
    for running in bots:
        if running.core is not None:
            await show_lost_prompts(running.core, running.config.channel, running.config.name, running.renderer)


def tune_garbage_collector() -> None:
    """Set the cyclic garbage collector up for serving, once the bots listen.

    Importing aiogram, pydantic and the rest leaves ~260,000 objects the collector tracks. They
    live as long as the process, yet every full collection walks all of them, and a busy bot
    allocates enough to set one off every few hundred updates: frozen (``gc.freeze``), they are
    never walked again, while what is made afterwards is collected as usual. And each update
    makes a few hundred short-lived containers (pydantic models, dicts), so the youngest
    generation is collected every 10,000 allocations instead of every 700: a few MB at most
    wait a little longer to be freed. Called by ``khaosat run`` and the demo (not by ``run``
    itself: tests call it many times in one process, and frozen objects are never collected).
    bench/telegram_answers.py: 1,090 → ~1,440 answers/s from the freeze, ~12% more from the
    threshold (bench/answers_breakdown.py, back to back).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


async def run(config: Config, stop: asyncio.Event, *, clock: Callable[[], dt.datetime] | None = None,
              started: Callable[[list[RunningBot]], None] | None = None) -> None:
    """Run until `stop` is set. `started` is called once every bot is listening (tests, demo)."""
    clock = clock or (lambda: clocks.now(config.zone))
    if not config.bots:
        raise ValueError("the configuration has no [[telegram]] or [[zalo]] bot to run")
    from storage import open_storage

    async with await open_storage(config.database, synchronous=config.synchronous) as storage:
        conversations = Conversations(storage, quotas=QuotaGate(storage))
        # /export's files: beside the SQLite file, or beside the configuration for a PostgreSQL URL.
        export_dir = (config.source.parent if isinstance(config.database, str) else config.database.parent) / "exports"
        bots: list[RunningBot] = []
        runners: list[web.AppRunner] = []
        scheduler = None
        web_console = web_pages = None
        peers = Peers(storage, [bot_key(b.channel, b.name) for b in config.bots], config.process.name)
        heartbeat: asyncio.Task | None = None
        health = None
        try:
            await peers.beat()  # before any sender looks at its share
            heartbeat = asyncio.create_task(peers.run(stop, lambda: show_lost_prompts_of(bots)), name="heartbeat")
            if config.process.health:
                health = await serve_health(config.process.health, peers, storage,
                                            lambda: len(bots) == len(config.bots))
            for bot_config in config.bots:
                forms = await load_forms(conversations, bot_config.forms, clock())
                start = start_telegram if bot_config.channel == TELEGRAM else start_zalo
                media = {} if bot_config.channel == TELEGRAM else {
                    "media_base": config.web.public_url if config.web is not None else None}
                bots.append(await start(bot_config, storage, conversations, forms, export_dir, clock, stop,
                                        peers=peers, shared_chats=config.process.shared_chats, **media))
            runners = await serve_webhooks(bots)
            scheduler = start_scheduler(config, storage, bots, clock, peers.id)
            if config.console is not None:  # [console]: the coordinator console beside the bots
                from console.server import start_console
                web_console = await start_console(config.console, storage, config.database, clock=clock,
                                                  bots=reminder_bots(bots), on_reminders_queued=lambda: reminders_queued(bots))
            if config.web is not None:  # [web]: the respondents' pages, through the chat core of one bot
                web_pages = await start_web_pages(config, storage, conversations, bots, export_dir, clock)
            log.info("running %d bot(s): %s", len(bots), ", ".join(b.config.name for b in bots))
            if started:
                started(bots)
            await stop.wait()
        finally:
            stop.set()  # also when a bot failed to start: the ones already started end with it
            if web_console is not None:
                await web_console.stop()
            if web_pages is not None:
                await web_pages.stop()
            if scheduler is not None:
                scheduler.shutdown(wait=False)
            for running in bots:
                if running.dispatcher is not None and running.config.mode == "polling":
                    with contextlib.suppress(RuntimeError):
                        await running.dispatcher.stop_polling()
            for running in bots:
                await asyncio.gather(*running.tasks, return_exceptions=True)
                if running.client is not None:
                    await running.client.session.close()
                if running.zalo_client is not None:
                    await running.zalo_client.close()
            for runner in runners:
                await runner.cleanup()
            if heartbeat is not None:
                await asyncio.gather(heartbeat, return_exceptions=True)  # it leaves the list of live processes
            if health is not None:
                await health.cleanup()
