//! The outbox mail reader of the harness (`ferrogram_test_support::mail`):
//! the MIME it must understand, and the code it must find.

use std::path::Path;

use ferrogram_test_support::mail::Mail;

#[test]
fn parses_a_multipart_quoted_printable_mail() {
    let raw = "To: Ada <ada@example.org>\r\nSubject: Your code\r\nContent-Type: multipart/alternative;\r\n boundary=\"XYZ\"\r\n\r\n--XYZ\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nYour code is 123456.=\r\n Open http://h:1/verify?token=3Dab_c-D%2B1 now=3D\r\n--XYZ\r\nContent-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n\r\nPGI+NjU0MzIxPC9iPg==\r\n--XYZ--\r\n";
    let mail = Mail::parse(Path::new("x.eml"), raw.as_bytes());
    assert!(mail.is_to("ADA@example.org"));
    assert!(!mail.is_to("bob@example.org"));
    assert_eq!(mail.header("subject"), Some("Your code"));
    assert_eq!(mail.code().as_deref(), Some("123456"));
    assert_eq!(mail.link_token().as_deref(), Some("ab_c-D+1"));
    assert_eq!(
        mail.link().as_deref(),
        Some("http://h:1/verify?token=ab_c-D%2B1")
    );
    assert!(mail.text.contains("<b>654321</b>"), "{}", mail.text);
    assert!(mail.text.contains("now="), "{}", mail.text);
}

#[test]
fn code_must_be_exactly_six_digits() {
    let mail = Mail::parse(
        Path::new("x"),
        b"To: a@b.org\n\nid 1234567 and 12345 then x123456 and finally 654321.",
    );
    assert_eq!(mail.code().as_deref(), Some("654321"));
}
