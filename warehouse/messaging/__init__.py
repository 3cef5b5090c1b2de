"""Messages that reach owners: which are due (``generate``), their text (``render``) and the outbox the
dispatcher (``connectors.messaging.dispatch``) sends from (``outbox``); what people see (``views``)."""
