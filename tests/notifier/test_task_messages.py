"""Task news reach the people concerned: the assignee (and a reassigned task's previous one);
a reminder only its assignee's own channel; and the presence helper reads user channels."""

from __future__ import annotations

from crm_core.events.messages import TaskDoneMessage, TaskUpdatedMessage
from crm_core.events.types import TaskChanged, TaskReminder
from notifier.channels import messages_for, user_channel, user_of_channel
from notifier.hub import EventHub
from tests.event_contract import violations


def test_reassigned_task_news_go_to_both_assignees_and_fit_the_catalogue() -> None:
    payload = {"due_at": None, "remind_at": None, "done": False, "previous_assignee_id": 3}
    messages = messages_for([TaskChanged(TaskUpdatedMessage.TYPE, 9, "other", 4, None, payload)])
    assert [m.channel for m in messages] == [user_channel(4), user_channel(3)]
    assert all("previous_assignee_id" not in m.payload for m in messages)
    assert all(not violations(m.type, m.payload) for m in messages)
    done = messages_for([TaskChanged(TaskDoneMessage.TYPE, 9, "callback", None, 5, {})])
    assert done == []  # nobody assigned: nobody told


def test_a_reminder_goes_to_its_assignee_only() -> None:
    payload = {
        "title": "Call",
        "kind": "callback",
        "due_at": None,
        "remind_at": None,
        "client_id": 2,
        "client_name": "Ivan",
        "deal_id": None,
    }
    [m] = messages_for([TaskReminder(task_id=7, assignee_id=4, payload=payload)])
    assert (m.channel, m.type, m.payload["id"], m.payload["task_id"]) == (
        user_channel(4),
        "task.reminder",
        7,
        7,
    )
    assert violations(m.type, m.payload) == []


def test_watching_users_are_those_with_their_own_channel_open() -> None:
    assert user_of_channel("user:12") == 12
    assert user_of_channel("ext:101") is None and user_of_channel("user:x") is None
    hub = EventHub(None)
    sub = hub.subscribe(["user:5", "ext:101"])
    hub.subscribe(["supervisors"])
    assert hub.watching_users() == {5}
    hub.unsubscribe(sub)
    assert hub.watching_users() == set()
