//! The verification email. Its body holds the code and the link token, so it
//! goes only to the mail queue, never to a log.

use crate::{OutgoingMail, Settings};

pub(crate) fn verification(settings: &Settings, to: &str, code: &str, token: &str) -> OutgoingMail {
    let link = format!(
        "{}/verify?token={token}",
        settings.public_url.trim_end_matches('/')
    );
    let hours = (settings.verification_ttl_secs / 3600).max(1);
    let server = &settings.server_name;
    let text = format!(
        "Welcome to Ferrogram on {server}.\n\n\
         Your verification code is: {code}\n\n\
         Or open this link to verify your email address:\n{link}\n\n\
         The code and the link work once and expire in {hours} hours.\n\
         If you did not create an account, ignore this message.\n"
    );
    let html = format!(
        "<p>Welcome to Ferrogram on {server}.</p>\
         <p>Your verification code is: <strong>{code}</strong></p>\
         <p><a href=\"{link}\">Verify your email address</a></p>\
         <p>The code and the link work once and expire in {hours} hours. \
         If you did not create an account, ignore this message.</p>",
        server = html_escape(server),
        link = html_escape(&link),
    );
    OutgoingMail {
        to: to.to_owned(),
        // No code in the subject: subjects show up in logs and notifications.
        subject: "Verify your Ferrogram email address".to_owned(),
        text,
        html: Some(html),
    }
}

/// The server name comes from the operator's config; escape it anyway.
fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
