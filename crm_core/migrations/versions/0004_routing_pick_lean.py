"""routing_pick in four statements instead of eight

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 05:00:00

Same picks, same fairness (the advisory lock still serialises every instance's picks and the
SELECT after it still sees every earlier pick). Each plpgsql statement costs an executor start,
and the function runs once per routing batch, in the way of every inbound call: under a burst of
calls the database's fixed cost per batch was ~0.45 ms, most of it here. Merged: the lock with
the session setting; the newcomer insert into the ordering (a candidate without a row counts as
ticket 0) and the upsert of the turns; the ticket reservation into one expression.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROUTING_LOCK_KEY = 7_406_006  # as in 0002

LEAN_PICK_FUNCTION = f"""
CREATE OR REPLACE FUNCTION routing_pick(candidates integer[], n integer) RETURNS integer[]
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    ordered integer[];
    k integer;
    base bigint;
BEGIN
    IF n IS NULL OR n <= 0 OR coalesce(cardinality(candidates), 0) = 0 THEN
        RETURN '{{}}';
    END IF;
    -- A lost ticket after a crash only reorders the next round: no WAL flush wait under the lock.
    -- The lock serialises picks of all instances; the next statement takes a fresh snapshot (a
    -- VOLATILE plpgsql function does, per statement), so it sees every pick committed before.
    PERFORM set_config('synchronous_commit', 'off', true),
            pg_advisory_xact_lock({ROUTING_LOCK_KEY});
    -- Longest waiting first; a candidate without a row yet is a newcomer: ticket 0, goes first.
    SELECT array_agg(u.c ORDER BY coalesce(t.last_ticket, 0), u.c) INTO ordered
        FROM (SELECT DISTINCT unnest(candidates) AS c) AS u
        LEFT JOIN routing_turns AS t ON t.user_id = u.c;
    k := cardinality(ordered);
    -- Tickets base .. base+n-1, reserved in one expression; only this function moves the sequence.
    base := setval('routing_ticket_seq', nextval('routing_ticket_seq') + n - 1) - n + 1;
    -- Pick i (0-based) goes to ordered[i % k + 1] with ticket base + i: strict rotation.
    INSERT INTO routing_turns AS t (user_id, last_ticket, routed_count)
        SELECT ordered[(i % k) + 1], base + max(i), count(*)
        FROM generate_series(0, n - 1) AS i GROUP BY 1
        ON CONFLICT (user_id) DO UPDATE
        SET last_ticket = excluded.last_ticket,
            routed_count = t.routed_count + excluded.routed_count;
    RETURN ARRAY(SELECT ordered[(i % k) + 1] FROM generate_series(0, n - 1) AS i ORDER BY i);
END
$$;
"""


def upgrade() -> None:
    op.execute(LEAN_PICK_FUNCTION)


def downgrade() -> None:
    from importlib import import_module

    previous = import_module("crm_core.migrations.versions.0002_routing")
    op.execute("DROP FUNCTION IF EXISTS routing_pick(integer[], integer)")
    op.execute(previous.PICK_FUNCTION)
