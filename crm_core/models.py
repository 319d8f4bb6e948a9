"""Every mapped model, imported in one place so metadata (and Alembic) sees them all."""

from crm_core.calls.models import ActiveCall, AgentState, PbxSync
from crm_core.clients.models import Client, ClientEmail, ClientPhone, ContactPerson
from crm_core.comments.models import CommunicationComment
from crm_core.communications.models import Communication
from crm_core.db import Base
from crm_core.deals.models import Deal, DealChoice, DealStage, DealStageMove
from crm_core.events.models import EventLogEntry
from crm_core.messaging.models import OutboxMessage
from crm_core.presence.models import AgentPresence, PauseReason, PresenceSpan
from crm_core.reports.models import QueueEntry, SalesPlan
from crm_core.results.models import ContactResult, ContactResultRecord
from crm_core.routing.models import RoutingTurn
from crm_core.schedules.models import ScheduleException, ScheduleInterval
from crm_core.tasks.models import OpenPage, ReminderEmail, Task
from crm_core.users.models import AuthSession, LoginThrottle, Role, User

__all__ = [
    "ActiveCall",
    "AgentPresence",
    "AgentState",
    "AuthSession",
    "Base",
    "Client",
    "ClientEmail",
    "ClientPhone",
    "Communication",
    "CommunicationComment",
    "ContactPerson",
    "ContactResult",
    "ContactResultRecord",
    "Deal",
    "DealChoice",
    "DealStage",
    "DealStageMove",
    "EventLogEntry",
    "LoginThrottle",
    "OpenPage",
    "OutboxMessage",
    "PauseReason",
    "PbxSync",
    "PresenceSpan",
    "QueueEntry",
    "ReminderEmail",
    "Role",
    "RoutingTurn",
    "SalesPlan",
    "ScheduleException",
    "ScheduleInterval",
    "Task",
    "User",
]
