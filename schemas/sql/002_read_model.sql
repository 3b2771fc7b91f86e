-- 002_read_model.sql - the read model that cm-projector builds from cm.events (DESIGN §2, §5).
--
-- cm-projector applies an event only if its seq is above clusters.seq for that name, in the
-- same transaction as its Kafka offset (projector_offsets): exactly-once effects. cm-api
-- serves reads from here. At any quiet moment clusters equals cluster_state.

-- One row per cluster name. A Deleted cluster keeps its row (state Deleted) until the name is
-- created again; the views leave it out. seq continues across re-creates (see cluster_state).
CREATE TABLE clusters (
    name        cm_cluster_name  PRIMARY KEY,
    state       cm_cluster_state NOT NULL,
    -- Running or Unreachable (DESIGN §3); the check keeps the flag and the state consistent.
    ready       boolean     NOT NULL,
    seq         bigint      NOT NULL CHECK (seq >= 1),
    spec        jsonb       NOT NULL CHECK (jsonb_typeof(spec) = 'object'),
    node_count  integer     NOT NULL DEFAULT 0 CHECK (node_count >= 0),
    last_error  text,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    CHECK (ready = (state IN ('Running', 'Unreachable')))
);
CREATE INDEX clusters_state ON clusters (state);

CREATE VIEW ready_clusters AS
    SELECT * FROM clusters WHERE state IN ('Running', 'Unreachable');

-- Deleted is neither ready nor unready: a deleted cluster leaves both views.
CREATE VIEW unready_clusters AS
    SELECT * FROM clusters
     WHERE state IN ('Creating', 'Connecting', 'Updating', 'Canceling', 'Unavailable',
                     'Deleting');

-- Event history, one row per cm.ClusterEvent. (cluster, seq) is unique across re-creates of
-- a name because seq never restarts (see cluster_state in 001_write_model.sql).
CREATE TABLE cluster_events (
    cluster     cm_cluster_name NOT NULL,
    seq         bigint      NOT NULL CHECK (seq >= 1),
    event_id    uuid        NOT NULL UNIQUE,
    type        text        NOT NULL CHECK (type <> ''),
    from_state  cm_cluster_state,
    to_state    cm_cluster_state,
    command_id  text,
    job_id      uuid,
    actor       text        NOT NULL,
    actor_role  text,
    error       text,
    at          timestamptz NOT NULL,
    -- The whole event as JSON (with its spec, never a secret).
    payload     jsonb       NOT NULL DEFAULT '{}',
    PRIMARY KEY (cluster, seq)
);
CREATE INDEX cluster_events_command ON cluster_events (command_id) WHERE command_id IS NOT NULL;

-- GET /v1/commands/{id}: pending until the worker's event for it is projected.
CREATE TABLE command_results (
    command_id  text        PRIMARY KEY CHECK (length(command_id) BETWEEN 1 AND 200),
    cluster     text        NOT NULL,
    status      text        NOT NULL CHECK (status IN ('pending', 'applied', 'rejected')),
    message     text,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- The projector's Kafka positions, written in the same transaction as the rows they produced.
-- next_offset is the offset of the next message to consume (Kafka's committed-offset
-- convention); the column is not called "offset" because OFFSET is an SQL reserved word.
CREATE TABLE projector_offsets (
    topic        text    NOT NULL,
    "partition"  integer NOT NULL CHECK ("partition" >= 0),
    next_offset  bigint  NOT NULL CHECK (next_offset >= 0),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, "partition")
);
