"""E-mail over SMTP (``smtplib``) to the configured host and port. The Message-ID header carries the message's
id (``<uuid@vetconnect>``), so a mail resent after a lost answer is recognisably the same mail.

A 5xx answer to RCPT or DATA is a bounce (the mailbox does not exist, the mail is refused); a 4xx answer, a
dropped connection or a timeout is worth another try. One connection serves a batch and is reopened after an
error."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from email.utils import formatdate
from types import TracebackType

from connectors.messaging.gateway import Outcome

MESSAGE_ID_DOMAIN = "vetconnect"


def message_id_header(message_id: str) -> str:
    return f"<{message_id}@{MESSAGE_ID_DOMAIN}>"


def build_mail(message_id: str, sender: str, to: str, subject: str, body: str) -> EmailMessage:
    mail = EmailMessage()
    mail["Message-ID"] = message_id_header(message_id)
    mail["From"] = sender
    mail["To"] = to
    mail["Subject"] = subject
    mail["Date"] = formatdate(localtime=True)
    mail.set_content(body)
    return mail


class SmtpSender:
    def __init__(self, host: str, port: int, sender: str, *, timeout: float = 10.0) -> None:
        self.host, self.port, self.sender, self.timeout = host, port, sender, timeout
        self._smtp: smtplib.SMTP | None = None

    def __enter__(self) -> SmtpSender:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._close(quit_=True)

    def _close(self, *, quit_: bool = False) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit() if quit_ else self._smtp.close()
            except (smtplib.SMTPException, OSError):
                self._smtp.close()
            self._smtp = None

    def send(self, message_id: str, to: str, subject: str, body: str) -> Outcome:
        mail = build_mail(message_id, self.sender, to, subject, body)
        try:
            if self._smtp is None:
                self._smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            self._smtp.send_message(mail)
        except smtplib.SMTPRecipientsRefused as exc:
            self._close()
            code, answer = next(iter(exc.recipients.values()))
            return _by_code(code, answer, "The mail server refused the address")
        except (smtplib.SMTPDataError, smtplib.SMTPSenderRefused) as exc:
            self._close()
            return _by_code(exc.smtp_code, exc.smtp_error, "The mail server refused the mail")
        except (smtplib.SMTPException, OSError) as exc:  # disconnected, refused connection, timeout
            self._close()
            return Outcome(
                "retry", f"The mail server could not be reached: {exc.__class__.__name__} {exc}".strip()
            )
        return Outcome("sent")


def _by_code(code: int, answer: bytes | str, what: str) -> Outcome:
    said = answer.decode(errors="replace") if isinstance(answer, bytes) else str(answer)
    if 500 <= code < 600:
        return Outcome("bounced", f"{what}: {code} {said}")
    return Outcome("retry", f"{what} for now: {code} {said}")
