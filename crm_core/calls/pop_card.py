"""The card as a screen-pop shows it, built by the database in the statement that needs it.

One SQL expression, used by the pop's own read (`crm_core.calls.progress`) and by a call's
start (`crm_core.calls.service.look_up_and_remember`), which reads it with the caller's lookup
so that the call's first pops need no round trip of their own.
"""

from __future__ import annotations

import json
from typing import Any


def decoded(raw: Any) -> Any:
    """A `json` value as the driver hands it: text, or already decoded (a codec is set on the
    session's connections)."""
    return json.loads(raw) if isinstance(raw, str | bytes) else raw


def card_json_sql(client_id: str, deal_id: str) -> str:
    """A `json` expression: the card of the client whose id is the SQL expression `client_id`
    (NULL when there is none), showing the deal whose id is `deal_id` (an expression that may
    use `c`, the client's row), its last 5 communications and open tasks."""
    return f"""(SELECT json_build_object(
        'client', json_build_object(
            'id', c.id, 'name', c.name, 'company', c.company, 'notes', c.notes,
            'phones', COALESCE((SELECT json_agg(p.e164 ORDER BY p.id)
                                FROM client_phones p WHERE p.client_id = c.id), '[]'::json),
            'emails', COALESCE((SELECT json_agg(e.email ORDER BY e.id)
                                FROM client_emails e WHERE e.client_id = c.id), '[]'::json),
            'responsible', (SELECT json_build_object('id', u.id, 'name', u.full_name)
                            FROM users u WHERE u.id = c.responsible_id)),
        'deal', (SELECT json_build_object(
                    'id', d.id, 'title', d.title, 'amount', d.amount::text,
                    'currency', d.currency, 'stage', s.name, 'stage_id', d.stage_id)
                 FROM deals d JOIN deal_stages s ON s.id = d.stage_id
                 WHERE d.id = {deal_id}),
        'recent', COALESCE((SELECT json_agg(r) FROM (
                    SELECT id, kind, direction, status, occurred_at AS at, subject,
                           talk_seconds
                    FROM communications WHERE client_id = c.id
                    ORDER BY occurred_at DESC, id DESC LIMIT 5) r), '[]'::json),
        'tasks', COALESCE((SELECT json_agg(t) FROM (
                    SELECT id, title, kind, due_at FROM tasks
                    WHERE client_id = c.id AND NOT done
                    ORDER BY due_at ASC NULLS LAST LIMIT 10) t), '[]'::json))
        FROM clients c WHERE c.id = {client_id})"""
