"""The service's running parts, each wired from settings and what it needs (no container).

    call_tracking.py  AMI listener -> tracker -> call pipeline -> database and hub (one instance)
    agi_routing.py    FastAGI server -> Router -> database (every instance)
    messaging.py      outbox worker (SMS, email) and the inbound SMTP server (every instance)

web/compose.py builds them, with the event hub and the session watch, in dependency order.
"""
