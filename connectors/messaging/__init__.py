"""Delivery of owners' messages: SMTP (``smtp``), an HTTP SMS gateway (``sms``) and the dispatcher that sends
the outbox through them (``dispatch``); a local catch-all SMTP server (``smtp_server``) and an SMS gateway
simulator with faults and receipts (``sms_simulator``) for the demo and the tests."""
