"""The gateways messages to owners go through: the mail server (SMTP) and the HTTP SMS gateway.

Which ones (a provider's relay, the local ``vetconnect messages smtp-server`` and ``sms-simulator``) is
configuration — host, port and URL from the environment in `pipelines/messaging/__init__.py` — never a code path.
The clients are opened for the run in `setup_for_execution` (one SMTP connection serves a whole run) and closed
in `teardown_after_execution`.
"""

from __future__ import annotations

from dagster import ConfigurableResource, InitResourceContext
from pydantic import PrivateAttr

from connectors.messaging.dispatch import Gateways
from connectors.messaging.sms import SmsGateway
from connectors.messaging.smtp import SmtpSender


class MessageGatewaysResource(ConfigurableResource):
    smtp_host: str
    smtp_port: int
    mail_from: str
    sms_gateway_url: str
    # A send that has not answered by then is retried later under the same id (the gateways deduplicate).
    timeout_seconds: float = 10.0

    _email: SmtpSender | None = PrivateAttr(default=None)
    _sms: SmsGateway | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        self._email = SmtpSender(self.smtp_host, self.smtp_port, self.mail_from, timeout=self.timeout_seconds)
        self._sms = SmsGateway(self.sms_gateway_url, read_timeout=self.timeout_seconds)

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        if self._email is not None:
            self._email.__exit__(None, None, None)
        if self._sms is not None:
            self._sms.__exit__(None, None, None)

    @property
    def gateways(self) -> Gateways:
        if self._email is None or self._sms is None:
            raise RuntimeError("MessageGatewaysResource used outside an execution")
        return Gateways(self._email, self._sms)
