"""Messaging domain: the daytime schedule that queues and sends messages to owners (`defs`). The ``warehouse``
resource is the shared one (defined with the Animana domain); this domain adds ``messaging``, the gateways.

The round itself is `connectors.messaging.dispatch.send_due_messages`, which `vetconnect messages send` runs
without Dagster.
"""

from __future__ import annotations

from dagster import Definitions, EnvVar

from pipelines.messaging.jobs import messages_daytime_schedule, messages_send_job
from pipelines.messaging.resources import MessageGatewaysResource

# The same variables as the `vetconnect` settings (vetconnect/settings.py), so the CLI and Dagster send through
# the same gateways.
defs = Definitions(
    jobs=[messages_send_job],
    schedules=[messages_daytime_schedule],
    resources={
        "messaging": MessageGatewaysResource(
            smtp_host=EnvVar("VETCONNECT_SMTP_HOST"),
            smtp_port=EnvVar.int("VETCONNECT_SMTP_PORT"),
            mail_from=EnvVar("VETCONNECT_MAIL_FROM"),
            sms_gateway_url=EnvVar("VETCONNECT_SMS_GATEWAY_URL"),
        )
    },
)

__all__ = ["defs"]
