"""Messages that reach owners: which are due (``generate``), their text (``render``) and the outbox the
dispatcher (``connectors.messaging.dispatch``) sends from (``outbox``); what people see (``queries``), queueing
on a user's request (``on_request``) and the demo's mailbox (``mailbox``)."""
