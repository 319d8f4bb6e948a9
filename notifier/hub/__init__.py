"""The event hub: numbers messages in `event_log`, spreads them with NOTIFY, fans out to sockets.

event_hub.py   EventHub: domain events -> channel messages -> its backend; subscribe, replay
postgres.py    the backend across instances: event_log + NOTIFY, LISTEN, catch-up in seq order
local.py       the backend of one process, without a database (benchmarks, tools)
event_log.py   the event_log table: append under the publish lock (own or caller's
               transaction), replay, cleanup
notify.py      the NOTIFY body: frames inline when they fit, else their numbers
fanout.py      this instance's sockets by channel; each seq delivered once, in order (a
               screen-pop may be shown before its number: its copy then skips those shown)
subscriber.py  one socket's bounded, prioritised queue (screen-pops first)
frames.py      what a socket receives: numbered frames, a pop's before its number, control
"""

from notifier.hub.event_hub import EventHub
from notifier.hub.event_log import Replay
from notifier.hub.frames import Envelope, control_frame
from notifier.hub.subscriber import SlowConsumer, Subscriber

__all__ = ["Envelope", "EventHub", "Replay", "SlowConsumer", "Subscriber", "control_frame"]
