"""SMS and email on the client's deal: messages queued to send (the `outbox` table a worker in
notifier/ drains), received ones logged once, delivery statuses applied."""
