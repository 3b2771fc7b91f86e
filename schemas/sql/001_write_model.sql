-- 001_write_model.sql - the write model: the system of record of cm-worker (DESIGN §2, §5).
--
-- Every cm-worker applies a command in ONE transaction: lock the cluster_state row, skip the
-- command if applied_commands has its id, run the FSM, write cluster_state, append events to
-- outbox, create or signal a job. Secrets are stored sealed (libsodium sealed box with the
-- manager's public key); no column of this schema holds a plaintext secret.

-- The states of DESIGN §3. One domain so the write and read models cannot drift apart.
CREATE DOMAIN cm_cluster_state AS text
    CHECK (VALUE IN ('Creating', 'Connecting', 'Updating', 'Canceling', 'Unavailable',
                     'Deleting', 'Running', 'Unreachable', 'Deleted'));

-- DNS-1123 subdomain (DESIGN §4): validation runs before this; the check is the last guard.
CREATE DOMAIN cm_cluster_name AS text
    CHECK (length(VALUE) BETWEEN 1 AND 253
           AND VALUE ~ '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$');

-- One row per cluster name, ever. A name is reusable after Deleted: Create/Import on a Deleted
-- row UPDATEs the same row (state, spec, secrets, certificates, host keys, imported,
-- last_error and created_at are reset) and seq CONTINUES from where the deleted incarnation
-- stopped. So seq is monotonic per name for the life of the database and (cluster, seq) stays
-- unique in outbox and in the read model's cluster_events, across re-creates; consumers that
-- dedupe by (cluster, seq) never mistake a new incarnation's event for an old one.
CREATE TABLE cluster_state (
    name                     cm_cluster_name  PRIMARY KEY,
    state                    cm_cluster_state NOT NULL,
    -- seq of the last event appended to outbox for this name (0: none yet).
    seq                      bigint      NOT NULL DEFAULT 0 CHECK (seq >= 0),
    -- Bumped by every accepted command or job outcome that changes the row; compared with
    -- Command.expectedVersion (optimistic concurrency for callers that ask for it).
    version                  bigint      NOT NULL DEFAULT 1 CHECK (version >= 1),
    -- The cluster spec as JSON (cm/spec.h), without secrets.
    spec                     jsonb       NOT NULL CHECK (jsonb_typeof(spec) = 'object'),
    ssh_key_sealed           bytea,
    kubeconfig_sealed        bytea,
    -- Public certificate material only: {"ca": "-----BEGIN CERTIFICATE-----...", ...}.
    certificates             jsonb       NOT NULL DEFAULT '{}'
                             CHECK (jsonb_typeof(certificates) = 'object'
                                    AND position('PRIVATE KEY' IN certificates::text) = 0),
    -- The private keys of those certificates, as one sealed box (JSON inside the box).
    certificate_keys_sealed  bytea,
    -- SSH host keys pinned on first contact, per node address:
    -- {"10.0.0.1": "ssh-ed25519 AAAA...", ...} (DESIGN §7: first key trusted, then pinned).
    host_keys                jsonb       NOT NULL DEFAULT '{}'
                             CHECK (jsonb_typeof(host_keys) = 'object'),
    imported                 boolean     NOT NULL DEFAULT false,
    last_error               text,
    created_at               timestamptz NOT NULL DEFAULT now(),
    updated_at               timestamptz NOT NULL DEFAULT now()
);

-- Commands already handled (at-least-once delivery made idempotent). Also records commands
-- for names that do not exist, so there is no foreign key to cluster_state. The id is text,
-- not uuid: cm-api turns an Idempotency-Key header into the command id (DESIGN §6).
CREATE TABLE applied_commands (
    command_id  text        PRIMARY KEY CHECK (length(command_id) BETWEEN 1 AND 200),
    cluster     text        NOT NULL,
    result      text        NOT NULL CHECK (result IN ('applied', 'rejected')),
    message     text,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX applied_commands_cluster_at ON applied_commands (cluster, at);

-- Long work, claimed with a lease. A worker claims the oldest runnable job with
--   SELECT ... FROM jobs
--    WHERE state IN ('queued', 'running')
--      AND (state = 'queued' AND not_before <= now() OR lease_until < now())
--    ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED;
-- then sets state = 'running', owner, lease_until, attempt = attempt + 1, and heartbeats by
-- pushing lease_until forward. A running job whose lease expired (its worker died) is
-- runnable again. The condition state IN ('queued', 'running') matches jobs_claimable, a
-- partial index that holds only unfinished jobs, so claiming stays cheap however many
-- finished jobs accumulate.
CREATE TABLE jobs (
    id                uuid        PRIMARY KEY,
    cluster           cm_cluster_name NOT NULL REFERENCES cluster_state (name),
    kind              text        NOT NULL CHECK (kind IN ('zke-up', 'zke-remove', 'connect')),
    state             text        NOT NULL DEFAULT 'queued'
                      CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'canceled')),
    attempt           integer     NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    owner             text,
    lease_until       timestamptz,
    -- Earliest time a queued job may be claimed (backoff between attempts).
    not_before        timestamptz NOT NULL DEFAULT now(),
    cancel_requested  boolean     NOT NULL DEFAULT false,
    -- What the job produced that the transition needs (no secrets: those go sealed into
    -- cluster_state in the same transaction).
    outcome           jsonb,
    error             text,
    -- Input of the job, e.g. the node list of a zke-up (no secrets).
    payload           jsonb       NOT NULL DEFAULT '{}',
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CHECK (state <> 'running' OR (owner IS NOT NULL AND lease_until IS NOT NULL))
);
CREATE INDEX jobs_claimable ON jobs (created_at) WHERE state IN ('queued', 'running');
-- At most one unfinished job per cluster (DESIGN §3: a cluster runs one job at a time; Cancel
-- signals that job). Also how Cancel finds the job to signal.
CREATE UNIQUE INDEX jobs_one_active_per_cluster ON jobs (cluster)
    WHERE state IN ('queued', 'running');
CREATE INDEX jobs_cluster_created ON jobs (cluster, created_at);

-- Transactional outbox: the Avro single-object encoded cm.ClusterEvent, written in the same
-- transaction as the state change, published to cm.events in (cluster, seq) order by the
-- relay, then marked sent.
CREATE TABLE outbox (
    cluster     cm_cluster_name NOT NULL,
    seq         bigint      NOT NULL CHECK (seq >= 1),
    event       bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    sent_at     timestamptz,
    PRIMARY KEY (cluster, seq)
);
-- The relay's work queue: only unsent rows, in per-cluster order.
CREATE INDEX outbox_unsent ON outbox (cluster, seq) WHERE sent_at IS NULL;
