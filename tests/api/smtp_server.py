"""A real SMTP server for the mail tests (tests/api/smtp.rs): Debian's aiosmtpd
on a free loopback port, storing what it accepts in a Maildir.

    /usr/bin/python3 smtp_server.py MAILDIR [--starttls CERT KEY | --smtps CERT KEY]
        [--auth USER PASSWORD MECHANISM] [--auth-log FILE]

Prints the port it listens on, then serves until killed.
--starttls: STARTTLS offered and required before MAIL (and before AUTH).
--smtps: TLS from the first byte (implicit TLS).
--auth: AUTH required before MAIL; only MECHANISM (PLAIN or LOGIN) is offered.
--auth-log: one line per AUTH attempt: "MECHANISM LOGIN ok|refused" (never
the password).
Each stored mail gets the headers X-Test-TLS (yes/no: whether the session
was encrypted) and X-Test-Auth ("MECHANISM LOGIN", or "none").
"""
import argparse
import asyncio
import ssl

from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import SMTP, AuthResult

parser = argparse.ArgumentParser()
parser.add_argument("maildir")
parser.add_argument("--starttls", nargs=2, metavar=("CERT", "KEY"))
parser.add_argument("--smtps", nargs=2, metavar=("CERT", "KEY"))
parser.add_argument("--auth", nargs=3, metavar=("USER", "PASSWORD", "MECHANISM"))
parser.add_argument("--auth-log")
args = parser.parse_args()


def tls_context(cert_key):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*cert_key)
    return context


class TaggingMailbox(Mailbox):
    async def handle_DATA(self, server, session, envelope):
        # Implicit TLS or after STARTTLS: the transport is a TLS one.
        session.test_tls = server.transport.get_extra_info("ssl_object") is not None
        return await super().handle_DATA(server, session, envelope)

    def prepare_message(self, session, envelope):
        message = super().prepare_message(session, envelope)
        message["X-Test-TLS"] = "yes" if session.test_tls else "no"
        message["X-Test-Auth"] = getattr(session, "test_auth", None) or "none"
        return message


def authenticator(server, session, envelope, mechanism, auth_data):
    user, password, _ = args.auth
    login = auth_data.login.decode(errors="replace")
    ok = login == user and auth_data.password.decode(errors="replace") == password
    if args.auth_log:
        with open(args.auth_log, "a") as log:
            log.write(f"{mechanism} {login} {'ok' if ok else 'refused'}\n")
    if ok:
        session.test_auth = f"{mechanism} {login}"
    if ok:
        return AuthResult(success=True, auth_data=auth_data)
    # handled=False: aiosmtpd answers the refusal itself (535).
    return AuthResult(success=False, handled=False)


smtp_options = {"hostname": "ferrogram-test-smtp", "enable_SMTPUTF8": True}
if args.starttls:
    smtp_options.update(tls_context=tls_context(args.starttls), require_starttls=True)
if args.auth:
    mechanism = args.auth[2].upper()
    others = [m for m in ("PLAIN", "LOGIN") if m != mechanism]
    smtp_options.update(
        authenticator=authenticator,
        auth_required=True,
        # With implicit TLS aiosmtpd does not see the TLS (it watches STARTTLS
        # only); the whole connection is encrypted anyway.
        auth_require_tls=bool(args.starttls),
        auth_exclude_mechanism=others,
    )

handler = TaggingMailbox(args.maildir)
loop = asyncio.new_event_loop()
asyncio.set_event_loop(loop)
server = loop.run_until_complete(
    loop.create_server(
        lambda: SMTP(handler, loop=loop, **smtp_options),
        host="127.0.0.1",
        port=0,
        ssl=tls_context(args.smtps) if args.smtps else None,
    )
)
print(server.sockets[0].getsockname()[1], flush=True)
loop.run_forever()
