"""routing: the round-robin pick as one server-side call, schedule change notifications

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 03:00:00

- `routing_ticket_seq`: the global, monotonically increasing ticket of routing_turns.last_ticket.
- `routing_pick(candidates, n)`: n round-robin picks among `candidates`, fair across every service
  instance sharing the database. One round trip; see the function body for why it is built so.
- statement triggers NOTIFY `crm_schedules` when users or schedules change, so that every
  instance's router drops its cached schedules at once instead of waiting for the cache to expire.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# An arbitrary constant: the advisory lock serialising picks across instances.
ROUTING_LOCK_KEY = 7_406_006

PICK_FUNCTION = f"""
CREATE FUNCTION routing_pick(candidates integer[], n integer) RETURNS integer[]
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    ordered integer[];
    k integer;
    base bigint;
BEGIN
    IF n IS NULL OR n <= 0 OR coalesce(cardinality(candidates), 0) = 0 THEN
        RETURN '{{}}';
    END IF;
    -- A lost ticket after a crash only reorders the next round: no need to wait for the WAL
    -- flush while every other instance queues on the lock below.
    PERFORM set_config('synchronous_commit', 'off', true);
    -- Serialise picks of all instances. A VOLATILE plpgsql function takes a fresh snapshot for
    -- each statement, so the SELECT below sees every pick committed before the lock was granted
    -- (a single UPDATE ... FOR UPDATE SKIP LOCKED statement would not: it can re-pick a row that
    -- another transaction updated after this statement's snapshot, and the error accumulates).
    PERFORM pg_advisory_xact_lock({ROUTING_LOCK_KEY});
    -- A first pick for someone: a row with ticket 0, so a newcomer goes first. The NOT EXISTS
    -- spares the usual case (all rows there) a speculative insertion per candidate.
    INSERT INTO routing_turns (user_id, last_ticket, routed_count)
        SELECT DISTINCT c, 0, 0 FROM unnest(candidates) AS c
        WHERE NOT EXISTS (SELECT 1 FROM routing_turns t WHERE t.user_id = c)
        ON CONFLICT (user_id) DO NOTHING;
    SELECT array_agg(user_id ORDER BY last_ticket, user_id) INTO ordered
        FROM routing_turns WHERE user_id = ANY(candidates);
    k := cardinality(ordered);
    -- Reserve tickets base .. base+n-1; only this function advances the sequence, under the lock.
    base := nextval('routing_ticket_seq');
    IF n > 1 THEN
        PERFORM setval('routing_ticket_seq', base + n - 1);
    END IF;
    -- Pick i (0-based) goes to ordered[i % k + 1] with ticket base + i: strict rotation from the
    -- longest-waiting candidate on.
    UPDATE routing_turns AS t
        SET last_ticket = base + s.last_i, routed_count = t.routed_count + s.cnt
        FROM (
            SELECT ordered[(i % k) + 1] AS user_id, max(i) AS last_i, count(*) AS cnt
            FROM generate_series(0, n - 1) AS i GROUP BY 1
        ) AS s
        WHERE t.user_id = s.user_id;
    RETURN ARRAY(SELECT ordered[(i % k) + 1] FROM generate_series(0, n - 1) AS i ORDER BY i);
END
$$;
"""

NOTIFY_FUNCTION = """
CREATE FUNCTION crm_notify_schedules() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('crm_schedules', TG_TABLE_NAME);
    RETURN NULL;
END
$$;
"""

WATCHED = ("users", "schedule_intervals", "schedule_exceptions")


def upgrade() -> None:
    op.execute("CREATE SEQUENCE routing_ticket_seq AS bigint START 1")
    op.execute(
        "SELECT setval('routing_ticket_seq', "
        "greatest((SELECT max(last_ticket) FROM routing_turns), 0) + 1, false)"
    )
    op.execute(PICK_FUNCTION)
    op.execute(NOTIFY_FUNCTION)
    for table in WATCHED:
        op.execute(
            f"CREATE TRIGGER {table}_notify_schedules "
            f"AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION crm_notify_schedules()"
        )


def downgrade() -> None:
    for table in WATCHED:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_notify_schedules ON {table}")
    op.execute("DROP FUNCTION IF EXISTS crm_notify_schedules()")
    op.execute("DROP FUNCTION IF EXISTS routing_pick(integer[], integer)")
    op.execute("DROP SEQUENCE IF EXISTS routing_ticket_seq")
