"""Migrations 1 to 10 of the schema (shipped: never edit one, append new ones in
``migrations.py``). Kept apart so the runner's module stays short as migrations are added."""

from __future__ import annotations

#: Migrations 1-10, each a sequence of statements run inside one transaction.
FIRST_MIGRATIONS: list[tuple[str, ...]] = [
    (
        """
        CREATE TABLE questionnaires (
            form_id     TEXT NOT NULL,
            version     TEXT NOT NULL,
            source_name TEXT NOT NULL,
            source      BLOB NOT NULL,
            sha256      TEXT NOT NULL,
            loaded_at   TEXT NOT NULL,
            PRIMARY KEY (form_id, version)
        )
        """,
        """
        CREATE TABLE respondents (
            id          INTEGER PRIMARY KEY,
            external_id TEXT NOT NULL UNIQUE,
            pseudonym   TEXT NOT NULL UNIQUE,
            created_at  TEXT NOT NULL
        )
        """,
        """
        CREATE TABLE sessions (
            id            INTEGER PRIMARY KEY,
            respondent_id INTEGER NOT NULL REFERENCES respondents (id),
            form_id       TEXT NOT NULL,
            form_version  TEXT NOT NULL,
            channel       TEXT NOT NULL,
            status        TEXT NOT NULL,
            state         TEXT NOT NULL CHECK (json_valid(state)),
            revision      INTEGER NOT NULL CHECK (revision >= 0),
            created_at    TEXT NOT NULL,
            updated_at    TEXT NOT NULL,
            FOREIGN KEY (form_id, form_version) REFERENCES questionnaires (form_id, version)
        )
        """,
        # At most one open session per respondent and form, even with
        # concurrent writers in several processes.
        """
        CREATE UNIQUE INDEX sessions_one_open ON sessions (respondent_id, form_id)
        WHERE status NOT IN ('completed', 'refused')
        """,
        "CREATE INDEX sessions_by_form ON sessions (form_id, id)",
        """
        CREATE TABLE events (
            id         INTEGER PRIMARY KEY,
            session_id INTEGER NOT NULL REFERENCES sessions (id),
            event_key  TEXT NOT NULL,
            event      TEXT NOT NULL CHECK (json_valid(event)),
            revision   INTEGER NOT NULL,
            at         TEXT NOT NULL,
            UNIQUE (session_id, event_key),
            UNIQUE (session_id, revision)
        )
        """,
        """
        CREATE TABLE answers (
            session_id INTEGER NOT NULL REFERENCES sessions (id),
            question   TEXT NOT NULL,
            value      TEXT NOT NULL CHECK (json_valid(value)),
            status     TEXT NOT NULL
                       CHECK (status IN ('answered', 'skipped', 'not_applicable')),
            updated_at TEXT NOT NULL,
            PRIMARY KEY (session_id, question)
        )
        """,
        """
        CREATE TABLE answer_history (
            id         INTEGER PRIMARY KEY,
            session_id INTEGER NOT NULL REFERENCES sessions (id),
            question   TEXT NOT NULL,
            old_value  TEXT,
            old_status TEXT,
            new_value  TEXT NOT NULL,
            new_status TEXT NOT NULL,
            event_id   INTEGER NOT NULL REFERENCES events (id),
            at         TEXT NOT NULL
        )
        """,
        "CREATE INDEX answer_history_by_question ON answer_history (session_id, question, id)",
    ),
    # 2: sample members, personal data kept apart from answers, dispositions,
    # invitation codes, chat links and the outbox.
    (
        "ALTER TABLE respondents ADD COLUMN form_id TEXT",
        "ALTER TABLE respondents ADD COLUMN stratum TEXT",
        """
        ALTER TABLE respondents ADD COLUMN disposition TEXT NOT NULL DEFAULT 'sampled'
            CHECK (disposition IN ('sampled', 'invited', 'contacted', 'started', 'partial',
                                   'completed', 'refused', 'ineligible', 'quota_full',
                                   'unreachable', 'replaced'))
        """,
        "ALTER TABLE respondents ADD COLUMN disposition_at TEXT",
        "CREATE INDEX respondents_by_form ON respondents (form_id, id)",
        # Personal data (Law 91/2025/QH15) in its own table, never joined
        # into answer exports; deleting a row here anonymises the respondent.
        """
        CREATE TABLE respondent_personal (
            respondent_id INTEGER PRIMARY KEY REFERENCES respondents (id),
            name          TEXT,
            phone         TEXT
        )
        """,
        "CREATE INDEX respondent_personal_by_phone ON respondent_personal (phone)",
        """
        CREATE TABLE disposition_history (
            id            INTEGER PRIMARY KEY,
            respondent_id INTEGER NOT NULL REFERENCES respondents (id),
            status        TEXT NOT NULL
                          CHECK (status IN ('sampled', 'invited', 'contacted', 'started',
                                            'partial', 'completed', 'refused', 'ineligible',
                                            'quota_full', 'unreachable', 'replaced')),
            reason        TEXT,
            at            TEXT NOT NULL,
            key           TEXT UNIQUE
        )
        """,
        "CREATE INDEX disposition_history_by_respondent ON disposition_history (respondent_id, id)",
        """
        CREATE TABLE invitations (
            id            INTEGER PRIMARY KEY,
            respondent_id INTEGER NOT NULL REFERENCES respondents (id),
            kind          TEXT NOT NULL CHECK (kind IN ('link', 'typed')),
            code_hash     TEXT NOT NULL UNIQUE,
            created_at    TEXT NOT NULL,
            revoked_at    TEXT,
            used_at       TEXT,
            used_channel  TEXT,
            used_bot      TEXT,
            used_chat     TEXT
        )
        """,
        # At most one active code per respondent and kind.
        """
        CREATE UNIQUE INDEX invitations_one_active ON invitations (respondent_id, kind)
        WHERE revoked_at IS NULL
        """,
        "CREATE INDEX invitations_by_respondent ON invitations (respondent_id, id)",
        """
        CREATE TABLE chat_links (
            channel       TEXT NOT NULL,
            bot           TEXT NOT NULL,
            chat_id       TEXT NOT NULL,
            respondent_id INTEGER NOT NULL REFERENCES respondents (id),
            linked_at     TEXT NOT NULL,
            PRIMARY KEY (channel, bot, chat_id),
            UNIQUE (channel, bot, respondent_id)
        )
        """,
        "CREATE INDEX chat_links_by_respondent ON chat_links (respondent_id)",
        """
        CREATE TABLE link_attempts (
            id      INTEGER PRIMARY KEY,
            channel TEXT NOT NULL,
            bot     TEXT NOT NULL,
            chat_id TEXT NOT NULL,
            outcome TEXT NOT NULL,
            detail  TEXT,
            at      TEXT NOT NULL,
            key     TEXT NOT NULL UNIQUE
        )
        """,
        "CREATE INDEX link_attempts_by_chat ON link_attempts (channel, bot, chat_id, outcome, at)",
        """
        CREATE TABLE outbox (
            id            INTEGER PRIMARY KEY,
            channel       TEXT NOT NULL,
            bot           TEXT NOT NULL,
            chat_id       TEXT NOT NULL,
            method        TEXT NOT NULL,
            payload       TEXT NOT NULL CHECK (json_valid(payload)),
            priority      INTEGER NOT NULL DEFAULT 0,
            dedupe_key    TEXT UNIQUE,
            respondent_id INTEGER REFERENCES respondents (id),
            state         TEXT NOT NULL DEFAULT 'pending'
                          CHECK (state IN ('pending', 'sending', 'sent', 'failed', 'unknown')),
            attempts      INTEGER NOT NULL DEFAULT 0,
            not_before    TEXT,
            created_at    TEXT NOT NULL,
            updated_at    TEXT NOT NULL,
            result        TEXT,
            error         TEXT
        )
        """,
        "CREATE INDEX outbox_due ON outbox (channel, bot, state, priority, id)",
        "CREATE INDEX outbox_by_respondent ON outbox (respondent_id)",
    ),
    # 3: survey projects (every version kept), sample frames (personal fields apart), samples
    # with inclusion probabilities and reserve lists, and indexes for the status query.
    (
        """
        CREATE TABLE survey_versions (
            id          TEXT NOT NULL,
            version     INTEGER NOT NULL CHECK (version >= 1),
            title       TEXT NOT NULL,
            index_year  INTEGER NOT NULL,
            opens       TEXT NOT NULL,
            closes      TEXT NOT NULL,
            source_name TEXT NOT NULL,
            source      TEXT NOT NULL,
            project     TEXT NOT NULL CHECK (json_valid(project)),
            sha256      TEXT NOT NULL,
            loaded_at   TEXT NOT NULL,
            PRIMARY KEY (id, version)
        )
        """,
        """
        CREATE TABLE frame_units (
            survey_id   TEXT NOT NULL,
            frame_id    TEXT NOT NULL,
            grp         TEXT NOT NULL,
            unit        TEXT NOT NULL,
            stratum     TEXT NOT NULL,
            attributes  TEXT NOT NULL CHECK (json_valid(attributes)),
            imported_at TEXT NOT NULL,
            PRIMARY KEY (survey_id, frame_id)
        )
        """,
        "CREATE INDEX frame_units_by_stratum ON frame_units (survey_id, grp, stratum)",
        # Personal data (Law 91/2025/QH15): names and phones of the frame apart from everything else.
        """
        CREATE TABLE frame_personal (
            survey_id TEXT NOT NULL,
            frame_id  TEXT NOT NULL,
            name      TEXT,
            phone     TEXT,
            PRIMARY KEY (survey_id, frame_id),
            FOREIGN KEY (survey_id, frame_id) REFERENCES frame_units (survey_id, frame_id)
                ON DELETE CASCADE
        )
        """,
        """
        CREATE TABLE samples (
            survey_id     TEXT PRIMARY KEY,
            source        TEXT NOT NULL CHECK (source IN ('drawn', 'imported')),
            seed          INTEGER,
            frame_sha256  TEXT,
            params        TEXT NOT NULL CHECK (json_valid(params)),
            created_at    TEXT NOT NULL
        )
        """,
        """
        CREATE TABLE sample_strata (
            survey_id  TEXT NOT NULL REFERENCES samples (survey_id),
            grp        TEXT NOT NULL,
            stratum    TEXT NOT NULL,
            population INTEGER NOT NULL CHECK (population >= 0),
            n          INTEGER NOT NULL CHECK (n >= 0),
            reserve    INTEGER NOT NULL CHECK (reserve >= 0),
            PRIMARY KEY (survey_id, stratum)
        )
        """,
        """
        CREATE TABLE sample_members (
            survey_id            TEXT NOT NULL REFERENCES samples (survey_id),
            frame_id             TEXT NOT NULL,
            grp                  TEXT NOT NULL,
            form_id              TEXT NOT NULL,
            stratum              TEXT NOT NULL,
            pi                   REAL NOT NULL CHECK (pi > 0 AND pi <= 1),
            weight               REAL NOT NULL CHECK (weight >= 1),
            role                 TEXT NOT NULL CHECK (role IN ('main', 'reserve')),
            reserve_rank         INTEGER CHECK ((role = 'reserve') = (reserve_rank IS NOT NULL)),
            respondent_id        INTEGER UNIQUE REFERENCES respondents (id),
            promoted_at          TEXT,
            replaces             INTEGER REFERENCES respondents (id),
            replaced_by          INTEGER REFERENCES respondents (id),
            replaced_disposition TEXT,
            PRIMARY KEY (survey_id, frame_id)
        )
        """,
        "CREATE INDEX sample_members_by_stratum ON sample_members"
        " (survey_id, stratum, grp, respondent_id)",
        "CREATE UNIQUE INDEX sample_members_reserve_order ON sample_members"
        " (survey_id, stratum, reserve_rank) WHERE role = 'reserve'",
        # For the status query. Each member carries a copy of its respondent's disposition
        # and the furthest step ever reached (0 sampled, 1 invited, 2 contacted, 3 started,
        # 4 completed; refusal and quota-full imply contact, unreachable an invitation),
        # kept by triggers so that every writer, whatever its code path, keeps them right
        # and the status is one scan of a covering index.
        "ALTER TABLE sample_members ADD COLUMN disposition TEXT NOT NULL DEFAULT 'sampled'",
        "ALTER TABLE sample_members ADD COLUMN stage INTEGER NOT NULL DEFAULT 0",
        """
        CREATE TRIGGER sample_members_stage AFTER INSERT ON disposition_history BEGIN
            UPDATE sample_members SET stage = max(stage, CASE NEW.status
                WHEN 'invited' THEN 1 WHEN 'unreachable' THEN 1 WHEN 'contacted' THEN 2
                WHEN 'refused' THEN 2 WHEN 'quota_full' THEN 2 WHEN 'started' THEN 3
                WHEN 'partial' THEN 3 WHEN 'completed' THEN 4 ELSE 0 END)
            WHERE respondent_id = NEW.respondent_id;
        END
        """,
        """
        CREATE TRIGGER sample_members_disposition AFTER UPDATE OF disposition ON respondents BEGIN
            UPDATE sample_members SET disposition = NEW.disposition WHERE respondent_id = NEW.id;
        END
        """,
        "CREATE INDEX sample_members_status ON sample_members"
        " (survey_id, grp, stratum, disposition, replaced_disposition, stage, respondent_id)",
        # Completes in the pace window.
        "CREATE INDEX disposition_history_by_status ON disposition_history"
        " (status, at, respondent_id)",
    ),
    # 4: completion-quota slots (hard quotas reserve one per person, atomically) and the
    # reminders sent (each also an outbox row: until 6, with the same dedupe key).
    (
        """
        CREATE TABLE quota_slots (
            id            INTEGER PRIMARY KEY,
            survey_id     TEXT NOT NULL,
            stratum       TEXT NOT NULL,
            respondent_id INTEGER NOT NULL UNIQUE REFERENCES respondents (id),
            state         TEXT NOT NULL CHECK (state IN ('reserved', 'completed', 'released')),
            reserved_at   TEXT NOT NULL,
            updated_at    TEXT NOT NULL
        )
        """,
        "CREATE INDEX quota_slots_by_stratum ON quota_slots (survey_id, stratum, state)",
        """
        CREATE TABLE reminders (
            id            INTEGER PRIMARY KEY,
            respondent_id INTEGER NOT NULL REFERENCES respondents (id),
            survey_id     TEXT NOT NULL,
            number        INTEGER NOT NULL CHECK (number >= 1),
            step          INTEGER NOT NULL CHECK (step >= 0),
            activity_at   TEXT NOT NULL,
            due_at        TEXT NOT NULL,
            enqueued_at   TEXT NOT NULL,
            channel       TEXT NOT NULL,
            bot           TEXT NOT NULL,
            dedupe_key    TEXT NOT NULL UNIQUE
        )
        """,
        "CREATE INDEX reminders_by_respondent ON reminders (respondent_id, survey_id, activity_at)",
        # The latest session of a respondent and form, for reminders and stale quota slots.
        "CREATE INDEX sessions_by_respondent ON sessions (respondent_id, form_id, id)",
    ),
    # 5: cheaper bulk writes for the reminder pass (bench/reminders.py), same data.
    # * The outbox's state CHECK as an OR of equalities instead of IN (...): SQLite (3.40)
    #   builds the IN list's lookup table anew for every row a CHECK is evaluated on, ≈ 1 µs
    #   a row inserted or updated (0.1 s of a 100,000-reminder pass). Same constraint, same
    #   columns and indexes; rebuilt because SQLite cannot alter a CHECK in place.
    # * Reminders without a stored copy of their dedupe key. The key
    #   (reminder:{respondent}:{activity_at}:{step}, also the outbox row's) is computed from the
    #   columns it is made of, and one unique index on those columns replaces both the key's
    #   index and reminders_by_respondent (its prefix): a reminder pass writes one index and
    #   ~40 bytes less per reminder. A person is in one survey, so uniqueness per (respondent,
    #   survey, activity, step) is uniqueness of the key.
    (
        """
        CREATE TABLE outbox_v5 (
            id            INTEGER PRIMARY KEY,
            channel       TEXT NOT NULL,
            bot           TEXT NOT NULL,
            chat_id       TEXT NOT NULL,
            method        TEXT NOT NULL,
            payload       TEXT NOT NULL CHECK (json_valid(payload)),
            priority      INTEGER NOT NULL DEFAULT 0,
            dedupe_key    TEXT UNIQUE,
            respondent_id INTEGER REFERENCES respondents (id),
            state         TEXT NOT NULL DEFAULT 'pending'
                          CHECK (state = 'pending' OR state = 'sending' OR state = 'sent'
                                 OR state = 'failed' OR state = 'unknown'),
            attempts      INTEGER NOT NULL DEFAULT 0,
            not_before    TEXT,
            created_at    TEXT NOT NULL,
            updated_at    TEXT NOT NULL,
            result        TEXT,
            error         TEXT
        )
        """,
        "INSERT INTO outbox_v5 (id, channel, bot, chat_id, method, payload, priority, dedupe_key,"
        " respondent_id, state, attempts, not_before, created_at, updated_at, result, error)"
        " SELECT id, channel, bot, chat_id, method, payload, priority, dedupe_key, respondent_id,"
        " state, attempts, not_before, created_at, updated_at, result, error FROM outbox ORDER BY id",
        "DROP TABLE outbox",
        "ALTER TABLE outbox_v5 RENAME TO outbox",
        "CREATE INDEX outbox_due ON outbox (channel, bot, state, priority, id)",
        "CREATE INDEX outbox_by_respondent ON outbox (respondent_id)",
        """
        CREATE TABLE reminders_v5 (
            id            INTEGER PRIMARY KEY,
            respondent_id INTEGER NOT NULL REFERENCES respondents (id),
            survey_id     TEXT NOT NULL,
            number        INTEGER NOT NULL CHECK (number >= 1),
            step          INTEGER NOT NULL CHECK (step >= 0),
            activity_at   TEXT NOT NULL,
            due_at        TEXT NOT NULL,
            enqueued_at   TEXT NOT NULL,
            channel       TEXT NOT NULL,
            bot           TEXT NOT NULL,
            dedupe_key    TEXT GENERATED ALWAYS AS
                          ('reminder:' || respondent_id || ':' || activity_at || ':' || step) VIRTUAL
        )
        """,
        "INSERT INTO reminders_v5 (id, respondent_id, survey_id, number, step, activity_at, due_at,"
        " enqueued_at, channel, bot) SELECT id, respondent_id, survey_id, number, step, activity_at,"
        " due_at, enqueued_at, channel, bot FROM reminders ORDER BY id",
        "DROP TABLE reminders",
        "ALTER TABLE reminders_v5 RENAME TO reminders",
        "CREATE UNIQUE INDEX reminders_once ON reminders (respondent_id, survey_id, activity_at, step)",
    ),
    # 6: a reminder points at its outbox message instead of sharing a dedupe key with it.
    # The reminders row (unique per respondent, survey, activity and step) and its message are
    # written in one transaction, so the row alone keeps a reminder from being queued twice;
    # the outbox's unique index on a random-ordered text key was a third of a 100,000-reminder
    # pass (bench/reminders.py). Messages queued before this keep their keys; their reminders
    # are linked to them here.
    (
        "ALTER TABLE reminders ADD COLUMN outbox_id INTEGER REFERENCES outbox (id)",
        "UPDATE reminders SET outbox_id = (SELECT o.id FROM outbox o WHERE o.dedupe_key = reminders.dedupe_key)",
    ),
    # 7: an answer's history is written by SQLite itself: one statement per changed answer on
    # the path every answer takes, instead of a read, an upsert and an insert from Python. The
    # event is the session's latest (apply_step logs it before the answers it changes).
    (
        """
        CREATE TRIGGER answers_history_on_insert AFTER INSERT ON answers BEGIN
            INSERT INTO answer_history (session_id, question, old_value, old_status, new_value,
                                        new_status, event_id, at)
            VALUES (NEW.session_id, NEW.question, NULL, NULL, NEW.value, NEW.status,
                    (SELECT e.id FROM events e WHERE e.session_id = NEW.session_id
                     ORDER BY e.revision DESC LIMIT 1), NEW.updated_at);
        END
        """,
        """
        CREATE TRIGGER answers_history_on_update AFTER UPDATE ON answers
        WHEN OLD.value IS NOT NEW.value OR OLD.status IS NOT NEW.status BEGIN
            INSERT INTO answer_history (session_id, question, old_value, old_status, new_value,
                                        new_status, event_id, at)
            VALUES (NEW.session_id, NEW.question, OLD.value, OLD.status, NEW.value, NEW.status,
                    (SELECT e.id FROM events e WHERE e.session_id = NEW.session_id
                     ORDER BY e.revision DESC LIMIT 1), NEW.updated_at);
        END
        """,
    ),
    # 8: a reminder still waiting in the outbox when its person completes, refuses or is
    # otherwise done is withdrawn (its message ends failed, unsent): a large pass drains for hours.
    (
        "ALTER TABLE reminders ADD COLUMN withdrawn_at TEXT",
        "ALTER TABLE reminders ADD COLUMN withdrawn_because TEXT",
    ),
    # 9: the reminders row is the queue entry; the outbox draws reminders from it as its sender
    # has room (Storage.hand_over_reminders), so a text is rendered when it is about to leave, not
    # up to hours before. outbox_id NULL (and not withdrawn) now means "queued, not yet handed
    # over"; this index finds a bot's queued reminders oldest first, and stays as small as the
    # queue. A row left with no message before this (migration 6 found none to link: removed by
    # hand) is marked withdrawn, so that it is not taken for a queued one and sent days late.
    (
        "UPDATE reminders SET withdrawn_at = enqueued_at, withdrawn_because = 'no outbox message at migration 9'"
        " WHERE outbox_id IS NULL AND withdrawn_at IS NULL",
        "CREATE INDEX reminders_queued ON reminders (channel, bot, id)"
        " WHERE outbox_id IS NULL AND withdrawn_at IS NULL",
    ),
    # 10: the coordinator console (console/): its accounts, web sessions, login attempts (for
    # the rate limit), audit log and background jobs. SQL in storage/accounts.py, audit.py, jobs.py.
    (
        """
        CREATE TABLE console_accounts (
            id            INTEGER PRIMARY KEY,
            username      TEXT NOT NULL UNIQUE,
            display_name  TEXT NOT NULL DEFAULT '',
            role          TEXT NOT NULL CHECK (role IN ('admin', 'coordinator', 'analyst', 'viewer')),
            surveys       TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(surveys)),
            units         TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(units)),
            personal      INTEGER NOT NULL DEFAULT 0 CHECK (personal IN (0, 1)),
            password_hash TEXT NOT NULL,
            disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
            created_at    TEXT NOT NULL,
            updated_at    TEXT NOT NULL
        )
        """,
        """
        CREATE TABLE console_sessions (
            token_hash  TEXT PRIMARY KEY,
            account_id  INTEGER NOT NULL REFERENCES console_accounts (id),
            csrf        TEXT NOT NULL,
            created_at  TEXT NOT NULL,
            expires_at  TEXT NOT NULL,
            address     TEXT
        )
        """,
        "CREATE INDEX console_sessions_by_account ON console_sessions (account_id)",
        """
        CREATE TABLE console_login_attempts (
            id        INTEGER PRIMARY KEY,
            username  TEXT NOT NULL,
            address   TEXT NOT NULL,
            ok        INTEGER NOT NULL CHECK (ok IN (0, 1)),
            at        TEXT NOT NULL
        )
        """,
        "CREATE INDEX console_login_attempts_by_user ON console_login_attempts (username, at)",
        "CREATE INDEX console_login_attempts_by_address ON console_login_attempts (address, at)",
        """
        CREATE TABLE console_audit (
            id         INTEGER PRIMARY KEY,
            at         TEXT NOT NULL,
            account_id INTEGER,
            username   TEXT,
            address    TEXT,
            action     TEXT NOT NULL,
            survey_id  TEXT,
            detail     TEXT NOT NULL DEFAULT ''
        )
        """,
        "CREATE INDEX console_audit_by_at ON console_audit (at)",
        """
        CREATE TABLE console_jobs (
            id          TEXT PRIMARY KEY,
            kind        TEXT NOT NULL,
            survey_id   TEXT,
            account_id  INTEGER,
            status      TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
            progress    REAL NOT NULL DEFAULT 0 CHECK (progress >= 0 AND progress <= 1),
            message     TEXT NOT NULL DEFAULT '',
            params      TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(params)),
            result_path TEXT,
            created_at  TEXT NOT NULL,
            started_at  TEXT,
            finished_at TEXT
        )
        """,
        "CREATE INDEX console_jobs_by_survey ON console_jobs (survey_id, created_at)",
    ),
]
