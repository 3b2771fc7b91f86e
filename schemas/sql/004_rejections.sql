-- Rejected commands (DESIGN §3) do not change a cluster, so they do not take a place in the
-- cluster's gap-free event sequence: their CommandRejected / CommandInvalid events are
-- published with seq 0 from this outbox, keyed by command id, in any order.
CREATE TABLE rejection_outbox (
    command_id  text        PRIMARY KEY CHECK (length(command_id) BETWEEN 1 AND 200),
    cluster     text        NOT NULL,          -- as received: may be no valid cluster name
    event       bytea       NOT NULL,          -- cm.ClusterEvent, single-object encoded
    created_at  timestamptz NOT NULL DEFAULT now(),
    sent_at     timestamptz
);
CREATE INDEX rejection_outbox_unsent ON rejection_outbox (created_at) WHERE sent_at IS NULL;

-- Why a command was rejected, so cm-api can answer 409 (conflict with the cluster's state)
-- or 422 (invalid request) when a caller waits for the outcome.
ALTER TABLE command_results
    ADD COLUMN code text CHECK (code IS NULL OR code IN ('conflict', 'invalid'));
