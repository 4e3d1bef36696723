-- When each periodic worker of this schema last ran (kit's `worker`): the
-- replica that locks a job's row and finds it due runs the job in the same
-- transaction and moves the time, so a job runs once per interval however
-- many replicas there are.
CREATE TABLE worker_runs (
    name          text PRIMARY KEY,
    last_run_time timestamptz NOT NULL
);
