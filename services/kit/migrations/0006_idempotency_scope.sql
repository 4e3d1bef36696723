-- request_id keys are scoped to the principal that sent them (as Stripe
-- scopes keys to the account): another caller's key neither replays nor
-- blocks. Keys stored before this migration keep an empty scope.
ALTER TABLE idempotency_keys ADD COLUMN principal text NOT NULL DEFAULT '';
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_pkey;
ALTER TABLE idempotency_keys ADD PRIMARY KEY (principal, request_id);
