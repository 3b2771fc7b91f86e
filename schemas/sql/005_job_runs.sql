-- Every run of every job (DESIGN §3 "A job whose worker died is resumed by another worker
-- after its lease expires"): one row per claim of a job by a worker, written by the claim
-- statement itself, so no claim goes unrecorded. jobs keeps only the latest owner and
-- attempt; this table keeps them all, so operators see which worker ran each attempt and
-- when, and the fault tests (tests/integration/fault_kill.sh) prove that no two runs of a
-- job ever overlapped in time, even with workers killed at random.
--
-- run numbers the claims of a job 1, 2, 3, ... (the claim takes max(run) + 1 while it
-- holds the job row's lock). It, not attempt, is the key: a worker that stops gracefully
-- gives its attempt back (jobs.attempt - 1), so the next claim has the same attempt again.
--
-- A run ends when it has stopped doing work (its SSH steps or connect probes returned);
-- then its worker sets ended_at = now() and how:
--   finished    the outcome was applied (JobSucceeded / JobFailed, also canceled and
--               "gave up after N attempts"), in the outcome's own transaction;
--   released    a transient failure: the job was queued again with a backoff (the
--               attempt counts);
--   stopped     the worker was stopping: the job was queued again at once and the
--               attempt given back;
--   abandoned   the run stopped without an outcome: its lease was lost (not extended in
--               time, or the row was no longer ours), or its outcome could not be
--               written; another worker resumes the job when the lease expires;
--   taken-over  the run finished but the job row belonged to another claim by then: its
--               outcome (or release) was dropped.
-- ended_at stays NULL while the run goes on, and for ever when its worker died (kill -9,
-- a crash) or could not write the end (PostgreSQL unreachable at that moment): such a
-- run's end is unknown, at the latest its lease_until.
--
-- No secrets: owner is the worker's id ("<host>:<pid>").
CREATE TABLE job_runs (
    job_id      uuid        NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    run         integer     NOT NULL CHECK (run >= 1),
    attempt     integer     NOT NULL CHECK (attempt >= 1),  -- jobs.attempt the claim set
    owner       text        NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    ended_at    timestamptz,
    how         text        CHECK (how IN ('finished', 'released', 'stopped', 'abandoned',
                                           'taken-over')),
    PRIMARY KEY (job_id, run),
    CHECK ((ended_at IS NULL) = (how IS NULL))
);
-- A worker's runs, e.g. what a worker that died was running.
CREATE INDEX job_runs_owner ON job_runs (owner, started_at);
